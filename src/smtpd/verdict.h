/* verdict.h - the one place the forbidden= and spam= actions are applied.
 *
 * Two kinds of verdict reach the SMTP server:
 *   VERDICT_FORBIDDEN  the client is refused by tcp wrappers, paranoid or a
 *                      DNSBL (forbidden=, old name blacklist=); decided once,
 *                      at connect time
 *   VERDICT_SPAM       a message is flagged by the av= program (av_scan.h) or
 *                      by a milter; decided at the end of DATA, before the 250
 * Each takes the action its option names (postoffice.cf(5)):
 *   bounce[:why]   refuse: the client at connect (554 5.7.1, only QUIT served),
 *                  the message at the end of DATA (554 5.7.1); "why" replaces
 *                  the diagnostic in the reply when it is set
 *   accept         take it, with an "X-Spam: DIAGNOSTIC" header on the message
 *                  (an X-Spam header the message already has is kept too)
 *   folder:PATH    as accept, and each recipient that is a local account (not
 *                  root, not a virtual user) gets its copy in that account's
 *                  folder instead of its mailbox: "~/PATH" in the home
 *                  directory, or MAILSPOOL/USER:PATH for a PATH without '/';
 *                  remote recipients and aliases are delivered as with accept
 *
 * Runs in the session child (user=) or -bs as the invoking user; pure
 * decisions apart from the account lookup (getpwnam) for folder targets.
 *
 * For the milter helper: a filter's "reject the message" outcome at the end
 * of DATA goes through session.c's data_flagged(s, d, filter_text), as the
 * av= path does: it calls verdict_message(c, VERDICT_SPAM, ...), inserts the
 * header lines after our Received: (spool_new_insert) and returns the reply
 * code (0: queue the message and answer 250; else reply with s->why).  A
 * milter rejection at connect (HELO/MAIL/RCPT) uses verdict_refuses and
 * verdict_refusal the way check_client does for forbidden=. */
#ifndef PO_VERDICT_H
#define PO_VERDICT_H

#include "conf.h"
#include "envelope.h"
#include "util.h"

enum verdict_kind { VERDICT_FORBIDDEN, VERDICT_SPAM };

#define VERDICT_DIAG_MAX 400

/* The configured action of kind. */
const struct action *verdict_action(const struct config *c, enum verdict_kind kind);

/* Does kind's action refuse (bounce)?  1 or 0. */
int verdict_refuses(const struct config *c, enum verdict_kind kind);

/* diag (a program's output, a DNS TXT record) made one line of printable
 * ASCII: line breaks and control characters become spaces, 8-bit bytes \xHH,
 * at most VERDICT_DIAG_MAX bytes of input, trimmed ("flagged" if nothing is
 * left).  malloc'd. */
char *verdict_diag(const char *diag);

/* The refusal text for kind: bounce:WHY when set, else diag.  malloc'd. */
char *verdict_refusal(const struct config *c, enum verdict_kind kind, const char *diag);

/* Append the marking header for diag ("X-Spam: DIAGNOSTIC\n", control
 * characters made spaces, at most VERDICT_DIAG_MAX bytes of diagnostic) to hdr. */
void verdict_header(const char *diag, struct buf *hdr);

/* folder: where a marked message for recipient addr goes instead of its
 * mailbox.  Returns the malloc'd "/path" target and *owner (the account it is
 * delivered as), or NULL when addr keeps its normal delivery (the action is
 * not folder, or addr is not a local account other than root). */
char *verdict_folder(const struct config *c, enum verdict_kind kind, const char *addr,
                     char **owner);

/* Apply kind's action to the message being accepted (envelope env, the
 * header lines hdr that will be put in front of it).  bounce: returns 554 with
 * "5.7.1 TEXT" in why and changes nothing.  accept: appends the X-Spam header
 * to hdr, returns 0.  folder: the same, and every recipient verdict_folder
 * names is replaced by its folder target (duplicates dropped).  diag is the
 * reason (program output, filter text, DNSBL reason), already bounded. */
int verdict_message(const struct config *c, enum verdict_kind kind, const char *diag,
                    struct envelope *env, struct buf *hdr, struct buf *why);

#endif
