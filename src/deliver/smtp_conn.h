/* smtp_conn.h - one connection of the SMTP client to a server: the TCP
 * connect (bounded by connect-timeout=), the greeting, EHLO (HELO when EHLO is
 * refused) and the extensions it offers, TLS as the caller's policy says
 * (smtp_tls.h: from the first byte, or STARTTLS then EHLO again, RFC 3207),
 * commands (one write per pipelined group, RFC 2920), replies read and parsed
 * strictly (smtp_reply.h), QUIT.  Every byte goes through TLS once it is on.
 *
 * Called by the transaction (smtp_txn.h), the connection cache (smtp_cache.h)
 * and the batch (smtp_client.h), in the remote-delivery process, which runs as the
 * unprivileged user= (the caller forks and drops first).  The peer is hostile:
 * no reply line longer than SMTPC_LINE_MAX is buffered.
 *
 * Failures: every function that talks returns -1 when the connection is
 * unusable; then the descriptor is closed (fd < 0) and err holds why, as
 * "4.x.x relay: text" (printable), ready to be a recipient's status.  With
 * verbose, the dialogue goes to stderr. */
#ifndef PO_SMTP_CONN_H
#define PO_SMTP_CONN_H

#include <stddef.h>
#include <sys/socket.h>

#include "conf.h"
#include "smtp_reply.h"
#include "smtp_tls.h"
#include "util.h"

#define SMTPC_LINE_MAX 2048 /* longest reply line we accept (RFC 5321: 512) */

/* RFC 5321 4.5.3.2 client timeouts, in seconds (smtp_tmo caps them) */
#define SMTP_TMO_GREETING 300
#define SMTP_TMO_MAIL 300
#define SMTP_TMO_RCPT 300
#define SMTP_TMO_DATA 120
#define SMTP_TMO_BLOCK 180
#define SMTP_TMO_DOT 600
#define SMTP_TMO_QUIT 10
#define SMTP_TMO_TLS 300 /* the handshake (Postfix: smtp_starttls_timeout) */

struct smtp_conn {
    int fd;                     /* -1 when not (or no longer) connected */
    const struct config *c;
    int verbose;                /* print the dialogue on stderr */
    char *host;                 /* name for Remote-MTA (owned) */
    struct sockaddr_storage ss; /* the peer, for reuse from the cache */
    char *relay;                /* host[addr]:port */
    char addr[64];              /* address text for the transcript */
    struct buf in;              /* bytes read and not consumed */
    struct buf out;             /* pipelined commands not sent yet */
    int corked;                 /* collect commands in out (PIPELINING) */
    int body_started;           /* the message text of this transaction has started */
    int ext_pipelining, ext_8bitmime, ext_smtputf8, ext_size, ext_dsn;
    int ext_starttls, ext_auth; /* STARTTLS, AUTH offered */
    int auth_plain, auth_login; /* mechanisms AUTH offers */
    long long size_limit;       /* from SIZE n, 0 = none declared */
    char *err;                  /* why the connection failed: "4.x.x text", malloc'd */
    /* TLS (smtp_tls.h): set by the caller before smtp_conn_open */
    struct smtp_tls *tlsctx;    /* the process's TLS state, NULL = never TLS */
    const struct smtp_tls_policy *policy;
    struct smtp_tls_conn *tls;  /* TLS is on (after STARTTLS or from the first byte) */
    int authed;                 /* AUTH succeeded on this connection */
    int final;                  /* err is final for this delivery attempt: no other
                                   host or address (a refused password) */
    int connect_failed;         /* err is the TCP connect's (refused, unreachable,
                                   timed out): smtp_dead.h may remember it */
    char *pkey;                 /* the TLS policy and credentials it was opened
                                   with (smtp_client.c), for the cache: malloc'd */
};

/* A new, unconnected connection to ss (free with smtp_conn_free). */
struct smtp_conn *smtp_conn_new(const struct config *c, int verbose,
                                const struct sockaddr_storage *ss);
/* Name the peer host (the name the route knows the address by): sets host,
 * addr and relay ("host[addr]:port", or "[literal]:port"). */
void smtp_conn_name(struct smtp_conn *k, const char *host);
/* Connect, read the greeting, EHLO (or HELO) and note the extensions; with
 * tlsctx and policy set, TLS as the policy says (smtp_tls.h): from the first
 * byte, or STARTTLS and EHLO again (RFC 3207), a failed opportunistic
 * handshake retried once in plaintext on a new connection; each TLS session
 * logged (version, cipher, whether the certificate verified).  0, or -1
 * (connection closed, err set: 4.4.1 for connect, greeting, HELO; 4.7.4 TLS
 * required but not offered or refused; 4.7.5 handshake or certificate). */
int smtp_conn_open(struct smtp_conn *k);
/* QUIT (the answer changes nothing) and close; nothing when not connected. */
void smtp_conn_quit(struct smtp_conn *k);
/* Close if open and free k. */
void smtp_conn_free(struct smtp_conn *k);

/* The RFC 5321 wait rfc, capped by timeout= when that is below 300 s. */
long smtp_tmo(const struct smtp_conn *k, long rfc);
/* Record why the connection failed ("4.x.x ..."), close it. */
void smtp_conn_fail(struct smtp_conn *k, const char *fmt, ...) PO_PRINTF(2, 3);
/* Send n bytes within secs seconds.  0 or -1 (connection failed). */
int smtp_send_bytes(struct smtp_conn *k, const char *p, size_t n, long secs);
/* A message writer for msgout_write_to (message_out.h), arg the connection:
 * each block within the RFC 5321 data-block wait; -1 with errno EPIPE when
 * the connection failed (k's error says why). */
int smtp_body_sink(void *arg, const char *p, size_t n);
/* Send cmd with CRLF, or, when corked, add it to the pending group. */
int smtp_send_cmd(struct smtp_conn *k, const char *cmd, long secs);
/* The same, never corked, for a command carrying a secret: the verbose
 * transcript shows shown instead of cmd. */
int smtp_send_secret(struct smtp_conn *k, const char *cmd, const char *shown, long secs);
/* Start collecting commands; smtp_uncork sends the group in one write. */
void smtp_cork(struct smtp_conn *k);
int smtp_uncork(struct smtp_conn *k, long secs);
/* Read one whole reply into r (emptied first) within secs seconds.  0, or
 * -1 on timeout, EOF, an overlong line or a protocol error (failed). */
int smtp_read_reply(struct smtp_conn *k, struct smtp_reply *r, long secs);

/* Read the server's greeting: 0 when it is 2xx, else -1 (k->err: "4.4.1
 * RELAY: greeting: its reply").  For the SMTP and the LMTP client. */
int smtp_conn_greeting(struct smtp_conn *k);
/* Note the extensions a 2xx EHLO reply (or LMTP's LHLO, lmtp.h) offers;
 * what an earlier one said is forgotten. */
void smtp_conn_extensions(struct smtp_conn *k, const struct smtp_reply *r);

#endif
