/* master.h - the daemon's master process (-bd, -bD, -qN): the poll loop
 * that ties the listener (listener.h), the delivery workers
 * (workerpool.h), the periodic queue run and the trigger FIFO together;
 * signals (SIGHUP reload, SIGTERM/SIGINT stop, SIGCHLD reaping), the pid
 * file, detaching.
 *
 * Called by main() only; runs as root when started as root, and keeps root
 * only to bind, to fork the children that need it (delivery workers, queue
 * runs) and to reap.  It never parses network input: sessions run in
 * unprivileged children (spare.h), and what the master reads from its
 * children are msg.h messages checked for type and size.  A session that
 * queued a message sends its id (MSG_QUEUED); the master hands it to a
 * delivery worker at once.  QUEUEDIR/trigger (a FIFO, spool_trigger) wakes a
 * whole queue run, at most one per second. */
#ifndef PO_MASTER_H
#define PO_MASTER_H

#include "conf.h"

/* SIGHUP: build a complete fresh configuration into *fresh (defaults, file,
 * command-line options).  Return 0 to switch to it, non-zero to keep the
 * running one (the hook frees whatever it built). */
typedef int (*master_reload_fn)(struct config *fresh, void *arg);

struct master_opts {
    int foreground;          /* -bD / -d: stay attached, log to stderr too */
    int listen;              /* 0: no SMTP, only the periodic queue runner
                                (postoffice -q30 without -bd) */
    long queue_interval;     /* -qN in seconds; 0 = no periodic queue runs */
    master_reload_fn reload; /* NULL: re-read c->confpath only (-o settings of
                                the command line are then lost: pass a hook
                                that re-applies them) */
    void *reload_arg;
};

/* Bind every listen= address (listener.h), then serve.  Without foreground
 * the process forks: the parent returns 0 once the sockets listen and the
 * pid file names the child; the child serves until SIGTERM or SIGINT and
 * then returns 0.  A bind failure prints which address and why and returns
 * EX_OSERR; a bad listen= entry EX_CONFIG; the pid file EX_CANTCREAT. */
int master_run(const struct config *c, const struct master_opts *o);

/* The CLI's entry point: master_run with the default reload.  listen = 0
 * runs only the queue runner (then queue_interval_secs must be > 0). */
int master_main(const struct config *c, int foreground, long queue_interval_secs,
                int listen);

#endif
