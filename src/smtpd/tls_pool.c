/* tls_pool.c - the master's TLS proxies (tls_pool.h).
 *
 * ROOT: runs in the master; starts proxies (tls_proxy.c forks them) and
 * makes ticket keys with getentropy().  No OpenSSL call is made here. */
#include "compat.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "tls_pool.h"
#include "util.h"

static const struct tls_proxy NONE = { .pid = 0, .req = -1, .ctl = -1 };

void tls_pool_init(struct tls_pool *tp)
{
    memset(tp, 0, sizeof *tp);
}

size_t tls_pool_size(const struct config *c)
{
    if (c->tls_proxies > 0)
        return c->tls_proxies > TLS_PROXIES_MAX ? TLS_PROXIES_MAX : (size_t)c->tls_proxies;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    return cpus > 4 ? (size_t)((cpus + 3) / 4) : 1;
}

/* The keys' own page (see the header). */
static int keys_ready(struct tls_pool *tp, char **err)
{
    if (!tp->keys) {
        void *p = mmap(NULL, sizeof *tp->keys, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) {
            *err = xasprintf("TLS: mmap: %s", strerror(errno));
            return -1;
        }
#ifdef MADV_DONTDUMP
        (void)madvise(p, sizeof *tp->keys, MADV_DONTDUMP);
#endif
        tp->keys = p;
    }
    if (tls_proxy_rotate(tp->keys, time(NULL)) < 0 && !tp->keys->n) {
        *err = xstrdup("TLS: cannot make a session ticket key");
        return -1;
    }
    return 0;
}

static void resize(struct tls_pool *tp, size_t n)
{
    tp->p = xreallocarray(tp->p, n ? n : 1, sizeof *tp->p);
    tp->started = xreallocarray(tp->started, n ? n : 1, sizeof *tp->started);
    for (size_t i = tp->n; i < n; i++) {
        tp->p[i] = NONE;
        tp->started[i] = 0;
    }
    tp->n = n;
}

static void release_all(struct tls_pool *tp)
{
    for (size_t i = 0; i < tp->n; i++)
        tls_proxy_release(&tp->p[i]);
}

static int start_one(struct tls_pool *tp, const struct config *c, size_t i, char **err)
{
    if (keys_ready(tp, err) < 0)
        return -1;
    if (tls_proxy_start(&tp->p[i], c, tp->user, tp->keys, tp->in_child, tp->in_child_arg,
                        err) < 0)
        return -1;
    tp->started[i] = now_ms();
    return 0;
}

size_t tls_pool_start(struct tls_pool *tp, const struct config *c)
{
    size_t running = 0;
    if (c->tls_cert.n == 0)
        return 0;
    if (tp->n != tls_pool_size(c)) {
        release_all(tp); /* only at the first start: reloads make a new set */
        resize(tp, tls_pool_size(c));
    }
    for (size_t i = 0; i < tp->n; i++) {
        char *err = NULL;
        if (tp->p[i].pid == 0 && start_one(tp, c, i, &err) < 0) {
            log_err("%s", err);
            free(err);
        }
        running += tp->p[i].pid > 0;
    }
    if (!running)
        log_err("TLS: no TLS proxy runs: STARTTLS is not offered until SIGHUP");
    return running;
}

/* The new set is started in the same array, after the old one, so that
 * each new proxy closes the sockets of the others (tls_pool_close_in_child
 * through in_child): a proxy must be the only holder of its own end. */
void tls_pool_reload(struct tls_pool *tp, const struct config *c)
{
    if (c->tls_cert.n == 0 && c->tls_key.n == 0 && c->smtps <= 0) {
        release_all(tp); /* TLS turned off */
        return;
    }
    char *err = c->tls_cert.n == 0 ? xstrdup("smtps= needs tls-cert= and tls-key=") : NULL;
    size_t old = tp->n, m = tls_pool_size(c);
    resize(tp, old + m);
    for (size_t i = old; !err && i < old + m; i++)
        if (start_one(tp, c, i, &err) < 0)
            break;
    size_t from = err ? old : 0, to = err ? old + m : old; /* the set to let go */
    for (size_t i = from; i < to; i++)
        tls_proxy_release(&tp->p[i]);
    if (err) {
        log_err("SIGHUP: keeping the TLS certificates in use: %s", err);
        free(err);
        tp->n = old;
        return;
    }
    memmove(tp->p, tp->p + old, m * sizeof *tp->p);
    memmove(tp->started, tp->started + old, m * sizeof *tp->started);
    tp->n = m;
    log_info("SIGHUP: TLS certificates re-read (%zu virtual domain(s) with their own)",
             m ? tp->p[0].ndomains : 0);
}

int tls_pool_reaped(struct tls_pool *tp, pid_t pid, const struct config *c, int stopping)
{
    for (size_t i = 0; i < tp->n; i++) {
        if (tp->p[i].pid != pid)
            continue;
        int again = !stopping && now_ms() - tp->started[i] > TLS_PROXY_RESTART_MS;
        log_err("the TLS proxy ended%s",
                again ? "; starting another"
                : stopping ? ""
                : "; within a second of its start, so it is not started again until SIGHUP");
        tls_proxy_release(&tp->p[i]);
        char *err = NULL;
        if (again && start_one(tp, c, i, &err) < 0) {
            log_err("%s", err);
            free(err);
        }
        return 1;
    }
    return 0;
}

void tls_pool_rotate(struct tls_pool *tp)
{
    if (!tp->keys || tls_proxy_rotate(tp->keys, time(NULL)) != 1)
        return;
    for (size_t i = 0; i < tp->n; i++)
        if (tp->p[i].pid > 0)
            (void)tls_proxy_keys(&tp->p[i], tp->keys);
}

int tls_pool_session_req(const struct tls_pool *tp)
{
    size_t live = 0;
    for (size_t i = 0; i < tp->n; i++)
        live += tp->p[i].req >= 0;
    if (!live)
        return -1;
    size_t pick = (size_t)getpid() % live;
    for (size_t i = 0; i < tp->n; i++)
        if (tp->p[i].req >= 0 && pick-- == 0)
            return fcntl(tp->p[i].req, F_DUPFD_CLOEXEC, 0);
    return -1;
}

void tls_pool_close_in_child(struct tls_pool *tp)
{
    for (size_t i = 0; i < tp->n; i++) {
        if (tp->p[i].req >= 0)
            close(tp->p[i].req);
        if (tp->p[i].ctl >= 0)
            close(tp->p[i].ctl);
    }
    if (tp->keys)
        munmap(tp->keys, sizeof *tp->keys);
    tp->keys = NULL;
}

void tls_pool_free(struct tls_pool *tp)
{
    release_all(tp);
    free(tp->p);
    free(tp->started);
    if (tp->keys) {
        explicit_bzero(tp->keys, sizeof *tp->keys);
        munmap(tp->keys, sizeof *tp->keys);
    }
    tls_pool_init(tp);
}
