/* smtpd_auth.h - the SMTP server's side of AUTH (RFC 4954): the dialogue
 * after "AUTH MECH [initial-response]", the answer from the privileged
 * helper (auth_helper.h), the delays and the limit on failures, the log
 * lines; and the sender check for authenticated submissions.
 *
 * Mechanisms PLAIN and LOGIN (sasl.h).  Replies (the session has checked
 * that AUTH may be given now):
 *   235 2.7.0 success              334 a challenge (LOGIN: exactly
 *   501 5.7.0 cancelled by "*"         "Username:"/"Password:" in base64;
 *   501 5.5.2 bad base64 or syntax     PLAIN: an empty challenge)
 *   504 5.5.4 unknown mechanism    500 5.5.6 response line over 12288 bytes
 *   535 5.7.8 wrong user name or password, after a delay of 1, 2, 4, 8, 16,
 *             16... seconds for the session's 1st, 2nd, 3rd... failure
 *   421 4.7.0 the failure that reaches auth-failures=, then the session ends
 *   454 4.7.0 the helper cannot tell now
 * Every attempt is logged with the client's address and the (sanitised) user
 * name, never the password.
 *
 * Runs in the session child (user=); the password is wiped from memory once
 * asked. */
#ifndef PO_SMTPD_AUTH_H
#define PO_SMTPD_AUTH_H

#include "conf.h"
#include "smtpd_io.h"

struct sauth {
    const struct config *c;
    struct smtpio *io;
    int helper_fd;       /* auth_helper.h socket */
    const char *client;  /* the client's address for logs ("" for -bs) */
    const char *client_name; /* its verified name for logs, or NULL */
    int failures;        /* failed attempts in this session so far */
};

/* Run one AUTH command (arg: what followed "AUTH ").  Returns the code of the
 * last reply sent; on success *user is the authenticated name (malloc'd),
 * else NULL; *closing is set when the session must end now (421 sent, or the
 * client went away or timed out during the dialogue). */
int sauth_run(struct sauth *a, const char *arg, char **user, int *closing);

/* auth-sender-check: may the client logged in as login use sender as its
 * MAIL FROM?  The null sender and the login itself (any case) always; for a
 * login without a domain (a local account) also login@any of our names.  1
 * or 0. */
int sauth_sender_ok(const struct config *c, const char *login, const char *sender);

/* MAIL's AUTH= parameter (RFC 4954 5): 0 when value is valid xtext holding
 * "<>" or an address, else -1.  The value is not kept (see postoffice-smtpd(8)). */
int sauth_mail_param(const char *value);

#endif
