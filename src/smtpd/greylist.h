/* greylist.h - greylisting in the SMTP session (greylist(7)): a client's
 * first attempt with a sender is refused for a while (451 4.7.1 at RCPT);
 * real mail servers come back, most spam software does not.
 *
 * The session calls grey_mail when MAIL was accepted (the key is decided
 * there) and grey_rcpt for each recipient that passed every other check (the
 * database is consulted once per transaction, at the first such recipient).
 * Runs in the session as user=; the master calls grey_daemon_setup as root.
 * Skipped for clients that may relay (loopback, our addresses, trusted=,
 * localmx, -bs users), authenticated clients and the submission ports.  A
 * database that cannot be used lets mail through (fail open) and is logged
 * once, not per message. */
#ifndef PO_GREYLIST_H
#define PO_GREYLIST_H

#include "conf.h"
#include "policy.h"
#include "util.h"

/* One transaction's greylist state (zeroed = nothing to check). */
struct grey_txn {
    char *key;        /* "LOCALPART@[IP]", the sender (greylist-from), "<>@[IP]" */
    char *full;       /* the full sender address (a manual entry), or NULL */
    long wait;        /* a new entry's wait: delay= times the multiplier */
    int decided;      /* grey_rcpt ran: code below is the verdict */
    int code;         /* 0 or 451 */
    char *why;        /* the verdict's reply text */
};

/* The multiplier of delay= for a new entry: 1; 2 without a reverse DNS name;
 * 4 for the null sender; 5 for both. */
int grey_multiplier(const struct client *cl, const char *sender);

/* MAIL accepted with sender ("" for <>): decide the key, or nothing when the
 * client is exempt (greylist off, relay_ok, submission, auth_user set). */
void grey_mail(struct grey_txn *g, const struct config *c, const struct client *cl,
               int submission, const char *auth_user, const char *sender);

/* A valid recipient: 0 (go on) or 451 with "4.7.1 ..." in why. */
int grey_rcpt(struct grey_txn *g, const struct config *c, struct buf *why);

/* End of the transaction (RSET, new MAIL, after DATA, session end). */
void grey_reset(struct grey_txn *g);

/* The master, at start and after SIGHUP, as root: when greylist is on, make
 * the database for user= if it is missing (grey_db_prepare), and share one
 * "database failing" flag with every session child it forks afterwards, so a
 * broken database is logged once. */
void grey_daemon_setup(const struct config *c);

#endif
