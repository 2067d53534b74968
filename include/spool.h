/* spool.h - the queue directory: enqueue, lock, record results, remove.
 * (spool_pickup() is implemented in src/pickup.c.)
 *
 * Layout (postoffice-queue(5)):
 *   QUEUEDIR/df<qid>   message data: the final message text, LF line ends,
 *                      generated headers included (written once, never changed)
 *   QUEUEDIR/cf<qid>   control file (ctl.h); its presence with an end marker is
 *                      what makes a message exist; written last
 *   QUEUEDIR/td<qid>, tc<qid>  temporaries (data, control) of an enqueue or
 *                      rewrite in progress, or of a crashed one
 *   QUEUEDIR/maildrop/ mode 3733 (sticky, setgid: files get the queue group and
 *                      are created 0640): local users' untrusted submissions
 *   QUEUEDIR/trigger   FIFO (0622): one byte wakes the daemon's queue runner
 * QUEUEDIR itself is 0711 so users can reach maildrop/ and trigger.
 *
 * Guarantees (DESIGN.md): spool_commit() returns 0 only after the data and
 * control files and the directory are on stable storage; spool_record() makes a
 * recipient's result durable before it returns; a message is locked (fcntl on
 * its control file) by whoever delivers it; every leftover of a crash is either
 * a complete message or a temporary that spool_cleanup() removes.
 *
 * Cost: an enqueue does 2 synchronous flushes (syncfs for data and control,
 * fsync directory), a result 1 (fdatasync), a rewrite 2 (fsync, fsync dir).
 *
 * fcntl locks belong to the process and vanish when it closes ANY descriptor
 * of the file: a process holding a message open must not spool_open,
 * spool_peek or spool_locked that same qid again (or otherwise open its
 * cf file).  Forked children do not hold the lock but may spool_record()
 * through the inherited qmsg (each record is one O_APPEND write); the parent
 * then spool_reload()s. */
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
 * (and everything of this message removed; e->qid cleared).  sn is freed
 * either way.  A failed spool_new_write already removed the data temp (disk
 * full leaves nothing behind); spool_abort or spool_commit still frees sn. */
int spool_commit(struct spool_new *sn, struct envelope *e);
/* Throw the message away (removes its files) and free sn. */
void spool_abort(struct spool_new *sn);

/* ---- the queue ---- */

struct qmsg; /* a locked queued message */

/* Lock and read message qid.  Returns 0 (*out set), 1 if another process holds
 * it, -1 on error (errno; ENOENT if it is gone, EINVAL if qid is malformed, the
 * control file is corrupt or incomplete, or the data file is missing).  Cuts off
 * an interrupted status append; finishes a data rename a crash interrupted. */
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
 * (after expansion added recipients, next_try changed...): temp + fsync + rename
 * + directory fsync.  The new file is locked before it is renamed into place, so
 * the message stays locked throughout; spool_open re-checks the inode it locked
 * against the name, so nobody works on the replaced file.  Only when no child
 * is delivering this message: children append to the old inode. */
int spool_rewrite(struct qmsg *m);
/* Lazy recording, for a caller that knows what follows a batch of results:
 * with it on, spool_record appends without syncing; spool_sync makes the
 * appended records durable (a no-op when there are none), spool_remove makes
 * them moot, spool_close syncs what is left.  The caller must spool_sync
 * before it delivers anything else for this message (guarantee 3). */
void spool_set_lazy(struct qmsg *m, int on);
int spool_sync(struct qmsg *m);
/* Re-read the control file through the locked descriptor (after a child
 * process appended status records to it).  0 or -1 with errno (m unchanged). */
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

/* Bytes available to unprivileged users on the queue's file system (for
 * minfree=), or -1 with errno. */
long long spool_free_bytes(const char *queuedir);

/* Remove temporaries older than max_age seconds left by crashed processes, and
 * data files with no control file older than that (age: the later of mtime and
 * ctime; max_age 0 removes all), in QUEUEDIR and maildrop/ (there also control
 * files without end marker).  Finishes interrupted data renames of committed
 * messages.  Returns how many were removed, -1 if QUEUEDIR can't be read. */
int spool_cleanup(const char *queuedir, long max_age);

/* Move every complete submission in QUEUEDIR/maildrop into the queue, taking
 * the sender from the file owner's uid unless that uid is root or listed in
 * trusted (sender then as written).  Appends the new qids to picked (may be NULL).
 * Returns the number picked up, -1 on error.
 * Run it as the queue owner, NEVER as root: it parses users' files.  The sender
 * stored for an untrusted user is the bare login name (the caller qualifies it);
 * local_user is always the login.  Only recipients (plain addresses: a leading
 * '|' or '/' refuses the submission), NOTIFY, ENVID and the 8BITMIME/SMTPUTF8/
 * RET=HDRS flags are taken from the file.  Refused submissions (owners differ,
 * malformed, program/file recipient, uid without account) are logged and
 * removed; incomplete ones are left for spool_cleanup. */
int spool_pickup(const char *queuedir, const struct strlist *trusted_users,
                 struct strlist *picked);

/* Create QUEUEDIR (0711), maildrop (3733) and trigger (FIFO 0622) owned by
 * uid/gid if missing (run as root or as that owner); existing ones owned by uid
 * get those modes, others are left alone.  0 or -1 with errno (ENOTDIR/EEXIST:
 * something else has the name). */
int spool_setup(const char *queuedir, uid_t uid, gid_t gid);

/* Wake a running daemon's queue runner (writes to the trigger FIFO without
 * blocking).  0 if a daemon was listening, -1 if none (errno ENXIO) or no FIFO. */
int spool_trigger(const char *queuedir);

/* Is s a well-formed queue id (1..QID_MAX-1 characters of [0-9A-Za-z])? */
int spool_valid_qid(const char *s);

/* A fresh unique queue id (time, pid, counter, random): safe as a file name. */
void spool_make_qid(char out[QID_MAX]);

#endif
