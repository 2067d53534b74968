/* smtp_auth.h - SMTP AUTH as a client (RFC 4954) on a connection to the relay
 * host: PLAIN (RFC 4616, with the initial response) when the server offers
 * it, else LOGIN (the "Username:"/"Password:" challenges, answered in order).
 *
 * Only over TLS, unless relay-auth-plaintext is set.  A refusal (535 and every
 * other non-2xx answer) ends the attempt: the mail is deferred with the
 * server's reply (never bounced: a wrong password is the administrator's to
 * fix, and the message then bounces after qreturn= like any deferral), and no
 * other address of the relay is tried with the same password (a provider may
 * lock an account after repeated failures).  The credentials appear in no log
 * line, status or transcript (the transcript shows "AUTH PLAIN (credentials)").
 *
 * Called by the batch (smtp_client.c) in the remote-delivery process, as the
 * unprivileged user=, with credentials its privileged parent read
 * (relay_auth.h). */
#ifndef PO_SMTP_AUTH_H
#define PO_SMTP_AUTH_H

#include "relay_auth.h"
#include "smtp_conn.h"

/* Authenticate on k (EHLO done, extensions known) as cr says.  0 when
 * authenticated, or when the server offers no AUTH at all (it may accept us
 * without: the log says so).  -1 with k->err and the connection closed (QUIT
 * sent when it still answers); k->final when no other address should be tried:
 *   4.7.0 no mechanism in common, or AUTH refused without TLS
 *   4.7.8 (or the server's 4.x.x) the server refused the credentials
 *   4.3.5 the relay-auth file is unusable (cr->err) */
int smtp_auth(struct smtp_conn *k, const struct relay_cred *cr);

/* base64 of n bytes of p (RFC 4648, no line breaks), malloc'd. */
char *smtp_auth_b64(const char *p, size_t n);

#endif
