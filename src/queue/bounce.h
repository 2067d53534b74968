/* bounce.h - delivery status notifications (RFC 3464) and delay notices.
 *
 * A bounce goes from <> to the envelope sender.  The bounce of a bounce goes
 * to the postmaster (ENV_DOUBLE); a double bounce that fails is never
 * bounced again (no loop) and never dropped: it is held in the queue (its
 * recipients pending, status BOUNCE_HELD), retried on the back-off schedule
 * without expiring, and each failure logged at LOG_CRIT.  Format and rules:
 * postoffice-bounce(7). */
#ifndef PO_BOUNCE_H
#define PO_BOUNCE_H

#include "conf.h"
#include "spool.h"

/* The whole original message is returned (message/rfc822) only up to this
 * size; a larger one, or one sent with RET=HDRS, is returned as its header
 * block (text/rfc822-headers), itself cut at a line end after BOUNCE_HDRS_MAX
 * bytes.  This also bounds the memory a bounce takes. */
#define BOUNCE_FULL_MAX (1024L * 1024L)
#define BOUNCE_HDRS_MAX (256L * 1024L)

/* The mark in the status of a held double bounce's recipients (mailq shows it). */
#define BOUNCE_HELD "held: undeliverable bounce"

/* Queue one DSN covering every RS_FAILED recipient of m (delay=0), then mark
 * them RS_BOUNCED with spool_record; or a one-time "delayed" notice for the
 * pending recipients (delay=1; sets ENV_WARNED).  Returns the new message's qid
 * in newqid (may be NULL), 0 on success, 1 if nothing was owed or it was a
 * failed double bounce (its failed recipients are RS_PENDING again, held),
 * -1 on error (errno). */
int bounce_queue(const struct config *c, struct qmsg *m, int delay, char newqid[QID_MAX]);

/* Compose the DSN text (for tests): the whole message (headers + MIME parts,
 * LF line ends) into out.  data: the original message (message_out.h; NULL or fd
 * -1: not available).  Returns 0, or 1
 * (out unchanged) when no recipient is to be reported.  An unreadable original
 * is not an error: the report says so and has no third part. */
int bounce_compose(const struct config *c, const struct envelope *e,
                   const struct msgdata *data, int delay, struct buf *out);

/* Is a report owed for r: RS_FAILED (delay=0) or RS_PENDING (delay=1)? */
int bounce_owed(const struct rcpt *r, int delay);
/* Does r's DSN NOTIFY ask for such a report?  NEVER: no; default (0): failures
 * and delays; otherwise only the kinds listed (FAILURE, DELAY). */
int bounce_wanted(const struct rcpt *r, int delay);

/* The "queued" line (postoffice-log(5)) of a message we made ourselves
 * from <> (a report, a vacation reply: proto), its text[len]; orig_qid (may
 * be NULL) the message it answers. */
void bounce_log_queued(const char *qid, const char *text, size_t len, const char *proto,
                       const char *orig_qid);
#endif
