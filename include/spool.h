/* spool.h - the queue directory: enqueue, lock, record results, remove.
 *
 * Layout (postoffice-queue(5)):
 *   QUEUEDIR/df<qid>   message data: the final message text, LF line ends,
 *                      generated headers included (written once, never changed)
 *   QUEUEDIR/cf<qid>   control file (ctl.h); its presence with an end marker is
 *                      what makes a message exist; written last
 *   QUEUEDIR/t*        temporaries of an enqueue in progress or a crashed one
 *   QUEUEDIR/maildrop/ mode 1733: local users' untrusted submissions
 *   QUEUEDIR/trigger   FIFO: one byte wakes the daemon's queue runner
 *
 * Guarantees (DESIGN.md): spool_commit() returns 0 only after the data and
 * control files and the directory are on stable storage; spool_record() makes a
 * recipient's result durable before it returns; a message is locked (fcntl on
 * its control file) by whoever delivers it; every leftover of a crash is either
 * a complete message or a temporary that spool_cleanup() removes. */
#ifndef PO_SPOOL_H
#define PO_SPOOL_H

#include <stddef.h>
#include <sys/types.h>
#include <time.h>

#include "envelope.h"
#include "util.h"

/* ---- enqueue ---- */

struct spool_new; /* a message being written */

/* Start a message in dir (QUEUEDIR, or QUEUEDIR/maildrop for untrusted local
 * submission).  NULL with errno on failure (ENOSPC, EACCES...). */
struct spool_new *spool_new(const char *dir);
const char *spool_new_qid(const struct spool_new *sn);
/* Append message bytes (already in final LF form).  0 or -1 with errno. */
int spool_new_write(struct spool_new *sn, const void *p, size_t n);
/* Bytes written so far. */
long long spool_new_size(const struct spool_new *sn);
/* Write the control file for e (e->qid is set from the spool), fsync data,
 * control and directory.  0 on success (the message is now safe), -1 with errno
 * (and everything of this message removed).  sn is freed either way. */
int spool_commit(struct spool_new *sn, struct envelope *e);
/* Throw the message away (removes its files) and free sn. */
void spool_abort(struct spool_new *sn);

/* ---- the queue ---- */

struct qmsg; /* a locked queued message */

/* Lock and read message qid.  Returns 0 (*out set), 1 if another process holds
 * it, -1 on error (errno; ENOENT if it is gone, EINVAL if the control file is
 * corrupt or incomplete). */
int spool_open(const char *queuedir, const char *qid, struct qmsg **out);
struct envelope *spool_env(struct qmsg *m);
/* Path of the data file (valid while m is open). */
const char *spool_data_path(const struct qmsg *m);
/* Size of the data file in bytes. */
long long spool_data_size(const struct qmsg *m);
/* Durably record recipient i's new state and status (also updates the
 * in-memory envelope).  0 or -1 with errno. */
int spool_record(struct qmsg *m, size_t i, enum rcpt_state st, const char *status,
                 const char *remote_mta);
/* Durably replace the control file with the in-memory envelope as it is now
 * (after expansion added recipients, next_try changed...): temp + fsync + rename. */
int spool_rewrite(struct qmsg *m);
/* Re-read the control file through the locked descriptor (after a child
 * process appended status records to it).  0 or -1 with errno. */
int spool_reload(struct qmsg *m);
/* Remove the message (control file first, then data). */
int spool_remove(struct qmsg *m);
/* Release the lock and free m. */
void spool_close(struct qmsg *m);

/* The queue ids of all complete messages in queuedir, oldest first. */
int spool_list(const char *queuedir, struct strlist *qids);
/* 1 if some process holds the lock on qid, 0 if not, -1 if it is gone. */
int spool_locked(const char *queuedir, const char *qid);
/* Read an envelope without locking (mailq).  0 or -1. */
int spool_peek(const char *queuedir, const char *qid, struct envelope *e,
               long long *size);

/* Remove temporaries older than max_age seconds left by crashed processes, and
 * data files with no control file older than that.  Returns how many were
 * removed. */
int spool_cleanup(const char *queuedir, long max_age);

/* Move every complete submission in QUEUEDIR/maildrop into the queue, taking
 * the sender from the file owner's uid unless that uid is root or listed in
 * trusted (sender then as written).  Appends the new qids to picked (may be NULL).
 * Returns the number picked up, -1 on error. */
int spool_pickup(const char *queuedir, const struct strlist *trusted_users,
                 struct strlist *picked);

/* Create QUEUEDIR, maildrop and trigger with the right owners and modes if
 * missing (owner uid/gid; run as root or as that owner).  0 or -1 with errno. */
int spool_setup(const char *queuedir, uid_t uid, gid_t gid);

/* Wake a running daemon's queue runner (writes to the trigger FIFO without
 * blocking).  0 if a daemon was listening, -1 if none. */
int spool_trigger(const char *queuedir);

/* A fresh unique queue id (time, pid, counter, random): safe as a file name. */
void spool_make_qid(char out[QID_MAX]);

#endif
