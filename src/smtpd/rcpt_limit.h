/* rcpt_limit.h - the mailbox limit at RCPT (postoffice.cf(5)
 * mailbox-limit=): a client that declared the message's size (MAIL ...
 * SIZE=) is told at once, 552 5.2.2, that it will not fit.
 *
 * Who calls: the SMTP session (session.c), as user=.  Only what can be known
 * cheaply and without privileges counts: a local account's own mbox (no
 * alias, no .forward) whose size stat() shows; for anything else - a
 * maildir (its count is the owner's), a virtual user (its spool is vuser's),
 * an alias, a .forward, an LMTP mailbox, a limits file unreadable now - the
 * recipient is accepted here and the limit is checked at delivery. */
#ifndef PO_RCPT_LIMIT_H
#define PO_RCPT_LIMIT_H

#include "conf.h"
#include "util.h"

/* 0 accept (as far as the limit goes), or 552 with why set to
 * "5.2.2 <addr>: ..." for a message of size bytes (0 = not declared: 0). */
int rlimit_rcpt(const struct config *c, const char *addr, long long size, struct buf *why);

#endif
