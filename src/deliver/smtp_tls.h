/* smtp_tls.h - the SMTP client's TLS (OpenSSL 3): what TLS a connection wants
 * (the policy), the handshake on a connected socket, reading and writing
 * through it, and what to log about it.
 *
 * The policy (relay_map.h's relay_dest: the relay-map= entry of the domain,
 * else relay-host=, else the domain's MX hosts):
 *   MX hosts: opportunistic.  STARTTLS when the server offers it; the
 *     certificate is checked (system store, the MX host's name) only to log
 *     whether it verified.  A failed handshake is retried once in plaintext
 *     on a new connection (smtp_conn.c), as Postfix does: an MX with a broken
 *     TLS setup would otherwise get no mail at all, and opportunistic TLS
 *     protects only against a passive listener anyway.
 *   relay-host: relay-tls=may is the same; relay-tls=require wants TLS and a
 *     certificate that verifies against relay-tls-ca= (the system store when
 *     unset) and matches the relay host's name as written in relay-host= (its
 *     address for a [literal]); relay-tls=smtps is require with TLS from the
 *     first byte, which port 465 always gets.  Without relay-tls= the level is
 *     require when relay-auth= is set (credentials never go out in clear, nor to
 *     a host that only claims to be the relay) and may otherwise.  When the
 *     level is require, nothing ever goes out in plaintext: a missing STARTTLS,
 *     a failed handshake or verification defers the mail (4.7.x).
 *   relay-map= entries: the same with their own tls= and ca= (relay_map.h);
 *     tls=none never starts TLS; tls=require on "-" (the domain's MX hosts)
 *     verifies each MX host's certificate against its own name.
 * Protocols: TLS 1.2 and later; SNI is sent for names (never for addresses).
 * A next hop's session is kept for resumption by the next connection of the
 * same process to the same name with the same level and CA (the policy's
 * relay flag; the newest SMTP_TLS_SESSIONS of them).
 *
 * Called by the connection (smtp_conn.c) and the batch (smtp_client.c) in the
 * remote-delivery process, as the unprivileged user= (so relay-tls-ca= must be
 * readable by user=).  Contexts are made at the first handshake, one per CA
 * file (and one for the system store). */
#ifndef PO_SMTP_TLS_H
#define PO_SMTP_TLS_H

#include <stddef.h>
#include <sys/types.h>

#include "conf.h"

enum smtp_tls_level { SMTP_TLS_MAY = 1, SMTP_TLS_REQUIRE = 2, SMTP_TLS_NONE = 3 };
#define SMTP_TLS_SESSIONS 8 /* next hops whose TLS session a process keeps */

struct smtp_tls_policy {
    int level;    /* SMTP_TLS_MAY, SMTP_TLS_REQUIRE or SMTP_TLS_NONE (no TLS) */
    int implicit; /* TLS from the first byte (port 465, smtps) */
    int relay;    /* a next hop (relay-host or the map's): session resumption */
    char *name;   /* the name (or [address]) the certificate must match for
                     a next hop; NULL for MX hosts (each host's own name) */
    char *ca;     /* CA file to verify against; NULL = the system store */
    const char *ca_opt; /* the option that named ca, for messages */
    char *origin; /* who asked for TLS, for messages: "relay-tls",
                     "relay-map FILE:LINE"; NULL for plain MX routing */
};

/* The policy for relay-host (c->relay_host set): 0 with p filled (free with
 * smtp_tls_policy_free), or -1 with *why malloc'd ("4.4.4 ...": relay-host
 * cannot be parsed). */
int smtp_tls_relay_policy(const struct config *c, struct smtp_tls_policy *p, char **why);
/* The policy for a destination (relay_map.h; its strings are copied). */
struct relay_dest;
void smtp_tls_dest_policy(const struct relay_dest *d, struct smtp_tls_policy *p);
/* The policy for MX hosts: opportunistic. */
void smtp_tls_mx_policy(struct smtp_tls_policy *p);
void smtp_tls_policy_free(struct smtp_tls_policy *p);

/* The process's client TLS state (contexts, the relay host's session). */
struct smtp_tls;
struct smtp_tls *smtp_tls_new(const struct config *c);
void smtp_tls_free(struct smtp_tls *t); /* NULL is fine */

/* One connection's TLS. */
struct smtp_tls_conn;
/* Handshake as a client on the connected non-blocking socket fd within secs
 * seconds.  host: the name the route knows the peer by (checked for MX hosts,
 * and sent as SNI unless it is a [literal]).  With SMTP_TLS_REQUIRE the
 * certificate must verify.  The TLS connection, or NULL with *why malloc'd
 * (printable, no status code: "certificate verification failed: ...",
 * "handshake failed: ..."). */
struct smtp_tls_conn *smtp_tls_start(struct smtp_tls *t, int fd, const struct smtp_tls_policy *p,
                                     const char *host, long secs, char **why);
/* Read up to n bytes: > 0, 0 when the peer closed, -1 with errno EAGAIN (wait
 * for POLLOUT when *want_write, else POLLIN, then call again) or EIO (a TLS
 * error: the connection is unusable). */
ssize_t smtp_tls_read(struct smtp_tls_conn *s, void *p, size_t n, int *want_write);
/* Write up to n bytes: > 0, or -1 as smtp_tls_read (call again with the same
 * bytes after waiting). */
ssize_t smtp_tls_write(struct smtp_tls_conn *s, const void *p, size_t n, int *want_write);
/* "TLSv1.3 cipher TLS_AES_256_GCM_SHA384, certificate verified" (or "not
 * verified: REASON"), plus ", resumed" for a resumed session.  Owned by s. */
const char *smtp_tls_info(const struct smtp_tls_conn *s);
/* Send close_notify (without waiting for the peer's) and free s; NULL is fine. */
void smtp_tls_end(struct smtp_tls_conn *s);

#endif
