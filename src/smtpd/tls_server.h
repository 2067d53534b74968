/* tls_server.h - the SMTP server's TLS contexts: certificates, protocol and
 * cipher settings, the certificate per virtual domain (SNI), and the session
 * ticket keys that let a client resume its TLS session in another session
 * child.
 *
 * Who calls what, as which uid:
 *  - The master (ROOT) builds everything with tls_server_new before it forks
 *    any session child, at start (listener_open) and again on SIGHUP
 *    (listener_reload).  Key files are read there, as root: a key may be
 *    readable by root alone.  The session children inherit the contexts
 *    through fork() and never open a certificate or key file themselves.
 *  - The master calls tls_server_rotate before it hands out a connection:
 *    a new ticket key every TLS_TICKET_ROTATE seconds.
 *  - A session child (user=) calls tls_server_ssl for its connection; the
 *    handshake itself runs in smtpd_io.h (io_tls_accept).  Every other child
 *    of the master frees the contexts at its start (listener_close_in_child),
 *    so only the master and the sessions hold the private keys.
 *
 * Files: tls-cert=/tls-key= pairs, matched by position (one RSA and one ECDSA
 * pair may both be given: OpenSSL offers each client the one it supports);
 * VHOSTDIR/DOMAIN/tls.crt + tls.key for a virtual domain's own certificate,
 * chosen when the client's server name (SNI) is DOMAIN or a name under it.
 * See postoffice.cf(5), "TLS".
 *
 * Ticket keys: made with RAND_bytes by the master, a new one every
 * TLS_TICKET_ROTATE seconds; tickets sealed with the newest key, and those
 * of the one before it still accepted (and renewed) until the older key is
 * 2 * TLS_TICKET_ROTATE old.  They live outside the contexts, so a SIGHUP
 * (which rebuilds the contexts) keeps every ticket valid. */
#ifndef PO_TLS_SERVER_H
#define PO_TLS_SERVER_H

#include <time.h>

#include <openssl/ssl.h>

#include "conf.h"

#define TLS_TICKET_ROTATE (12 * 3600)

struct tls_server;

/* Build the contexts from c (master, root).  prev: the running server on
 * SIGHUP, whose ticket keys the new one takes over on success (prev is then
 * still to be freed by the caller), or NULL at start.  Returns the server;
 * NULL with *err NULL when c sets no tls-cert= (no TLS); NULL with *err set
 * (malloc'd: the option or file, and why: OpenSSL's reason) on any error: a
 * file missing or unreadable, a key that does not match its certificate,
 * tls-cert= and tls-key= counts that differ, a bad tls-protocols=,
 * tls-ciphers= or tls-ciphersuites=, a domain's tls.crt without tls.key. */
struct tls_server *tls_server_new(const struct config *c, struct tls_server *prev, char **err);

void tls_server_free(struct tls_server *t);

/* Number of virtual domains with their own certificate (for the log). */
size_t tls_server_domains(const struct tls_server *t);

/* Master: make a new ticket key when the newest is TLS_TICKET_ROTATE old.
 * Returns 1 when it did (the caller replaces a waiting spare, which holds
 * the old keys only), 0 otherwise, -1 when RAND_bytes failed (the old key
 * stays in use and is tried again next time). */
int tls_server_rotate(struct tls_server *t, time_t now);

/* Session child: a server-side SSL for socket fd, or NULL (*err malloc'd). */
SSL *tls_server_ssl(struct tls_server *t, int fd, char **err);

/* "TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)" of an
 * established connection, for Received: and the log (malloc'd). */
char *tls_describe(const SSL *ssl);

/* OpenSSL's error queue as one line (malloc'd; the queue is emptied), or
 * fallback when the queue holds nothing. */
char *tls_errors(const char *fallback);

#endif
