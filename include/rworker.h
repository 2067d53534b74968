/* rworker.h - the remote half of a queue run: long-lived unprivileged workers,
 * each owning a set of destinations, so a connection to a host is reused for
 * every message going there and one slow host holds up only its own worker. */
#ifndef PO_RWORKER_H
#define PO_RWORKER_H

#include "conf.h"
#include "runq.h"
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

#endif
