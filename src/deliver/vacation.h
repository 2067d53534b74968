/* vacation.h - vacation (out-of-office) replies after mailbox deliveries,
 * following RFC 3834 (postoffice-vacation(5)).
 *
 * Who calls: the queue runner (queue_run.c flush_one), as root, after it has
 * recorded the results of one mailbox's batch.  For a local account the
 * vacation file is ~/.vacation.msg and the record ~/.vacation.db; for a
 * virtual user "name@domain" VHOSTDIR/DOMAIN/vacation/NAME.msg and NAME.db.
 *
 * As root this module only looks up the account, stat()s the file (no file:
 * nothing more happens, no process is made) and starts two children per
 * reply:
 *   - "vacation USER", as the account (virtual users: vuser=; never uid 0, an
 *     account with uid 0 gets no replies): reads the vacation file, the
 *     delivered message's header block (at most VAC_HDR_MAX bytes, through
 *     the locked queue file's inherited descriptor) and the record; applies
 *     vacation_rules.h; composes the reply (vacation_msg.h) and records it
 *     (vacation_db.h); hands the reply back on its report pipe;
 *   - "vacation submit", as user= (the queue owner): runs this program as
 *     sendmail (execv of /proc/self/exe with an argument vector, no shell):
 *     -C the configuration file (unless it is the default one), -odq, -oi, -f "" (the null sender, as RFC 3834
 *     recommends), the original's envelope sender as the one recipient, the reply
 *     on its stdin.  The queue is then triggered (a running daemon delivers it
 *     now; otherwise the next queue run does).
 * Nothing here changes the delivery's result: a missing, unreadable or
 * broken vacation file, a database that cannot be written, a child that fails
 * or a submission refused is logged (with the queue id and the file's name)
 * and the message stays delivered. */
#ifndef PO_VACATION_H
#define PO_VACATION_H

#include <stddef.h>

#include "conf.h"
#include "local.h"

#define VAC_HDR_MAX (256 * 1024)    /* header bytes of the original read */
#define VAC_REPLY_MAX (256 * 1024)  /* bytes of a composed reply */
#define VAC_CHILD_MS 30000L         /* deadline of each child */

/* The replies for the jobs of one mailbox batch that were delivered
 * (res DELIV_OK) and have a sender other than <>.  box: the T_MBOX target
 * (an account name, or "name@domain" for a virtual user).  Never fails. */
void vacation_after_mbox(const struct config *c, const char *box,
                         const struct local_mjob *jobs, size_t n);

#endif
