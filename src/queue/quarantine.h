/* quarantine.h - held messages: those a mail filter quarantined
 * (SMFIR_QUARANTINE) and those an administrator held (-Mf).  They stay in
 * the queue with ENV_QUARANTINE and the reason (mailq shows both), every
 * queue run and delivery worker passes them by, and the administrator
 * releases one with "postoffice -bQ QID" or "-Mt QID" (postoffice(8)).
 * A held message still expires (qreturn=) when the queue runner looks at it
 * after its release.
 *
 * Called by the command line (main.c, -bQ, -Mf, -Mt) as root or the queue
 * owner. */
#ifndef PO_QUARANTINE_H
#define PO_QUARANTINE_H

#include "conf.h"

/* Release message qid: the mark and the reason go (the queue file is
 * rewritten durably, spool_rewrite), and the daemon's queue runner is woken.
 * 0; 1 if the message is not quarantined; -1 with errno (ENOENT: no such
 * message, EBUSY: being delivered, EACCES: not root or the queue owner). */
int quar_release(const struct config *c, const char *qid);

/* Hold message qid (-Mf): mark it with reason, durably.  0; 1 if it is held
 * already; -1 with errno as quar_release. */
int quar_hold(const struct config *c, const char *qid, const char *reason);

#endif
