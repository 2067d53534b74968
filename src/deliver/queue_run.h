/* queue_run.h - the queue runner: lock, route, deliver, record, bounce, remove.
 *
 * A program or file target kept in the queue from an earlier attempt is run
 * only if the address it came from still expands to it (its .forward or the
 * aliases may have changed); otherwise the message goes where that address
 * leads now (aliases(5)). */
#ifndef PO_QUEUE_RUN_H
#define PO_QUEUE_RUN_H

#include <stdint.h>

#include "conf.h"
#include "msg.h"

struct runq_opts {
    int force;        /* runq by hand: ignore the back-off schedule, and wait
                         (up to 10 s) for messages another process holds */
    int verbose;      /* say what happens (runq -v): on stderr */
    int skip_remote;  /* remote recipients were tried already in this run */
    int local_only;   /* deliver local recipients only; remote ones wait for a
                         queue run, untouched (no back-off counted) */
    int in_process;   /* runq_messages: no child processes for the local pass */
    int busy_fd;      /* > 0: the ids of messages found held by another process
                         are appended here, one per line (runq_note_busy) */
};

/* What a pass left undone (bits): a message held by another process, or one
 * that could not be read / a delivery process that failed. */
#define RUNQ_BUSY 2
#define RUNQ_ERROR 1

/* Note that message qid was held by another process (to o->busy_fd, if set):
 * one write of a short line, safe from forked children. */
void runq_note_busy(const struct runq_opts *o, const char *qid);

/* The queue runner's children (child.h) report one number: the child sends
 * v as a record of type on report_fd and ends (exit 0); the parent reads
 * it, reaps the child and gets v, or -1 when the child sent nothing, sent
 * something else or more than max, or did not exit 0. */
struct child; /* child.h */
PO_NORETURN void runq_child_exit(int report_fd, enum msg_type type, uint32_t v);
long runq_child_result(struct child *ch, enum msg_type type, uint32_t max);

/* Run the whole queue once (picks up the maildrop first).  Returns 0 when
 * every message due was attempted (a deferral is an attempt), EX_TEMPFAIL
 * when some were not: held by another process (with force: still after the
 * wait, and said on stderr), unreadable, or their delivery process failed;
 * EX_NOPERM/EX_OSFILE/EX_OSERR if the queue could not be read. */
int runq_run(const struct config *c, const struct runq_opts *o);

/* Deliver the messages qids in this run: their remote recipients first, by
 * long-lived unprivileged workers per destination (remote_worker.h), then the local
 * ones with bounces and back-off, up to delivery-processes messages at once.
 * 0, or EX_TEMPFAIL if some message could not be attempted (held by another
 * process, unreadable, its delivery process failed). */
int runq_messages(const struct config *c, const struct strlist *qids,
                  const struct runq_opts *o);

/* Deliver the messages qids here, in this process, GROUP_MAX at a time: each
 * group's mailbox deliveries are made per mailbox (one lock and one fsync for
 * all the group's mail to one mailbox).  Returns 0, 1 if one was busy, -1 on
 * an error. */
int runq_batch(const struct config *c, const struct strlist *qids,
               const struct runq_opts *o);

/* Load the name-service modules in this process once (getgrouplist for
 * user=), so that the delivery children it forks, which call initgroups(),
 * inherit them instead of loading them each time. */
void runq_preload_nss(const struct config *c);

/* Deliver one message now (after enqueue, or on the daemon's trigger).
 * Returns 0 (done or deferred as planned), 1 if busy, -1 on error. */
int runq_message(const struct config *c, const char *qid, const struct runq_opts *o);

#endif
