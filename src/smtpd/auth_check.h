/* auth_check.h - who may authenticate with SMTP AUTH, and is the password
 * right (RFC 4954; postoffice-smtpd(8) "AUTH").
 *
 *   user@DOMAIN, DOMAIN an active virtual domain (vdomain.h): the line of user
 *     in VHOSTDIR/DOMAIN/passwd, its hash checked with pwhash.h.  A hash in a
 *     format we do not take (plaintext, {SHA}) is refused and logged with the
 *     file and line.
 *   user, or user@one of our names (route_is_local_domain): a local account,
 *     only with auth-local=yes (the default when configure got
 *     --with-auth=passwd): PAM service "smtp" when built --with-pam, else the
 *     shadow entry (getspnam; the passwd field without one), expired accounts
 *     refused.  Root (uid 0) never authenticates.
 *   anything else: no.
 *
 * ROOT: runs only in the AUTH helper's checker child (auth_helper.h), as root,
 * because /etc/shadow and PAM need it; the names it gets come from the
 * network through the session child and are used only as lookup keys. */
#ifndef PO_AUTH_CHECK_H
#define PO_AUTH_CHECK_H

#include "conf.h"

enum auth_verdict {
    AUTH_NO = 0,   /* wrong password, unknown user, not allowed */
    AUTH_YES = 1,  /* the password is right */
    AUTH_TEMP = 2  /* cannot tell now (a file unreadable, PAM unavailable) */
};

/* Check user and password (client: the client's address, for PAM_RHOST and
 * logs; may be ""). */
enum auth_verdict auth_check(const struct config *c, const char *user, const char *pass,
                             const char *client);

#endif
