/* workerpool.h - the master's half of the delivery workers (delivery_worker.h is
 * the workers' half): which ids go out, when another worker starts, what
 * the workers report done.
 *
 * Queue ids accepted by sessions wait in the pool (pending) until a worker
 * can take them; they go out over one SOCK_SEQPACKET socket shared by all
 * workers, one MSG_DELIVER message per id, and the workers answer
 * MSG_DELIVERED with how many they finished.  A worker is started when there
 * is none, or when every running one has a full round (DW_TAKE_*) waiting or
 * in hand, up to delivery-processes.  Ids a dead worker had taken are still
 * queued messages: the next queue run delivers them; ids still in the socket
 * are taken by the next worker.  With immediate, ids are gathered for
 * WP_GATHER_MS (or until WP_GATHER_MAX) so one remote connection carries
 * several messages.
 *
 * Called by the master (root) only; a worker is forked as root (it forks the
 * mailbox children, as a queue run does).  Failures: a worker that cannot be
 * started is logged and its ids wait (the queue run delivers them). */
#ifndef PO_WORKERPOOL_H
#define PO_WORKERPOOL_H

#include <sys/types.h>

#include "conf.h"
#include "util.h"

#define WP_GATHER_MS 50
#define WP_GATHER_MAX 50

struct workerpool {
    const struct config *c;
    int sock[2];              /* [0] the master's (non-blocking), [1] the workers' */
    long outstanding;         /* ids handed out, not yet reported done */
    int send_blocked;         /* the socket was full: poll for POLLOUT */
    pid_t *pids;              /* running workers */
    size_t n, cap;
    struct strlist pending;   /* ids waiting to be handed out */
    long long pending_since;  /* now_ms() when the oldest pending id came */
    /* Start one worker; returns its pid or -1.  wp_init sets the real one
     * (a child running dworker_main); tests put their own. */
    pid_t (*spawn)(struct workerpool *wp);
    /* In a new child, before anything else: close the master's descriptors
     * (the pool's own included). */
    void (*in_child)(void *arg);
    void *in_child_arg;
};

/* Set up the pool and its socket.  0 or -1 with errno. */
int wp_init(struct workerpool *wp, const struct config *c);
void wp_free(struct workerpool *wp);

/* SIGHUP: a fresh socket with configuration c; the running workers deliver
 * what they took and what is still in the old socket, then see its end and
 * exit.  0 or -1 with errno. */
int wp_renew(struct workerpool *wp, const struct config *c);

/* An id accepted by a session (the caller checked qid_valid). */
void wp_add(struct workerpool *wp, const char *qid, long long now);

/* Milliseconds to keep gathering before the pending ids go out; 0: now. */
int wp_gather_left(const struct workerpool *wp, long long now);

/* Hand out pending ids, starting workers as the rule above says.  Stops at
 * a full socket (send_blocked) or when no worker can be started. */
void wp_dispatch(struct workerpool *wp, long long now);

/* Read the workers' MSG_DELIVERED reports (non-blocking). */
void wp_read_done(struct workerpool *wp);

/* A child ended: 1 if it was one of the pool's workers (then forgotten). */
int wp_reaped(struct workerpool *wp, pid_t pid);

/* The decision: start another worker now?  running workers, max allowed,
 * ids outstanding, ids per round. */
int wp_should_start(long running, long max, long outstanding, long take);

/* In a child of the master: close the pool's descriptors. */
void wp_close_in_child(struct workerpool *wp);

#endif
