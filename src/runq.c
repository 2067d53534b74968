/* runq.c - the queue runner: lock, route, deliver, record, bounce, remove.
 *
 * Runs as root when started by root (the daemon, runq by the admin): root is
 * needed only inside local_deliver() to become a mailbox owner, and to fork the
 * unprivileged remote-delivery child.  Control files are our own format, read
 * with the strict parser in ctl.c. */
#include "compat.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "address.h"
#include "aliases.h"
#include "bounce.h"
#include "expand.h"
#include "dns.h"
#include "local.h"
#include "mx.h"
#include "log.h"
#include "privs.h"
#include "remote.h"
#include "pickup.h"
#include "runq.h"
#include "rworker.h"
#include "spool.h"

/* How long an explicit run waits for messages another process holds. */
#define RUNQ_BUSY_WAIT_MS 10000

/* Seconds since t, for log lines. */
static long age(time_t t)
{
    time_t now = time(NULL);
    return now > t ? (long)(now - t) : 0;
}

static void report(const struct runq_opts *o, const struct envelope *e, size_t i,
                   const char *relay, const char *what)
{
    const struct rcpt *r = &e->rcpts[i];
    const char *status = r->status ? r->status : "";
    log_info("%s: to=<%s>%s%s%s, relay=%s, delay=%ld, status=%s (%s)", e->qid, r->addr,
             r->orig ? ", orig_to=<" : "", r->orig ? r->orig : "", r->orig ? ">" : "",
             relay, age(e->ctime), what, status);
    if (o->verbose)
        fprintf(stderr, "%s: <%s>: %s: %s\n", e->qid, r->addr, what, status);
}

static const char *state_word(enum rcpt_state st)
{
    return st == RS_DONE ? "sent" : st == RS_PENDING ? "deferred" : "bounced";
}

static int any_failed(const struct envelope *e)
{
    for (size_t i = 0; i < e->nrcpts; i++)
        if (e->rcpts[i].state == RS_FAILED)
            return 1;
    return 0;
}

/* Record and log one result. */
static int record(struct qmsg *m, size_t i, enum rcpt_state st, const char *status,
                  const char *relay, const struct runq_opts *o)
{
    struct envelope *e = spool_env(m);
    int rc = 0;
    if (st == RS_DONE && e->rcpts[i].state == RS_PENDING && env_pending(e) == 1 &&
        !any_failed(e)) {
        /* the last one: removing the message records it, so skip a sync (a
         * crash before the removal repeats only this one delivery) */
        e->rcpts[i].state = RS_DONE;
        env_set_status(e, i, status);
    } else {
        rc = spool_record(m, i, st, status, NULL);
    }
    if (rc < 0)
        log_err("%s: cannot record the result for recipient %zu: %s",
                spool_env(m)->qid, i, strerror(errno));
    report(o, spool_env(m), i, relay, state_word(st));
    return rc;
}

static enum rcpt_state result_state(enum deliv_result r)
{
    return r == DELIV_OK ? RS_DONE : r == DELIV_DEFER ? RS_PENDING : RS_FAILED;
}

/* Mailbox deliveries collected over a batch of messages and made per mailbox
 * (one child, one lock, one fsync for each mailbox): see flush_mboxes. */
struct mbjob {
    struct qmsg *m;
    size_t i;
    char *user;
};
struct mbjobs {
    struct mbjob *v;
    size_t n;
    struct strlist *busy; /* user, status, ...: mailboxes found locked in this batch */
};

/* Recipient i goes into user's mailbox, with the batch. */
static void deliver_mbox_of(struct mbjobs *mj, struct qmsg *m, size_t i, const char *user)
{
    mj->v = xreallocarray(mj->v, mj->n + 1, sizeof *mj->v);
    mj->v[mj->n++] = (struct mbjob){.m = m, .i = i, .user = xstrdup(user)};
}

/* Recipients, and what they were expanded to, in one pass over a message. */
struct pass {
    struct strlist seen;  /* final targets delivered or queued (target_key) */
    struct strlist here;  /* mx_here answers */
    size_t fresh;         /* recipients from this index on were expanded in
                             this pass: their sources need no second look */
};

static int still_wanted(const struct config *c, struct qmsg *m, size_t i,
                        const struct runq_opts *o, struct pass *ps);

/* Deliver recipient i, which is a final local target: "\user" (that user's
 * mailbox, with the batch), "|command" or "/file" (now, if its alias or
 * .forward still names it). */
static void deliver_target(const struct config *c, struct qmsg *m, size_t i,
                           const struct runq_opts *o, struct mbjobs *mj, struct pass *ps)
{
    struct envelope *e = spool_env(m);
    const struct rcpt *r = &e->rcpts[i];
    if (r->addr[0] != '|' && r->addr[0] != '/') {
        deliver_mbox_of(mj, m, i, r->addr + (r->addr[0] == '\\'));
        return;
    }
    if (i < ps->fresh && !still_wanted(c, m, i, o, ps))
        return;
    e = spool_env(m);
    r = &e->rcpts[i];
    struct local_job j = {0};
    j.rcpt = r->orig ? r->orig : r->addr;
    j.sender = e->sender;
    j.data = spool_data(m);
    j.qid = e->qid;
    j.user = r->owner;
    j.kind = r->addr[0] == '|' ? T_PIPE : T_FILE;
    j.dest = r->addr[0] == '|' ? r->addr + 1 : r->addr;
    char *status = NULL;
    enum deliv_result res = local_deliver(c, &j, &status);
    record(m, i, result_state(res), status, "local", o);
    free(status);
}

/* Messages per mailbox child (one lock, one fsync).  Also what one crash can
 * deliver twice: the results of a batch are recorded after its fsync. */
#define MBOX_BATCH_MAX 8

static int by_user(const void *a, const void *b)
{
    const struct mbjob *x = a, *y = b;
    int d = strcmp(x->user, y->user);
    return d ? d : (x < y ? -1 : x > y);
}

/* The status a mailbox found locked earlier in this run was deferred with. */
static const char *busy_status(const struct strlist *busy, const char *user)
{
    for (size_t k = 0; busy && k + 1 < busy->n; k += 2)
        if (strcmp(busy->v[k], user) == 0)
            return busy->v[k + 1];
    return NULL;
}

/* Deliver one mailbox's share and record each result.  A mailbox that was
 * locked (4.2.0) is not waited for again in the same run: its later shares
 * defer at once and the other mailboxes go on. */
static void flush_one(const struct config *c, struct mbjob *v, size_t n,
                      const struct runq_opts *o, struct strlist *busy)
{
    const char *was = busy_status(busy, v[0].user);
    if (was != NULL) {
        for (size_t k = 0; k < n; k++)
            record(v[k].m, v[k].i, RS_PENDING, was, "local", o);
        return;
    }
    struct local_mjob *jobs = xcalloc(n, sizeof *jobs);
    for (size_t k = 0; k < n; k++) {
        struct envelope *e = spool_env(v[k].m);
        const struct rcpt *r = &e->rcpts[v[k].i];
        jobs[k].rcpt = r->orig ? r->orig : r->addr;
        jobs[k].sender = e->sender;
        jobs[k].data = spool_data(v[k].m);
        jobs[k].qid = e->qid;
    }
    local_deliver_mbox_batch(c, v[0].user, jobs, n);
    if (busy && jobs[0].res == DELIV_DEFER && jobs[0].status &&
        strncmp(jobs[0].status, "4.2.0 ", 6) == 0) {
        sl_add(busy, v[0].user);
        sl_add(busy, jobs[0].status);
    }
    for (size_t k = 0; k < n; k++) {
        record(v[k].m, v[k].i, result_state(jobs[k].res), jobs[k].status, "local", o);
        free(jobs[k].status);
    }
    free(jobs);
}

/* Make the collected mailbox deliveries, grouped by mailbox. */
static void flush_mboxes(const struct config *c, struct mbjobs *mj, const struct runq_opts *o)
{
    if (mj->n > 1)
        qsort(mj->v, mj->n, sizeof *mj->v, by_user);
    for (size_t a = 0; a < mj->n;) {
        size_t b = a + 1;
        while (b < mj->n && b - a < MBOX_BATCH_MAX && strcmp(mj->v[a].user, mj->v[b].user) == 0)
            b++;
        flush_one(c, mj->v + a, b - a, o, mj->busy);
        a = b;
    }
    for (size_t k = 0; k < mj->n; k++)
        free(mj->v[k].user);
    free(mj->v);
    mj->v = NULL;
    mj->n = 0;
}

static char *target_addr(const struct target *t)
{
    switch (t->kind) {
    case T_MBOX: return xasprintf("\\%s", t->dest);
    case T_PIPE: return xasprintf("|%s", t->dest);
    default: return xstrdup(t->dest);
    }
}

/* The key of a final target for duplicate suppression: address plus owner. */
static char *target_key(const char *addr, const char *owner)
{
    return xasprintf("%s%c%s", addr, 0x1f, owner ? owner : "");
}

/* 1 if this final target was already delivered or queued for this message
 * (an alias and the user it names, two aliases naming one mailbox...). */
static int seen_target(struct strlist *seen, const char *addr, const char *owner)
{
    char *k = target_key(addr, owner);
    int dup = sl_contains(seen, k);
    if (dup)
        free(k);
    else
        sl_add_owned(seen, k);
    return dup;
}

static void add_targets(struct qmsg *m, size_t i, const struct targets *t,
                        struct strlist *seen, const char *status);

/* Expand local recipient i.  A single mailbox is delivered at once; anything
 * else is written back into the envelope as final targets (durably, before any
 * of them is delivered) and delivered by the main loop. */
static void expand_local(const struct config *c, struct qmsg *m, size_t i,
                         const struct runq_opts *o, struct strlist *seen, int by_mx,
                         struct mbjobs *mj)
{
    struct envelope *e = spool_env(m);
    struct targets t;
    targets_init(&t);
    char *why = NULL;
    char *addr = xstrdup(e->rcpts[i].addr);
    if (by_mx) {
        /* a domain of ours only by its MX: the local part names a local user */
        char *at = strrchr(addr, '@');
        if (at)
            *at = '\0';
    }
    char *owner = e->rcpts[i].owner ? xstrdup(e->rcpts[i].owner) : NULL;
    int rc = expand_address(c, addr, owner, &t, &why);
    if (rc != 0) {
        record(m, i, rc > 0 ? RS_FAILED : RS_PENDING, why, "local", o);
    } else if (t.n == 0) {
        record(m, i, RS_FAILED, "5.1.1 the address expands to nothing", "local", o);
    } else if (t.n == 1 && t.v[0].kind == T_MBOX) {
        /* the common case: one mailbox, delivered without rewriting the envelope */
        char *ta = target_addr(&t.v[0]);
        if (seen_target(seen, ta, t.v[0].user))
            record(m, i, RS_DONE, "2.0.0 duplicate of another recipient", "local", o);
        else
            deliver_mbox_of(mj, m, i, t.v[0].dest);
        free(ta);
    } else {
        add_targets(m, i, &t, seen, "2.0.0 expanded");
    }
    free(why);
    free(addr);
    free(owner);
    targets_free(&t);
}

/* Write the final targets of recipient i into the envelope (durably, before any
 * of them is delivered); the main loop delivers them. */
static void add_targets(struct qmsg *m, size_t i, const struct targets *t,
                        struct strlist *seen, const char *status)
{
    struct envelope *e = spool_env(m);
    char *orig = xstrdup(e->rcpts[i].orig ? e->rcpts[i].orig : e->rcpts[i].addr);
    size_t before = e->nrcpts;
    for (size_t k = 0; k < t->n; k++) {
        char *ta = target_addr(&t->v[k]);
        if (!seen_target(seen, ta, t->v[k].user)) {
            size_t n = env_add_rcpt(e, ta, orig, t->v[k].user);
            e->rcpts[n].notify = e->rcpts[i].notify;
        }
        free(ta);
    }
    e->rcpts[i].state = RS_DONE;
    env_set_status(e, i, status);
    if (spool_rewrite(m) < 0) {
        log_err("%s: cannot rewrite the control file: %s", e->qid, strerror(errno));
        /* retried next time; nothing of it was delivered yet */
        e->rcpts[i].state = RS_PENDING;
        e->nrcpts = before;
    }
    free(orig);
}

/* Remote recipients, grouped by domain (all together with relay-host). */
static void deliver_remote(const struct config *c, struct qmsg *m, const size_t *idx,
                           size_t n, const struct runq_opts *o);


/* Is domain ours because its MX points here?  DNS answers are network input,
 * so the lookup runs in a child as the unprivileged user and only its exit
 * status comes back.  Answers are remembered per message in cache ("1dom",
 * "0dom").  1 yes, 0 no, -1 temporary failure.  With relay-host everything
 * remote goes there, so no lookup is made. */
static int mx_here(const struct config *c, const char *domain, struct strlist *cache)
{
    if (c->relay_host || !domain || domain[0] == '[')
        return 0;
    for (size_t k = 0; k < cache->n; k++)
        if (strcasecmp(cache->v[k] + 1, domain) == 0)
            return cache->v[k][0] == '1';
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        if (privs_drop_to(c->user) < 0)
            _exit(3);
        struct dns_ctx *d = dns_open(c);
        int r = d ? mx_points_here(d, c, domain) : -1;
        dns_close(d);
        _exit(r == 1 ? 1 : r == 0 ? 0 : 3);
    }
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    int r = WIFEXITED(st) && WEXITSTATUS(st) <= 1 ? WEXITSTATUS(st) : -1;
    if (r >= 0)
        sl_add_owned(cache, xasprintf("%d%s", r, domain));
    return r;
}

/* Expand addr as the queue run does: a local domain, or one that is ours
 * by its MX (then its local part), or a remote address.  As expand_address;
 * -1 with *why also when DNS cannot tell. */
static int expand_as_routed(const struct config *c, const char *addr, struct pass *ps,
                            struct targets *t, char **why)
{
    const char *dom = addr_domain(addr);
    int ours = expand_is_local_domain(c, dom) ? 0 : mx_here(c, dom, &ps->here);
    if (ours < 0) {
        *why = xstrdup("4.4.3 cannot tell yet whether the domain's MX points here "
                       "(DNS failed)");
        return -1;
    }
    char *a = ours == 1 ? xstrndup(addr, (size_t)(dom - 1 - addr)) : xstrdup(addr);
    int rc = expand_address(c, a, NULL, t, why);
    free(a);
    return rc;
}

/* Was target i written into the envelope by an expansion (add_targets), that
 * is, is the recipient it came from there, done?  Targets the SMTP session
 * made itself (forbidden=folder:) come from the configuration, not a list,
 * and a queue from an old version may not name the source. */
static int expanded_target(const struct envelope *e, size_t i)
{
    const char *src = e->rcpts[i].orig;
    for (size_t j = 0; src && j < e->nrcpts; j++) {
        const struct rcpt *r = &e->rcpts[j];
        if (j != i && r->state == RS_DONE && !rcpt_is_target(r) &&
            strcmp(r->orig ? r->orig : r->addr, src) == 0)
            return 1;
    }
    return 0;
}

/* A program or file target stored in the queue by an earlier attempt runs
 * only if the address it came from still leads to it: the user may have
 * removed it from their .forward, or the admin from the aliases, since.
 * Otherwise the mail goes where that address leads now (targets already
 * delivered are not repeated).  1: deliver it; 0: handled here. */
static int still_wanted(const struct config *c, struct qmsg *m, size_t i,
                        const struct runq_opts *o, struct pass *ps)
{
    struct envelope *e = spool_env(m);
    if (!expanded_target(e, i))
        return 1;
    char *addr = xstrdup(e->rcpts[i].addr), *orig = xstrdup(e->rcpts[i].orig);
    char *owner = e->rcpts[i].owner ? xstrdup(e->rcpts[i].owner) : NULL;
    struct targets t;
    targets_init(&t);
    char *why = NULL;
    int rc = expand_as_routed(c, orig, ps, &t, &why), keep = 0;
    if (rc != 0) {
        record(m, i, rc > 0 ? RS_FAILED : RS_PENDING, why, "local", o);
    } else {
        char *want = target_key(addr, owner);
        for (size_t k = 0; k < t.n && !keep; k++) {
            char *ta = target_addr(&t.v[k]);
            char *key = target_key(ta, t.v[k].user);
            keep = strcmp(key, want) == 0;
            free(key);
            free(ta);
        }
        free(want);
    }
    if (rc == 0 && !keep) {
        char *st = xasprintf("2.0.0 no longer a destination of <%s>: "
                             "delivered where it leads now", orig);
        log_notice("%s: %s (%s %s) is no longer a destination of <%s>: not run; the "
                   "message goes where <%s> leads now", e->qid, addr,
                   owner ? "from the .forward of" : "from", owner ? owner : "the aliases",
                   orig, orig);
        add_targets(m, i, &t, &ps->seen, st);
        free(st);
    }
    free(why);
    free(addr);
    free(orig);
    free(owner);
    targets_free(&t);
    return keep;
}

/* One pass over the pending recipients; remote ones are collected into rem,
 * mailbox deliveries into mj. */
static void deliver_pending(const struct config *c, struct qmsg *m,
                            const struct runq_opts *o, struct mbjobs *mj)
{
    struct envelope *e = spool_env(m);
    size_t *rem = xreallocarray(NULL, e->nrcpts + 1, sizeof *rem);
    size_t nrem = 0;
    struct pass ps = {.fresh = e->nrcpts};
    sl_init(&ps.seen);
    sl_init(&ps.here);
    int ours = 0;
    for (size_t i = 0; i < e->nrcpts; i++)
        if (e->rcpts[i].state != RS_PENDING && rcpt_is_target(&e->rcpts[i]))
            seen_target(&ps.seen, e->rcpts[i].addr, e->rcpts[i].owner);
    for (size_t i = 0; i < e->nrcpts; i++) {
        if (e->rcpts[i].state != RS_PENDING)
            continue;
        const char *addr = e->rcpts[i].addr;
        if (rcpt_is_target(&e->rcpts[i])) {
            seen_target(&ps.seen, addr, e->rcpts[i].owner);
            deliver_target(c, m, i, o, mj, &ps);
            e = spool_env(m);
            rem = xreallocarray(rem, e->nrcpts + 1, sizeof *rem);
        } else if (expand_is_local_domain(c, addr_domain(addr)) ||
                   (ours = mx_here(c, addr_domain(addr), &ps.here)) == 1) {
            expand_local(c, m, i, o, &ps.seen, ours == 1, mj);
            e = spool_env(m);
            rem = xreallocarray(rem, e->nrcpts + 1, sizeof *rem);
        } else if (ours < 0) {
            record(m, i, RS_PENDING, "4.4.3 cannot tell yet whether the domain's MX "
                   "points here (DNS failed)", "none", o);
        } else if (!o->skip_remote && !o->local_only) {
            rem[nrem++] = i;
        }
        ours = 0;
    }
    if (nrem)
        deliver_remote(c, m, rem, nrem, o);
    free(rem);
    sl_free(&ps.seen);
    sl_free(&ps.here);
}

static int same_domain(const char *a, const char *b)
{
    const char *da = addr_domain(a), *db = addr_domain(b);
    return da && db && strcasecmp(da, db) == 0;
}

/* Remote delivery runs in a child as the unprivileged user; it records results
 * through the inherited control-file descriptor, which we then re-read. */
static void deliver_batch(const struct config *c, struct qmsg *m, const size_t *idx,
                          size_t n, const struct runq_opts *o)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        log_err("%s: cannot fork for remote delivery: %s", spool_env(m)->qid,
                strerror(errno));
        return;
    }
    if (pid == 0) {
        if (privs_drop_to(c->user) < 0) {
            log_err("cannot become %s for remote delivery: %s", c->user, strerror(errno));
            _exit(EX_OSERR);
        }
        _exit(remote_deliver(c, m, idx, n, o) < 0 ? EX_TEMPFAIL : 0);
    }
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    if (spool_reload(m) < 0)
        log_err("%s: cannot re-read the control file: %s", spool_env(m)->qid,
                strerror(errno));
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
        return;
    /* the child died or could not start: say so for what it left undone */
    struct envelope *e = spool_env(m);
    for (size_t k = 0; k < n; k++)
        if (e->rcpts[idx[k]].state == RS_PENDING)
            record(m, idx[k], RS_PENDING, "4.3.0 the remote delivery process failed; "
                   "see the mail log", "none", o);
}

static void deliver_remote(const struct config *c, struct qmsg *m, const size_t *idx,
                           size_t n, const struct runq_opts *o)
{
    struct envelope *e = spool_env(m);
    size_t *batch = xreallocarray(NULL, n, sizeof *batch);
    char *done = xcalloc(n, 1);
    for (size_t a = 0; a < n; a++) {
        if (done[a])
            continue;
        size_t nb = 0;
        for (size_t b = a; b < n; b++) {
            if (!done[b] && (c->relay_host ||
                             same_domain(e->rcpts[idx[a]].addr, e->rcpts[idx[b]].addr))) {
                batch[nb++] = idx[b];
                done[b] = 1;
            }
        }
        deliver_batch(c, m, batch, nb, o);
        e = spool_env(m);
    }
    free(batch);
    free(done);
}

/* ---- after the attempt ---- */

static long backoff(const struct config *c, int attempts)
{
    long d = c->retry_min > 0 ? c->retry_min : 300;
    for (int k = 1; k < attempts && d < c->retry_max; k++)
        d *= 2;
    return d > c->retry_max && c->retry_max > 0 ? c->retry_max : d;
}

/* Give up on every pending recipient of an expired message. */
static void expire(const struct config *c, struct qmsg *m, const struct runq_opts *o)
{
    struct envelope *e = spool_env(m);
    long days = c->qreturn / 86400, hours = (c->qreturn % 86400) / 3600;
    for (size_t i = 0; i < e->nrcpts; i++) {
        if (e->rcpts[i].state != RS_PENDING)
            continue;
        char *s = xasprintf("4.4.7 gave up after %ld day%s %ld hour%s in the queue%s%s",
                            days, days == 1 ? "" : "s", hours, hours == 1 ? "" : "s",
                            e->rcpts[i].status ? "; last error: " : "",
                            e->rcpts[i].status ? e->rcpts[i].status : "");
        record(m, i, RS_FAILED, s, "none", o);
        free(s);
    }
}

/* Bounces, delay notices, back-off, removal.  Returns a new bounce's qid in
 * newqid (or "") so the caller can deliver it at once. */
static void finish(const struct config *c, struct qmsg *m, const struct runq_opts *o,
                   char newqid[QID_MAX])
{
    struct envelope *e = spool_env(m);
    newqid[0] = '\0';
    /* a double bounce has nobody left to report to: it never expires */
    if (env_pending(e) && c->qreturn > 0 && age(e->ctime) >= c->qreturn &&
        !(e->flags & ENV_DOUBLE))
        expire(c, m, o);
    if (any_failed(e) && bounce_queue(c, m, 0, newqid) < 0)
        log_err("%s: cannot queue a bounce: %s", e->qid, strerror(errno));
    e = spool_env(m);
    if (!env_pending(e)) {
        if (!any_failed(e) && spool_remove(m) < 0)
            log_err("%s: cannot remove: %s", e->qid, strerror(errno));
        else if (any_failed(e))
            log_warn("%s: kept: a bounce is still owed", e->qid);
        return;
    }
    if (o->local_only)
        return; /* the remote part has not been tried: no back-off for it */
    if (c->qwarn > 0 && age(e->ctime) >= c->qwarn && !(e->flags & ENV_WARNED) &&
        !(e->flags & ENV_BOUNCE) && !newqid[0])
        bounce_queue(c, m, 1, newqid);
    e = spool_env(m);
    e->attempts++;
    e->next_try = time(NULL) + backoff(c, e->attempts);
    if (spool_rewrite(m) < 0)
        log_err("%s: cannot rewrite the control file: %s", e->qid, strerror(errno));
}

/* ---- entry points ---- */

/* Lock message qid if it is due.  0 with *out set (NULL: not due, left alone),
 * 1 busy, -1 error. */
static int open_due(const struct config *c, const char *qid, const struct runq_opts *o,
                    struct qmsg **out)
{
    struct qmsg *m;
    *out = NULL;
    int rc = spool_open(c->queuedir, qid, &m);
    if (rc == 1) {
        runq_note_busy(o, qid);
        return 1;
    }
    if (rc < 0 && errno == ENOENT)
        return 0; /* delivered and removed by another process meanwhile */
    if (rc < 0) {
        log_err("%s: cannot open: %s", qid, strerror(errno));
        return -1;
    }
    struct envelope *e = spool_env(m);
    if (!o->force && e->next_try > time(NULL)) {
        spool_close(m);
        return 0;
    }
    if (e->sender[0] && !strchr(e->sender, '@')) {
        /* a local user's login from the maildrop: qualify it with our name */
        char *q = xasprintf("%s@%s", e->sender, c->hostname);
        free(e->sender);
        e->sender = q;
    }
    *out = m;
    return 0;
}

/* Deliver the messages in ms (all locked and due) together: each one's
 * recipients in turn, then the mailbox deliveries of all of them grouped by
 * mailbox, then bounces, back-off and removal, message by message.  newqids
 * gets the bounces queued meanwhile (one slot per message, "" for none). */
static void deliver_group(const struct config *c, struct qmsg **ms, size_t n,
                          const struct runq_opts *o, char (*newqids)[QID_MAX],
                          struct strlist *busy)
{
    struct mbjobs mj = {.busy = busy};
    for (size_t k = 0; k < n; k++)
        deliver_pending(c, ms[k], o, &mj);
    flush_mboxes(c, &mj, o);
    for (size_t k = 0; k < n; k++) {
        finish(c, ms[k], o, newqids[k]);
        spool_close(ms[k]);
    }
}

/* A bounce we just queued is delivered now too (it won't bounce again). */
static int deliver_bounces(const struct config *c, const char *first,
                           const struct runq_opts *o)
{
    char newqid[QID_MAX];
    int rc = 0;
    str_copy(newqid, first, sizeof newqid);
    for (int k = 0; k < 3 && rc == 0 && newqid[0]; k++) {
        char q[QID_MAX];
        struct qmsg *m;
        struct runq_opts fo = *o;
        str_copy(q, newqid, sizeof q);
        fo.force = 1;
        fo.skip_remote = 0; /* a bounce to a remote sender goes out now */
        fo.local_only = 0;
        newqid[0] = '\0';
        rc = open_due(c, q, &fo, &m);
        if (rc == 0 && m)
            deliver_group(c, &m, 1, &fo, &newqid, NULL);
    }
    return rc < 0 ? -1 : rc;
}

/* Messages locked and delivered together: no more than one mailbox batch, so
 * a crash repeats at most that many deliveries per delivery process. */
#define GROUP_MAX MBOX_BATCH_MAX

int runq_batch(const struct config *c, const struct strlist *qids, const struct runq_opts *o)
{
    struct qmsg *ms[GROUP_MAX];
    char newqids[GROUP_MAX][QID_MAX];
    struct strlist busy;
    int rc = 0;
    sl_init(&busy);
    for (size_t at = 0; at < qids->n;) {
        size_t n = 0;
        for (; at < qids->n && n < GROUP_MAX; at++) {
            struct qmsg *m;
            int r = open_due(c, qids->v[at], o, &m);
            if (r == 0 && m)
                ms[n++] = m;
            else if (r != 0 && (rc == 0 || r < 0))
                rc = r;
        }
        deliver_group(c, ms, n, o, newqids, &busy);
        for (size_t k = 0; k < n; k++)
            if (newqids[k][0] && deliver_bounces(c, newqids[k], o) < 0)
                rc = -1;
    }
    sl_free(&busy);
    return rc;
}

int runq_message(const struct config *c, const char *qid, const struct runq_opts *o)
{
    struct strlist one;
    sl_init(&one);
    sl_add(&one, qid);
    int rc = runq_batch(c, &one, o);
    sl_free(&one);
    return rc;
}

/* Wait for one worker (its wait status into *st: 0 if none was reaped);
 * returns 0 when none is left. */
static int reap(int *running, int *st)
{
    *st = 0;
    if (*running == 0)
        return 0;
    if (wait(st) > 0 || errno != EINTR)
        (*running)--;
    return 1;
}

/* A child's exit status for runq_batch's result, and back. */
static int batch_status(int r)
{
    return r < 0 ? 1 : r == 1 ? 2 : 0;
}

/* Worse of two runq_batch results: an error over busy over done. */
static int worse(int a, int b)
{
    return a < 0 || b < 0 ? -1 : a > b ? a : b;
}

/* The local pass of a run: the messages still there, split into at most
 * delivery-processes shares, each delivered by runq_batch in a child (in this
 * process with -v, to keep its output in order, or when asked to).  Returns
 * like runq_batch, for all of them. */
static int local_pass(const struct config *c, const struct strlist *q,
                      const struct runq_opts *o)
{
    struct strlist left;
    sl_init(&left);
    for (size_t i = 0; i < q->n; i++)
        /* the remote pass delivered and removed most relayed mail already */
        if (!(spool_locked(c->queuedir, q->v[i]) < 0 && errno == ENOENT))
            sl_add(&left, q->v[i]);
    long maxp = c->delivery_procs > 0 ? c->delivery_procs : 1;
    if (maxp == 1 || o->verbose || o->in_process || left.n <= 1) {
        int r = runq_batch(c, &left, o);
        sl_free(&left);
        return r;
    }
    size_t shares = left.n < (size_t)maxp ? left.n : (size_t)maxp;
    size_t per = (left.n + shares - 1) / shares;
    int running = 0, rc = 0;
    for (size_t at = 0; at < left.n; at += per) {
        struct strlist part;
        sl_init(&part);
        for (size_t k = at; k < left.n && k < at + per; k++)
            sl_add(&part, left.v[k]);
        fflush(NULL);
        pid_t pid = fork();
        if (pid == 0)
            _exit(batch_status(runq_batch(c, &part, o)));
        if (pid > 0)
            running++;
        else
            rc = worse(rc, runq_batch(c, &part, o));
        sl_free(&part);
    }
    int st;
    while (reap(&running, &st))
        rc = worse(rc, !WIFEXITED(st) || WEXITSTATUS(st) == 1 ? -1 : WEXITSTATUS(st) == 2);
    sl_free(&left);
    return rc;
}

void runq_note_busy(const struct runq_opts *o, const char *qid)
{
    if (o->busy_fd <= 0)
        return;
    char *line = xasprintf("%s\n", qid);
    if (write(o->busy_fd, line, strlen(line)) < 0)
        log_warn("%s: cannot note a busy message: %s", qid, strerror(errno));
    free(line);
}

/* Both passes over q: RUNQ_BUSY/RUNQ_ERROR bits for what was left undone. */
static int run_passes(const struct config *c, const struct strlist *q,
                      const struct runq_opts *o)
{
    int rc = rworker_run(c, q, o);
    struct runq_opts lo = *o;
    lo.skip_remote = 1;
    int lr = local_pass(c, q, &lo);
    return rc | (lr < 0 ? RUNQ_ERROR : lr == 1 ? RUNQ_BUSY : 0);
}

int runq_messages(const struct config *c, const struct strlist *q,
                  const struct runq_opts *o)
{
    return run_passes(c, q, o) ? EX_TEMPFAIL : 0;
}

/* Load the name-service modules once, here: every local delivery forks a
 * child that calls initgroups(), and modules loaded in this process are
 * inherited instead of being loaded again for each message (the daemon's
 * master does the same through its cached credentials). */
void runq_preload_nss(const struct config *c)
{
    struct passwd *pw = getpwnam(c->user);
    gid_t g[1];
    int n = 1;
    if (pw)
        (void)getgrouplist(pw->pw_name, pw->pw_gid, g, &n);
}

/* Wait until the time until (now_ms()) for the messages of q that another
 * process holds (a sendmail's background delivery of a message it just
 * queued, a daemon's worker): the ones still held then are moved from q to
 * busy. */
static void wait_busy(const char *queuedir, struct strlist *q, long long until,
                      struct strlist *busy)
{
    struct strlist held;
    for (;;) {
        sl_init(&held);
        for (size_t i = 0; i < q->n; i++)
            if (spool_locked(queuedir, q->v[i]) == 1)
                sl_add(&held, q->v[i]);
        if (held.n == 0 || ms_left(until) <= 0)
            break;
        sl_free(&held);
        poll(NULL, 0, ms_left(until) < 100 ? ms_left(until) : 100);
    }
    struct strlist rest;
    sl_init(&rest);
    for (size_t i = 0; i < q->n; i++)
        if (!sl_contains(&held, q->v[i]))
            sl_add(&rest, q->v[i]);
    for (size_t i = 0; i < held.n; i++)
        if (!sl_contains(busy, held.v[i]))
            sl_add(busy, held.v[i]);
    sl_free(&held);
    sl_free(q);
    *q = rest;
}

/* The ids noted in the busy file (runq_note_busy) since it was last read,
 * which is then emptied. */
static void read_busy(int fd, struct strlist *out)
{
    struct buf b;
    buf_init(&b);
    if (pread_rest(fd, 0, &b, 16 * 1024 * 1024) == 0 && ftruncate(fd, 0) == 0) {
        char *save = NULL;
        buf_addc(&b, '\0');
        for (char *t = strtok_r(b.s, "\n", &save); t; t = strtok_r(NULL, "\n", &save))
            if (qid_valid(t) && !sl_contains(out, t))
                sl_add(out, t);
    }
    buf_free(&b);
}

/* A run by hand: messages another process holds (at the start, or found so
 * by the passes: a daemon's worker took them meanwhile) are tried after the
 * others, once they are free, all within RUNQ_BUSY_WAIT_MS; those still held
 * then go into busy.  RUNQ_* bits of what else was left undone. */
static int run_by_hand(const struct config *c, struct strlist *q, const struct runq_opts *o,
                       struct strlist *busy)
{
    long long until = now_ms() + RUNQ_BUSY_WAIT_MS;
    char tmpl[] = "/tmp/po-runq-busy-XXXXXX";
    int fd = mkostemp(tmpl, O_CLOEXEC | O_APPEND);
    if (fd >= 0)
        unlink(tmpl);
    struct runq_opts ro = *o;
    ro.busy_fd = fd;
    struct strlist held;
    sl_init(&held);
    wait_busy(c->queuedir, q, now_ms(), &held); /* no wait: these go last */
    int rc = run_passes(c, q, &ro);
    for (int round = 0;; round++) {
        if (fd > 0) {
            read_busy(fd, &held); /* noted by the passes: known by name */
            rc &= ~RUNQ_BUSY;
        }
        if (held.n == 0 || round == 3)
            break;
        wait_busy(c->queuedir, &held, until, busy); /* held: now the free ones */
        if (held.n)
            rc |= run_passes(c, &held, &ro);
        sl_free(&held);
        sl_init(&held);
    }
    for (size_t i = 0; i < held.n; i++)
        if (!sl_contains(busy, held.v[i]))
            sl_add(busy, held.v[i]);
    sl_free(&held);
    if (fd >= 0)
        close(fd);
    return rc; /* RUNQ_BUSY only when the names could not be noted */
}

int runq_run(const struct config *c, const struct runq_opts *o)
{
    if (access(c->queuedir, R_OK | W_OK | X_OK) < 0) {
        int err = errno; /* before anything else can change it */
        if (err == EACCES || err == EPERM) {
            say("only root or the queue owner (%s) may run the queue %s", c->user,
                c->queuedir);
            return EX_NOPERM;
        }
        say("cannot use the queue %s: %s", c->queuedir, strerror(err));
        return err == ENOENT ? EX_OSFILE : EX_NOPERM;
    }
    if (aliases_db_stale(c->aliases) && access(c->aliases, F_OK) == 0)
        log_warn("%s.db is older than %s: run newaliases", c->aliases, c->aliases);
    pickup_maildrop(c, NULL);
    spool_cleanup(c->queuedir, 3600);
    struct strlist q;
    sl_init(&q);
    if (spool_list(c->queuedir, &q) < 0) {
        say("cannot list the queue %s: %s", c->queuedir, strerror(errno));
        return EX_OSERR;
    }
    struct strlist busy;
    sl_init(&busy);
    runq_preload_nss(c);
    int rc = (o->force ? run_by_hand(c, &q, o, &busy) : run_passes(c, &q, o)) ? EX_TEMPFAIL : 0;
    if (busy.n) {
        log_notice("%zu message%s busy (being delivered by another process) after %d "
                   "seconds: not attempted in this run", busy.n, busy.n == 1 ? "" : "s",
                   RUNQ_BUSY_WAIT_MS / 1000);
        say("%zu message%s busy (being delivered by another process), not attempted in this "
            "run: %s%s", busy.n, busy.n == 1 ? "" : "s", busy.v[0], busy.n > 1 ? " ..." : "");
        rc = EX_TEMPFAIL;
    } else if (rc != 0 && o->force) {
        say("not every message could be attempted (busy, or unreadable: see the mail log)");
    }
    sl_free(&busy);
    sl_free(&q);
    return rc;
}
