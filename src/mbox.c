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

static char *write_error(const char *path, int e)
{
    if (e == ENOSPC || e == EDQUOT || e == EFBIG)
        return xasprintf("4.2.2 %s is full: %s", path, strerror(e));
    return xasprintf("4.3.0 write to %s failed: %s", path, strerror(e));
}

/* Never leave half a message: back to a size the file had under our lock. */
static void cut_back(const char *path, int fd, off_t size)
{
    if (ftruncate(fd, size) < 0 || fsync(fd) < 0)
        log_crit("%s: cannot truncate back to %lld bytes after a failed write: %s",
                 path, (long long)size, strerror(errno));
}

/* Append one message (no fsync); on error the file is cut back to before it. */
static int append_one(const struct mbox_req *r, int fd, int readable, struct mbox_msg *m)
{
    struct stat st;
    struct msgout mo;
    int rc, e;

    if (fstat(fd, &st) < 0) {
        m->status = xasprintf("4.3.0 cannot stat %s: %s", r->path, strerror(errno));
        return -1;
    }
    char *prepend = mbox_prepend(m->sender, m->rcpt);
    mo.flags = MO_FROM_LINE | MO_BLANK_END | (r->escape_from ? MO_ESCAPE_FROM : 0);
    mo.sender = m->sender;
    mo.prepend = prepend;
    rc = complete_tail(fd, st.st_size, readable);
    if (rc == 0)
        rc = msgout_write(&m->data, fd, &mo);
    e = errno;
    free(prepend);
    if (rc == 0)
        return 0;
    cut_back(r->path, fd, st.st_size);
    m->status = write_error(r->path, e);
    return -1;
}

/* Append every message, then one fsync; results per message. */
static void write_all_msgs(const struct mbox_req *r, int fd, int readable,
                           struct mbox_msg *msgs, size_t n)
{
    struct stat st;
    size_t k = 0;

    if (fstat(fd, &st) < 0) {
        char *why = xasprintf("4.3.0 cannot stat %s: %s", r->path, strerror(errno));
        for (; k < n; k++)
            msgs[k].status = xstrdup(why);
        free(why);
        return;
    }
    size_t ok = 0;
    for (; k < n; k++) {
        if (append_one(r, fd, readable, &msgs[k]) < 0)
            break;
        ok++;
    }
    for (size_t j = k + 1; j < n; j++) /* after a write error (disk full): retry later */
        msgs[j].status = xstrdup(msgs[k].status);
    if (ok == 0)
        return;
    if (fsync(fd) < 0) {
        int e = errno;
        cut_back(r->path, fd, st.st_size);
        for (size_t j = 0; j < n; j++) {
            free(msgs[j].status);
            msgs[j].status = write_error(r->path, e);
        }
        return;
    }
    for (size_t j = 0; j < ok; j++) {
        msgs[j].res = DELIV_OK;
        msgs[j].status = xasprintf("2.0.0 delivered to %s", r->path);
    }
}

/* The same verdict for every message of the batch. */
static void all_get(struct mbox_msg *msgs, size_t n, enum deliv_result res, char *status)
{
    for (size_t k = 0; k < n; k++) {
        msgs[k].res = res;
        msgs[k].status = xstrdup(status);
    }
    free(status);
}

void mbox_deliver_many(const struct mbox_req *r, struct mbox_msg *msgs, size_t n)
{
    long long deadline = now_ms() + (r->lock_wait_ms > 0 ? r->lock_wait_ms : MBOX_LOCK_WAIT_MS);
    char *status = NULL;
    int fd = -1, readable = 0, dot;

    for (size_t k = 0; k < n; k++) {
        msgs[k].res = DELIV_DEFER;
        msgs[k].status = NULL;
    }
    if (n == 0)
        return;
    dot = mbox_dotlock(r->path, deadline);
    if (dot < 0) {
        all_get(msgs, n, DELIV_DEFER,
                errno == EWOULDBLOCK
                    ? xasprintf("4.2.0 %s.lock is held by another program; will retry", r->path)
                    : xasprintf("4.3.0 cannot create %s.lock: %s", r->path, strerror(errno)));
        return;
    }
    if (dot == 1)
        log_warn("%s.lock: the directory does not allow dot-locks; using fcntl only", r->path);
    enum deliv_result res = open_box(r, &fd, &readable, &status);
    if (res != DELIV_OK) {
        all_get(msgs, n, res, status);
    } else if (fcntl_lock(fd, deadline) < 0) {
        all_get(msgs, n, DELIV_DEFER,
                errno == EWOULDBLOCK
                    ? xasprintf("4.2.0 %s is locked by another program; will retry", r->path)
                    : xasprintf("4.3.0 cannot lock %s: %s", r->path, strerror(errno)));
    } else {
        write_all_msgs(r, fd, readable, msgs, n);
    }
    if (fd >= 0)
        close(fd); /* releases the fcntl lock */
    if (dot == 0)
        mbox_dotunlock(r->path);
}

enum deliv_result mbox_deliver(const struct mbox_req *r, char **status)
{
    struct mbox_msg m = {.sender = r->sender, .rcpt = r->rcpt, .data = r->data};
    mbox_deliver_many(r, &m, 1);
    *status = m.status;
    return m.res;
}
