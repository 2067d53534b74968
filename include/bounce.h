/* bounce.h - delivery status notifications (RFC 3464) and delay notices.
 *
 * A bounce goes from <> to the envelope sender.  The bounce of a bounce goes
 * to the postmaster (ENV_DOUBLE); a double bounce that fails is logged and
 * dropped: never a loop. */
#ifndef PO_BOUNCE_H
#define PO_BOUNCE_H

#include "conf.h"
#include "spool.h"

/* Queue one DSN covering every RS_FAILED recipient of m (delay=0), then mark
 * them RS_BOUNCED with spool_record; or a one-time "delayed" notice for the
 * pending recipients (delay=1; sets ENV_WARNED).  Returns the new message's qid
 * in newqid (may be NULL), 0 on success, 1 if nothing was owed (or it was a
 * failed double bounce, logged and dropped), -1 on error (errno). */
int bounce_queue(const struct config *c, struct qmsg *m, int delay, char newqid[QID_MAX]);

/* Compose the DSN text (for tests): the whole message (headers + MIME parts,
 * LF line ends) into out.  datapath: the original message. */
int bounce_compose(const struct config *c, const struct envelope *e,
                   const char *datapath, int delay, struct buf *out);

#endif
