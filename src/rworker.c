/* rworker.c - the remote half of a queue run (see rworker.h).
 *
 * The parent (root when the queue run is root's) only reads our own control
 * files to assign messages to workers; each worker becomes the unprivileged
 * user before it touches DNS or the network. */
#include "compat.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "address.h"
#include "dns.h"
#include "expand.h"
#include "log.h"
#include "mx.h"
#include "privs.h"
#include "remote.h"
#include "rworker.h"
#include "spool.h"

static unsigned long hash(const char *s)
{
    unsigned long h = 5381;
    for (; *s; s++)
        h = h * 33 + (unsigned char)(*s >= 'A' && *s <= 'Z' ? *s + 32 : *s);
    return h;
}

/* The destination a message is assigned by: its first remote domain (every
 * remote recipient with relay-host), and one of destination-processes slots.
 * NULL: nothing remote. */
static char *dest_key(const struct config *c, const struct envelope *e)
{
    for (size_t i = 0; i < e->nrcpts; i++) {
        const struct rcpt *r = &e->rcpts[i];
        if (r->state != RS_PENDING || rcpt_is_target(r))
            continue;
        const char *d = addr_domain(r->addr);
        if (!d || expand_is_local_domain(c, d))
            continue;
        /* a destination is spread over up to destination-processes workers */
        unsigned long slots = c->dest_procs > 0 ? (unsigned long)c->dest_procs : 1;
        return xasprintf("%s#%lu", c->relay_host ? "relay" : d, hash(e->qid) % slots);
    }
    return NULL;
}

/* Is domain remote for us?  DNS is asked once per domain per worker. */
static int is_remote(const struct config *c, struct dns_ctx *d, const char *domain,
                     struct strlist *cache)
{
    if (!domain || expand_is_local_domain(c, domain))
        return 0;
    if (c->relay_host || domain[0] == '[' || !d)
        return 1;
    for (size_t k = 0; k < cache->n; k++)
        if (strcasecmp(cache->v[k] + 1, domain) == 0)
            return cache->v[k][0] == '1';
    /* ours by MX, or DNS failing now: leave it to the local half of the run */
    int r = mx_points_here(d, c, domain) == 0;
    sl_add_owned(cache, xasprintf("%d%s", r, domain));
    return r;
}

static int any_failed(const struct envelope *e)
{
    for (size_t i = 0; i < e->nrcpts; i++)
        if (e->rcpts[i].state == RS_FAILED)
            return 1;
    return 0;
}

/* Deliver one message's remote recipients, a domain at a time.  0 (done, not
 * due, or gone), 1 if another process holds it, -1 if it cannot be read. */
static int one_message(const struct config *c, struct remote_session *rs,
                       struct dns_ctx *d, struct strlist *cache, const char *qid,
                       const struct runq_opts *o)
{
    struct qmsg *m;
    int r = spool_open(c->queuedir, qid, &m);
    if (r < 0 && errno != ENOENT)
        log_err("%s: cannot open: %s", qid, strerror(errno));
    if (r == 1)
        runq_note_busy(o, qid);
    if (r != 0)
        return r == 1 ? 1 : errno == ENOENT ? 0 : -1;
    struct envelope *e = spool_env(m);
    if (!o->force && e->next_try > time(NULL)) {
        spool_close(m);
        return 0;
    }
    size_t n = e->nrcpts, *idx = xreallocarray(NULL, n + 1, sizeof *idx);
    char *done = xcalloc(n + 1, 1);
    for (size_t a = 0; a < n; a++) {
        const struct rcpt *ra = &e->rcpts[a];
        if (done[a] || ra->state != RS_PENDING || rcpt_is_target(ra) ||
            !is_remote(c, d, addr_domain(ra->addr), cache))
            continue;
        size_t k = 0;
        for (size_t b = a; b < n; b++) {
            const struct rcpt *rb = &e->rcpts[b];
            const char *da = addr_domain(ra->addr), *db = addr_domain(rb->addr);
            if (!done[b] && rb->state == RS_PENDING && !rcpt_is_target(rb) && db &&
                (c->relay_host || strcasecmp(da, db) == 0)) {
                idx[k++] = b;
                done[b] = 1;
            }
        }
        /* the results of one transaction are synced together, or not at all
         * when they finish the message, which is then removed */
        spool_set_lazy(m, 1);
        remote_deliver_in(rs, m, idx, k, o);
        e = spool_env(m);
        if ((env_pending(e) || any_failed(e)) && spool_sync(m) < 0)
            log_err("%s: cannot sync the results: %s", e->qid, strerror(errno));
        spool_set_lazy(m, 0);
    }
    /* all sent: nothing for the local half to do */
    if (!env_pending(e) && !any_failed(e) && spool_remove(m) < 0)
        log_err("%s: cannot remove: %s", e->qid, strerror(errno));
    free(idx);
    free(done);
    spool_close(m);
    return 0;
}

static void worker(const struct config *c, const struct strlist *mine,
                   const struct runq_opts *o)
{
    if (privs_drop_to(c->user) < 0) {
        log_err("cannot become %s for remote delivery: %s", c->user, strerror(errno));
        _exit(1);
    }
    struct remote_session *rs = remote_begin(c);
    if (!rs)
        _exit(1);
    struct dns_ctx *d = c->relay_host ? NULL : dns_open(c);
    struct strlist cache;
    sl_init(&cache);
    int busy = 0, bad = 0;
    for (size_t i = 0; i < mine->n; i++) {
        int r = one_message(c, rs, d, &cache, mine->v[i], o);
        busy |= r == 1;
        bad |= r < 0;
    }
    remote_end(rs);
    dns_close(d);
    sl_free(&cache);
    _exit(bad ? 1 : busy ? 2 : 0); /* rworker_run tells them apart */
}

int rworker_run(const struct config *c, const struct strlist *qids,
                const struct runq_opts *o)
{
    int rc = 0;
    long nw = c->delivery_procs > 0 ? c->delivery_procs : 1;
    if (o->verbose)
        nw = 1; /* one dialogue at a time keeps -v readable */
    struct strlist *share = xcalloc((size_t)nw, sizeof *share);
    size_t used = 0;
    for (size_t i = 0; i < qids->n; i++) {
        struct envelope e;
        env_init(&e);
        long long size;
        if (spool_peek(c->queuedir, qids->v[i], &e, &size) == 0) {
            char *key = dest_key(c, &e);
            if (key) {
                sl_add(&share[hash(key) % (unsigned long)nw], qids->v[i]);
                used++;
            }
            free(key);
        }
        env_free(&e);
    }
    int running = 0;
    for (long k = 0; used && k < nw; k++) {
        if (share[k].n == 0)
            continue;
        fflush(NULL);
        pid_t pid = fork();
        if (pid == 0)
            worker(c, &share[k], o);
        if (pid > 0) {
            running++;
        } else {
            log_err("cannot fork a remote delivery worker: %s", strerror(errno));
            rc |= RUNQ_ERROR;
        }
    }
    while (running > 0) {
        int st;
        pid_t p = wait(&st);
        if (p > 0 && WIFEXITED(st) && WEXITSTATUS(st) == 2)
            rc |= RUNQ_BUSY;
        else if (p > 0 && !(WIFEXITED(st) && WEXITSTATUS(st) == 0))
            rc |= RUNQ_ERROR;
        if (p > 0 || errno == ECHILD)
            running--;
    }
    for (long k = 0; k < nw; k++)
        sl_free(&share[k]);
    free(share);
    return rc;
}
