/* delivery_worker.h - the daemon's delivery workers: the worker's half
 * (workerpool.h is the master's).
 *
 * A worker is a long-lived child of the daemon's master (root, as a queue run
 * is: it forks the mailbox children that become each recipient).  It takes
 * queue ids from the master over a SOCK_SEQPACKET socket, one MSG_DELIVER
 * message (msg.h) per id,
 * and delivers what it has taken in one go (runq_batch, or runq_messages with
 * immediate), so an SMTP-accepted message costs no process of its own and ids
 * that pile up while a worker is busy are delivered together (one mailbox
 * lock and fsync for several messages; when mail streams in, a round waits
 * DW_GATHER_MS for more).  After each round it reports MSG_DELIVERED
 * (the number of ids done) on the same socket.  It exits when the master closes its end
 * (after taking what is still queued), after DW_IDLE_MS without work, or after
 * DW_MAX_IDS ids (a bounded lifetime).  Ids lost with a dead worker are still
 * queued messages: the next queue run delivers them. */
#ifndef PO_DELIVERY_WORKER_H
#define PO_DELIVERY_WORKER_H

#include "compat.h"
#include "conf.h"
#include "util.h"

#define DW_IDLE_MS 30000
#define DW_MAX_IDS 5000
#define DW_TAKE_LOCAL 8      /* ids per round: one mailbox batch */
#define DW_TAKE_IMMEDIATE 50 /* with immediate: a remote batch shares connections */
#define DW_STREAM_MS 20      /* a round this soon after the last one: mail is streaming */
#define DW_GATHER_MS 50      /* ...so wait this long for more ids before delivering */

/* Take up to max ids already waiting on sock into ids (each a MSG_DELIVER
 * with a valid queue id; anything else is logged and skipped).  Never waits:
 * sock is made non-blocking (the workers share it, and an id seen waiting
 * may be gone to another worker by the time it is read).  *eof set when the
 * master closed its end or the stream broke. */
void dworker_take(int sock, size_t max, struct strlist *ids, int *eof);

/* Wait DW_GATHER_MS for more before delivering?  Yes when the round is not
 * full (have < max) and the last round ended less than DW_STREAM_MS ago
 * (mail is streaming in). */
int dworker_gather(size_t have, size_t max, long long since_last_round);

/* The worker's loop, in the child (descriptors of the master already closed). */
PO_NORETURN void dworker_main(const struct config *c, int sock);

#endif
