/* listener.h - the master's SMTP side: the listening sockets, accepting,
 * the admission limits, and starting a session child for each connection
 * (handing it to a session process back from its last client, else to the
 * waiting spare, spare.h, else forking one).  The session processes tell the
 * master on their hand-over socket when they are back (MSG_SESSION_DONE);
 * only those serving a client count against clients= and clients-per-host=.
 *
 * Called by the master (root) only.  Root is needed to bind (port 25) and to
 * fork children that then become user=; nothing here reads from a client: an
 * accepted connection is refused with a fixed 421 line or passed on unread.
 * The session children report accepted queue ids on the notify pipe
 * (MSG_QUEUED); listener_read_queued reads them, checking type, size and
 * qid_valid (a session child parsed network input: it is not trusted).
 *
 * Failures: listener_open prints and logs which address and why, and returns
 * a sysexits code; a session child that cannot be forked costs the client a
 * 421 and is logged. */
#ifndef PO_LISTENER_H
#define PO_LISTENER_H

#include <poll.h>
#include <sys/types.h>

#include "conf.h"
#include "netaddr.h"
#include "spare.h"
#include "tls_pool.h"
#include "util.h"

struct listen_sock {
    int fd;
    int submission;
    int implicit_tls;  /* smtps=: TLS from the first byte (submission too) */
    char *name; /* "addr:port" for messages */
};

/* A session process: serving a client (counted by the admission limits),
 * back and waiting for another (spare.h), or let go and not reaped yet. */
enum kid_state { KID_BUSY, KID_IDLE, KID_GONE };

struct session_kid {
    pid_t pid;
    struct netaddr addr;  /* the client (KID_BUSY) */
    enum kid_state state;
    int sock;             /* the master's end of its hand-over socket, or -1 */
    unsigned gen;         /* listener.gen when it was forked */
    long long idle_since; /* now_ms() when it became KID_IDLE */
};

struct listener {
    const struct config *c;
    struct listen_sock *ls;
    size_t nls;
    struct session_kid *kids; /* sessions running */
    size_t nkids, capkids;
    unsigned gen;             /* + 1 at SIGHUP and a new ticket key: older
                                 session processes are not used again */
    pid_t spare_pid;          /* a session child forked ahead, waiting (0: none) */
    int spare_fd;             /* the master's end of its socket, or -1 */
    int notify[2];            /* sessions -> master: MSG_QUEUED */
    int auth_fd;              /* sessions -> the AUTH helper (auth_helper.h),
                                 set by the master; -1: none */
    struct session_user user; /* user=, looked up once (and on SIGHUP) */
    struct tls_pool tls;      /* the TLS proxies (tls_pool.h); none: no TLS */
    int stopping;             /* no new spare */
    /* In a new child, before anything else: close the master's descriptors
     * (the listener's own included). */
    void (*in_child)(void *arg);
    void *in_child_arg;
};

/* Parse one listen= entry: "ADDR:PORT", "[V6ADDR]:PORT", "*:PORT" or ":PORT"
 * (all addresses), "PORT", or a bare address (port 25).  Writes a malloc'd
 * numeric host ("" = all addresses) and the port.  0 or -1. */
int listener_parse(const char *entry, char **host, int *port);

/* Initialise l and, with do_bind set, try the TLS certificates (as root, in
 * a child: tls_proxy_check) and bind every listen= address (default: port 25 on all IPv4
 * and IPv6 addresses; msp= and smtps= add those ports on the same
 * addresses).  Opens the notify pipe.  0 or a sysexits code (EX_CONFIG for a
 * bad listen= entry, a TLS file or setting that does not work (the message
 * names the option and file) or smtps= without tls-cert=, EX_OSERR when an
 * address cannot be bound). */
int listener_open(struct listener *l, const struct config *c, int do_bind);

/* Look user= up (as root, groups asked in a child so NSS modules stay out of
 * the master) for the session children; on failure they look it up
 * themselves. */
void listener_load_user(struct listener *l);

/* Start the TLS proxies (tls_pool.h) when tls-cert= is set; after
 * listener_load_user and with in_child set.  A failure is logged: without
 * a proxy STARTTLS is not offered. */
void listener_start_tls(struct listener *l);

/* Start the spare (if none waits and the listener is not stopping). */
void listener_spare(struct listener *l);

/* Accept on socket i: refuse, or start a session child. */
void listener_accept(struct listener *l, size_t i);

/* Admission: the refusal line for a new client, or NULL to serve it.
 * sessions: running; from_host: running for the client's address; load: the
 * load average when it is the reason (for the log). */
const char *listener_admit(const struct config *c, long sessions, long from_host,
                           double *load);

/* Read queued ids from the sessions into ids (checked with qid_valid).
 * Malformed messages are logged and dropped (the queue run finds those
 * messages). */
void listener_read_queued(struct listener *l, struct strlist *ids);

/* The session processes' hand-over sockets, for the master's poll: fills
 * p[0..n) (n <= listener_npoll) and returns n. */
size_t listener_npoll(const struct listener *l);
size_t listener_pollfds(const struct listener *l, struct pollfd *p);

/* What poll found on those sockets: a MSG_SESSION_DONE makes the process
 * idle (or lets it go when it is of an older generation); anything else, or
 * the end, lets it go (a busy one stays counted until it is reaped). */
void listener_kid_events(struct listener *l, const struct pollfd *p, size_t n);

/* Let idle session processes go when they have waited session-max-idle.
 * Returns the milliseconds until the next one is due, or -1 for none. */
int listener_expire(struct listener *l);

/* A child ended: 1 if it was a session, the spare (then forgotten) or a
 * TLS proxy (then started again, unless it died within a second of its
 * start; the waiting session processes are replaced). */
int listener_reaped(struct listener *l, pid_t pid);

/* SIGHUP: configuration c; user= looked up again, new TLS proxies with the
 * certificates read again (when they do not work the old proxies stay, and
 * the log says why; ticket keys are kept), the spare replaced. */
void listener_reload(struct listener *l, const struct config *c);

/* At stop: kill the spare and wait for it (it may still hold listening
 * sockets), so the port is free when the master is gone. */
void listener_stop(struct listener *l);

/* In a child of the master: close the listener's descriptors (the TLS
 * proxies' too) and unmap the ticket keys. */
void listener_close_in_child(struct listener *l);

void listener_free(struct listener *l);

#endif
