/* mbox.h - appending one message to an mbox file (a mailbox in the spool, or a
 * file named in an alias or .forward).  Internal to local delivery.
 *
 * Called in the delivery child, already running as the target identity.  The
 * file is opened without following symlinks and checked (regular file, one
 * link, owner), locked with a dot-lock PATH.lock and an fcntl lock, appended
 * to, fsync'd; on any error it is truncated back to its old size.  See
 * postoffice-local(8). */
#ifndef PO_MBOX_H
#define PO_MBOX_H

#include <sys/types.h>

#include "local.h"
#include "msgout.h"

#define MBOX_LOCK_WAIT_MS 120000 /* give up on a busy mailbox after this long */
#define MBOX_STALE_LOCK 300      /* a dot-lock older than this (seconds) is stale */

struct mbox_req {
    const char *path;       /* absolute path of the mailbox / file */
    uid_t owner;            /* an existing file must belong to this uid;
                               (uid_t)-1 = no owner check (files named in aliases) */
    const char *sender;     /* envelope sender ("" = <>) */
    const char *rcpt;       /* for Delivered-To: */
    struct msgdata data;    /* the queued message (msgout.h) */
    int escape_from;        /* ">From " escaping (config escape-from) */
    long lock_wait_ms;      /* 0 = MBOX_LOCK_WAIT_MS */
};

/* Append the message.  DELIV_OK, DELIV_DEFER (busy, I/O error, disk full: the
 * file is back at its old size) or DELIV_FAIL (symlink, hard link, not a
 * regular file, wrong owner); *status = malloc'd "X.Y.Z text". */
enum deliv_result mbox_deliver(const struct mbox_req *r, char **status);

/* One message of a batch for the same mailbox: the request's path, owner,
 * escape_from and lock_wait_ms apply; sender, rcpt and data are per message
 * (the request's are ignored).  res and status are set by mbox_deliver_many. */
struct mbox_msg {
    const char *sender;
    const char *rcpt;
    struct msgdata data;
    enum deliv_result res;
    char *status;           /* malloc'd "X.Y.Z text" */
};

/* Append n messages under one lock with one fsync at the end: what a mailbox
 * receiving a burst costs once instead of n times.  Each message gets its own
 * result.  A write error cuts the file back to before the failing message; a
 * failed fsync cuts it back to its size before the batch (all DEFER).  A lock
 * or open failure gives every message the same result. */
void mbox_deliver_many(const struct mbox_req *r, struct mbox_msg *msgs, size_t n);

/* Header lines put before the message: "Return-Path: <sender>\n" and
 * "Delivered-To: rcpt\n" (rcpt NULL: no Delivered-To), control bytes replaced
 * by '?' so nothing from the envelope can start a header line.  malloc'd. */
char *mbox_prepend(const char *sender, const char *rcpt);

/* Dot-lock PATH.lock: 0 held, 1 could not be created because the directory
 * does not allow it (EACCES/EPERM/EROFS: the caller goes on with the fcntl
 * lock alone), -1 timed out or error (errno).  Stale locks are removed. */
int mbox_dotlock(const char *path, long long deadline);
void mbox_dotunlock(const char *path);

#endif
