/* mbox.c - append a message to an mbox file, safely.
 *
 * Runs in the local delivery child, already as the target identity (never
 * root).  Guards against the classic spool attacks: the file is opened with
 * O_NOFOLLOW and checked after opening (regular, one link, the recipient's),
 * so a symlink or hard link planted in a shared spool cannot redirect the
 * write.  Locks with both a dot-lock and fcntl so that mutt, procmail and
 * dovecot see the mailbox as busy; a failed write is cut back to the old size
 * so a mailbox never holds half a message. */
#include "compat.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "mbox.h"
#include "msgout.h"
#include "util.h"

#define LOCK_POLL_MS 200 /* longest pause between tries on a busy lock */
#define LOCK_BUSY_MS 10  /* pause while the lock is only busy with deliveries */
#define LOCK_BUSY_TRIES 100

/* Wait before trying a busy lock again: 2, 4, 8 ms, then every 10 ms for about
 * a second, then every LOCK_POLL_MS.  Deliveries queued behind each other hold
 * the lock a few milliseconds each (one fsync), so a waiter that backed off to
 * 100 ms or more would leave the mailbox idle while it sleeps; a mail reader
 * holding the lock for long is still not polled hard.  *tries starts at 0. */
static void nap(long long deadline, int *tries)
{
    int delay = *tries < 3 ? 2 << *tries
                : *tries < LOCK_BUSY_TRIES ? LOCK_BUSY_MS : LOCK_POLL_MS;
    int ms = ms_left(deadline);
    poll(NULL, 0, ms < delay ? ms : delay);
    if (*tries < LOCK_BUSY_TRIES)
        (*tries)++;
}

static void add_clean(struct buf *b, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        buf_addc(b, (*p < ' ' || *p == 0x7f) ? '?' : *p);
}

char *mbox_prepend(const char *sender, const char *rcpt)
{
    struct buf b;
    buf_init(&b);
    buf_adds(&b, "Return-Path: <");
    add_clean(&b, sender ? sender : "");
    buf_adds(&b, ">\n");
    if (rcpt != NULL) {
        buf_adds(&b, "Delivered-To: ");
        add_clean(&b, rcpt);
        buf_adds(&b, "\n");
    }
    return buf_steal(&b);
}

/* A dot-lock nobody has touched for MBOX_STALE_LOCK seconds was left by a
 * crashed program: remove it.  1 removed, 0 not stale. */
static int remove_stale(const char *lock)
{
    struct stat st;
    if (lstat(lock, &st) < 0)
        return errno == ENOENT; /* gone already: try again at once */
    if (time(NULL) - st.st_mtime < MBOX_STALE_LOCK)
        return 0;
    if (unlink(lock) == 0) {
        log_notice("removed stale lock %s", lock);
        return 1;
    }
    return 0;
}

int mbox_dotlock(const char *path, long long deadline)
{
    char *lock = xasprintf("%s.lock", path);
    int rc = -1, tries = 0;

    for (;;) {
        int fd = open(lock, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd >= 0) {
            char pid[32];
            int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
            (void)write_all(fd, pid, (size_t)n); /* informative only */
            close(fd);
            rc = 0;
            break;
        }
        if (errno == EACCES || errno == EPERM || errno == EROFS) {
            rc = 1;
            break;
        }
        if (errno != EEXIST)
            break;
        if (remove_stale(lock))
            continue;
        if (ms_left(deadline) == 0) {
            errno = EWOULDBLOCK;
            break;
        }
        nap(deadline, &tries);
    }
    free(lock);
    return rc;
}

void mbox_dotunlock(const char *path)
{
    char *lock = xasprintf("%s.lock", path);
    (void)unlink(lock);
    free(lock);
}

static int fcntl_lock(int fd, long long deadline)
{
    struct flock fl;
    int tries = 0;
    for (;;) {
        memset(&fl, 0, sizeof fl);
        fl.l_type = F_WRLCK;
        fl.l_whence = SEEK_SET;
        if (fcntl(fd, F_SETLK, &fl) == 0)
            return 0;
        if (errno != EACCES && errno != EAGAIN && errno != EINTR)
            return -1;
        if (ms_left(deadline) == 0) {
            errno = EWOULDBLOCK;
            return -1;
        }
        nap(deadline, &tries);
    }
}

/* The checks on an existing file, after opening it: *why set on failure. */
static int check_file(const struct mbox_req *r, const struct stat *lst,
                      const struct stat *st, char **why)
{
    if (st->st_dev != lst->st_dev || st->st_ino != lst->st_ino)
        *why = xasprintf("4.3.0 %s changed while being opened; will retry", r->path);
    else if (!S_ISREG(st->st_mode))
        *why = xasprintf("5.2.0 %s is not a regular file; refusing to deliver", r->path);
    else if (st->st_nlink != 1)
        *why = xasprintf("5.2.0 %s has %lu hard links; refusing to deliver", r->path,
                         (unsigned long)st->st_nlink);
    else if (r->owner != (uid_t)-1 && st->st_uid != r->owner)
        *why = xasprintf("5.2.0 %s belongs to uid %lu, not to the recipient (uid %lu); "
                         "refusing to deliver", r->path, (unsigned long)st->st_uid,
                         (unsigned long)r->owner);
    else
        return 0;
    return -1;
}

/* Open (or create 0600) the file; *readable says pread works on it. */
static enum deliv_result open_box(const struct mbox_req *r, int *fdp, int *readable,
                                  char **status)
{
    const int base = O_APPEND | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY;
    struct stat lst, st;

    for (int tries = 0; tries < 3; tries++) {
        if (lstat(r->path, &lst) < 0) {
            if (errno != ENOENT)
                break;
            int fd = open(r->path, O_RDWR | O_CREAT | O_EXCL | base, 0600);
            if (fd < 0 && errno == EEXIST)
                continue; /* someone created it meanwhile: check theirs */
            if (fd < 0)
                break;
            *fdp = fd;
            *readable = 1;
            return DELIV_OK;
        }
        if (S_ISLNK(lst.st_mode)) {
            *status = xasprintf("5.2.0 %s is a symbolic link; refusing to deliver", r->path);
            return DELIV_FAIL;
        }
        if (!S_ISREG(lst.st_mode)) /* never open a FIFO or device */
            return check_file(r, &lst, &lst, status) < 0 ? DELIV_FAIL : DELIV_DEFER;
        int fd = open(r->path, O_RDWR | base);
        *readable = fd >= 0;
        if (fd < 0 && errno == EACCES)
            fd = open(r->path, O_WRONLY | base);
        if (fd < 0 && errno == ENOENT)
            continue;
        if (fd < 0 && errno == ELOOP) {
            *status = xasprintf("5.2.0 %s is a symbolic link; refusing to deliver", r->path);
            return DELIV_FAIL;
        }
        if (fd < 0 || fstat(fd, &st) < 0) {
            if (fd >= 0)
                close(fd);
            break;
        }
        if (check_file(r, &lst, &st, status) < 0) {
            close(fd);
            return (*status)[0] == '5' ? DELIV_FAIL : DELIV_DEFER;
        }
        *fdp = fd;
        return DELIV_OK;
    }
    *status = xasprintf("4.3.0 cannot open %s: %s", r->path, strerror(errno));
    return DELIV_DEFER;
}

/* mbox messages are separated by an empty line before "From ": if the file
 * does not end that way (another program wrote it), complete it. */
static int complete_tail(int fd, off_t size, int readable)
{
    char t[2];
    if (size == 0 || !readable)
        return 0;
    off_t at = size >= 2 ? size - 2 : 0;
    ssize_t n = pread(fd, t, (size_t)(size - at), at);
    if (n <= 0)
        return n < 0 ? -1 : 0;
    if (t[n - 1] != '\n')
        return write_all(fd, "\n\n", 2);
    if (n == 2 && t[0] != '\n')
        return write_all(fd, "\n", 1);
    return 0;
}

static enum deliv_result write_box(const struct mbox_req *r, int fd, int readable,
                                   char **status)
{
    struct stat st;
    struct msgout mo;
    char *prepend;
    int rc, e;

    if (fstat(fd, &st) < 0) {
        *status = xasprintf("4.3.0 cannot stat %s: %s", r->path, strerror(errno));
        return DELIV_DEFER;
    }
    prepend = mbox_prepend(r->sender, r->rcpt);
    mo.flags = MO_FROM_LINE | MO_BLANK_END | (r->escape_from ? MO_ESCAPE_FROM : 0);
    mo.sender = r->sender;
    mo.prepend = prepend;
    rc = complete_tail(fd, st.st_size, readable);
    if (rc == 0)
        rc = msgout_write(&r->data, fd, &mo);
    if (rc == 0)
        rc = fsync(fd);
    e = errno;
    free(prepend);
    if (rc == 0) {
        *status = xasprintf("2.0.0 delivered to %s", r->path);
        return DELIV_OK;
    }
    /* never leave half a message: back to the size it had under our lock */
    if (ftruncate(fd, st.st_size) < 0 || fsync(fd) < 0)
        log_crit("%s: cannot truncate back to %lld bytes after a failed write: %s",
                 r->path, (long long)st.st_size, strerror(errno));
    if (e == ENOSPC || e == EDQUOT || e == EFBIG)
        *status = xasprintf("4.2.2 %s is full: %s", r->path, strerror(e));
    else
        *status = xasprintf("4.3.0 write to %s failed: %s", r->path, strerror(e));
    return DELIV_DEFER;
}

enum deliv_result mbox_deliver(const struct mbox_req *r, char **status)
{
    long long deadline = now_ms() + (r->lock_wait_ms > 0 ? r->lock_wait_ms : MBOX_LOCK_WAIT_MS);
    enum deliv_result res;
    int fd = -1, readable = 0, dot;

    *status = NULL;
    dot = mbox_dotlock(r->path, deadline);
    if (dot < 0) {
        *status = errno == EWOULDBLOCK
                      ? xasprintf("4.2.0 %s.lock is held by another program; will retry",
                                  r->path)
                      : xasprintf("4.3.0 cannot create %s.lock: %s", r->path, strerror(errno));
        return DELIV_DEFER;
    }
    if (dot == 1)
        log_warn("%s.lock: the directory does not allow dot-locks; using fcntl only", r->path);
    res = open_box(r, &fd, &readable, status);
    if (res == DELIV_OK) {
        if (fcntl_lock(fd, deadline) < 0) {
            *status = errno == EWOULDBLOCK
                          ? xasprintf("4.2.0 %s is locked by another program; will retry",
                                      r->path)
                          : xasprintf("4.3.0 cannot lock %s: %s", r->path, strerror(errno));
            res = DELIV_DEFER;
        } else {
            res = write_box(r, fd, readable, status);
        }
        close(fd); /* releases the fcntl lock */
    }
    if (dot == 0)
        mbox_dotunlock(r->path);
    return res;
}
