/* mbox.c - append messages to an mbox file, safely.
 *
 * Runs as root: mbox_open and mbox_close when called by the delivery process
 * for a spool mailbox (local.c) - they open, check, lock and truncate the
 * file but never read it; they read only dot-locks owned by root (ours).
 * mbox_write (escaping, the message content) runs in a child that is never
 * root.  Files named in aliases are done all in the child (mbox_deliver_many).
 *
 * Guards against the classic spool attacks: the file is opened with
 * O_NOFOLLOW|O_NONBLOCK and checked after opening (regular, one link, the
 * recipient's), so a symlink, hard link or FIFO planted in a shared spool
 * cannot redirect or stall the write.  Locks with both a dot-lock and fcntl so
 * that mutt, procmail and dovecot see the mailbox as busy.  A mailbox never
 * keeps half a message: a failed write is cut back by the writer, a dead
 * writer's by the locker, a dead locker's by whoever finds its dot-lock stale
 * (the lock notes the size to go back to). */
#include "compat.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "mbox.h"
#include "message_out.h"
#include "util.h"

#define LOCK_POLL_MS 200 /* longest pause between tries on a busy lock */
#define LOCK_BUSY_MS 10  /* pause while the lock is only busy with deliveries */
#define LOCK_BUSY_TRIES 100
#define LOCKINFO_MAX 128 /* "postoffice PID SIZE DEV INO\n" */

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

/* ---- dot-locks ---- */

/* What a dot-lock of ours says. */
struct lockinfo {
    long pid;
    int has_size;           /* SIZE DEV INO present: the file may have grown */
    long long size;
    unsigned long long dev, ino;
    char raw[LOCKINFO_MAX];
    size_t len;
};

/* Read the dot-lock lock (lstat'ed as *ls) if it is ours, in our format.
 * 0 read, -1 not ours or not readable. */
static int read_lockinfo(const char *lock, const struct stat *ls, struct lockinfo *li)
{
    struct stat st;
    long pid;
    long long size;
    unsigned long long dev, ino;
    int n = 0;

    /* only root's (or, unprivileged, our own) lock files are ever read, and
     * never a hard link planted to one of them */
    if (!S_ISREG(ls->st_mode) || ls->st_nlink != 1 ||
        (ls->st_uid != 0 && ls->st_uid != geteuid()))
        return -1;
    int fd = open(lock, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return -1;
    ssize_t got = -1;
    if (fstat(fd, &st) == 0 && st.st_dev == ls->st_dev && st.st_ino == ls->st_ino)
        got = read_all(fd, li->raw, sizeof li->raw - 1);
    close(fd);
    if (got <= 0)
        return -1;
    li->len = (size_t)got;
    li->raw[li->len] = '\0';
    li->has_size = 0;
    if (sscanf(li->raw, "postoffice %ld %lld %llu %llu\n%n", &pid, &size, &dev, &ino, &n) == 4 &&
        (size_t)n == li->len && size >= 0) {
        li->has_size = 1;
        li->size = size;
        li->dev = dev;
        li->ino = ino;
    } else if (n = 0, sscanf(li->raw, "postoffice %ld\n%n", &pid, &n) != 1 ||
                          (size_t)n != li->len) {
        return -1;
    }
    li->pid = pid;
    return pid > 0 ? 0 : -1;
}

/* The dot-lock is still the one read as *li (nobody replaced it meanwhile). */
static int same_lock(const char *lock, const struct stat *ls, const struct lockinfo *li)
{
    struct stat now;
    struct lockinfo again;
    return lstat(lock, &now) == 0 && now.st_dev == ls->st_dev && now.st_ino == ls->st_ino &&
           read_lockinfo(lock, &now, &again) == 0 && again.len == li->len &&
           memcmp(again.raw, li->raw, li->len) == 0;
}

/* Our dot-lock *li (lstat'ed as *ls) is held by a live process. */
static int own_alive(const struct stat *ls, const struct lockinfo *li)
{
    /* our own PID: a dead process's, reused (we hold no lock we do not know of) */
    int alive = li->pid != (long)getpid() && (kill((pid_t)li->pid, 0) == 0 || errno == EPERM);
    return alive && time(NULL) - ls->st_mtime < MBOX_OWN_LOCK_MAX;
}

/* Our dot-lock whose process is gone: under the file's fcntl lock (so two
 * finders never both act), cut the file back to the size the lock notes -
 * nothing else writes it while the dot-lock exists, so the tail is exactly a
 * dead writer's fragment - then remove the lock.  1 removed (or changed:
 * look again), 0 still held. */
static int clear_own(const struct mbox_req *r, const char *lock, const struct stat *ls,
                     const struct lockinfo *li, long long deadline)
{
    const int fl = O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY;
    int fd = open(r->path, O_RDWR | fl);
    if (fd < 0 && errno == EACCES)
        fd = open(r->path, O_WRONLY | fl);
    struct stat st;
    if (fd >= 0 && (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))) {
        close(fd);
        fd = -1;
    }
    if (fd >= 0 && fcntl_lock(fd, deadline) < 0) {
        close(fd);
        return 0;
    }
    int rc = 1;
    if (same_lock(lock, ls, li)) {
        if (fd >= 0 && li->has_size && fstat(fd, &st) == 0 && st.st_size > li->size &&
            (unsigned long long)st.st_dev == li->dev && (unsigned long long)st.st_ino == li->ino) {
            if (ftruncate(fd, (off_t)li->size) == 0 && fsync(fd) == 0) {
                log_warn("%s: cut back from %lld to %lld bytes: delivery process %ld died "
                         "while writing it", r->path, (long long)st.st_size, li->size, li->pid);
            } else {
                log_crit("%s: cannot cut back a dead delivery's fragment to %lld bytes: %s",
                         r->path, li->size, strerror(errno));
                rc = 0; /* keep the lock: the mailbox must not be written after it */
            }
        }
        if (rc == 1 && unlink(lock) == 0)
            log_notice("removed stale lock %s (process %ld is gone)", lock, li->pid);
    }
    if (fd >= 0)
        close(fd); /* drops the fcntl lock */
    return rc;
}

/* A lock file in a shared spool made by a uid that no mail program runs as
 * for this mailbox (not root, not us, not the owner, not the mail group). */
static int foreign(const struct mbox_req *r, const struct stat *ls)
{
    return r->owner != (uid_t)-1 && ls->st_uid != 0 && ls->st_uid != geteuid() &&
           ls->st_uid != r->owner && !(r->mail_gid != (gid_t)-1 && ls->st_gid == r->mail_gid);
}

/* Who held the dot-lock when the waiter last looked.  One of our own
 * deliveries that has noted the size is writing: it got the fcntl lock too,
 * so it ends within one delivery.  A new such writer since the last look
 * means our deliveries are taking turns at the mailbox (mbox_req.busy_wait_ms). */
struct holder {
    int writer;               /* the last one seen was our writer */
    long pid;                 /* ...this one */
    int next;                 /* ...and not the one seen before it */
    dev_t dev;
    ino_t ino;
    char raw[LOCKINFO_MAX];
    size_t len;
};

/* The holder *li, a live delivery of ours, seen. */
static void saw_holder(struct holder *h, int was_writer, const struct stat *ls,
                       const struct lockinfo *li)
{
    int writer = li->has_size;
    h->next = writer && !(was_writer && h->dev == ls->st_dev && h->ino == ls->st_ino &&
                          h->len == li->len && memcmp(h->raw, li->raw, li->len) == 0);
    h->writer = writer;
    h->pid = li->pid;
    h->dev = ls->st_dev;
    h->ino = ls->st_ino;
    h->len = li->len;
    memcpy(h->raw, li->raw, li->len);
}

/* The dot-lock exists: remove it when stale or foreign.  1 removed (try again
 * at once), 0 held (*h says by whom), -1 a foreign one that cannot be removed
 * (*status). */
static int clear_lock(const struct mbox_req *r, const char *lock, long long deadline,
                      struct holder *h, char **status)
{
    int was_writer = h->writer;
    h->writer = h->next = 0;
    struct stat ls;
    struct lockinfo li;
    if (lstat(lock, &ls) < 0)
        return errno == ENOENT; /* gone already: try again at once */
    if (foreign(r, &ls)) {
        log_warn("%s belongs to uid %lu, neither the mailbox owner nor root: no mail "
                 "program made it; removing it", lock, (unsigned long)ls.st_uid);
        if ((S_ISDIR(ls.st_mode) ? rmdir(lock) : unlink(lock)) == 0 || errno == ENOENT)
            return 1;
        *status = xasprintf("4.2.0 %s was planted by uid %lu and cannot be removed (%s): "
                            "remove it", lock, (unsigned long)ls.st_uid, strerror(errno));
        log_warn("%s", *status + 6);
        return -1;
    }
    if (read_lockinfo(lock, &ls, &li) == 0) {
        if (!own_alive(&ls, &li))
            return clear_own(r, lock, &ls, &li, deadline);
        saw_holder(h, was_writer, &ls, &li);
        return 0;
    }
    /* root makes dot-locks only here, and writes its PID at once */
    int empty_ours = geteuid() == 0 && ls.st_uid == 0 && S_ISREG(ls.st_mode) &&
                     ls.st_size == 0 && time(NULL) - ls.st_mtime >= MBOX_EMPTY_LOCK;
    if (!empty_ours && time(NULL) - ls.st_mtime < MBOX_STALE_LOCK)
        return 0;
    if (unlink(lock) == 0) {
        log_notice("removed stale lock %s", lock);
        return 1;
    }
    return errno == ENOENT;
}

/* Write "postoffice PID" into the new lock file fd.  0 or -1 (errno). */
static int write_pid(int fd)
{
    char *pid = xasprintf("postoffice %ld\n", (long)getpid());
    int rc = write_all(fd, pid, strlen(pid)) < 0 ? -1 : 0;
    free(pid);
    return rc;
}

/* Create the dot-lock with our PID already in it, so a process killed while
 * making it never leaves an empty lock that nobody can judge: written as an
 * unnamed file (O_TMPFILE) and then linked in under its name (which fails if
 * it exists).  Where the file system cannot, O_EXCL and a write.  Returns the
 * descriptor, -1 when it cannot be made (errno: EEXIST held), -2 when the PID
 * could not be written (errno). */
static int make_lock(const char *lock)
{
#ifdef O_TMPFILE
    char *dir = xstrdup(lock);
    char *slash = strrchr(dir, '/');
    if (slash)
        slash[slash == dir] = '\0';
    int fd = open(slash ? dir : ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    free(dir);
    if (fd >= 0) {
        char proc[64];
        snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
        if (write_pid(fd) < 0) {
            int e = errno;
            close(fd);
            errno = e;
            return -2;
        }
        if (linkat(AT_FDCWD, proc, AT_FDCWD, lock, AT_SYMLINK_FOLLOW) == 0)
            return fd;
        int e = errno;
        close(fd);
        errno = e;
        if (errno != ENOENT) /* ENOENT: no /proc; try the other way */
            return -1;
    } else if (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL) {
        return -1;
    }
#endif
    int lfd = open(lock, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (lfd < 0)
        return -1;
    if (write_pid(lfd) < 0) {
        int e = errno;
        (void)unlink(lock);
        close(lfd);
        errno = e;
        return -2;
    }
    return lfd;
}

/* A new writer of ours took its turn: the wait may go on for another
 * lock_wait, up to busy_wait_ms from its start. */
static void extend(const struct mbox_req *r, long long start, long long *deadline)
{
    long long until = now_ms() + (r->lock_wait_ms > 0 ? r->lock_wait_ms : MBOX_LOCK_WAIT_MS);
    long long limit = start + r->busy_wait_ms;
    if (until > limit)
        until = limit;
    if (until > *deadline)
        *deadline = until;
}

/* Dot-lock PATH.lock, holding "postoffice PID\n" until mbox_open knows the
 * size: 0 held (*lockfd), 1 the directory allows none (EACCES/EPERM/EROFS:
 * the fcntl lock alone), -1 busy until the deadline or an error (*status).
 * *deadline moves on while our own deliveries take turns (struct holder). */
static int dotlock(const struct mbox_req *r, long long *deadline, int *lockfd, char **status)
{
    char *lock = xasprintf("%s.lock", r->path);
    int rc, tries = 0;
    long long start = now_ms();
    struct holder h = {0};

    for (;;) {
        int fd = make_lock(lock);
        if (fd >= 0) {
            *lockfd = fd;
            rc = 0;
            break;
        }
        if (fd == -2) {
            *status = xasprintf("4.3.0 cannot write %s: %s", lock, strerror(errno));
            rc = -1;
            break;
        }
        if (errno == EACCES || errno == EPERM || errno == EROFS) {
            rc = 1;
            break;
        }
        if (errno != EEXIST) {
            *status = xasprintf("4.3.0 cannot create %s: %s", lock, strerror(errno));
            rc = -1;
            break;
        }
        int c = clear_lock(r, lock, *deadline, &h, status);
        if (c < 0) {
            rc = -1;
            break;
        }
        if (h.next)
            extend(r, start, deadline);
        if (ms_left(*deadline) == 0) {
            *status = h.writer ? xasprintf("4.2.0 %s: other deliveries held the mailbox for "
                                           "%lld ms (the last: process %ld); will retry",
                                           lock, now_ms() - start, h.pid)
                               : xasprintf("4.2.0 %s is held by another program; will retry",
                                           lock);
            rc = -1;
            break;
        }
        if (h.writer && tries > 3)
            tries = 3; /* our writers hold it for a delivery each: keep looking often */
        if (c == 0)
            nap(*deadline, &tries);
    }
    free(lock);
    return rc;
}

/* Note in the dot-lock what to cut the file back to if we die. */
static int note_size(int lockfd, const struct stat *st)
{
    char *line = xasprintf("postoffice %ld %lld %llu %llu\n", (long)getpid(),
                           (long long)st->st_size, (unsigned long long)st->st_dev,
                           (unsigned long long)st->st_ino);
    ssize_t n = pwrite(lockfd, line, strlen(line), 0);
    int rc = n == (ssize_t)strlen(line) ? 0 : -1;
    if (n >= 0 && rc < 0)
        errno = ENOSPC;
    free(line);
    return rc;
}

/* Remove our dot-lock, unless somebody replaced it meanwhile. */
static void dotunlock(const char *path, int lockfd)
{
    char *lock = xasprintf("%s.lock", path);
    struct stat a, b;
    if (fstat(lockfd, &a) == 0 && lstat(lock, &b) == 0 && a.st_dev == b.st_dev &&
        a.st_ino == b.st_ino)
        (void)unlink(lock);
    close(lockfd);
    free(lock);
}

/* ---- opening ---- */

/* A file we refuse: a mailbox defers (4.2.0: something planted it in a shared
 * spool; the admin can act on the log line and the mail waits), a file named
 * in an alias fails (5.2.0: the alias is wrong).  Always -1. */
static PO_PRINTF(3, 4) int refuse(const struct mbox_req *r, char **status, const char *fmt, ...)
{
    va_list ap;
    struct buf b;
    buf_init(&b);
    buf_adds(&b, r->owner != (uid_t)-1 ? "4.2.0 " : "5.2.0 ");
    va_start(ap, fmt);
    char *why = xvasprintf(fmt, ap);
    va_end(ap);
    buf_adds(&b, why);
    free(why);
    if (r->owner != (uid_t)-1)
        log_warn("%s; mail for it waits in the queue", b.s + 6);
    buf_adds(&b, r->owner != (uid_t)-1 ? "; will retry" : "; refusing to deliver");
    *status = buf_steal(&b);
    return -1;
}

static const char *kind_of(mode_t m)
{
    return S_ISDIR(m) ? "a directory" : S_ISFIFO(m) ? "a FIFO" : S_ISSOCK(m) ? "a socket"
         : S_ISCHR(m) || S_ISBLK(m) ? "a device" : S_ISLNK(m) ? "a symbolic link"
         : "not a plain file";
}

/* The checks on an existing file: lst from lstat before opening, st from
 * fstat after (the same when nothing was opened).  0 or -1 (*status). */
static int check_file(const struct mbox_req *r, const struct stat *lst,
                      const struct stat *st, char **status)
{
    if (S_ISLNK(lst->st_mode))
        return refuse(r, status, "%s is a symbolic link: remove it", r->path);
    if (st->st_dev != lst->st_dev || st->st_ino != lst->st_ino) {
        *status = xasprintf("4.3.0 %s changed while being opened; will retry", r->path);
        return -1;
    }
    if (!S_ISREG(st->st_mode))
        return refuse(r, status, "%s is %s, not a regular file: remove it", r->path,
                      kind_of(st->st_mode));
    if (st->st_nlink != 1)
        return refuse(r, status, "%s has %lu hard links: remove it", r->path,
                      (unsigned long)st->st_nlink);
    if (r->owner != (uid_t)-1 && st->st_uid != r->owner)
        return refuse(r, status, "%s belongs to uid %lu, not to the recipient (uid %lu): "
                      "remove it or give it to the recipient", r->path,
                      (unsigned long)st->st_uid, (unsigned long)r->owner);
    if (r->owner != (uid_t)-1 && (st->st_mode & S_IWOTH))
        return refuse(r, status, "%s is writable by everybody: chmod 600 it", r->path);
    return 0;
}

/* A mailbox we created (as root) goes to its owner. */
static int give_away(const struct mbox_req *r, int fd)
{
    if (r->new_uid == (uid_t)-1 || geteuid() != 0)
        return 0;
    return fchown(fd, r->new_uid, r->new_gid);
}

/* Open (or create 0600) the file, never blocking, never following. */
static enum deliv_result open_box(const struct mbox_req *r, int *fdp, char **status)
{
    const int base = O_APPEND | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY;
    struct stat lst, st;

    for (int tries = 0; tries < 3; tries++) {
        int fd;
        if (lstat(r->path, &lst) < 0) {
            if (errno != ENOENT)
                break;
            fd = open(r->path, O_RDWR | O_CREAT | O_EXCL | base, 0600);
            if (fd < 0 && errno == EEXIST)
                continue; /* someone created it meanwhile: check theirs */
            if (fd < 0)
                break;
            if (give_away(r, fd) < 0) {
                int e = errno;
                (void)unlink(r->path);
                close(fd);
                errno = e;
                break;
            }
        } else {
            if (!S_ISREG(lst.st_mode)) { /* never open a FIFO, device or symlink */
                (void)check_file(r, &lst, &lst, status);
                return **status == '5' ? DELIV_FAIL : DELIV_DEFER;
            }
            fd = open(r->path, O_RDWR | base);
            if (fd < 0 && errno == EACCES)
                fd = open(r->path, O_WRONLY | base);
            if (fd < 0 && errno == ENOENT)
                continue;
            if (fd < 0 && errno == ELOOP) {
                lst.st_mode = S_IFLNK;
                (void)check_file(r, &lst, &lst, status);
                return **status == '5' ? DELIV_FAIL : DELIV_DEFER;
            }
            if (fd < 0 || fstat(fd, &st) < 0) {
                if (fd >= 0)
                    close(fd);
                break;
            }
            if (check_file(r, &lst, &st, status) < 0) {
                close(fd);
                return **status == '5' ? DELIV_FAIL : DELIV_DEFER;
            }
        }
        (void)fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
        *fdp = fd;
        return DELIV_OK;
    }
    *status = xasprintf("4.3.0 cannot open %s: %s", r->path, strerror(errno));
    return DELIV_DEFER;
}

enum deliv_result mbox_open(const struct mbox_req *r, struct mbox_box *b, char **status)
{
    long long deadline = now_ms() + (r->lock_wait_ms > 0 ? r->lock_wait_ms : MBOX_LOCK_WAIT_MS);
    struct stat st;
    enum deliv_result res;

    b->fd = b->lockfd = -1;
    b->size = 0;
    *status = NULL;
    int dot = dotlock(r, &deadline, &b->lockfd, status);
    if (dot < 0)
        return DELIV_DEFER;
    if (dot == 1)
        log_warn("%s.lock: the directory does not allow dot-locks; using fcntl only", r->path);
    res = open_box(r, &b->fd, status);
    if (res == DELIV_OK && fcntl_lock(b->fd, deadline) < 0) {
        *status = errno == EWOULDBLOCK
                      ? xasprintf("4.2.0 %s is locked by another program; will retry", r->path)
                      : xasprintf("4.3.0 cannot lock %s: %s", r->path, strerror(errno));
        res = DELIV_DEFER;
    }
    if (res == DELIV_OK && (fstat(b->fd, &st) < 0 || (b->lockfd >= 0 && note_size(b->lockfd, &st) < 0))) {
        *status = xasprintf("4.3.0 cannot lock %s: %s", r->path, strerror(errno));
        res = DELIV_DEFER;
    }
    if (res == DELIV_OK) {
        b->size = st.st_size;
        return DELIV_OK;
    }
    if (b->lockfd >= 0)
        dotunlock(r->path, b->lockfd);
    if (b->fd >= 0)
        close(b->fd);
    b->fd = b->lockfd = -1;
    return res;
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

/* Append one message (no fsync); on error the file is cut back to before
 * it.  0 appended, -1 a write error (the rest cannot go either), -2 over the
 * limit (cut away; the next may fit). */
static int append_one(const struct mbox_req *r, int fd, int readable, struct mbox_msg *m)
{
    struct stat st, after;
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
    if (rc == 0 && r->limit > 0)
        rc = fstat(fd, &after);
    e = errno;
    free(prepend);
    if (rc == 0 && r->limit > 0 && after.st_size > r->limit) {
        cut_back(r->path, fd, st.st_size);
        m->status = xasprintf("%s mailbox %s is full: %lld bytes of %lld, the message "
                              "has %lld", r->limit_bounce ? "5.2.2" : "4.2.2", r->path,
                              (long long)st.st_size, r->limit,
                              (long long)(after.st_size - st.st_size));
        m->res = r->limit_bounce ? DELIV_FAIL : DELIV_DEFER;
        return -2;
    }
    if (rc == 0)
        return 0;
    cut_back(r->path, fd, st.st_size);
    m->status = write_error(r->path, e);
    return -1;
}

/* ---- writing (never as root) ---- */

/* Append every message, then one fsync; results per message. */
void mbox_write(const struct mbox_req *r, int fd, struct mbox_msg *msgs, size_t n)
{
    struct stat st;
    int readable = (fcntl(fd, F_GETFL) & O_ACCMODE) == O_RDWR;

    for (size_t j = 0; j < n; j++) {
        msgs[j].res = DELIV_DEFER;
        msgs[j].status = NULL;
    }
    if (n == 0)
        return;
    if (fstat(fd, &st) < 0) {
        char *why = xasprintf("4.3.0 cannot stat %s: %s", r->path, strerror(errno));
        for (size_t k = 0; k < n; k++)
            msgs[k].status = xstrdup(why);
        free(why);
        return;
    }
    char *done = xcalloc(n, 1);
    size_t ok = 0, k = 0;
    for (; k < n; k++) {
        int rc = append_one(r, fd, readable, &msgs[k]);
        if (rc == -1)
            break;
        done[k] = rc == 0;
        ok += rc == 0;
    }
    for (size_t j = k + 1; j < n; j++) /* after a write error (disk full): retry later */
        msgs[j].status = xstrdup(msgs[k].status);
    if (ok > 0 && fsync(fd) < 0) {
        int e = errno;
        cut_back(r->path, fd, st.st_size);
        for (size_t j = 0; j < n; j++) {
            free(msgs[j].status);
            msgs[j].status = write_error(r->path, e);
            msgs[j].res = DELIV_DEFER;
        }
        ok = 0;
    }
    for (size_t j = 0; ok > 0 && j < n; j++)
        if (done[j]) {
            msgs[j].res = DELIV_OK;
            msgs[j].status = xasprintf("2.0.0 delivered to %s", r->path);
        }
    free(done);
}

void mbox_close(const struct mbox_req *r, struct mbox_box *b, int cut)
{
    if (b->fd < 0)
        return;
    if (cut)
        cut_back(r->path, b->fd, b->size);
    if (b->lockfd >= 0) /* first: a dot-lock left behind would cut what we wrote */
        dotunlock(r->path, b->lockfd);
    close(b->fd); /* releases the fcntl lock */
    b->fd = b->lockfd = -1;
}

void mbox_deliver_many(const struct mbox_req *r, struct mbox_msg *msgs, size_t n)
{
    struct mbox_box b;
    char *status = NULL;

    if (n == 0)
        return;
    if (mbox_open(r, &b, &status) != DELIV_OK) {
        enum deliv_result res = status[0] == '5' ? DELIV_FAIL : DELIV_DEFER;
        for (size_t k = 0; k < n; k++) {
            msgs[k].res = res;
            msgs[k].status = xstrdup(status);
        }
        free(status);
        return;
    }
    mbox_write(r, b.fd, msgs, n);
    mbox_close(r, &b, 0);
}

enum deliv_result mbox_deliver(const struct mbox_req *r, char **status)
{
    struct mbox_msg m = {.sender = r->sender, .rcpt = r->rcpt, .data = r->data};
    mbox_deliver_many(r, &m, 1);
    *status = m.status;
    return m.res;
}
