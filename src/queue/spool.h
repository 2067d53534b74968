/* spool.h - the queue directory: enqueue, lock, record results, remove.
 *
 * Layout (postoffice-queue(5)):
 *   QUEUEDIR/qf<qid>   the message: one file holding a fixed-width header with
 *                      the data length, the data (the final message text, LF
 *                      line ends, generated headers included; never changed),
 *                      the control records (queue_records.h), an end line with a checksum
 *                      of all before it (queue_file.h), then appended status records
 *   QUEUEDIR/tf<qid>   temporary of an enqueue or rewrite in progress (locked
 *                      by its writer), or of a crashed one
 *   QUEUEDIR/xf<qid>   a torn queue file set aside by spool_cleanup (a system
 *                      crash during an enqueue that was never acknowledged);
 *                      kept for the admin, never delivered; xf<qid>.N when
 *                      that name is taken (never overwritten); also
 *                      xfcm<id>/xfdm<id>: a malformed original message
 *   QUEUEDIR/cm<id>, dm<id>  a message of the original postoffice (orig_queue.h),
 *                      converted by spool_cleanup
 *   QUEUEDIR/maildrop/ mode 3733 (sticky, setgid: files get the queue group and
 *                      are created 0640): local users' untrusted submissions,
 *                      same qf/tf format
 *   QUEUEDIR/trigger   FIFO (0622): one byte wakes the daemon's queue runner
 * QUEUEDIR itself is 0711 so users can reach maildrop/ and trigger.
 * df<qid>/cf<qid> pairs of the old two-file format and the original
 * postoffice's cm<id>/dm<id> pairs are converted by spool_cleanup.
 *
 * Guarantees: spool_commit() returns 0 only after the queue file
 * and its name are on stable storage; spool_record() makes a recipient's
 * result durable before it returns (a deferral recorded lazily and a retry
 * record excepted: lost, they cost one extra attempt); a message is locked (fcntl on its queue
 * file) by whoever delivers it; every leftover of a crash is a complete
 * message, a temporary that spool_cleanup() removes, or a torn queue file of
 * an unacknowledged enqueue that it sets aside.
 *
 * Cost: an enqueue does 2 synchronous flushes that cost one journal commit
 * (rename, fsync file, fsync directory), a result 1 (fdatasync), a rewrite 2
 * (fsync, fsync dir) and a copy of the data; a deferral in a remote worker
 * and the retry record (spool_retry) none.
 *
 * fcntl locks belong to the process and vanish when it closes ANY descriptor
 * of the file: a process holding a message open must not spool_open,
 * spool_peek, spool_locked, spool_list or spool_cleanup while it does (they
 * open queue files by name), and reads the data only through spool_data().
 * Forked children do not hold the lock but may spool_record() through the
 * inherited qmsg (each record is one O_APPEND write) and read spool_data();
 * the parent then spool_reload()s. */
#ifndef PO_SPOOL_H
#define PO_SPOOL_H

#include <stddef.h>
#include <sys/types.h>
#include <time.h>

#include "conf.h"
#include "envelope.h"
#include "message_out.h"
#include "util.h"

/* ---- enqueue ---- */

struct spool_new; /* a message being written */

/* Start a message in dir (QUEUEDIR, or QUEUEDIR/maildrop for untrusted local
 * submission).  NULL with errno on failure (ENOSPC, EACCES...). */
struct spool_new *spool_new(const char *dir);
const char *spool_new_qid(const struct spool_new *sn);
/* Append message bytes (already in final LF form).  0 or -1 with errno. */
int spool_new_write(struct spool_new *sn, const void *p, size_t n);
/* Write e's control records (e->qid is set from the spool) and the header,
 * rename the temporary to qf<qid>, fsync it and the directory.  0 on success (the message is now safe), -1 with errno
 * (and everything of this message removed; e->qid cleared).  sn is freed
 * either way.  A failed spool_new_write already removed the data temp (disk
 * full leaves nothing behind); spool_abort or spool_commit still frees sn. */
int spool_commit(struct spool_new *sn, struct envelope *e);
/* The data written so far (fd, offset, length), for a reader before the
 * commit (the av= scanner): read with pread, never close the descriptor. */
struct msgdata spool_new_data(const struct spool_new *sn);
/* Insert n bytes at data offset at (header lines a verdict adds after our
 * trace header), moving what follows.  Costs a copy of the rest of the data;
 * for the rare flagged message only.  0, or -1 with errno (sn then failed as
 * after a failed spool_new_write). */
int spool_new_insert(struct spool_new *sn, long long at, const void *p, size_t n);
/* Throw the message away (removes its files) and free sn. */
void spool_abort(struct spool_new *sn);
/* Read back what was written so far (the mail filters see the stored
 * message): up to n bytes of the data from offset off.  Bytes read (0 at
 * the end), or -1 with errno. */
ssize_t spool_new_pread(const struct spool_new *sn, void *p, size_t n, long long off);
/* Data bytes written so far. */
long long spool_new_size(const struct spool_new *sn);
/* The message in "with" (a second spool_new in the same directory, holding
 * a changed copy: mail filter modifications) takes the place and the queue
 * id of sn: its temporary is renamed over sn's, sn's descriptor is closed
 * and sn freed.  0, or -1 with errno (nothing changed: both still open). */
int spool_new_replace(struct spool_new *sn, struct spool_new *with);

/* ---- the queue ---- */

struct qmsg; /* a locked queued message */

/* Lock and read message qid, verifying its checksum.  Returns 0 (*out set), 1
 * if another process holds it, -1 on error (errno; ENOENT if it is gone, EINVAL
 * if qid is malformed or the queue file is torn, corrupt or incomplete).  Cuts
 * off an interrupted status append. */
int spool_open(const char *queuedir, const char *qid, struct qmsg **out);
struct envelope *spool_env(struct qmsg *m);
/* The message data: the locked descriptor (owned by the spool: never close
 * it, it would drop the lock), offset and length.  Valid while m is open and
 * in forked children; read it with pread. */
struct msgdata spool_data(const struct qmsg *m);
/* Size of the message data in bytes. */
long long spool_data_size(const struct qmsg *m);
/* Durably record recipient i's new state and status (also updates the
 * in-memory envelope).  0 or -1 with errno. */
int spool_record(struct qmsg *m, size_t i, enum rcpt_state st, const char *status,
                 const char *remote_mta);
/* Durably replace the queue file with one holding the same data and the
 * in-memory envelope as it is now (after expansion added recipients, next_try
 * changed...): temp (data copied through the locked descriptor) + fsync +
 * rename + directory fsync.  The new file is locked before it is renamed into place, so
 * the message stays locked throughout; spool_open re-checks the inode it locked
 * against the name, so nobody works on the replaced file.  Only when no child
 * is delivering this message: children append to the old inode. */
int spool_rewrite(struct qmsg *m);
/* The message was tried and deferred: record its new back-off (m's
 * envelope's attempts and next_try, set by the caller) by appending a retry
 * record (queue_records.h), not flushed; every SPOOL_RETRY_COMPACT-th
 * attempt (attempts a multiple of it) rewrites the file with spool_rewrite
 * instead, so the appended records stay bounded.  Why no flush: a retry
 * record lost in a crash leaves the older attempts and next_try, so the
 * message is only tried again sooner (one extra attempt); delivered and
 * bounced results are spool_record's and stay durable.  0 or -1 with errno
 * (a partial record cut off). */
#define SPOOL_RETRY_COMPACT 16
int spool_retry(struct qmsg *m);
/* Lazy recording, for a caller that knows what follows a batch of results:
 * with it on, spool_record appends without syncing; spool_sync makes the
 * appended records durable (a no-op when there are none), spool_remove makes
 * them moot, spool_close syncs what is left.  The caller must spool_sync
 * before it delivers anything else for this message (guarantee 3).  A
 * deferral (RS_PENDING) recorded lazily is never synced on its own: lost in
 * a crash, its recipient is as the durable records left it, pending, and is
 * tried once more; nothing is delivered twice or lost. */
void spool_set_lazy(struct qmsg *m, int on);
int spool_sync(struct qmsg *m);
/* Re-read the control records through the locked descriptor (after a child
 * process appended status records to it).  0 or -1 with errno (m unchanged). */
int spool_reload(struct qmsg *m);
/* Remove the message (unlink, not flushed: a crash repeats at most the last
 * delivery) and log "QID: removed" (postoffice-log(5)). */
int spool_remove(struct qmsg *m);
/* Release the lock and free m. */
void spool_close(struct qmsg *m);

/* The queue ids of all complete, intact messages in queuedir, oldest first
 * (every queue file is read and its checksum verified). */
int spool_list(const char *queuedir, struct strlist *qids);
/* 1 if some process holds the lock on qid, 0 if not, -1 if it is gone. */
int spool_locked(const char *queuedir, const char *qid);
/* For a listing of the whole queue (mailq): the qids of every qf<qid> file,
 * sorted, NOT checked (spool_peek_listed checks each).  0 or -1 (errno). */
int spool_list_names(const char *queuedir, struct strlist *qids);
/* Read and verify (checksum included) qf<qid> without locking it, with one
 * open: its envelope, data size, and whether a runner holds its lock.  0, or
 * -1 with errno (ENOENT: removed meanwhile; EINVAL: torn or corrupt, which
 * spool_list would have left out). */
int spool_peek_listed(const char *queuedir, const char *qid, struct envelope *e,
                      long long *size, int *locked);
/* Read an envelope without locking (mailq), for a qid spool_list gave: the
 * file's structure is checked, not its checksum.  0 or -1. */
int spool_peek(const char *queuedir, const char *qid, struct envelope *e,
               long long *size);

/* The set-aside files in queuedir (xf<qid>, xf<qid>.N: spool_cleanup), sorted.
 * 0, or -1 with errno if queuedir cannot be read. */
int spool_list_aside(const char *queuedir, struct strlist *names);
/* The ids of messages the original postoffice left in queuedir (cm<id>),
 * waiting for spool_cleanup to convert them, sorted.  0 or -1 with errno. */
int spool_list_original(const char *queuedir, struct strlist *ids);
/* Read such a message without locking or changing anything (mailq): its
 * sender, recipients, the time it was queued and its size after conversion.
 * 0, or -1 with errno (EINVAL: malformed, *why says how). */
int spool_peek_original(const char *queuedir, const char *id, struct envelope *e,
                        long long *size, const char **why);

/* Is the space available to unprivileged users on the queue's file system
 * below minfree=?  1 yes, 0 no (or minfree= is 0), -1 cannot tell (errno):
 * the caller decides (the SMTP session refuses for now, the front end and
 * pickup go on and let a write fail). */
int spool_below_minfree(const struct config *c);

/* Remove temporaries left by crashed processes (no writer's lock: at once;
 * when that cannot be told, older than max_age seconds: the later of mtime and
 * ctime; max_age 0 removes all), in QUEUEDIR and maildrop/.  Renames unlocked
 * queue files that fail their check (torn by a system crash during their
 * enqueue) to xf<qid> (or xf<qid>.N), logged.  Converts complete df<qid>+cf<qid>
 * pairs of the old two-file format into qf<qid> (removing data files without a
 * control file like temporaries); old submissions in the maildrop are only
 * logged.  Converts the original postoffice's cm<id>+dm<id> into a new queue
 * file (one log line each: old id -> new qid, sender, recipient count) and
 * removes them; a malformed one is set aside as xfcm<id> (+ xfdm<id>), logged.
 * Returns how many were removed, set aside or converted, -1 if QUEUEDIR can't
 * be read. */
int spool_cleanup(const char *queuedir, long max_age);

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
