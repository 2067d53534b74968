/* spool.c - the queue directory: enqueue, lock, record results, remove.
 *
 * Runs as root only in spool_setup() (creating the directories for user=).
 * pickup_maildrop() (pickup.c) reads users' files; it runs as the queue owner.
 *
 * One file per message, qf<qid> (queue_file.h: header, data, control records, end
 * line with checksum, status records).  Durability (postoffice-queue(5)): an
 * enqueue writes tf<qid>, renames it to qf<qid>, then fsyncs the file, which
 * makes the name durable too on ext3/ext4/xfs/btrfs; elsewhere the directory
 * is fsynced as well.  A system crash in between can leave a torn qf, which the
 * checksum identifies and spool_cleanup() sets aside; it was never
 * acknowledged.  A result costs one fdatasync (an appended line); a rewrite
 * two (temp, directory).
 *
 * Locking: fcntl write lock on the queue file, taken non-blocking.  POSIX
 * drops a process's fcntl locks on a file when it closes ANY descriptor of that
 * file, so a locker opens a queue file exactly once and reads the message
 * through that descriptor (spool_data()).  spool_rewrite locks the new inode
 * before renaming it over the old one, and spool_open re-checks after locking
 * that the inode it locked is still the one named qf<qid>. */
#include "compat.h"

#include <dirent.h>
#include <limits.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/statvfs.h>
#include <sys/vfs.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "queue_records.h"
#include "log.h"
#include "logfmt.h"
#include "orig_queue.h"
#include "queue_file.h"
#include "spool.h"
#include "util.h"

#define CF_MAX (64L * 1024 * 1024) /* control part of a queue file, status lines included */
#define QID_RETRIES 10

struct spool_new {
    char *dir;
    char qid[QID_MAX];
    char *tmp;      /* dir/tf<qid>: the message while it is written */
    int fd;         /* -1 once failed */
    int err;        /* errno of a failed write (the temp is already gone) */
    mode_t mode;    /* 0600, or 0640 in the (sticky) maildrop: the runner reads by group */
    long long size; /* data bytes so far */
    struct qf_datasum *sum; /* their checksum */
};

struct qmsg {
    char *dir;
    char qid[QID_MAX];
    char *qf;
    int fd;         /* the locked queue file, O_RDWR|O_APPEND */
    long long data_off, data_len;
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

/* Does an fsync of a file renamed since it was created (and not flushed in
 * between) also make its new name durable on fd's file system?  The ext4
 * driver (ext3/ext4, and ext2 when ext4 drives it) with a journal: the rename
 * dirtied the inode in the transaction that fsync commits; without a journal:
 * fsync writes the parent directory of a newly created inode (its current
 * parent, after the rename).  xfs and btrfs log the rename with the inode.
 * Elsewhere (ext2's own driver, tmpfs, NFS, unknown) the directory is flushed
 * too.  statfs names the file system; /sys/fs/ext4/DEV tells the ext4 driver
 * from ext2's (same magic number). */
#define EXT_MAGIC 0xEF53UL
#define XFS_MAGIC 0x58465342UL
#define BTRFS_MAGIC 0x9123683EUL
static int name_durable_with_file(int fd)
{
    struct statfs sf;
    struct stat st;
    if (fstatfs(fd, &sf) < 0)
        return 0;
    unsigned long type = (unsigned long)sf.f_type;
    if (type == XFS_MAGIC || type == BTRFS_MAGIC)
        return 1;
    if (type != EXT_MAGIC || fstat(fd, &st) < 0)
        return 0;
    char link[PATH_MAX], sys[64];
    snprintf(sys, sizeof sys, "/sys/dev/block/%u:%u", major(st.st_dev), minor(st.st_dev));
    ssize_t n = readlink(sys, link, sizeof link - 1);
    if (n <= 0)
        return 0;
    link[n] = '\0';
    const char *dev = strrchr(link, '/');
    char *drv = xasprintf("/sys/fs/ext4/%s", dev ? dev + 1 : link);
    int yes = access(drv, F_OK) == 0;
    free(drv);
    return yes;
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

/* Create and lock the temporary dir/tf<qid> (O_EXCL), owned and moded for dir.
 * flags: O_APPEND or 0.  The descriptor, or -1 with errno (nothing left). */
static int create_temp(const char *tf, mode_t mode, int flags)
{
    int fd = open(tf, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW | flags, 0600);
    if (fd < 0)
        return -1;
    if (lock_writer(fd) < 0 || own_like_dir(fd, tf) < 0 || fchmod(fd, mode) < 0) {
        int e = errno;
        close(fd);
        unlink(tf);
        errno = e;
        return -1;
    }
    return fd;
}

static void sn_free(struct spool_new *sn)
{
    free(sn->dir);
    free(sn->tmp);
    qf_datasum_free(sn->sum);
    free(sn);
}

/* Start writing message qid into dir (mode: of its files).  NULL with errno;
 * EEXIST when tf<qid> exists. */
static struct spool_new *sn_create(const char *dir, const char *qid, mode_t mode)
{
    struct spool_new *sn = xcalloc(1, sizeof *sn);
    sn->dir = xstrdup(dir);
    sn->mode = mode;
    sn->sum = qf_datasum_new();
    str_copy(sn->qid, qid, sizeof sn->qid);
    sn->tmp = path2(dir, "tf", qid);
    /* not O_APPEND: the header is pwrite()n last, over the room left here */
    sn->fd = create_temp(sn->tmp, mode, 0);
    if (sn->fd < 0 || lseek(sn->fd, QF_HDR_LEN, SEEK_SET) < 0) {
        int e = errno;
        if (sn->fd >= 0) {
            close(sn->fd);
            unlink(sn->tmp);
        }
        sn_free(sn);
        errno = e;
        return NULL;
    }
    return sn;
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
    /* 0640 in the (sticky) maildrop: the runner reads users' files by group */
    mode_t mode = (st.st_mode & S_ISVTX) ? 0640 : 0600;
    struct spool_new *sn = NULL;
    for (int tries = 0; tries < QID_RETRIES && !sn; tries++) {
        char qid[QID_MAX];
        spool_make_qid(qid);
        sn = sn_create(dir, qid, mode);
        if (!sn && errno != EEXIST)
            break;
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
        unlink(sn->tmp);
        close(sn->fd);
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
    qf_datasum_add(sn->sum, p, n);
    sn->size += (long long)n;
    return 0;
}

static int pwrite_all(int fd, const void *p, size_t n, off_t off);

struct msgdata spool_new_data(const struct spool_new *sn)
{
    struct msgdata d = {sn->fd, QF_HDR_LEN, sn->size};
    return d;
}

/* Move data [at, size) n bytes up, from the end backwards, and recompute the
 * checksum.  0 or -1 with errno. */
static int shift_up(struct spool_new *sn, long long at, size_t n)
{
    char tmp[16384];
    long long end = sn->size;
    while (end > at) {
        size_t k = end - at > (long long)sizeof tmp ? sizeof tmp : (size_t)(end - at);
        off_t from = QF_HDR_LEN + (off_t)(end - (long long)k);
        if (pread(sn->fd, tmp, k, from) != (ssize_t)k)
            return -1;
        if (pwrite_all(sn->fd, tmp, k, from + (off_t)n) < 0)
            return -1;
        end -= (long long)k;
    }
    return 0;
}

/* Checksum the whole data again (after an insertion moved it). */
static int resum(struct spool_new *sn)
{
    char tmp[16384];
    struct qf_datasum *sum = qf_datasum_new();
    for (long long off = 0; off < sn->size;) {
        size_t k = sn->size - off > (long long)sizeof tmp ? sizeof tmp : (size_t)(sn->size - off);
        if (pread(sn->fd, tmp, k, QF_HDR_LEN + (off_t)off) != (ssize_t)k) {
            qf_datasum_free(sum);
            return -1;
        }
        qf_datasum_add(sum, tmp, k);
        off += (long long)k;
    }
    qf_datasum_free(sn->sum);
    sn->sum = sum;
    return 0;
}

int spool_new_insert(struct spool_new *sn, long long at, const void *p, size_t n)
{
    if (sn->fd < 0) {
        errno = sn->err ? sn->err : EBADF;
        return -1;
    }
    if (at < 0 || at > sn->size) {
        errno = EINVAL;
        return -1;
    }
    if (shift_up(sn, at, n) < 0 || pwrite_all(sn->fd, p, n, QF_HDR_LEN + (off_t)at) < 0 ||
        (sn->size += (long long)n, resum(sn) < 0) ||
        lseek(sn->fd, QF_HDR_LEN + (off_t)sn->size, SEEK_SET) < 0) {
        int e = errno ? errno : EIO;
        sn_fail(sn, e);
        errno = e;
        return -1;
    }
    return 0;
}

ssize_t spool_new_pread(const struct spool_new *sn, void *p, size_t n, long long off)
{
    if (sn->fd < 0) {
        errno = sn->err ? sn->err : EBADF;
        return -1;
    }
    if (off >= sn->size)
        return 0;
    if ((long long)n > sn->size - off)
        n = (size_t)(sn->size - off);
    ssize_t r;
    while ((r = pread(sn->fd, p, n, (off_t)(QF_HDR_LEN + off))) < 0 && errno == EINTR)
        ;
    return r;
}

long long spool_new_size(const struct spool_new *sn)
{
    return sn->size;
}

int spool_new_replace(struct spool_new *sn, struct spool_new *with)
{
    if (sn->fd < 0 || with->fd < 0 || strcmp(sn->dir, with->dir) != 0) {
        errno = EINVAL;
        return -1;
    }
    /* sn's temporary stays locked by its descriptor until the rename took
     * its name: nobody can take the half-written file for a crashed one */
    if (rename(with->tmp, sn->tmp) < 0)
        return -1;
    free(with->tmp);
    with->tmp = sn->tmp;
    sn->tmp = NULL;
    str_copy(with->qid, sn->qid, sizeof with->qid);
    close(sn->fd);
    sn_free(sn);
    return 0;
}

static int pwrite_all(int fd, const void *p, size_t n, off_t off)
{
    size_t done = 0;
    while (done < n) {
        ssize_t w = pwrite(fd, (const char *)p + done, n - done, off + (off_t)done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -1;
        done += (size_t)w;
    }
    return 0;
}

/* Control records and end line after the data, then the header at the front:
 * until that last write the file is no queue file at all. */
static int sn_finish(struct spool_new *sn, const struct envelope *e)
{
    struct buf tail;
    char hdr[QF_HDR_LEN + 1];
    buf_init(&tail);
    qf_seal(e, qf_datasum_value(sn->sum), sn->size, &tail);
    qf_header(sn->size, hdr);
    int r = write_all(sn->fd, tail.s, tail.len);
    if (r == 0)
        r = pwrite_all(sn->fd, hdr, QF_HDR_LEN, 0);
    buf_free(&tail);
    return r;
}

/* The order: the complete file gets its name first, then one fsync of the
 * file makes its contents and its name durable on ext3/ext4, xfs and btrfs
 * (name_durable_with_file); on other file systems the directory is flushed
 * as well.  A system crash before the fsync
 * returns can leave qf<qid> torn (short, a hole): the header's length and the
 * checksum catch that, and the message was never acknowledged.  A process
 * killed at any point leaves a complete file or a temporary: the page cache
 * survives it.  The writer's lock stays until both flushes have returned, so
 * no runner touches the message before it is safe. */
int spool_commit(struct spool_new *sn, struct envelope *e)
{
    char *qf = path2(sn->dir, "qf", sn->qid);
    int err = 0, named = 0;

    str_copy(e->qid, sn->qid, sizeof e->qid);
    if (sn->fd < 0)
        err = sn->err ? sn->err : EBADF;
    else if (sn_finish(sn, e) < 0)
        err = errno;
    else if (rename(sn->tmp, qf) < 0)
        err = errno;
    else if ((named = 1, fsync(sn->fd) < 0))
        err = errno;
    else if (!name_durable_with_file(sn->fd) && sync_dir(sn->dir, sn->fd) < 0)
        err = errno;
    if (err && sn->fd >= 0)
        unlink(named ? qf : sn->tmp); /* still locked: nobody started on it */
    if (sn->fd >= 0)
        close(sn->fd); /* the fsync has reported any write error */
    sn->fd = -1;
    if (err)
        e->qid[0] = '\0';
    free(qf);
    sn_free(sn);
    errno = err;
    return err ? -1 : 0;
}

void spool_abort(struct spool_new *sn)
{
    if (!sn)
        return;
    if (sn->fd >= 0) {
        unlink(sn->tmp);
        close(sn->fd);
    }
    sn_free(sn);
}

/* ---- reading a message ---- */

static void qmsg_free(struct qmsg *m)
{
    if (m->fd >= 0)
        close(m->fd);
    env_free(&m->env);
    free(m->dir);
    free(m->qf);
    free(m);
}

/* Open and lock path.  0 locked, 1 busy, -1 error.  After the lock is ours,
 * make sure the name still points at the locked inode: a rewrite or removal
 * may have replaced or unlinked it while we waited. */
static int lock_file(const char *path, int *fdp)
{
    for (int tries = 0; tries < 5; tries++) {
        int fd = open(path, O_RDWR | O_APPEND | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
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
        if (stat(path, &b) == 0 && a.st_ino == b.st_ino && a.st_dev == b.st_dev
            && a.st_nlink > 0) {
            set_nonblock(fd, 0);
            *fdp = fd;
            return 0;
        }
        close(fd); /* replaced or removed meanwhile: look again */
    }
    errno = EAGAIN;
    return -1;
}

/* Parse the locked queue file into e; with cut, also cut an interrupted
 * append off (only at open: later, a delivery child may be mid-append).  The
 * checksum is verified at open; a reload trusts the data it verified then
 * (nobody changes a locked message's data). */
static int load_locked(struct qmsg *m, struct envelope *e, int cut)
{
    struct qf_info qi;
    const char *why = NULL;
    int err = 0;
    if (qf_load(m->fd, CF_MAX, cut, e, &qi, &why) < 0) {
        err = errno;
        if (err == EINVAL)
            log_warn("%s: bad queue file: %s", m->qid, why);
    } else if (strcmp(e->qid, m->qid) != 0) {
        log_warn("%s: bad queue file: queue id does not match", m->qid);
        err = EINVAL;
    } else {
        struct stat st;
        m->data_off = qi.data_off;
        m->data_len = qi.data_len;
        if (cut && qi.bad_records)
            log_warn("%s: %zu damaged status record%s ignored (bad checksum or malformed): "
                     "%s recipient%s count%s as not yet delivered", m->qid, qi.bad_records,
                     qi.bad_records == 1 ? "" : "s", qi.bad_records == 1 ? "its" : "their",
                     qi.bad_records == 1 ? "" : "s", qi.bad_records == 1 ? "s" : "");
        /* an interrupted append must go before we append */
        if (cut && fstat(m->fd, &st) == 0 && qi.valid_end < (long long)st.st_size
            && ftruncate(m->fd, (off_t)qi.valid_end) < 0)
            err = errno;
    }
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
    m->qf = path2(queuedir, "qf", qid);
    int r = lock_file(m->qf, &m->fd);
    if (r == 0 && load_locked(m, &m->env, 1) < 0)
        r = -1;
    if (r != 0) {
        int e = errno;
        qmsg_free(m);
        errno = e;
        return r;
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

struct msgdata spool_data(const struct qmsg *m)
{
    struct msgdata d = {.fd = m->fd, .off = m->data_off, .len = m->data_len};
    return d;
}

long long spool_data_size(const struct qmsg *m)
{
    return m->data_len;
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
        m->dirty |= st != RS_PENDING; /* a deferral need not be durable (spool.h) */
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

/* Write into fd (appending) a new queue file with m's data and the in-memory
 * envelope: header, the data copied through the locked descriptor (never by
 * name: that would drop our lock), control records, end line. */
static int write_rewritten(struct qmsg *m, int fd)
{
    char hdr[QF_HDR_LEN + 1];
    char *chunk = xmalloc(65536);
    struct qf_datasum *sum = qf_datasum_new();
    long long off = 0;
    int r = 0;
    qf_header(m->data_len, hdr);
    r = write_all(fd, hdr, QF_HDR_LEN);
    while (r == 0 && off < m->data_len) {
        size_t n = m->data_len - off > 65536 ? 65536 : (size_t)(m->data_len - off);
        ssize_t got = pread(m->fd, chunk, n, (off_t)(m->data_off + off));
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0) {
            if (got == 0)
                errno = EIO; /* shrank under its lock */
            r = -1;
            break;
        }
        qf_datasum_add(sum, chunk, (size_t)got);
        r = write_all(fd, chunk, (size_t)got);
        off += got;
    }
    free(chunk);
    if (r == 0) {
        struct buf tail;
        buf_init(&tail);
        qf_seal(&m->env, qf_datasum_value(sum), m->data_len, &tail);
        r = write_all(fd, tail.s, tail.len);
        buf_free(&tail);
    }
    qf_datasum_free(sum);
    return r;
}

/* A new file, flushed BEFORE it takes the name (unlike an enqueue: a torn file
 * must never replace an acknowledged message), locked from its creation so
 * there is no instant at which qf<qid> is unlocked. */
int spool_rewrite(struct qmsg *m)
{
    char *tf = path2(m->dir, "tf", m->qid);
    int err = 0;
    unlink(tf); /* a crashed rewrite's leftover: we hold the message's lock */
    int fd = create_temp(tf, 0600, O_APPEND);
    if (fd < 0)
        err = errno;
    else if (write_rewritten(m, fd) < 0 || fsync(fd) < 0 || rename(tf, m->qf) < 0) {
        err = errno;
        unlink(tf);
        close(fd);
    } else {
        close(m->fd); /* drops the old inode's lock only */
        m->fd = fd;
        m->data_off = QF_HDR_LEN;
        m->dirty = 0; /* the old inode's records are in the new envelope */
        if (fsync_dir(m->dir) < 0)
            err = errno;
    }
    free(tf);
    errno = err;
    return err ? -1 : 0;
}

int spool_retry(struct qmsg *m)
{
    /* every SPOOL_RETRY_COMPACT-th deferral rewrites: the appended records of
     * a long-deferred message do not grow without bound */
    if (m->env.attempts % SPOOL_RETRY_COMPACT == 0)
        return spool_rewrite(m);
    struct buf line;
    struct stat st0;
    buf_init(&line);
    ctl_format_retry(m->env.attempts, m->env.next_try, &line);
    int r = fstat(m->fd, &st0);
    if (r == 0)
        r = write_all(m->fd, line.s, line.len);
    /* not synced (see spool.h): lost in a crash, the message is only tried
     * again sooner than its back-off said */
    if (r < 0) {
        int e = errno;
        if (ftruncate(m->fd, st0.st_size) < 0)
            log_warn("%s: cannot truncate a partial retry record: %s", m->qid,
                     strerror(errno));
        errno = e;
    }
    buf_free(&line);
    return r < 0 ? -1 : 0;
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
    /* not flushed: a crash that undoes it repeats at most the last delivery */
    if (unlink(m->qf) < 0 && errno != ENOENT)
        return -1;
    struct logfmt l;
    lf_begin(&l, m->qid, "removed");
    lf_log(&l, LOG_INFO);
    return 0;
}

void spool_close(struct qmsg *m)
{
    if (!m)
        return;
    if (spool_sync(m) < 0)
        log_err("%s: cannot sync the queue file: %s", m->qid, strerror(errno));
    qmsg_free(m);
}

/* ---- listing ---- */

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Read dir/qf<qid> without locking it (with verify, checking the checksum):
 * 0 (e, *qi filled), -1 with errno (EINVAL: torn or corrupt, *why set). */
static int peek_file(const char *dir, const char *qid, int verify, struct envelope *e,
                     struct qf_info *qi, const char **why)
{
    char *qf = path2(dir, "qf", qid);
    int fd = open(qf, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    free(qf);
    *why = NULL;
    if (fd < 0)
        return -1;
    int r = qf_load(fd, CF_MAX, verify, e, qi, why);
    int err = errno;
    close(fd);
    if (r == 0 && strcmp(e->qid, qid) != 0) {
        *why = "queue id does not match";
        r = -1;
        err = EINVAL;
    }
    errno = err;
    return r;
}

/* Is dir/qf<qid> a complete, intact queue file? */
static int qf_intact(const char *dir, const char *qid)
{
    struct envelope e;
    struct qf_info qi;
    const char *why;
    env_init(&e);
    int ok = peek_file(dir, qid, 1, &e, &qi, &why) == 0;
    env_free(&e);
    return ok;
}

/* Names "<prefix><qid>" in dir (qids into l, unsorted). */
static int list_names(const char *dir, const char *prefix, struct strlist *l)
{
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        if (strncmp(de->d_name, prefix, 2) == 0 && spool_valid_qid(de->d_name + 2))
            sl_add(l, de->d_name + 2);
    closedir(d);
    return 0;
}

int spool_list(const char *queuedir, struct strlist *qids)
{
    struct strlist all;
    sl_init(&all);
    if (list_names(queuedir, "qf", &all) < 0)
        return -1;
    if (all.n)
        qsort(all.v, all.n, sizeof *all.v, cmp_str); /* qids start with the time */
    for (size_t i = 0; i < all.n; i++)
        if (qf_intact(queuedir, all.v[i]))
            sl_add(qids, all.v[i]);
    sl_free(&all);
    return 0;
}

int spool_list_names(const char *queuedir, struct strlist *qids)
{
    size_t first = qids->n;
    if (list_names(queuedir, "qf", qids) < 0)
        return -1;
    if (qids->n - first > 1)
        qsort(qids->v + first, qids->n - first, sizeof *qids->v, cmp_str);
    return 0;
}

/* Names in dir starting with prefix and accepted by ok (sorted into l). */
static int list_matching(const char *dir, const char *prefix, int (*ok)(const char *),
                         struct strlist *l)
{
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    struct dirent *de;
    size_t first = l->n;
    while ((de = readdir(d)) != NULL)
        if (strncmp(de->d_name, prefix, strlen(prefix)) == 0 && ok(de->d_name))
            sl_add(l, de->d_name);
    closedir(d);
    if (l->n - first > 1)
        qsort(l->v + first, l->n - first, sizeof *l->v, cmp_str);
    return 0;
}

/* xf<name> or xf<name>.N (set_aside) */
static int aside_name(const char *nm)
{
    char *n = xstrdup(nm + 2);
    char *dot = strchr(n, '.');
    if (dot)
        *dot = '\0';
    int ok = qid_valid(n) && (!dot || (dot[1] >= '1' && dot[1] <= '9'
                                       && strspn(dot + 1, "0123456789") == strlen(dot + 1)));
    free(n);
    return ok;
}

int spool_list_aside(const char *queuedir, struct strlist *names)
{
    return list_matching(queuedir, "xf", aside_name, names);
}

int spool_list_original(const char *queuedir, struct strlist *ids)
{
    struct strlist names;
    sl_init(&names);
    int r = list_matching(queuedir, "cm", origq_is_control, &names);
    for (size_t i = 0; i < names.n; i++)
        sl_add(ids, names.v[i] + 2);
    sl_free(&names);
    return r;
}

int spool_peek_original(const char *queuedir, const char *id, struct envelope *e,
                        long long *size, const char **why)
{
    char *cm = xasprintf("%s/cm%s", queuedir, id), *dm = path2(queuedir, "dm", id);
    struct buf text;
    struct origq o;
    struct stat st;
    int r = -1;
    *why = NULL;
    *size = -1;
    buf_init(&text);
    buf_addc(&text, '\0');
    buf_truncate(&text, 0);
    int fd = open(cm, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd >= 0 && pread_rest(fd, 0, &text, CF_MAX) == 0) {
        if (origq_parse(text.s, text.len, e, &o, why) < 0) {
            errno = EINVAL;
        } else if (stat(dm, &st) < 0) {
            if (errno == ENOENT) {
                *why = "no data file";
                errno = EINVAL;
            }
        } else {
            e->ctime = st.st_mtime;
            *size = (long long)o.gen_len + !o.has_headers + (long long)st.st_size;
            r = 0;
        }
    }
    int err = errno;
    if (fd >= 0)
        close(fd);
    buf_free(&text);
    free(cm);
    free(dm);
    errno = err;
    return r;
}

/* F_GETLK on path: 1 locked by another process, 0 not, -1 error. */
static int lock_held(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0)
        return -1;
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
    int r = fcntl(fd, F_GETLK, &fl);
    int e = errno;
    close(fd);
    errno = e;
    return r < 0 ? -1 : fl.l_type != F_UNLCK;
}

int spool_locked(const char *queuedir, const char *qid)
{
    if (!spool_valid_qid(qid)) {
        errno = EINVAL;
        return -1;
    }
    char *qf = path2(queuedir, "qf", qid);
    int r = lock_held(qf);
    free(qf);
    return r;
}

int spool_peek_listed(const char *queuedir, const char *qid, struct envelope *e,
                      long long *size, int *locked)
{
    *size = -1;
    *locked = 0;
    if (!spool_valid_qid(qid)) {
        errno = EINVAL;
        return -1;
    }
    char *qf = path2(queuedir, "qf", qid);
    int fd = open(qf, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    free(qf);
    if (fd < 0)
        return -1;
    struct qf_info qi;
    const char *why;
    int r = qf_load(fd, CF_MAX, 1, e, &qi, &why);
    int err = errno;
    if (r == 0 && strcmp(e->qid, qid) != 0) {
        r = -1;
        err = EINVAL;
    }
    if (r == 0) {
        /* the same descriptor: we hold no lock of our own to lose by closing */
        struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
        *locked = fcntl(fd, F_GETLK, &fl) == 0 && fl.l_type != F_UNLCK;
        *size = qi.data_len;
    }
    close(fd);
    errno = err;
    return r;
}

int spool_peek(const char *queuedir, const char *qid, struct envelope *e, long long *size)
{
    if (size)
        *size = -1;
    if (!spool_valid_qid(qid)) {
        errno = EINVAL;
        return -1;
    }
    struct qf_info qi;
    const char *why;
    /* the list it comes from was verified a moment ago: no second pass over
     * every message's data (a message torn inside its data is refused by
     * spool_open, and set aside by the next spool_cleanup) */
    if (peek_file(queuedir, qid, 0, e, &qi, &why) < 0)
        return -1;
    if (size)
        *size = qi.data_len;
    return 0;
}

/* ---- cleanup ---- */

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

/* A crashed writer's leftover holds no lock: removed at once.  When we cannot
 * tell, age decides. */
static int remove_orphan(const char *dir, const char *name, long max_age, time_t now)
{
    char *p = xasprintf("%s/%s", dir, name);
    int held = lock_held(p);
    free(p);
    if (held == 1)
        return 0;
    return remove_old(dir, name, held == 0 ? 0 : max_age, now);
}

#define ASIDE_MAX 1000 /* xf<name>.1 ... .999: a name for every set-aside copy */

/* Move dir/<prefix><name> aside as dir/xf<name>, or xf<name>.N when that
 * exists: link() never replaces a file, so an earlier set-aside file with
 * the same name is never lost.  The new path (malloc'd), or NULL with errno. */
static char *set_aside(const char *dir, const char *prefix, const char *name)
{
    char *from = path2(dir, prefix, name);
    char *to = path2(dir, "xf", name);
    int r;
    for (int n = 1; (r = link(from, to)) < 0 && errno == EEXIST && n < ASIDE_MAX; n++) {
        free(to);
        to = xasprintf("%s/xf%s.%d", dir, name, n);
    }
    if (r == 0 && unlink(from) < 0)
        r = -1; /* both names left: the next run tries again */
    int e = errno;
    free(from);
    if (r < 0) {
        free(to);
        errno = e;
        return NULL;
    }
    return to;
}

/* A queue file that fails its check and is not locked is the remains of an
 * enqueue that never completed (a system crash before its flush returned), so
 * no client was told it was accepted: keep it aside as xf<qid> for the admin.
 * 1 if moved. */
static int set_aside_torn(const char *dir, const char *qid)
{
    char *qf = path2(dir, "qf", qid);
    struct envelope e;
    struct qf_info qi;
    const char *why = NULL;
    int moved = 0;
    env_init(&e);
    if (lock_held(qf) == 0 && peek_file(dir, qid, 1, &e, &qi, &why) < 0 && errno == EINVAL) {
        char *xf = set_aside(dir, "qf", qid);
        if (xf) {
            log_err("%s: torn or corrupt queue file (%s): moved to %s, never delivered", qid,
                    why ? why : "?", xf);
            moved = 1;
        } else {
            log_err("%s: torn or corrupt queue file (%s), cannot set it aside: %s", qid,
                    why ? why : "?", strerror(errno));
        }
        free(xf);
    }
    env_free(&e);
    free(qf);
    return moved;
}

/* ---- the old two-file format (df<qid> + cf<qid>) ---- */

static int exists(const char *dir, const char *prefix, const char *qid)
{
    char *p = path2(dir, prefix, qid);
    struct stat st;
    int r = lstat(p, &st) == 0;
    free(p);
    return r;
}

/* Copy fd's contents (from its offset) into sn. */
static int copy_into(struct spool_new *sn, int fd)
{
    char tmp[16384];
    for (;;) {
        ssize_t r = read(fd, tmp, sizeof tmp);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return (int)r;
        if (spool_new_write(sn, tmp, (size_t)r) < 0)
            return -1;
    }
}

/* Write envelope e with the old data file's contents as qf<qid>, through the
 * normal commit path.  The data is df<qid>, or td<qid> when a crash of the old
 * version kept the control file's rename but lost the data file's. */
static int convert_write(const char *dir, const char *qid, struct envelope *e)
{
    int dfd = -1;
    for (const char *const *p = (const char *const[]){"df", "td", NULL}; *p && dfd < 0; p++) {
        char *path = path2(dir, *p, qid);
        dfd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
        free(path);
    }
    if (dfd < 0)
        return -1;
    char *tf = path2(dir, "tf", qid);
    if (lock_held(tf) == 0)
        unlink(tf); /* an earlier conversion that crashed */
    free(tf);
    struct spool_new *sn = sn_create(dir, qid, 0600);
    int r = sn ? copy_into(sn, dfd) : -1;
    int err = errno;
    close(dfd);
    if (r < 0) {
        spool_abort(sn);
        errno = err;
        return -1;
    }
    return spool_commit(sn, e);
}

/* Convert the old-format message cf<qid> + df<qid> (postoffice before the
 * one-file queue) into qf<qid>, then remove the old files.  Its envelope
 * carries the recorded results.  1 if converted. */
static int convert_old(const char *dir, const char *qid)
{
    char *cf = path2(dir, "cf", qid);
    struct envelope e;
    struct buf text;
    const char *why = NULL;
    int fd = -1, done = 0;
    env_init(&e);
    buf_init(&text);
    if (lock_file(cf, &fd) != 0)
        goto out; /* gone, or an old runner still works on it */
    if (pread_rest(fd, 0, &text, CF_MAX) < 0 || ctl_parse(text.s, text.len, &e, &why) < 0
        || strcmp(e.qid, qid) != 0) {
        log_err("%s: old-format control file unreadable or incomplete (%s): left alone", qid,
                why ? why : strerror(errno));
        goto out;
    }
    /* qf<qid> intact: converted by a run that crashed before removing these */
    done = qf_intact(dir, qid) || convert_write(dir, qid, &e) == 0;
    if (!done) {
        log_err("%s: cannot convert the old-format message: %s", qid, strerror(errno));
        goto out;
    }
    const char *old[] = {"df", "td", "cf"}; /* cf last: it marks what is left to do */
    for (size_t i = 0; i < sizeof old / sizeof *old; i++) {
        char *p = path2(dir, old[i], qid);
        unlink(p);
        free(p);
    }
    log_notice("%s: converted from the old df/cf queue format", qid);
out:
    if (fd >= 0)
        close(fd);
    buf_free(&text);
    env_free(&e);
    free(cf);
    return done;
}

/* ---- the original postoffice's queue (cm<id> + dm<id>, orig_queue.h) ---- */

/* The queue id of a converted original message: the time its text was queued
 * (6 base-62 digits, so it sorts with ours) and the original id.  12
 * characters: never one of ours (18), and the same on every run, so a run
 * that crashed after the conversion but before removing cm/dm does not
 * convert the message twice. */
static void original_qid(const char *id, time_t when, char out[QID_MAX])
{
    put62(out, (unsigned long long)(when < 0 ? 0 : when), 6);
    snprintf(out + 6, QID_MAX - 6, "%s", id);
}

/* Is there an intact qf of a converted original id (any time prefix)? */
static int original_converted(const char *dir, const char *id)
{
    struct strlist q;
    sl_init(&q);
    int found = 0;
    if (list_names(dir, "qf", &q) == 0)
        for (size_t i = 0; i < q.n && !found; i++)
            found = strlen(q.v[i]) == 6 + ORIGQ_ID_LEN && strcmp(q.v[i] + 6, id) == 0
                    && qf_intact(dir, q.v[i]);
    sl_free(&q);
    return found;
}

/* Append n bytes to sn with CRLF line ends made LF (*cr: a CR ended the
 * previous piece); sets *eight on a byte >= 0x80. */
static int put_lf(struct spool_new *sn, const char *p, size_t n, int *cr, int *eight)
{
    size_t from = 0;
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)p[i] >= 0x80)
            *eight = 1;
        if (*cr && p[i] != '\n' && spool_new_write(sn, "\r", 1) < 0)
            return -1;
        *cr = 0;
        if (p[i] == '\r') {
            if (i > from && spool_new_write(sn, p + from, i - from) < 0)
                return -1;
            from = i + 1;
            *cr = 1;
        }
    }
    return n > from ? spool_new_write(sn, p + from, n - from) : 0;
}

/* The text of the converted message: the generated header block, a blank
 * line when the text had no header lines, then dm's contents. */
static int original_text(struct spool_new *sn, const struct buf *cm, const struct origq *o,
                         int dfd, int *eight)
{
    int cr = 0;
    if (put_lf(sn, cm->s + o->gen_off, o->gen_len, &cr, eight) < 0)
        return -1;
    if (cr && spool_new_write(sn, "\r", 1) < 0)
        return -1;
    cr = 0;
    if (o->gen_len && cm->s[cm->len - 1] != '\n' && spool_new_write(sn, "\n", 1) < 0)
        return -1;
    if (!o->has_headers && spool_new_write(sn, "\n", 1) < 0)
        return -1;
    char tmp[16384];
    for (;;) {
        ssize_t r = read(dfd, tmp, sizeof tmp);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        if (r == 0)
            return cr ? spool_new_write(sn, "\r", 1) : 0;
        if (put_lf(sn, tmp, (size_t)r, &cr, eight) < 0)
            return -1;
    }
}

/* Write the converted message as qf<qid> through the normal commit path. */
static int original_write(const char *dir, const char *qid, struct envelope *e,
                          const struct buf *cm, const struct origq *o, int dfd)
{
    char *tf = path2(dir, "tf", qid);
    if (lock_held(tf) == 0)
        unlink(tf); /* an earlier conversion that crashed */
    free(tf);
    struct spool_new *sn = sn_create(dir, qid, 0600);
    int eight = 0;
    if (!sn || original_text(sn, cm, o, dfd, &eight) < 0) {
        int err = errno;
        spool_abort(sn);
        errno = err;
        return -1;
    }
    if (eight)
        e->flags |= ENV_8BIT;
    return spool_commit(sn, e);
}

/* Set the original message <id> aside (cm, and dm if there is one). */
static int original_aside(const char *dir, const char *id, const char *why)
{
    char *cmname = xasprintf("cm%s", id), *dmname = xasprintf("dm%s", id);
    char *cm = set_aside(dir, "", cmname);
    if (!cm) {
        log_err("original postoffice message %s: malformed control file cm%s (%s); cannot "
                "set it aside: %s", id, id, why, strerror(errno));
        free(cmname);
        free(dmname);
        return 0;
    }
    char *dm = exists(dir, "dm", id) ? set_aside(dir, "", dmname) : NULL;
    log_err("original postoffice message %s: malformed control file cm%s (%s): set aside "
            "as %s%s%s, not delivered", id, id, why, cm, dm ? " and " : "", dm ? dm : "");
    free(cm);
    free(dm);
    free(cmname);
    free(dmname);
    return 1;
}

/* Remove the original files of a converted message: dm first, cm last (it
 * marks what is left to do; original_converted() recognises the rest). */
static void original_remove(const char *dir, const char *id)
{
    char *dm = path2(dir, "dm", id), *cm = path2(dir, "cm", id);
    unlink(dm);
    unlink(cm);
    free(dm);
    free(cm);
}

/* Is fd a regular file with exactly one link? */
static int single_link(int fd)
{
    struct stat st;
    return fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_nlink == 1;
}

/* Convert the original postoffice's message cm<id> + dm<id> into a queue file
 * (delivered by this run), logged; a malformed one is set aside.  1 if
 * converted or set aside. */
static int convert_original(const char *dir, const char *id)
{
    char *cmp = path2(dir, "cm", id), *dmp = path2(dir, "dm", id);
    struct envelope e;
    struct origq o;
    struct buf text;
    struct stat st;
    const char *why = NULL;
    int cfd = -1, dfd = -1, done = 0;
    env_init(&e);
    buf_init(&text);
    int r = lock_file(cmp, &cfd);
    if (r != 0) {
        if (r < 0 && errno != ENOENT)
            log_err("original postoffice message %s: cannot open %s: %s (run runq as root)",
                    id, cmp, strerror(errno));
        goto out; /* gone, or an old runner still works on it */
    }
    if (!single_link(cfd) || ((dfd = open(dmp, O_RDONLY | O_CLOEXEC | O_NOFOLLOW |
                                           O_NONBLOCK)) >= 0 && !single_link(dfd))) {
        /* root reads these: never through a hard link the queue's owner made */
        log_err("original postoffice message %s: cm%s or dm%s is not a plain file with one "
                "link: left alone", id, id, id);
        goto out;
    }
    int derr = dfd < 0 ? errno : 0;
    if (pread_rest(cfd, 0, &text, CF_MAX) < 0) {
        if (errno == EFBIG)
            done = original_aside(dir, id, "too large");
        else
            log_err("original postoffice message %s: cannot read %s: %s", id, cmp,
                    strerror(errno));
        goto out;
    }
    buf_addc(&text, '\0'); /* keeps text.s valid when empty */
    buf_truncate(&text, text.len - 1);
    if (derr == ENOENT && original_converted(dir, id)) {
        original_remove(dir, id); /* converted by a run that crashed before this */
        done = 1;
        goto out;
    }
    if (origq_parse(text.s, text.len, &e, &o, &why) < 0) {
        done = original_aside(dir, id, why);
        goto out;
    }
    if (dfd < 0 || fstat(dfd, &st) < 0 || !S_ISREG(st.st_mode)) {
        if (derr && derr != ENOENT)
            log_err("original postoffice message %s: cannot open %s: %s", id, dmp,
                    strerror(derr));
        else
            done = original_aside(dir, id, "no data file");
        goto out;
    }
    e.ctime = st.st_mtime;
    original_qid(id, st.st_mtime, e.qid);
    char qid[QID_MAX];
    str_copy(qid, e.qid, sizeof qid);
    if (!qf_intact(dir, qid) && original_write(dir, qid, &e, &text, &o, dfd) < 0) {
        log_err("original postoffice message %s: cannot convert: %s", id, strerror(errno));
        goto out;
    }
    original_remove(dir, id);
    log_notice("original postoffice message %s -> %s: from=<%s>, %zu recipient%s: converted",
               id, qid, e.sender, e.nrcpts, e.nrcpts == 1 ? "" : "s");
    done = 1;
out:
    if (dfd >= 0)
        close(dfd);
    if (cfd >= 0)
        close(cfd);
    buf_free(&text);
    env_free(&e);
    free(cmp);
    free(dmp);
    return done;
}

/* Old-format leftovers: data files without a control file and temporaries
 * are removed like crashed writers' files; a complete df/cf pair in the queue
 * is converted.  Users' old submissions in the maildrop are left for the
 * admin (their owner is what makes them trustworthy; a conversion would lose
 * it). */
static int cleanup_old(const char *dir, const char *nm, long max_age, time_t now, int maildrop)
{
    const char *qid = nm + 2;
    if (!maildrop && origq_is_control(nm))
        return convert_original(dir, qid);
    if (strncmp(nm, "cf", 2) == 0) {
        if (maildrop)
            log_err("%s/%s: a submission in the old df/cf format, not picked up: resubmit it",
                    dir, nm);
        return maildrop ? 0 : convert_old(dir, qid);
    }
    if (strncmp(nm, "tc", 2) == 0)
        return remove_orphan(dir, nm, max_age, now);
    if ((strncmp(nm, "td", 2) == 0 || strncmp(nm, "df", 2) == 0) && !exists(dir, "cf", qid))
        return remove_orphan(dir, nm, max_age, now);
    return 0;
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
        if (strlen(de->d_name) > 2 && spool_valid_qid(de->d_name + 2))
            sl_add(&names, de->d_name);
    closedir(d);
    if (names.n) /* cf<qid> before df/td<qid>: a converted pair goes at once */
        qsort(names.v, names.n, sizeof *names.v, cmp_str);
    time_t now = time(NULL);
    int n = 0;
    for (size_t i = 0; i < names.n; i++) {
        const char *nm = names.v[i];
        if (strncmp(nm, "tf", 2) == 0)
            n += remove_orphan(dir, nm, max_age, now);
        else if (strncmp(nm, "qf", 2) == 0)
            n += maildrop ? 0 : set_aside_torn(dir, nm + 2); /* maildrop: pickup.c's */
        else
            n += cleanup_old(dir, nm, max_age, now, maildrop);
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

int spool_below_minfree(const struct config *c)
{
    struct statvfs sv;
    if (c->minfree <= 0)
        return 0;
    if (statvfs(c->queuedir, &sv) < 0)
        return -1;
    return (unsigned long long)sv.f_bavail * sv.f_frsize < (unsigned long long)c->minfree;
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
