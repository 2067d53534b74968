/* mbox.h - appending messages to an mbox file (a mailbox in the spool, or a
 * file named in an alias or .forward).  Internal to local delivery.
 *
 * Two halves, so that the process holding the locks survives the one that
 * reads the message: mbox_open (the locker: opens without following
 * symlinks, checks, dot-lock PATH.lock + fcntl lock, notes the size) and
 * mbox_write (the writer: escapes and appends the messages, fsyncs, through
 * the descriptor it inherits), then mbox_close (cuts back to the noted size
 * when the writer failed or died, unlocks).  For a spool mailbox the locker
 * is the delivery process (root) and the writer a child as the recipient;
 * mbox_deliver_many does all three in one process (files named in aliases).
 * The dot-lock holds "postoffice PID SIZE DEV INO": whoever finds it stale
 * (PID gone) cuts the file back to SIZE first.  See postoffice-local(8). */
#ifndef PO_MBOX_H
#define PO_MBOX_H

#include <sys/types.h>

#include "local.h"
#include "message_out.h"

#define MBOX_LOCK_WAIT_MS 5000 /* give up on a busy mailbox after this long (4.2.0) */
#define MBOX_BUSY_WAIT_MS 30000 /* ...but while our own deliveries take turns
                                   writing it, up to this long */
#define MBOX_STALE_LOCK 300    /* another program's dot-lock untouched this long
                                  (seconds) is stale */
#define MBOX_EMPTY_LOCK 10     /* root's dot-lock still empty this long (seconds) was
                                  left by a delivery killed between making it and
                                  writing its PID: stale */
#define MBOX_OWN_LOCK_MAX 1800 /* ours this old is stale even if its PID was reused
                                  (a delivery is killed after LOCAL_TIMEOUT_MS) */

struct mbox_req {
    const char *path;       /* absolute path of the mailbox / file */
    uid_t owner;            /* an existing file must belong to this uid, and be
                               writable by nobody else; (uid_t)-1 = no owner check
                               and no foreign lock rule (files named in aliases) */
    uid_t new_uid;          /* a file mbox_open creates is given to new_uid:new_gid */
    gid_t new_gid;          /* ((uid_t)-1: left to whoever created it) */
    gid_t mail_gid;         /* dot-locks of this group are another mail program's,
                               never foreign; (gid_t)-1 = none */
    const char *sender;     /* envelope sender ("" = <>) */
    const char *rcpt;       /* for Delivered-To: */
    struct msgdata data;    /* the queued message (message_out.h) */
    int escape_from;        /* ">From " escaping (config escape-from) */
    long lock_wait_ms;      /* 0 = MBOX_LOCK_WAIT_MS */
    long busy_wait_ms;      /* while our own deliveries take turns writing the
                               mailbox, go on waiting up to this long in all
                               (each new writer gives lock_wait_ms more); 0 = no
                               more than lock_wait_ms */
    long long limit;        /* bytes the file may hold (mailbox-limit=), 0 = none */
    int limit_bounce;       /* a message past the limit: 1 DELIV_FAIL 5.2.2,
                               0 DELIV_DEFER 4.2.2 */
};

/* One message of a batch for the same mailbox: the request's path, owner,
 * escape_from and lock_wait_ms apply; sender, rcpt and data are per message
 * (the request's are ignored).  res and status are set by mbox_write. */
struct mbox_msg {
    const char *sender;
    const char *rcpt;
    struct msgdata data;
    enum deliv_result res;
    char *status;           /* malloc'd "X.Y.Z text" */
};

/* An open, locked mailbox (mbox_open .. mbox_close). */
struct mbox_box {
    int fd;                 /* O_RDWR (O_WRONLY when not readable) | O_APPEND */
    int lockfd;             /* the dot-lock, -1 when the directory allows none */
    off_t size;             /* the size under the lock, before anything was written */
};

/* Lock and open r->path (creating it 0600 if missing), as the caller.  The
 * file is never followed if a symlink, never opened blocking (a FIFO), and
 * must be a regular file with one link, owned by r->owner and not writable by
 * others.  A dot-lock whose PID is gone (or older than MBOX_STALE_LOCK when it
 * names none) is stale: the file is cut back to the size it notes, then it is
 * removed; one owned by neither root, us, r->owner nor r->mail_gid is foreign
 * (planted in a shared spool) and removed with a warning.  DELIV_OK, or
 * DELIV_DEFER with *status (malloc'd "X.Y.Z text"): busy after lock_wait_ms
 * (4.2.0), a planted or misowned file (4.2.0, "remove it"), I/O errors (4.3.0).
 * Files named in aliases fail (DELIV_FAIL 5.2.0) where a mailbox defers. */
enum deliv_result mbox_open(const struct mbox_req *r, struct mbox_box *b, char **status);

/* Append n messages through fd (open and locked by mbox_open, perhaps in
 * another process), then one fsync.  Each message gets its own result.  A
 * write error cuts the file back to before the failing message (the rest
 * defer); a failed fsync cuts it back to its size before the batch (all
 * DEFER).  A message that leaves the file larger than r->limit is cut away
 * again ("mailbox full": 5.2.2 or 4.2.2, r->limit_bounce) and the next one
 * is tried: a file exactly at the limit is fine. */
void mbox_write(const struct mbox_req *r, int fd, struct mbox_msg *msgs, size_t n);

/* Unlock and close.  cut: the writer did not finish (died, timed out): the
 * file is cut back to b->size first.  The dot-lock goes before the fcntl
 * lock, so a stale dot-lock never outlives a delivery that completed. */
void mbox_close(const struct mbox_req *r, struct mbox_box *b, int cut);

/* mbox_open, mbox_write, mbox_close in one process.  A lock or open failure
 * gives every message the same result. */
void mbox_deliver_many(const struct mbox_req *r, struct mbox_msg *msgs, size_t n);

/* The same for one message: DELIV_OK, DELIV_DEFER or DELIV_FAIL; *status =
 * malloc'd "X.Y.Z text". */
enum deliv_result mbox_deliver(const struct mbox_req *r, char **status);

/* Header lines put before the message: "Return-Path: <sender>\n" and
 * "Delivered-To: rcpt\n" (rcpt NULL: no Delivered-To), control bytes replaced
 * by '?' so nothing from the envelope can start a header line.  malloc'd. */
char *mbox_prepend(const char *sender, const char *rcpt);

#endif
