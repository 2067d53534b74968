/* tls_proxy.h - the TLS proxy ("postoffice: tls"), the daemon's process
 * that runs OpenSSL for its clients (tls-proxies= of them, tls_pool.h), and
 * how the master and the session children use it.
 *
 * A proxy holds the server's TLS contexts (tls_server.h) and every TLS
 * connection handed to it: the handshake, then the records both ways, passing the
 * plaintext to and from the session child that owns the connection over a
 * socket pair of their own (tls_relay.h).  The master and the session
 * children never call OpenSSL.  Why: a session child forked from a master
 * that held OpenSSL's state copied some 35 of the master's heap pages on its
 * first handshake (OpenSSL 3 writes locks and reference counts in its shared
 * tables on every algorithm fetch), so an idle TLS session cost ~300 KiB of
 * memory; in the proxy a connection costs its SSL object.  Postfix's
 * tlsproxy(8) and OpenSMTPD's smtp process hold TLS connections the same way.
 *
 * Who calls what, as which uid:
 *  - The master (ROOT): tls_proxy_check before it detaches (a child loads
 *    the certificates and says whether they work, so a bad file stops the
 *    start with a message); then, through tls_pool.h, which runs
 *    tls-proxies= of them, tls_proxy_start (at start, on SIGHUP, and when
 *    one died), tls_proxy_keys when it made a ticket key, and
 *    tls_proxy_release to let a proxy go.
 *  - A proxy reads the certificate and key files as root, then becomes
 *    user= before it reads anything from a session or a client.  It serves
 *    its connections with poll() and never waits on one of them.  It
 *    ends when the master has closed its control socket, every session
 *    holding the request socket has ended, and its last connection is done.
 *  - A session child (user=): tls_proxy_handoff, on STARTTLS after its 220
 *    reply, or first thing on the smtps= port.
 *
 * The hand-over, shaped like AUTH's (auth_helper.h): the session makes a
 * stream socket pair, writes MSG_TLS_CONN (u32 handshake milliseconds, str
 * client address) with the client's socket on its end, then sends
 * MSG_TLS_START with the other end over the shared request socket.  The
 * proxy answers on the pair with MSG_TLS_DONE (u32 1 established / 0 not,
 * u32 1 session resumed, str "TLSv1.3 with cipher ..." or why not), then
 * relays plaintext until either side closes.  What a session sends is
 * checked for type, size and fields; a malformed request is logged and
 * dropped.
 *
 * Ticket keys are made by the master (getentropy(), no OpenSSL), a new one
 * every TLS_TICKET_ROTATE seconds, and sent to the proxy on its control
 * socket (MSG_TLS_KEYS); a proxy started on SIGHUP or after a crash gets the
 * same keys, so a client's ticket stays good.
 *
 * Failures: tls_proxy_check and tls_proxy_start return -1 with *err
 * malloc'd (the option or file, and OpenSSL's reason); tls_proxy_handoff
 * returns -1 with *info saying why (the proxy is gone, the handshake failed
 * or timed out): the connection is then unusable. */
#ifndef PO_TLS_PROXY_H
#define PO_TLS_PROXY_H

#include <sys/types.h>
#include <time.h>

#include "conf.h"
#include "tls_server.h"

struct session_user;

#define TLS_PROXY_START_MS 30000  /* loading the certificates, at most */
#define TLS_HANDOFF_SLACK_MS 5000 /* the session waits the handshake's time + this */
#define TLS_REQUEST_SEND_MS 10000 /* ...and at most this to hand the connection over */

struct tls_proxy {
    pid_t pid;         /* 0: none */
    int req;           /* the sessions' end of the request socket, or -1 */
    int ctl;           /* master -> proxy: ticket keys; -1: none */
    size_t ndomains;   /* virtual domains with their own certificate */
};

/* Master, before detaching: can c's TLS files be loaded?  0 (also when c
 * sets no tls-cert=), -1 with *err (malloc'd).  *ndomains: the virtual
 * domains with their own certificate. */
int tls_proxy_check(const struct config *c, size_t *ndomains, char **err);

/* Master: make the first ticket key, or a new one when the newest is
 * TLS_TICKET_ROTATE old.  1 when it made one (send it: tls_proxy_keys), 0
 * when none was due, -1 when the system gave no random bytes (the old key
 * stays; logged). */
int tls_proxy_rotate(struct tls_ticket_keys *k, time_t now);

/* Master: start a proxy for c with ticket keys k.  u: user= as looked up
 * (may be NULL: the proxy looks it up).  in_child (may be NULL) runs first
 * in the new process to close the master's descriptors.  Waits until the
 * proxy has loaded its certificates (TLS_PROXY_START_MS).  0 with p
 * filled, -1 with *err malloc'd (p is then pid 0, req -1, ctl -1). */
int tls_proxy_start(struct tls_proxy *p, const struct config *c, const struct session_user *u,
                    const struct tls_ticket_keys *k, void (*in_child)(void *), void *arg,
                    char **err);

/* Master: send the proxy the ticket keys.  0, or -1 (logged). */
int tls_proxy_keys(struct tls_proxy *p, const struct tls_ticket_keys *k);

/* Master: let the proxy go (it ends when its connections are done).  p is
 * then pid 0, req -1, ctl -1. */
void tls_proxy_release(struct tls_proxy *p);

/* Session: hand client socket fd to the proxy behind request socket req
 * and wait (until the earlier of timeout_ms + TLS_HANDOFF_SLACK_MS and
 * deadline, a now_ms() value or 0) for the handshake.  The caller's fd is
 * left open (the caller closes it).  0: established, *plain is the socket
 * to speak SMTP on from here on, *resumed set when the client resumed a
 * session, *info "TLSv1.3 with cipher NAME (256/256 bits)" (malloc'd).
 * -1: not established, *info says why (malloc'd), *plain -1, and fd shut
 * down both ways (the proxy may still hold a copy of it). */
int tls_proxy_handoff(int req, int fd, const char *client, long timeout_ms,
                      long long deadline, int *plain, int *resumed, char **info);

#endif
