/* spare.h - the SMTP session child's side of its start: become user=, wait
 * (as the "spare") for the connection the master hands over, run the session.
 *
 * The master (listener.h) forks one session child ahead of the next client:
 * the spare drops privileges at once and waits on its socket for one
 * MSG_SESSION_CONN message (the accepted connection's descriptor, the
 * client's address, the submission and implicit-TLS flags).  When no spare is ready the master
 * forks a child at accept time that starts the same way with the connection
 * already in hand.  Either child reports accepted queue ids to the master
 * (MSG_QUEUED, session.h).  After a session it closes the connection and,
 * until it has served session-max-use connections, sends MSG_SESSION_DONE on
 * its socket and waits there for the next hand-over (Postfix's smtpd reuse):
 * the master counts it as a session again only when it hands it one, and
 * ends it by closing the socket (idle longer than session-max-idle, SIGHUP,
 * a new ticket key).  Each session starts from a fresh struct session; the
 * process keeps only its spare_start (configuration, descriptors, TLS
 * contexts) and the identity user=.
 *
 * Runs unprivileged: everything here but spare_handover_send and
 * spare_handover_encode runs in the child after it became user= (or failed
 * to, then it only refuses the connection with 421 and exits EX_OSERR).  The
 * two exceptions run in the master (root) and only format what accept()
 * returned; nothing here parses network input. */
#ifndef PO_SPARE_H
#define PO_SPARE_H

#include <sys/types.h>

#include "conf.h"
#include "msg.h"
#include "netaddr.h"
#include "util.h"


/* user= as the master looked it up once (listener.h): the child becomes it
 * with setgroups/setgid/setuid alone, without NSS lookups per connection.
 * ok = 0: the child looks user= up itself (privs_drop_to). */
struct session_user {
    int ok;
    uid_t uid;
    gid_t gid;
    gid_t *groups;
    size_t ngroups;
};

/* What a session child starts with; the caller (in the child) has already
 * closed the master's descriptors. */
struct spare_start {
    const struct config *c;
    const struct session_user *user;
    int notify_fd; /* session -> master: MSG_QUEUED */
    int tls_req;   /* session -> TLS proxy (tls_proxy.h), or -1: no TLS */
    int auth_fd;   /* session -> AUTH helper (auth_helper.h), or -1 */
};

/* The spare: become the user, wait on sock for the hand-over, run the
 * session, and the next ones (above).  Ends the process: 0 when the master
 * closed sock without a connection, else the last session's status. */
PO_NORETURN void spare_wait(const struct spare_start *st, int sock);

/* A session child forked at accept: the same with the connection in hand
 * (sock -1: it serves that one connection only). */
PO_NORETURN void spare_serve(const struct spare_start *st, int sock, int fd,
                             const struct netaddr *peer, int submission, int implicit_tls);

/* Master: hand connection fd (client peer, accepted on the submission port
 * or not, on the smtps port (implicit_tls, which implies submission) or not)
 * to the spare waiting on sock (its queue is empty: this does not wait).  0,
 * or -1 with errno (EPIPE, ECONNRESET: the spare is gone). */
int spare_handover_send(int sock, int fd, const struct netaddr *peer, int submission,
                        int implicit_tls);

/* The hand-over payload, built by the master and read back by the spare:
 * the address, then one number of flags (1 submission, 2 implicit TLS).
 * decode: 0, or -1 (EPROTO) unless m is a MSG_SESSION_CONN with a
 * descriptor, a numeric address and flags 0, 1 or 3 (implicit TLS is always
 * a submission port), and nothing else. */
void spare_handover_encode(struct buf *b, const struct netaddr *peer, int submission,
                           int implicit_tls);
int spare_handover_decode(const struct msg *m, struct netaddr *peer, int *submission,
                          int *implicit_tls);

/* In the child: become u (or user= looked up, without u->ok).  0 or -1. */
int spare_become(const struct config *c, const struct session_user *u);

#endif
