/* session.h - the SMTP server (RFC 5321): one session per connection, run in
 * an unprivileged child of the daemon (spare.h), or on stdin/stdout for -bs.
 *
 * The session reads commands with smtpd_io.h (deadlines, line limit, PIPELINING),
 * applies policy, writes accepted messages with spool_new/spool_commit and
 * answers 250 with the queue id only after spool_commit succeeded.  See
 * postoffice-smtpd(8) for the dialogue and the replies. */
#ifndef PO_SESSION_H
#define PO_SESSION_H

#include "conf.h"
#include "netaddr.h"


/* One connection handed over by the daemon. */
struct session_conn {
    int fd;                         /* the accepted socket */
    const struct netaddr *peer;     /* the client's address */
    int submission;                 /* accepted on the msp= or smtps= port */
    int implicit_tls;               /* accepted on the smtps= port: TLS from
                                       the first byte */
    int notify_fd;                  /* send MSG_QUEUED (msg.h) here after each
                                       accepted message (the daemon starts its
                                       delivery); -1: use spool_trigger() */
    int tls_req;                    /* the TLS proxy's request socket
                                       (tls_proxy.h): STARTTLS is offered;
                                       <= 0: no TLS (0 is stdin, never it) */
    int auth_fd;                    /* the AUTH helper's request socket
                                       (auth_helper.h); <= 0: none, AUTH is
                                       not offered (0 is stdin, never it) */
};

/* Run one SMTP session on a socket.  The caller has already dropped privileges.
 * Returns the exit status for the child: 0 after QUIT, 1 when the session ended
 * otherwise (EOF, timeout, too many errors, refused). */
int session_run(const struct config *c, const struct session_conn *conn);

/* -bs: one SMTP session on stdin/stdout for the invoking user.  Messages go to
 * the queue (root or the queue owner) or the maildrop (anyone else).  Returns
 * 0 after QUIT, else 1. */
int session_run_stdio(const struct config *c);

/* -bs -R ADDR: the same, but the session treats the client as coming from the
 * numeric address ADDR: relay permission, trusted=, tcp wrappers, paranoid and
 * verify-from are decided for that address as for a network client.  Claiming
 * an address never grants more than plain -bs (which may relay), so any user
 * may use it; tests use it to play remote clients.  EX_USAGE (64) if ADDR is
 * not numeric. */
int session_run_stdio_peer(const struct config *c, const char *peer_ip);

#endif
