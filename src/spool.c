/* spool.c - the queue directory: enqueue, lock, record results, remove.
 *
 * Runs as root only in spool_setup() (creating the directories for user=).
 * spool_pickup() reads users' untrusted files and must run as the queue owner.
 *
 * Durability (postoffice-queue(5)): an enqueue costs two synchronous
 * flushes: syncfs (data and control temp together), fsync(directory).  The data
 * file is renamed td<qid> -> df<qid> without a directory flush of its own: if a
 * crash keeps the later cf rename but loses the df one, td<qid> still holds the
 * flushed data and spool_open()/spool_cleanup() finish the rename.  A result
 * costs one fdatasync (an appended line); a rewrite two (temp, directory).
 *
 * Locking: fcntl write lock on the control file, taken non-blocking.  POSIX
 * drops a process's fcntl locks on a file when it closes ANY descriptor of that
 * file, so a locker opens a control file exactly once.  spool_rewrite locks the
 * new inode before renaming it over the old one, and spool_open re-checks after
 * locking that the inode it locked is still the one named cf<qid>. */
#include "compat.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "ctl.h"
#include "log.h"
#include "spool.h"
#include "util.h"

#define CF_MAX (64L * 1024 * 1024)      /* a queue control file, status lines included */
#define QID_RETRIES 10

struct spool_new {
    char *dir;
    char qid[QID_MAX];
    char *tmp;      /* dir/td<qid>: the data while it is written */
    int fd;         /* -1 once failed */
    int err;        /* errno of a failed write (the temp is already gone) */
    mode_t mode;    /* 0600, or 0640 in the (sticky) maildrop: the runner reads by group */
    long long size;
};

struct qmsg {
    char *dir;
    char qid[QID_MAX];
    char *cf, *df;
    int fd;         /* the locked control file, O_RDWR|O_APPEND */
    int lazy;       /* spool_record leaves the sync to spool_sync/close */
    int dirty;      /* records written but not yet synced */
    struct envelope env;
};

/* ---- names ---- */

static const char b62[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/* Fixed-width base 62, most significant first, so that ids sort as numbers. */
static void put62(char *out, unsigned long long v, int width)
{
    for (int i = width - 1; i >= 0; i--) {
        out[i] = b62[v % 62];
        v /= 62;
    }
}

void spool_make_qid(char out[QID_MAX])
{
    struct timespec ts;
    unsigned int rnd = 0;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (getrandom(&rnd, sizeof rnd, GRND_NONBLOCK) != (ssize_t)sizeof rnd)
        rnd = (unsigned)ts.tv_nsec ^ ((unsigned)getpid() << 8);
    /* seconds (6) + microseconds (4) + pid (4) + random (4): ordered by time,
     * unique per process and microsecond, random across hosts. */
    put62(out, (unsigned long long)ts.tv_sec, 6);
    put62(out + 6, (unsigned long long)ts.tv_nsec / 1000, 4);
    put62(out + 10, (unsigned long long)getpid() % (62ULL * 62 * 62 * 62), 4);
    put62(out + 14, rnd & 0xffffff, 4);
    out[18] = '\0';
}

int spool_valid_qid(const char *s)
{
    return qid_valid(s);
}

static char *path2(const char *dir, const char *prefix, const char *qid)
{
    return xasprintf("%s/%s%s", dir, prefix, qid);
}

/* ---- durability helpers ---- */

/* Flush dir's entries.  Users submitting into the maildrop may not open it
 * (mode 3733, no read), so they fall back to syncfs() on a file in it. */
static int sync_dir(const char *dir, int fallback_fd)
{
    if (fsync_dir(dir) == 0)
        return 0;
    if (errno == EACCES && fallback_fd >= 0)
        return syncfs(fallback_fd);
    return -1;
}

static int close_checked(int fd)
{
    return close(fd) < 0 && errno != EINTR ? -1 : 0;
}

/* ---- enqueue ---- */

/* A temporary is locked by its writer for as long as it is being written, so
 * spool_cleanup() can tell a live enqueue from a crashed one at once. */
static int lock_writer(int fd)
{
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
    return fcntl(fd, F_SETLK, &fl);
}

/* Files root writes into the queue belong to the queue's owner, like the ones
 * the unprivileged SMTP sessions write, so the unprivileged remote-delivery
 * child can read them.  (The maildrop is not the queue: users own theirs.) */
static int own_like_dir(int fd, const char *path)
{
    if (geteuid() != 0)
        return 0;
    char *dir = xstrdup(path);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = '\0';
    struct stat st;
    int r = stat(slash ? dir : ".", &st);
    if (r == 0 && !(st.st_mode & S_ISVTX) && st.st_uid != 0)
        r = fchown(fd, st.st_uid, st.st_gid);
    free(dir);
    return r;
}

struct spool_new *spool_new(const char *dir)
{
    struct stat st;
    if (stat(dir, &st) < 0)
        return NULL;
    if (!S_ISDIR(st.st_mode)) {
        errno = ENOTDIR;
        return NULL;
    }
    struct spool_new *sn = xcalloc(1, sizeof *sn);
    sn->dir = xstrdup(dir);
    sn->mode = (st.st_mode & S_ISVTX) ? 0640 : 0600;
    for (int tries = 0; tries < QID_RETRIES; tries++) {
        spool_make_qid(sn->qid);
        free(sn->tmp);
        sn->tmp = path2(dir, "td", sn->qid);
        sn->fd = open(sn->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (sn->fd >= 0 || errno != EEXIST)
            break;
    }
    if (sn->fd < 0 || lock_writer(sn->fd) < 0 || own_like_dir(sn->fd, sn->tmp) < 0 ||
        fchmod(sn->fd, sn->mode) < 0) {
        int e = errno;
        if (sn->fd >= 0) {
            close(sn->fd);
            unlink(sn->tmp);
        }
        free(sn->tmp);
        free(sn->dir);
        free(sn);
        errno = e;
        return NULL;
    }
    return sn;
}

const char *spool_new_qid(const struct spool_new *sn)
{
    return sn->qid;
}

/* A failed enqueue removes its temporary at once: a full disk must not be left
 * holding half a message even if the caller forgets spool_abort. */
static void sn_fail(struct spool_new *sn, int e)
{
    if (sn->fd >= 0) {
        close(sn->fd);
        unlink(sn->tmp);
        sn->fd = -1;
    }
    sn->err = e;
}

int spool_new_write(struct spool_new *sn, const void *p, size_t n)
{
    if (sn->fd < 0) {
        errno = sn->err ? sn->err : EBADF;
        return -1;
    }
    if (write_all(sn->fd, p, n) < 0) {
        int e = errno;
        sn_fail(sn, e);
        errno = e;
        return -1;
    }
    sn->size += (long long)n;
    return 0;
}

long long spool_new_size(const struct spool_new *sn)
{
    return sn->size;
}

static void sn_free(struct spool_new *sn)
{
    free(sn->dir);
    free(sn->tmp);
    free(sn);
}

/* Create path (O_EXCL) holding text, not yet flushed; the descriptor in *fdp.
 * On failure the file is removed. */
static int write_new_file(const char *path, mode_t mode, const struct buf *text, int *fdp)
{
    int fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return -1;
    if (lock_writer(fd) < 0 || own_like_dir(fd, path) < 0 || fchmod(fd, mode) < 0 ||
        write_all(fd, text->s, text->len) < 0) {
        int e = errno;
        close(fd);
        unlink(path);
        errno = e;
        return -1;
    }
    *fdp = fd;
    return 0;
}

/* Make the data and control temporaries durable before either gets its name.
 * One syncfs() of the queue's file system does both in a single journal
 * commit, where an fdatasync of each file costs two (measured on ext4 here:
 * 398 -> 635 enqueues/s for one process, 465 -> 591 for ten); concurrent
 * sessions' calls share commits.  The descriptors stay open, keeping the
 * writer's lock on the data until the control file has its name.  0 or -1. */
static int sn_flush(struct spool_new *sn)
{
    return syncfs(sn->fd); /* both files are on the queue's file system */
}

/* The order is what makes a crash at any instant safe: both contents are on
 * disk (sn_flush) before either name appears, the data's name comes before
 * the control file's (whose appearance makes the message exist), and the
 * directory flush
 * makes both names durable before we say yes.  The control temp is created
 * before the flushes, so its creation does not queue behind them. */
int spool_commit(struct spool_new *sn, struct envelope *e)
{
    char *df = path2(sn->dir, "df", sn->qid);
    char *tc = path2(sn->dir, "tc", sn->qid);
    char *cf = path2(sn->dir, "cf", sn->qid);
    struct buf text;
    int err = 0, fd = -1, df_named = 0, cf_named = 0;

    buf_init(&text);
    str_copy(e->qid, sn->qid, sizeof e->qid);
    ctl_format(e, &text);
    if (sn->fd < 0)
        err = sn->err ? sn->err : EBADF;
    else if (write_new_file(tc, sn->mode, &text, &fd) < 0)
        err = errno;
    else if (sn_flush(sn) < 0)
        err = errno;
    else if (rename(sn->tmp, df) < 0)
        err = errno;
    else if ((df_named = 1, rename(tc, cf) < 0))
        err = errno;
    else if ((cf_named = 1, sync_dir(sn->dir, fd) < 0))
        err = errno;
    if (fd >= 0)
        close(fd);
    if (sn->fd >= 0 && close_checked(sn->fd) < 0 && !err)
        err = errno;
    sn->fd = -1;
    if (err) {
        if (cf_named)
            unlink(cf);
        else if (fd >= 0)
            unlink(tc);
        unlink(df_named ? df : sn->tmp);
        e->qid[0] = '\0';
    }
    buf_free(&text);
    free(df);
    free(tc);
    free(cf);
    sn_free(sn);
    errno = err;
    return err ? -1 : 0;
}

void spool_abort(struct spool_new *sn)
{
    if (!sn)
        return;
    if (sn->fd >= 0) {
        close(sn->fd);
        unlink(sn->tmp);
    }
    sn_free(sn);
}

/* ---- reading a message ---- */

/* Read all of fd (from offset 0) into b, at most max bytes. */
static int read_fd(int fd, struct buf *b, size_t max)
{
    char tmp[8192];
    off_t off = 0;
    for (;;) {
        ssize_t r = pread(fd, tmp, sizeof tmp, off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        if (r == 0)
            return 0;
        if (b->len + (size_t)r > max) {
            errno = EFBIG;
            return -1;
        }
        buf_add(b, tmp, (size_t)r);
        off += r;
    }
}

/* The data file of a message whose control file exists.  If only td<qid> is
 * there, a crash kept the control file's rename but lost the data file's: the
 * temp holds the flushed data, so finish the rename. */
static int data_stat(const char *dir, const char *qid, const char *df, struct stat *st)
{
    if (stat(df, st) == 0)
        return 0;
    if (errno != ENOENT)
        return -1;
    char *td = path2(dir, "td", qid);
    int r = rename(td, df);
    free(td);
    if (r == 0) {
        log_notice("%s: recovered data file after a crash", qid);
        fsync_dir(dir);
        return stat(df, st);
    }
    errno = ENOENT;
    return -1;
}

static void qmsg_free(struct qmsg *m)
{
    if (m->fd >= 0)
        close(m->fd);
    env_free(&m->env);
    free(m->dir);
    free(m->cf);
    free(m->df);
    free(m);
}

/* Open and lock cf.  0 locked, 1 busy, -1 error.  After the lock is ours,
 * make sure the name still points at the locked inode: a rewrite or removal
 * may have replaced or unlinked it while we waited. */
static int lock_cf(const char *cf, int *fdp)
{
    for (int tries = 0; tries < 5; tries++) {
        int fd = open(cf, O_RDWR | O_APPEND | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
        if (fd < 0)
            return -1;
        struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
        if (fcntl(fd, F_SETLK, &fl) < 0) {
            int e = errno;
            close(fd);
            if (e == EAGAIN || e == EACCES)
                return 1;
            errno = e;
            return -1;
        }
        struct stat a, b;
        if (fstat(fd, &a) < 0 || !S_ISREG(a.st_mode)) {
            close(fd);
            errno = EINVAL;
            return -1;
        }
        if (stat(cf, &b) == 0 && a.st_ino == b.st_ino && a.st_dev == b.st_dev && a.st_nlink > 0) {
            set_nonblock(fd, 0);
            *fdp = fd;
            return 0;
        }
        close(fd); /* replaced or removed meanwhile: look again */
    }
    errno = EAGAIN;
    return -1;
}

/* Parse the locked control file into e; with cut, also cut an interrupted
 * append off (only at open: later, a delivery child may be mid-append). */
static int load_locked(struct qmsg *m, struct envelope *e, int cut)
{
    struct buf text;
    const char *why = NULL;
    size_t valid = 0;
    int err = 0;
    buf_init(&text);
    if (read_fd(m->fd, &text, CF_MAX) < 0)
        err = errno;
    else if (ctl_parse_ex(text.s, text.len, e, &why, &valid) < 0
             || strcmp(e->qid, m->qid) != 0) {
        log_warn("%s: bad control file: %s", m->qid, why ? why : "queue id does not match");
        err = EINVAL;
    } else if (cut && valid < text.len && ftruncate(m->fd, (off_t)valid) < 0) {
        err = errno; /* an interrupted append must go before we append */
    }
    buf_free(&text);
    errno = err;
    return err ? -1 : 0;
}

int spool_open(const char *queuedir, const char *qid, struct qmsg **out)
{
    if (!spool_valid_qid(qid)) {
        errno = EINVAL;
        return -1;
    }
    struct qmsg *m = xcalloc(1, sizeof *m);
    m->fd = -1;
    env_init(&m->env);
    m->dir = xstrdup(queuedir);
    str_copy(m->qid, qid, sizeof m->qid);
    m->cf = path2(queuedir, "cf", qid);
    m->df = path2(queuedir, "df", qid);
    int r = lock_cf(m->cf, &m->fd);
    if (r != 0) {
        int e = errno;
        qmsg_free(m);
        errno = e;
        return r;
    }
    struct stat st;
    int err = 0;
    if (load_locked(m, &m->env, 1) < 0) {
        err = errno;
    } else if (data_stat(queuedir, qid, m->df, &st) < 0) {
        log_warn("%s: control file without data file", qid);
        err = EINVAL;
    }
    if (err) {
        qmsg_free(m);
        errno = err;
        return -1;
    }
    *out = m;
    return 0;
}

int spool_reload(struct qmsg *m)
{
    struct envelope e;
    env_init(&e);
    if (load_locked(m, &e, 0) < 0) {
        int err = errno;
        env_free(&e);
        errno = err;
        return -1;
    }
    env_free(&m->env);
    m->env = e;
    return 0;
}

struct envelope *spool_env(struct qmsg *m)
{
    return &m->env;
}

const char *spool_data_path(const struct qmsg *m)
{
    return m->df;
}

long long spool_data_size(const struct qmsg *m)
{
    struct stat st;
    return stat(m->df, &st) < 0 ? -1 : (long long)st.st_size;
}

/* ---- changing a message ---- */

int spool_record(struct qmsg *m, size_t i, enum rcpt_state st, const char *status,
                 const char *remote_mta)
{
    if (i >= m->env.nrcpts) {
        errno = EINVAL;
        return -1;
    }
    struct buf line;
    struct stat st0;
    buf_init(&line);
    ctl_format_status(i, st, status, remote_mta, &line);
    /* one write() per record (O_APPEND): delivery children sharing this
     * descriptor append whole lines */
    int r = fstat(m->fd, &st0);
    if (r == 0)
        r = write_all(m->fd, line.s, line.len);
    if (r == 0 && m->lazy)
        m->dirty = 1;
    else if (r == 0)
        r = fdatasync(m->fd);
    if (r < 0) {
        int e = errno;
        /* cut off a partial line (disk full) so the next record starts clean */
        if (ftruncate(m->fd, st0.st_size) < 0)
            log_warn("%s: cannot truncate a partial status record: %s", m->qid,
                     strerror(errno));
        buf_free(&line);
        errno = e;
        return -1;
    }
    buf_free(&line);
    struct rcpt *rc = &m->env.rcpts[i];
    rc->state = st;
    env_set_status(&m->env, i, status);
    char *mta = remote_mta && *remote_mta ? xstrdup(remote_mta) : NULL;
    free(rc->remote_mta); /* after the copy: remote_mta may be this very string */
    rc->remote_mta = mta;
    return 0;
}

int spool_rewrite(struct qmsg *m)
{
    char *tc = path2(m->dir, "tc", m->qid);
    struct buf text;
    int fd = -1, err = 0;
    buf_init(&text);
    ctl_format(&m->env, &text);
    unlink(tc); /* a crashed rewrite's leftover: we hold the message's lock */
    if (write_new_file(tc, 0600, &text, &fd) < 0) {
        err = errno;
        goto out;
    }
    if (fsync(fd) < 0) {
        err = errno;
        close(fd);
        unlink(tc);
        goto out;
    }
    /* lock the new inode before it gets the name, so there is no instant at
     * which cf<qid> is unlocked */
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
    if (fcntl(fd, F_SETLK, &fl) < 0 || rename(tc, m->cf) < 0) {
        err = errno;
        close(fd);
        unlink(tc);
        goto out;
    }
    close(m->fd); /* drops the old inode's lock only */
    m->fd = fd;
    if (fsync_dir(m->dir) < 0)
        err = errno;
out:
    buf_free(&text);
    free(tc);
    if (err) {
        errno = err;
        return -1;
    }
    return 0;
}

void spool_set_lazy(struct qmsg *m, int on)
{
    m->lazy = on;
}

int spool_sync(struct qmsg *m)
{
    if (!m->dirty)
        return 0;
    m->dirty = 0;
    return fdatasync(m->fd);
}

int spool_remove(struct qmsg *m)
{
    m->dirty = 0; /* nothing left to make durable */
    /* control first: a message without a control file does not exist; a
     * leftover data file is an orphan spool_cleanup removes */
    if (unlink(m->cf) < 0 && errno != ENOENT)
        return -1;
    if (unlink(m->df) < 0 && errno != ENOENT)
        return -1;
    return 0;
}

void spool_close(struct qmsg *m)
{
    if (!m)
        return;
    if (spool_sync(m) < 0)
        log_err("%s: cannot sync the control file: %s", m->qid, strerror(errno));
    qmsg_free(m);
}

/* ---- listing ---- */

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Does the control file at path carry its end marker? */
static int cf_complete(const char *path)
{
    struct buf b;
    buf_init(&b);
    /* no value can hold a LF, so "\n.\n" is only ever the end marker */
    int ok = read_file(path, &b, CF_MAX) == 0 && memmem(b.s, b.len, "\n.\n", 3) != NULL;
    buf_free(&b);
    return ok;
}

/* Names "cf<qid>" in dir (qids into l, unsorted). */
static int list_cf(const char *dir, struct strlist *l)
{
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        if (de->d_name[0] == 'c' && de->d_name[1] == 'f' && spool_valid_qid(de->d_name + 2))
            sl_add(l, de->d_name + 2);
    closedir(d);
    return 0;
}

int spool_list(const char *queuedir, struct strlist *qids)
{
    struct strlist all;
    sl_init(&all);
    if (list_cf(queuedir, &all) < 0)
        return -1;
    if (all.n)
        qsort(all.v, all.n, sizeof *all.v, cmp_str); /* qids start with the time */
    for (size_t i = 0; i < all.n; i++) {
        char *cf = path2(queuedir, "cf", all.v[i]);
        if (cf_complete(cf))
            sl_add(qids, all.v[i]);
        free(cf);
    }
    sl_free(&all);
    return 0;
}

int spool_locked(const char *queuedir, const char *qid)
{
    if (!spool_valid_qid(qid)) {
        errno = EINVAL;
        return -1;
    }
    char *cf = path2(queuedir, "cf", qid);
    int fd = open(cf, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    free(cf);
    if (fd < 0)
        return -1;
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
    int r = fcntl(fd, F_GETLK, &fl);
    close(fd);
    if (r < 0)
        return -1;
    return fl.l_type != F_UNLCK;
}

int spool_peek(const char *queuedir, const char *qid, struct envelope *e, long long *size)
{
    if (!spool_valid_qid(qid)) {
        errno = EINVAL;
        return -1;
    }
    char *cf = path2(queuedir, "cf", qid);
    char *df = path2(queuedir, "df", qid);
    struct buf b;
    const char *why;
    struct stat st;
    int r = -1;
    buf_init(&b);
    if (read_file(cf, &b, CF_MAX) == 0) {
        if (ctl_parse(b.s, b.len, e, &why) == 0)
            r = 0;
        else
            errno = EINVAL;
    }
    if (size)
        *size = stat(df, &st) == 0 ? (long long)st.st_size : -1;
    buf_free(&b);
    free(cf);
    free(df);
    return r;
}

/* ---- cleanup ---- */

static int exists(const char *dir, const char *prefix, const char *qid)
{
    char *p = path2(dir, prefix, qid);
    struct stat st;
    int r = lstat(p, &st) == 0;
    free(p);
    return r;
}

/* Remove dir/name if its last change is older than max_age.  1 if removed. */
static int remove_old(const char *dir, const char *name, long max_age, time_t now)
{
    char *p = xasprintf("%s/%s", dir, name);
    struct stat st;
    int r = 0;
    if (lstat(p, &st) == 0) {
        time_t t = st.st_mtime > st.st_ctime ? st.st_mtime : st.st_ctime;
        if ((max_age <= 0 || now - t >= max_age) && unlink(p) == 0) {
            log_info("removed stale %s", p);
            r = 1;
        }
    }
    free(p);
    return r;
}

/* 1 if no process holds the writer's lock on dir/name (a crashed writer's
 * leftover), 0 if one does, -1 if we cannot tell (then age decides). */
static int orphaned(const char *dir, const char *name)
{
    char *p = xasprintf("%s/%s", dir, name);
    int fd = open(p, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    free(p);
    if (fd < 0)
        return -1;
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
    int r = fcntl(fd, F_GETLK, &fl) < 0 ? -1 : fl.l_type == F_UNLCK;
    close(fd);
    return r;
}

static int remove_orphan(const char *dir, const char *name, long max_age, time_t now)
{
    int o = orphaned(dir, name);
    if (o == 0)
        return 0;
    return remove_old(dir, name, o == 1 ? 0 : max_age, now);
}

static int cleanup_dir(const char *dir, long max_age, int maildrop)
{
    struct strlist names;
    sl_init(&names);
    DIR *d = opendir(dir);
    if (!d)
        return errno == ENOENT && maildrop ? 0 : -1;
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        if (de->d_name[0] != '.')
            sl_add(&names, de->d_name);
    closedir(d);
    time_t now = time(NULL);
    int n = 0;
    for (size_t i = 0; i < names.n; i++) {
        const char *nm = names.v[i], *qid = nm + 2;
        if (strncmp(nm, "td", 2) == 0 && spool_valid_qid(qid) && exists(dir, "cf", qid)) {
            struct stat st;
            char *df = path2(dir, "df", qid);
            data_stat(dir, qid, df, &st); /* a committed message's data: keep */
            free(df);
        } else if (strncmp(nm, "td", 2) == 0 || strncmp(nm, "tc", 2) == 0) {
            n += remove_orphan(dir, nm, max_age, now);
        } else if (strncmp(nm, "df", 2) == 0 && spool_valid_qid(qid) && !exists(dir, "cf", qid)) {
            n += remove_orphan(dir, nm, max_age, now);
        } else if (maildrop && strncmp(nm, "cf", 2) == 0 && spool_valid_qid(qid)) {
            /* a user's submission that never became complete */
            char *cf = path2(dir, "cf", qid);
            if (!cf_complete(cf) && remove_old(dir, nm, max_age, now)) {
                n++;
                char *df = path2(dir, "df", qid);
                n += unlink(df) == 0;
                free(df);
            }
            free(cf);
        }
    }
    sl_free(&names);
    return n;
}

int spool_cleanup(const char *queuedir, long max_age)
{
    int n = cleanup_dir(queuedir, max_age, 0);
    if (n < 0)
        return -1;
    char *md = xasprintf("%s/maildrop", queuedir);
    int m = cleanup_dir(md, max_age, 1);
    free(md);
    return m < 0 ? n : n + m;
}

long long spool_free_bytes(const char *queuedir)
{
    struct statvfs sv;
    if (statvfs(queuedir, &sv) < 0)
        return -1;
    return (long long)sv.f_bavail * (long long)sv.f_frsize;
}

/* ---- setup and trigger ---- */

/* Create (if missing) a directory or FIFO at path, then give it owner and mode
 * through a descriptor, so a swapped-in symlink is never followed.  An existing
 * one of ours gets its mode corrected (an old 0700 queue would lock users out
 * of the maildrop). */
static int make_node(const char *path, int fifo, mode_t mode, uid_t uid, gid_t gid)
{
    int r = fifo ? mkfifo(path, 0600) : mkdir(path, 0700);
    if (r < 0 && errno != EEXIST)
        return -1;
    int created = r == 0;
    int fd = open(path, (fifo ? O_RDONLY | O_NONBLOCK : O_RDONLY | O_DIRECTORY)
                            | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return -1;
    struct stat st;
    if (fstat(fd, &st) < 0 || (fifo ? !S_ISFIFO(st.st_mode) : !S_ISDIR(st.st_mode))) {
        close(fd);
        errno = fifo ? EEXIST : ENOTDIR;
        return -1;
    }
    /* fchown first: it clears set-id bits, which fchmod then sets */
    if ((created && fchown(fd, uid, gid) < 0)
        || ((created || st.st_uid == uid) && (st.st_mode & 07777) != mode
            && fchmod(fd, mode) < 0)) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    close(fd);
    return 0;
}

int spool_setup(const char *queuedir, uid_t uid, gid_t gid)
{
    char *md = xasprintf("%s/maildrop", queuedir);
    char *tr = xasprintf("%s/trigger", queuedir);
    /* 0711: users may reach maildrop/ and trigger but not list the queue;
     * maildrop 3733: anyone may drop files, nobody may list or remove others',
     * and the setgid bit gives them the queue group, which reads them (0640) */
    int r = make_node(queuedir, 0, 0711, uid, gid);
    if (r == 0)
        r = make_node(md, 0, 03733, uid, gid);
    if (r == 0)
        r = make_node(tr, 1, 0622, uid, gid);
    int e = errno;
    free(md);
    free(tr);
    errno = e;
    return r;
}

int spool_trigger(const char *queuedir)
{
    char *tr = xasprintf("%s/trigger", queuedir);
    int fd = open(tr, O_WRONLY | O_NONBLOCK | O_CLOEXEC | O_NOFOLLOW);
    free(tr);
    if (fd < 0)
        return -1; /* ENXIO: nobody reads it, no daemon */
    struct stat st;
    int r = -1;
    if (fstat(fd, &st) == 0 && S_ISFIFO(st.st_mode)) {
        ssize_t w = write(fd, "q", 1);
        r = (w == 1 || (w < 0 && errno == EAGAIN)) ? 0 : -1; /* full: already woken */
    } else {
        errno = EINVAL;
    }
    int e = errno;
    close(fd);
    errno = e;
    return r;
}
