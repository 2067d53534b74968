/* queue_tools.h - the admin's queue commands, in the spellings sendmail and
 * Exim taught: deliver chosen messages now (-M QID..., -qI/-qR/-qS SUBSTR)
 * and remove messages (-Mrm QID...).
 *
 * Called by main as the invoking user, who must be root or the queue owner
 * (user=): anyone else gets EX_NOPERM before anything is read.  A removal
 * locks the message first (one being delivered is reported busy, never cut
 * from under its delivery) and logs one line naming who removed it.  Returns
 * 0, or a sysexits code: EX_NOINPUT when a named message is not queued,
 * EX_TEMPFAIL when one is busy, EX_USAGE for a malformed id. */
#ifndef PO_QUEUE_TOOLS_H
#define PO_QUEUE_TOOLS_H

#include "conf.h"
#include "util.h"

/* Which messages a -q run takes: by queue id, recipient or sender substring
 * (any case). */
enum qsel_kind { QSEL_ID = 'I', QSEL_RCPT = 'R', QSEL_SENDER = 'S' };

/* -M: deliver the messages qids now, whatever their back-off says. */
int qtool_deliver(const struct config *c, const struct strlist *qids, int verbose);

/* -qI/-qR/-qS: deliver now the messages whose id, a recipient, or the sender
 * contains substr. */
int qtool_deliver_matching(const struct config *c, enum qsel_kind kind, const char *substr,
                           int verbose);

/* -Mrm: remove the messages qids from the queue, with a log line each. */
int qtool_remove(const struct config *c, const struct strlist *qids);

#endif
