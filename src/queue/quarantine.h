/* quarantine.h - messages a mail filter quarantined (SMFIR_QUARANTINE): they
 * stay in the queue with ENV_QUARANTINE and the filter's reason (mailq shows
 * both), every queue run and delivery worker passes them by, and the
 * administrator releases one with "postoffice -bQ QID" (postoffice(8)).
 *
 * Called by the command line (main.c, -bQ) as root or the queue owner. */
#ifndef PO_QUARANTINE_H
#define PO_QUARANTINE_H

#include "conf.h"

/* Release message qid: the mark and the reason go (the queue file is
 * rewritten durably, spool_rewrite), and the daemon's queue runner is woken.
 * 0; 1 if the message is not quarantined; -1 with errno (ENOENT: no such
 * message, EBUSY: being delivered, EACCES: not root or the queue owner). */
int quar_release(const struct config *c, const char *qid);

#endif
