/* remote_worker.c - the one remote-delivery path (see remote_worker.h).
 *
 * The parent (root when the queue run is root's) only reads our own control
 * files to assign messages to workers, and the relay-auth= file (root's alone,
 * relay_auth.h) that its children inherit; each worker, and each one-message
 * child, becomes the unprivileged user before it touches DNS or the network. */
#include "compat.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "address.h"
#include "child.h"
#include "dns.h"
#include "log.h"
#include "msg.h"
#include "privs.h"
#include "remote_session.h"
#include "route.h"
#include "queue_run_plan.h"
#include "remote_worker.h"
#include "spool.h"

void rworker_deliver(struct remote_session *rs, struct qmsg *m, const size_t *idx,
                     size_t n, const struct runq_opts *o)
{
    const struct config *c = remote_config(rs);
    for (size_t a = 0; a < n;) {
        struct envelope *e = spool_env(m);
        size_t b = a + 1;
        while (b < n && rq_same_transaction(c, e->rcpts[idx[a]].addr, e->rcpts[idx[b]].addr))
            b++;
        /* the results of one transaction are synced together, or not at all
         * when they finish the message, which is then removed */
        spool_set_lazy(m, 1);
        remote_deliver_in(rs, m, idx + a, b - a, o);
        e = spool_env(m);
        if ((env_pending(e) || rq_any_failed(e)) && spool_sync(m) < 0)
            log_err("%s: cannot sync the results: %s", e->qid, strerror(errno));
        spool_set_lazy(m, 0);
        a = b;
    }
}

/* The MX question, asked in this (unprivileged) process. */
struct lookup {
    struct dns_ctx *d;
    const struct config *c;
};

static int dns_mx_here(void *arg, const char *domain)
{
    struct lookup *l = arg;
    return route_mx_here(l->d, l->c, domain);
}

/* Deliver one message's remote recipients (those whose domain is ours by its
 * MX, or cannot be told now, are left to the local half: it defers them
 * with 4.4.3).  0 (done, not due, or gone), 1 if another process holds it,
 * -1 if it cannot be read. */
static int one_message(const struct config *c, struct remote_session *rs,
                       struct route_cache *rc, const char *qid, const struct runq_opts *o)
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
    /* quarantined by a mail filter: held until postoffice -bQ releases it */
    if ((e->flags & ENV_QUARANTINE) || (!o->force && e->next_try > time(NULL))) {
        spool_close(m);
        return 0;
    }
    enum route_way *way = xcalloc(e->nrcpts + 1, sizeof *way);
    size_t *idx = xreallocarray(NULL, e->nrcpts + 1, sizeof *idx);
    for (size_t i = 0; i < e->nrcpts; i++)
        if (e->rcpts[i].state == RS_PENDING && !rcpt_is_target(&e->rcpts[i]))
            way[i] = route_recipient(c, addr_domain(e->rcpts[i].addr),
                                     rc->arg ? route_mx_cached : NULL, rc);
    size_t n = rq_remote_order(c, e, way, idx);
    rworker_deliver(rs, m, idx, n, o);
    e = spool_env(m);
    /* all sent: nothing for the local half to do */
    if (!env_pending(e) && !rq_any_failed(e) && spool_remove(m) < 0)
        log_err("%s: cannot remove: %s", e->qid, strerror(errno));
    free(idx);
    free(way);
    spool_close(m);
    return 0;
}

struct share {
    const struct config *c;
    struct strlist ids;
    const struct runq_opts *o;
    char *title; /* its first destination */
    const struct relay_creds *creds; /* read before the fork (relay_auth.h) */
};

static void worker(void *arg, int fd)
{
    const struct share *sh = arg;
    const struct config *c = sh->c;
    if (privs_drop_to(c->user) < 0) {
        log_err("cannot become %s for remote delivery: %s", c->user, strerror(errno));
        _exit(1);
    }
    struct remote_session *rs = remote_begin(c, sh->creds);
    if (!rs)
        _exit(1);
    /* with relay-host alone no MX question is asked; relay-map= may say "-" */
    struct lookup l = {.d = c->relay_host && !c->relay_map ? NULL : dns_open(c), .c = c};
    struct route_cache rc;
    route_cache_init(&rc, dns_mx_here, l.d ? &l : NULL);
    uint32_t bits = 0;
    for (size_t i = 0; i < sh->ids.n; i++) {
        int r = one_message(c, rs, &rc, sh->ids.v[i], sh->o);
        bits |= r == 1 ? RUNQ_BUSY : r < 0 ? RUNQ_ERROR : 0;
    }
    remote_end(rs);
    dns_close(l.d);
    route_cache_free(&rc);
    runq_child_exit(fd, MSG_RWORKER_DONE, bits);
}

/* What a worker reported (RUNQ_* bits); RUNQ_ERROR when it said nothing
 * sensible or died. */
static int collect(struct child *ch)
{
    long bits = runq_child_result(ch, MSG_RWORKER_DONE, RUNQ_BUSY | RUNQ_ERROR);
    return bits < 0 ? RUNQ_ERROR : (int)bits;
}

/* Spread qids over nw shares by destination (rq_worker_of). */
static size_t assign(const struct config *c, const struct strlist *qids,
                     struct share *sh, long nw)
{
    size_t used = 0;
    for (size_t i = 0; i < qids->n; i++) {
        struct envelope e;
        env_init(&e);
        long long size;
        long w = spool_peek(c->queuedir, qids->v[i], &e, &size) == 0
                     ? rq_worker_of(c, &e, nw) : -1;
        if (w >= 0) {
            sl_add(&sh[w].ids, qids->v[i]);
            if (!sh[w].title)
                sh[w].title = xasprintf("remote %s", c->relay_host ? c->relay_host
                                                    : rq_remote_domain(c, &e));
            used++;
        }
        env_free(&e);
    }
    return used;
}

int rworker_run(const struct config *c, const struct strlist *qids,
                const struct runq_opts *o)
{
    int rc = 0;
    long nw = c->delivery_procs > 0 ? c->delivery_procs : 1;
    if (o->verbose)
        nw = 1; /* one dialogue at a time keeps -v readable */
    struct share *sh = xcalloc((size_t)nw, sizeof *sh);
    struct child *ch = xcalloc((size_t)nw, sizeof *ch);
    struct relay_creds creds; /* root's files, read here as root: the workers are not */
    relay_creds_load(c, NULL, 0, &creds);
    for (long k = 0; k < nw; k++)
        sh[k] = (struct share){.c = c, .o = o, .creds = &creds};
    for (long k = 0; k < nw; k++)
        sl_init(&sh[k].ids);
    size_t used = assign(c, qids, sh, nw);
    for (long k = 0; used && k < nw; k++) {
        ch[k].pid = 0;
        if (sh[k].ids.n == 0)
            continue;
        struct child_spec spec = {.title = sh[k].title, .report = 1};
        if (child_start(&ch[k], &spec, worker, &sh[k]) < 0) {
            log_err("cannot fork a remote delivery worker: %s", strerror(errno));
            rc |= RUNQ_ERROR;
            ch[k].pid = 0;
        }
    }
    for (long k = 0; used && k < nw; k++)
        if (ch[k].pid > 0)
            rc |= collect(&ch[k]);
    for (long k = 0; k < nw; k++) {
        sl_free(&sh[k].ids);
        free(sh[k].title);
    }
    relay_creds_free(&creds);
    free(sh);
    free(ch);
    return rc;
}

/* ---- one message that a root process holds ---- */

struct one {
    const struct config *c;
    struct qmsg *m;
    const size_t *idx;
    size_t n;
    const struct runq_opts *o;
    const struct relay_creds *creds;
};

static void one_child(void *arg, int fd)
{
    const struct one *a = arg;
    uint32_t ok = 0;
    if (privs_drop_to(a->c->user) < 0) {
        log_err("cannot become %s for remote delivery: %s", a->c->user, strerror(errno));
    } else {
        struct remote_session *rs = remote_begin(a->c, a->creds);
        if (rs) {
            rworker_deliver(rs, a->m, a->idx, a->n, a->o);
            remote_end(rs);
            ok = 1;
        } else {
            /* no resolver: each recipient deferred with 4.4.3, not a crash (4.3.0) */
            const char *st = "4.4.3 the DNS resolver could not be set up";
            log_err("%s: %s", spool_env(a->m)->qid, st);
            for (size_t k = 0; k < a->n; k++)
                ok |= spool_record(a->m, a->idx[k], RS_PENDING, st, NULL) == 0;
        }
    }
    runq_child_exit(fd, MSG_REMOTE_DONE, ok);
}

int rworker_deliver_held(const struct config *c, struct qmsg *m, const size_t *idx,
                         size_t n, const struct runq_opts *o)
{
    /* read as root, before the child drops privileges: the files the
     * destinations of these recipients name */
    const char **doms = xreallocarray(NULL, n ? n : 1, sizeof *doms);
    for (size_t k = 0; k < n; k++)
        doms[k] = addr_domain(spool_env(m)->rcpts[idx[k]].addr);
    struct relay_creds creds;
    relay_creds_load(c, doms, n, &creds);
    free(doms);
    struct one a = {.c = c, .m = m, .idx = idx, .n = n, .o = o, .creds = &creds};
    const char *dom = addr_domain(spool_env(m)->rcpts[idx[0]].addr);
    char *title = xasprintf("remote %s", c->relay_host ? c->relay_host : dom ? dom : "");
    struct child_spec spec = {.title = title, .report = 1};
    struct child ch;
    int rc = child_start(&ch, &spec, one_child, &a);
    free(title);
    relay_creds_free(&creds); /* the child has its copy */
    if (rc < 0) {
        log_err("%s: cannot fork for remote delivery: %s", spool_env(m)->qid, strerror(errno));
        return -1;
    }
    long ok = runq_child_result(&ch, MSG_REMOTE_DONE, 1);
    if (spool_reload(m) < 0)
        log_err("%s: cannot re-read the control file: %s", spool_env(m)->qid,
                strerror(errno));
    return ok == 1 ? 0 : -1;
}
