/* tls_server.h - the SMTP server's TLS contexts: certificates, protocol and
 * cipher settings, the certificate per virtual domain (SNI), and the session
 * ticket keys that let a client resume its TLS session.
 *
 * Used by the TLS proxy alone (tls_proxy.h): it builds the contexts with
 * tls_server_new as root (a key may be readable by root alone), becomes
 * user=, and then makes an SSL per connection (tls_server_ssl).  The master
 * and the session children never call OpenSSL.
 *
 * Files: tls-cert=/tls-key= pairs, matched by position (one RSA and one ECDSA
 * pair may both be given: OpenSSL offers each client the one it supports);
 * VHOSTDIR/DOMAIN/tls.crt + tls.key for a virtual domain's own certificate,
 * chosen when the client's server name (SNI) is DOMAIN or a name under it.
 * See postoffice.cf(5), "TLS".
 *
 * Ticket keys: made by the master (tls_proxy_rotate), a new one every
 * TLS_TICKET_ROTATE seconds; tickets sealed with the newest key, and those
 * of the one before it still accepted (and renewed) until the older key is
 * 2 * TLS_TICKET_ROTATE old.  The proxy is given them (tls_server_set_keys),
 * so a proxy started on SIGHUP keeps every ticket valid. */
#ifndef PO_TLS_SERVER_H
#define PO_TLS_SERVER_H

#include <time.h>

#include <openssl/ssl.h>

#include "conf.h"

#define TLS_TICKET_ROTATE (12 * 3600)
#define TLS_TICKET_NAME 16
#define TLS_TICKET_AES 32
#define TLS_TICKET_HMAC 32

struct tls_ticket_key {
    unsigned char name[TLS_TICKET_NAME], aes[TLS_TICKET_AES], hmac[TLS_TICKET_HMAC];
    time_t made;
};

/* k[0] seals new tickets; k[1] (the one before) still opens them. */
struct tls_ticket_keys {
    struct tls_ticket_key k[2];
    int n;
};

struct tls_server;

/* Build the contexts from c (the proxy, as root).  Returns the server;
 * NULL with *err NULL when c sets no tls-cert= (no TLS); NULL with *err set
 * (malloc'd: the option or file, and why: OpenSSL's reason) on any error: a
 * file missing or unreadable, a key that does not match its certificate,
 * tls-cert= and tls-key= counts that differ, a bad tls-protocols=,
 * tls-ciphers= or tls-ciphersuites=, a domain's tls.crt without tls.key.
 * No tickets are issued until tls_server_set_keys. */
struct tls_server *tls_server_new(const struct config *c, char **err);

/* Use these ticket keys from now on (copied). */
void tls_server_set_keys(struct tls_server *t, const struct tls_ticket_keys *k);

void tls_server_free(struct tls_server *t);

/* Number of virtual domains with their own certificate (for the log). */
size_t tls_server_domains(const struct tls_server *t);

/* The proxy: a server-side SSL for socket fd, or NULL (*err malloc'd). */
SSL *tls_server_ssl(struct tls_server *t, int fd, char **err);

/* "TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)" of an
 * established connection, for Received: and the log (malloc'd). */
char *tls_describe(const SSL *ssl);

/* OpenSSL's error queue as one line (malloc'd; the queue is emptied), or
 * fallback when the queue holds nothing. */
char *tls_errors(const char *fallback);

#endif
