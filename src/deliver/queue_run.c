/* queue_run.c - the queue runner: lock, route, deliver, record, bounce, remove.
 *
 * Runs as root when started by root (the daemon, runq by the admin): root is
 * needed only inside local_deliver() to become a mailbox owner, and to fork the
 * unprivileged remote-delivery child.  Control files are our own format, read
 * with the strict parser in queue_records.c. */
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
#include "child.h"
#include "expand.h"
#include "dns.h"
#include "lmtp.h"
#include "local.h"
#include "maildir.h"
#include "log.h"
#include "logfmt.h"
#include "msg.h"
#include "privs.h"
#include "pickup.h"
#include "route.h"
#include "queue_run.h"
#include "queue_run_plan.h"
#include "remote_worker.h"
#include "spool.h"
#include "vacation.h"

/* A virtual domain switched off here while its MX still points here (an
 * admin moving it away): its mail waits, never goes to local accounts. */
#define OFF_STATUS "4.3.0 the virtual domain is switched off here (domains.cf) but " \
                   "its MX points here: waiting"

/* How long an explicit run waits for messages another process holds. */
#define RUNQ_BUSY_WAIT_MS 10000

/* What a local delivery went to, for relay= (postoffice-log(5)). */
static const char *local_relay(const char *relay, const char *addr)
{
    if (strcmp(relay, "local") != 0)
        return relay;
    return addr[0] == '|' ? "program" : addr[0] == '/' ? "file" : "local";
}

static void report(const struct runq_opts *o, const struct envelope *e, size_t i,
                   const char *relay, const char *what)
{
    const struct rcpt *r = &e->rcpts[i];
    const char *status = r->status ? r->status : "";
    struct lf_delivery d = { .qid = e->qid, .to = r->addr, .orig_to = r->orig,
                             .relay = local_relay(relay, r->addr), .word = what,
                             .status = status, .delay = lf_delay(e->ctime) };
    lf_log_delivery(&d);
    if (o->verbose)
        fprintf(stderr, "%s: <%s>: %s: %s\n", e->qid, r->addr, what, status);
}

static const char *state_word(enum rcpt_state st)
{
    return st == RS_DONE ? "sent" : st == RS_PENDING ? "deferred" : "bounced";
}

/* Record and log one result; word: its status= in the log. */
static int record_as(struct qmsg *m, size_t i, enum rcpt_state st, const char *status,
                     const char *relay, const struct runq_opts *o, const char *word)
{
    struct envelope *e = spool_env(m);
    int rc = 0;
    if (st == RS_DONE && e->rcpts[i].state == RS_PENDING && env_pending(e) == 1 &&
        !rq_any_failed(e)) {
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
    report(o, spool_env(m), i, relay, word);
    return rc;
}

static int record(struct qmsg *m, size_t i, enum rcpt_state st, const char *status,
                  const char *relay, const struct runq_opts *o)
{
    return record_as(m, i, st, status, relay, o, state_word(st));
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
struct mx_ask {
    const struct config *c;
    const char *domain;
};

struct pass {
    struct strlist seen;  /* final targets delivered or queued (target_key) */
    struct route_cache here; /* MX answers (mx_here), per domain */
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
    vacation_after_mbox(c, v[0].user, jobs, n); /* RFC 3834 replies: vacation.h */
    free(jobs);
}

/* The mailbox deliveries that go over LMTP (mailbox=lmtp:..., or the virtual
 * domain's lmtp file; lmtp.h) are taken out of mj and made together: one
 * session per server for the whole group of messages. */
static void flush_lmtp(const struct config *c, struct mbjobs *mj, const struct runq_opts *o)
{
    struct lmtp_job *lj = xcalloc(mj->n ? mj->n : 1, sizeof *lj);
    struct mbjob *from = xcalloc(mj->n ? mj->n : 1, sizeof *from);
    size_t n = 0, keep = 0;
    for (size_t k = 0; k < mj->n; k++) {
        char *domfile = NULL;
        if (!lmtp_wanted(c, mj->v[k].user, &domfile)) {
            mj->v[keep++] = mj->v[k];
            continue;
        }
        struct envelope *e = spool_env(mj->v[k].m);
        lj[n] = (struct lmtp_job){.rcpt = mj->v[k].user, .domfile = domfile,
                                  .sender = e->sender, .data = spool_data(mj->v[k].m),
                                  .qid = e->qid, .msg = mj->v[k].m};
        from[n++] = mj->v[k];
    }
    mj->n = keep;
    if (n)
        lmtp_deliver(c, lj, n, o->verbose);
    for (size_t k = 0; k < n; k++) {
        record(from[k].m, from[k].i, result_state(lj[k].res), lj[k].status,
               lj[k].relay ? lj[k].relay : "lmtp", o);
        free(lj[k].status);
        free(lj[k].relay);
        free(lj[k].domfile);
        free(from[k].user);
    }
    free(lj);
    free(from);
}

/* Make the collected mailbox deliveries, grouped by mailbox. */
static void flush_mboxes(const struct config *c, struct mbjobs *mj, const struct runq_opts *o)
{
    flush_lmtp(c, mj, o);
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
static char *target_key(const char *addr, const char *owner, const char *folder)
{
    return xasprintf("%s%c%s%c%s", addr, 0x1f, owner ? owner : "", 0x1f,
                     folder ? folder : "");
}

/* With subaddress-folder=, user+a and user+b are two deliveries into one
 * maildir (folders .a and .b): the folder is part of a mailbox target's key. */
static char *folder_of(const struct config *c, const char *ta, const char *orig)
{
    if (!c->subaddress_folder || ta[0] != '\\')
        return NULL;
    return maildir_folder_of(orig, c->recipient_delimiter);
}

/* 1 if this final target was already delivered or queued for this message
 * (an alias and the user it names, two aliases naming one mailbox...). */
static int seen_target(const struct config *c, struct strlist *seen, const char *addr,
                       const char *owner, const char *orig)
{
    char *folder = folder_of(c, addr, orig);
    char *k = target_key(addr, owner, folder);
    free(folder);
    int dup = sl_contains(seen, k);
    if (dup)
        free(k);
    else
        sl_add_owned(seen, k);
    return dup;
}

static void add_targets(const struct config *c, struct qmsg *m, size_t i,
                        const struct targets *t, struct strlist *seen, const char *status);

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
        const struct rcpt *r = &e->rcpts[i];
        if (seen_target(c, seen, ta, t.v[0].user, r->orig ? r->orig : r->addr))
            record(m, i, RS_DONE, "2.0.0 duplicate of another recipient", "local", o);
        else
            deliver_mbox_of(mj, m, i, t.v[0].dest);
        free(ta);
    } else {
        add_targets(c, m, i, &t, seen, "2.0.0 expanded");
    }
    free(why);
    free(addr);
    free(owner);
    targets_free(&t);
}

/* Write the final targets of recipient i into the envelope (durably, before any
 * of them is delivered); the main loop delivers them. */
static void add_targets(const struct config *c, struct qmsg *m, size_t i,
                        const struct targets *t, struct strlist *seen, const char *status)
{
    struct envelope *e = spool_env(m);
    char *orig = xstrdup(e->rcpts[i].orig ? e->rcpts[i].orig : e->rcpts[i].addr);
    size_t before = e->nrcpts;
    for (size_t k = 0; k < t->n; k++) {
        char *ta = target_addr(&t->v[k]);
        if (!seen_target(c, seen, ta, t->v[k].user, orig)) {
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

/* The DNS child's answer. */
static void mx_child(void *arg, int fd)
{
    const struct mx_ask *a = arg;
    uint32_t r = 2;
    if (privs_drop_to(a->c->user) == 0) {
        struct dns_ctx *d = dns_open(a->c);
        int h = d ? route_mx_here(d, a->c, a->domain) : -1;
        dns_close(d);
        r = h == 1 ? 1 : h == 0 ? 0 : 2;
    }
    runq_child_exit(fd, MSG_ROUTE_MX, r);
}

/* Does domain's MX point here (a route_mx_fn: 1, 0, -1)?  DNS answers are
 * network input, so the lookup runs in a child as the unprivileged user and
 * only its answer comes back. */
static int mx_here(void *arg, const char *domain)
{
    struct mx_ask a = {.c = arg, .domain = domain};
    struct child_spec spec = {.title = "queue run: dns", .report = 1};
    struct child ch;
    if (child_start(&ch, &spec, mx_child, &a) < 0)
        return -1;
    long v = runq_child_result(&ch, MSG_ROUTE_MX, 2);
    return v == 0 || v == 1 ? (int)v : -1;
}

/* The way of addr (route.h), MX answers remembered for the pass. */
static enum route_way way_of(const struct config *c, const char *addr, struct pass *ps)
{
    return route_recipient(c, addr_domain(addr), route_mx_cached, &ps->here);
}

/* Expand addr as the queue run does: a local domain, or one that is ours
 * by its MX (then its local part), or a remote address.  As expand_address;
 * -1 with *why also when DNS cannot tell. */
static int expand_as_routed(const struct config *c, const char *addr, struct pass *ps,
                            struct targets *t, char **why)
{
    const char *dom = addr_domain(addr);
    enum route_way w = way_of(c, addr, ps);
    int ours = w == ROUTE_LOCAL_MX;
    if (w == ROUTE_UNSURE || w == ROUTE_OFF) {
        *why = xstrdup(w == ROUTE_OFF ? OFF_STATUS
                                      : "4.4.3 cannot tell yet whether the domain's MX "
                                        "points here (DNS failed)");
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
        char *want = target_key(addr, owner, NULL);
        for (size_t k = 0; k < t.n && !keep; k++) {
            char *ta = target_addr(&t.v[k]);
            char *key = target_key(ta, t.v[k].user, NULL);
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
        add_targets(c, m, i, &t, &ps->seen, st);
        free(st);
    }
    free(why);
    free(addr);
    free(orig);
    free(owner);
    targets_free(&t);
    return keep;
}

/* way grown to hold n entries (new ones ROUTE_LOCAL: not remote). */
static enum route_way *grow(enum route_way *way, size_t *cap, size_t n)
{
    if (n <= *cap)
        return way;
    way = xreallocarray(way, n, sizeof *way);
    for (size_t k = *cap; k < n; k++)
        way[k] = ROUTE_LOCAL;
    *cap = n;
    return way;
}

/* The remote recipients (way[i] remote) go out through the one remote path,
 * in a child that becomes the unprivileged user. */
static void deliver_remote(const struct config *c, struct qmsg *m, const enum route_way *way,
                           const struct runq_opts *o)
{
    struct envelope *e = spool_env(m);
    size_t *idx = xreallocarray(NULL, e->nrcpts + 1, sizeof *idx);
    size_t n = rq_remote_order(c, e, way, idx);
    if (n && rworker_deliver_held(c, m, idx, n, o) < 0) {
        /* the child died or could not start: say so for what it left undone */
        e = spool_env(m);
        for (size_t k = 0; k < n; k++)
            if (e->rcpts[idx[k]].state == RS_PENDING)
                record(m, idx[k], RS_PENDING, "4.3.0 the remote delivery process failed; "
                       "see the mail log", "none", o);
    }
    free(idx);
}

/* One pass over the pending recipients, each taking its way (route.h);
 * mailbox deliveries are collected into mj, remote ones sent at the end. */
static void deliver_pending(const struct config *c, struct qmsg *m,
                            const struct runq_opts *o, struct mbjobs *mj)
{
    struct envelope *e = spool_env(m);
    struct pass ps = {.fresh = e->nrcpts};
    sl_init(&ps.seen);
    route_cache_init(&ps.here, mx_here, (void *)c);
    size_t cap = 0, nrem = 0;
    enum route_way *way = grow(NULL, &cap, e->nrcpts + 1);
    for (size_t i = 0; i < e->nrcpts; i++)
        if (e->rcpts[i].state != RS_PENDING && rcpt_is_target(&e->rcpts[i]))
            seen_target(c, &ps.seen, e->rcpts[i].addr, e->rcpts[i].owner,
                        e->rcpts[i].orig ? e->rcpts[i].orig : e->rcpts[i].addr);
    for (size_t i = 0; i < e->nrcpts; i++) {
        if (e->rcpts[i].state != RS_PENDING)
            continue;
        const char *addr = e->rcpts[i].addr;
        enum route_way w = rcpt_is_target(&e->rcpts[i]) ? ROUTE_LOCAL : way_of(c, addr, &ps);
        if (rcpt_is_target(&e->rcpts[i])) {
            seen_target(c, &ps.seen, addr, e->rcpts[i].owner,
                        e->rcpts[i].orig ? e->rcpts[i].orig : addr);
            deliver_target(c, m, i, o, mj, &ps);
        } else if (w == ROUTE_LOCAL || w == ROUTE_LOCAL_MX) {
            expand_local(c, m, i, o, &ps.seen, w == ROUTE_LOCAL_MX, mj);
        } else if (w == ROUTE_OFF) {
            record(m, i, RS_PENDING, OFF_STATUS, "none", o);
        } else if (w == ROUTE_UNSURE) {
            record(m, i, RS_PENDING, "4.4.3 cannot tell yet whether the domain's MX "
                   "points here (DNS failed)", "none", o);
        } else if (!o->skip_remote && !o->local_only) {
            way[i] = w;
            nrem++;
        }
        e = spool_env(m);
        way = grow(way, &cap, e->nrcpts + 1);
    }
    if (nrem)
        deliver_remote(c, m, way, o);
    free(way);
    sl_free(&ps.seen);
    route_cache_free(&ps.here);
}

/* ---- after the attempt ---- */

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
        record_as(m, i, RS_FAILED, s, "none", o, "expired");
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
    if (rq_expired(c, e, time(NULL)))
        expire(c, m, o);
    if (rq_any_failed(e) && bounce_queue(c, m, 0, newqid) < 0)
        log_err("%s: cannot queue a bounce: %s", e->qid, strerror(errno));
    e = spool_env(m);
    switch (rq_fate(e, o->local_only)) {
    case RQ_REMOVE:
        if (spool_remove(m) < 0)
            log_err("%s: cannot remove: %s", e->qid, strerror(errno));
        return;
    case RQ_KEEP:
        log_warn("%s: kept: a bounce is still owed", e->qid);
        return;
    case RQ_LEAVE:
        return; /* the remote part has not been tried: no back-off for it */
    case RQ_RETRY:
        break;
    }
    if (rq_must_warn(c, e, time(NULL), newqid[0] != '\0'))
        bounce_queue(c, m, 1, newqid);
    e = spool_env(m);
    e->attempts++;
    e->next_try = time(NULL) + rq_backoff(c, e->attempts);
    /* appended, not a rewrite of the whole file (spool_retry): the delay
     * notice's flag was made durable by bounce_queue itself */
    if (spool_retry(m) < 0)
        log_err("%s: cannot record the next retry: %s", e->qid, strerror(errno));
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
    /* quarantined by a mail filter: held until postoffice -bQ releases it */
    if ((e->flags & ENV_QUARANTINE) || (!o->force && e->next_try > time(NULL))) {
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

/* Worse of two runq_batch results: an error over busy over done. */
static int worse(int a, int b)
{
    return a < 0 || b < 0 ? -1 : a > b ? a : b;
}

/* One share of the local pass, delivered in a child. */
struct lshare {
    const struct config *c;
    struct strlist ids;
    const struct runq_opts *o;
};

static void share_child(void *arg, int fd)
{
    const struct lshare *sh = arg;
    int r = runq_batch(sh->c, &sh->ids, sh->o);
    runq_child_exit(fd, MSG_RUNQ_DONE, r < 0 ? RUNQ_ERROR : r == 1 ? RUNQ_BUSY : 0);
}

/* A share child's result, as runq_batch's: -1 when it said nothing sensible
 * or died. */
static int share_result(struct child *ch)
{
    long bits = runq_child_result(ch, MSG_RUNQ_DONE, RUNQ_BUSY | RUNQ_ERROR);
    return bits < 0 || bits & RUNQ_ERROR ? -1 : bits & RUNQ_BUSY ? 1 : 0;
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
    size_t per = rq_share_size(left.n, maxp), nsh = (left.n + per - 1) / per;
    struct lshare *sh = xcalloc(nsh, sizeof *sh);
    struct child *ch = xcalloc(nsh, sizeof *ch);
    int rc = 0;
    for (size_t k = 0; k < nsh; k++) {
        sh[k] = (struct lshare){.c = c, .o = o};
        sl_init(&sh[k].ids);
        for (size_t at = k * per; at < left.n && at < (k + 1) * per; at++)
            sl_add(&sh[k].ids, left.v[at]);
        struct child_spec spec = {.title = "queue run: local", .report = 1};
        if (child_start(&ch[k], &spec, share_child, &sh[k]) < 0) {
            ch[k].pid = 0;
            rc = worse(rc, runq_batch(c, &sh[k].ids, o));
        }
    }
    for (size_t k = 0; k < nsh; k++) {
        if (ch[k].pid > 0)
            rc = worse(rc, share_result(&ch[k]));
        sl_free(&sh[k].ids);
    }
    free(sh);
    free(ch);
    sl_free(&left);
    return rc;
}

void runq_child_exit(int report_fd, enum msg_type type, uint32_t v)
{
    struct buf b;
    buf_init(&b);
    msg_put_u32(&b, v);
    if (msg_send(report_fd, type, b.s, b.len, -1) < 0)
        log_err("cannot report to the queue runner: %s", strerror(errno));
    buf_free(&b);
    _exit(0);
}

long runq_child_result(struct child *ch, enum msg_type type, uint32_t max)
{
    struct msg m;
    struct msg_reader r;
    uint32_t v = 0;
    long got = -1;
    if (msg_recv(ch->fd, &m, 64, ch->deadline) == 1) {
        msg_reader_init(&r, &m);
        if (m.type == type && msg_get_u32(&r, &v) == 0 && msg_get_end(&r) == 0 && v <= max)
            got = v;
        msg_free(&m);
    }
    struct child_end end;
    child_wait(ch, &end);
    return end.exited && end.code == 0 ? got : -1;
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
    if (fd == 0) { /* runq_opts.busy_fd 0 means none: stdin was closed */
        fd = fcntl(0, F_DUPFD_CLOEXEC, 3);
        close(0);
    }
    struct runq_opts ro = *o;
    ro.busy_fd = fd;
    struct strlist held;
    sl_init(&held);
    /* the passes note what they find held (busy file): no probe of every
     * message first, unless there is no busy file to note it in */
    if (fd < 0)
        wait_busy(c->queuedir, q, now_ms(), &held); /* no wait: these go last */
    int rc = run_passes(c, q, &ro);
    for (int round = 0;; round++) {
        if (fd >= 0) {
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
    child_set_title("queue run");
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
