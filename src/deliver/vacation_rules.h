/* vacation_rules.h - when a vacation reply must not be sent (RFC 3834 and
 * vacation(1)'s rules): pure functions, no I/O, no clock.
 *
 * Who calls: the vacation child (vacation.c), running as the user whose
 * vacation file asked for replies (never root), with the header block of the
 * message just delivered.  The header text is untrusted: every field is read
 * within the len given, nothing is modified.
 *
 * Rules, in this order (postoffice-vacation(5)); the first that matches
 * says no:
 *   - the envelope sender is <> (a bounce or other notification);
 *   - Auto-Submitted: with any value but "no" (comments and parameters
 *     ignored);
 *   - X-Auto-Response-Suppress: naming OOF or All (Microsoft's field);
 *   - Precedence: bulk, list or junk;
 *   - X-Spam: (postoffice's own mark of spam=accept, verdict.h, any
 *     value) or X-Spam-Flag: YES (SpamAssassin's): no replies to spam;
 *   - any List-* field (List-Id, List-Unsubscribe, List-Post, ...: RFC 2369,
 *     RFC 2919);
 *   - the sender is one of the user's own addresses;
 *   - the sender's local part is MAILER-DAEMON, mailer, postmaster, uucp,
 *     listserv, majordomo, or begins with owner- or ends in -request, -owner,
 *     -bounces, -relay (lists' and daemons' return addresses);
 *   - none of the user's addresses is in a To: or Cc: field (so not a list,
 *     a Bcc or a forward from elsewhere), when check_to is set.
 * Addresses are compared without regard to case. */
#ifndef PO_VACATION_RULES_H
#define PO_VACATION_RULES_H

#include <stddef.h>

#include "util.h"

/* May a vacation reply answer this message?  sender: the envelope sender,
 * canonical ("" = <>); hdrs/len: the message's header block (LF lines; the
 * blank line after it may follow and ends the scan); self: the user's own
 * addresses (the address the message was delivered to, the account's, the
 * file's aliases).  Returns 1 (reply), or 0 with *why set to a static text
 * naming the rule ("the sender is <>", "Precedence: bulk", ...). */
int vac_rules_check(const char *sender, const char *hdrs, size_t len,
                    const struct strlist *self, int check_to, const char **why);

/* Is local (a local part, unquoted) one of the daemon and list senders named
 * above?  1 or 0. */
int vac_rules_robot(const char *local);

#endif
