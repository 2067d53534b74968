/* queue_run_plan.h - the queue runner's decisions, as pure functions (no I/O, no
 * clock of their own: the caller passes "now"): which recipients go into one
 * SMTP transaction, which remote worker takes a message, how the local pass
 * is shared out, the back-off, and the finish rule (expire, remove, keep,
 * retry, warn).  queue_run.c and remote_worker.c act on the answers. */
#ifndef PO_QUEUE_RUN_PLAN_H
#define PO_QUEUE_RUN_PLAN_H

#include <stddef.h>
#include <time.h>

#include "conf.h"
#include "envelope.h"
#include "route.h"

/* Is some recipient RS_FAILED (a bounce still owed)?  1 or 0. */
int rq_any_failed(const struct envelope *e);

/* Do recipient addresses a and b go in one transaction?  With relay-host
 * (and no relay-map=) always; otherwise when their domains are the same (any
 * case).  1 or 0. */
int rq_same_transaction(const struct config *c, const char *a, const char *b);

/* The recipients of e that are pending, not program/file targets, and whose
 * way[i] is remote (route_is_remote), in transaction order: those going in
 * one transaction next to each other, in the order of their first member.
 * idx must hold e->nrcpts entries; returns how many were written. */
size_t rq_remote_order(const struct config *c, const struct envelope *e,
                       const enum route_way *way, size_t *idx);

/* The domain of e's first pending recipient (not a program/file target)
 * whose domain is not ours by name (route_is_local_domain), or NULL. */
const char *rq_remote_domain(const struct config *c, const struct envelope *e);

/* Which of nworkers remote workers takes a message: by rq_remote_domain, the destination (the domain, or "relay" with relay-host and no relay-map=) spread over up to
 * destination-processes slots by the queue id, so a destination's messages
 * meet in few workers and reuse their connections.  -1: nothing remote. */
long rq_worker_of(const struct config *c, const struct envelope *e, long nworkers);

/* The local pass over n messages with up to maxp processes: how many
 * messages each share takes (the last may take fewer).  0 when n is 0. */
size_t rq_share_size(size_t n, long maxp);

/* Seconds to wait after the attempts'th failed attempt: retry-min (300 when
 * unset), doubled per further attempt, at most retry-max (when set). */
long rq_backoff(const struct config *c, int attempts);

/* Give up on the pending recipients now (qreturn= passed since the message
 * was queued)?  A double bounce never expires: nobody is left to tell. */
int rq_expired(const struct config *c, const struct envelope *e, time_t now);

/* What becomes of a message after an attempt (bounces queued first). */
enum rq_fate {
    RQ_REMOVE, /* nothing pending and no bounce owed */
    RQ_KEEP,   /* nothing pending but a bounce is still owed (queueing it failed) */
    RQ_LEAVE,  /* pending, but only the local part was tried: no back-off */
    RQ_RETRY   /* pending: count the attempt, retry after rq_backoff */
};
enum rq_fate rq_fate(const struct envelope *e, int local_only);

/* Send the "delayed" notice now?  Once (ENV_WARNED), after qwarn= (when
 * set), never for a bounce, nor when a bounce was just queued. */
int rq_must_warn(const struct config *c, const struct envelope *e, time_t now,
                 int bounced_now);

#endif
