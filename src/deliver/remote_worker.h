/* remote_worker.h - the one remote-delivery path.  A queue run's remote half:
 * long-lived unprivileged workers, each owning a set of destinations, so a
 * connection to a host is reused for every message going there and one slow
 * host holds up only its own worker.  A process holding a message (runq -v,
 * sendmail -v, a bounce to a remote sender, an alias that leads off-site)
 * hands its remote recipients to one such child.  Both end in
 * rworker_deliver.  Routing is route.h's: only recipients that route to
 * ROUTE_MX or ROUTE_RELAY are sent; one whose domain's MX points here or
 * cannot be told (DNS failed) is left to the local half (4.4.3). */
#ifndef PO_REMOTE_WORKER_H
#define PO_REMOTE_WORKER_H

#include "conf.h"
#include "remote_session.h"
#include "queue_run.h"
#include "util.h"

/* Try the pending remote recipients of every message in qids (skipping those
 * locked elsewhere or, unless o->force, still backing off), recording each
 * result; a message with nothing left to do is removed.  Messages are spread
 * over up to delivery-processes workers by destination, each destination
 * (a domain, or the relay host) over at most destination-processes of them.
 * Returns when every worker has finished: 0, or RUNQ_BUSY if some message was
 * held by another process (runq_note_busy), RUNQ_ERROR if one could not be
 * read or a worker could not start or died (both bits possible). */
int rworker_run(const struct config *c, const struct strlist *qids,
                const struct runq_opts *o);

/* Deliver recipients idx[0..n-1] of m (locked by the caller, all routed
 * remote, in rq_remote_order) in this unprivileged process: one SMTP
 * transaction per run of idx going together (rq_same_transaction), each
 * transaction's results synced together (not at all when they end the
 * message, which the caller then removes). */
void rworker_deliver(struct remote_session *rs, struct qmsg *m, const size_t *idx,
                     size_t n, const struct runq_opts *o);

/* The same from a (root) process that holds m: in a child titled "remote
 * DOMAIN" that becomes the unprivileged user; m is re-read afterwards.
 * 0, or -1 when the child could not start, could not set up, or died (the
 * caller defers what it left pending). */
int rworker_deliver_held(const struct config *c, struct qmsg *m, const size_t *idx,
                         size_t n, const struct runq_opts *o);

#endif
