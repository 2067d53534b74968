/* daemon.h - the SMTP listener (-bd, -bD): sockets, a child per connection,
 * limits, pid file, signals, the periodic queue runner and immediate delivery.
 *
 * Process model (DESIGN.md): the master keeps root only to bind, to fork
 * deliveries and to reap; every session child drops to user= before it reads a
 * byte.  A session child that queued a message writes its queue id on a pipe;
 * the master forks runq_message() for it at once.  QUEUEDIR/trigger (a FIFO,
 * spool_trigger) wakes a whole queue run. */
#ifndef PO_DAEMON_H
#define PO_DAEMON_H

#include "conf.h"

/* SIGHUP: build a complete fresh configuration into *fresh (defaults, file,
 * command-line options).  Return 0 to switch to it, non-zero to keep the
 * running one (the hook frees whatever it built). */
typedef int (*daemon_reload_fn)(struct config *fresh, void *arg);

struct daemon_opts {
    int foreground;          /* -bD / -d: stay attached, log to stderr too */
    int listen;              /* 0: no SMTP, only the periodic queue runner
                                (postoffice -q30 without -bd) */
    long queue_interval;     /* -qN in seconds; 0 = no periodic queue runs */
    daemon_reload_fn reload; /* NULL: re-read c->confpath only (-o settings of
                                the command line are then lost: pass a hook
                                that re-applies them) */
    void *reload_arg;
};

/* Bind every listen= address (default: port 25 on all IPv4 and IPv6
 * addresses; msp= adds that port on the same addresses), then serve.
 * Without foreground the process forks: the parent returns 0 once the sockets
 * listen and the pid file names the child; the child serves until SIGTERM or
 * SIGINT and then returns 0.  A bind failure prints which address and why and
 * returns EX_OSERR; a bad listen= entry EX_CONFIG; the pid file EX_CANTCREAT. */
int daemon_run(const struct config *c, const struct daemon_opts *o);

/* The CLI's entry point: daemon_run with the default reload.  listen = 0 runs
 * only the queue runner (then queue_interval_secs must be > 0). */
int daemon_main(const struct config *c, int foreground, long queue_interval_secs,
                int listen);

/* Parse one listen= entry: "ADDR:PORT", "[V6ADDR]:PORT", "*:PORT" or ":PORT"
 * (all addresses), "PORT", or a bare address (port 25).  Writes a malloc'd
 * numeric host ("" = all addresses) and the port.  0 or -1. */
int daemon_parse_listen(const char *entry, char **host, int *port);

#endif
