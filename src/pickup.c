/* pickup.c - spool_pickup() of spool.h: move local users' submissions from
 * QUEUEDIR/maildrop into the queue.
 *
 * Everything in the maildrop is untrusted: any local user can drop files
 * there.  This must run as the queue owner, never as root.  A submission is
 * taken only when its queue file is a plain file with one link that passes
 * the same check as the queue's own (qfile.h: header, length, end line,
 * checksum, strict control records), with the control part bounded.  Only the
 * fields a submitter may choose are copied (recipients, DSN options, the
 * sender for root and trusted-users); everything else is set here, the sender
 * from the owner's login name.  The data is copied through the descriptor we
 * checked into a new queue file, never renamed (the user still owns that
 * inode). */
#include "compat.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "envelope.h"
#include "log.h"
#include "qfile.h"
#include "spool.h"
#include "util.h"

#define DROP_CF_MAX (1L * 1024 * 1024) /* control part of a submission */

/* Open a maildrop file without following links or blocking on a FIFO, and
 * accept only a regular file with a single link. */
static int open_drop_file(const char *path, struct stat *st)
{
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return -1;
    if (fstat(fd, st) < 0 || !S_ISREG(st->st_mode) || st->st_nlink != 1) {
        close(fd);
        errno = EPERM;
        return -1;
    }
    return fd;
}

/* Addresses only: "|command" and "/file" targets come from aliases and
 * .forward files, never from a submitter. */
static int rcpt_acceptable(const char *a)
{
    return a[0] != '\0' && a[0] != '|' && a[0] != '/';
}

/* Build the envelope we will queue from the parsed submission u. */
static int build_env(const struct envelope *u, const char *login, int trusted,
                     struct envelope *e, const char **why)
{
    if (u->nrcpts == 0) {
        *why = "no recipients";
        return -1;
    }
    free(e->sender);
    e->sender = xstrdup(trusted ? u->sender : login);
    e->local_user = xstrdup(login);
    e->envid = u->envid ? xstrdup(u->envid) : NULL;
    e->flags = u->flags & (ENV_8BIT | ENV_SMTPUTF8 | ENV_RET_HDRS);
    e->ctime = time(NULL);
    for (size_t i = 0; i < u->nrcpts; i++) {
        const struct rcpt *r = &u->rcpts[i];
        if (!rcpt_acceptable(r->addr) || (r->orig && !rcpt_acceptable(r->orig))) {
            *why = "a recipient is not an address";
            return -1;
        }
        size_t j = env_add_rcpt(e, r->addr, r->orig, NULL);
        e->rcpts[j].notify = r->notify;
    }
    return 0;
}

/* Copy the data (len bytes at off of fd) into a new queue message with
 * envelope e. */
static int copy_in(const char *queuedir, int fd, const struct qf_info *qi, struct envelope *e)
{
    struct spool_new *sn = spool_new(queuedir);
    if (!sn)
        return -1;
    char tmp[16384];
    long long off = qi->data_off, left = qi->data_len;
    while (left > 0) {
        ssize_t r = pread(fd, tmp, left > (long long)sizeof tmp ? sizeof tmp : (size_t)left,
                          (off_t)off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0 || spool_new_write(sn, tmp, (size_t)r) < 0) {
            int err = r == 0 ? EIO : errno; /* r == 0: shrank since it was checked */
            spool_abort(sn);
            errno = err;
            return -1;
        }
        off += r;
        left -= r;
    }
    return spool_commit(sn, e);
}

/* Is fd locked by another process (its writer still committing)? */
static int writer_busy(int fd)
{
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
    return fcntl(fd, F_GETLK, &fl) == 0 && fl.l_type != F_UNLCK;
}

/* Check the submission open on fd and queue it.  1 picked up, 0 refused (*why
 * set), -1 error of our own. */
static int take(const char *queuedir, int fd, const struct stat *st, const char *qid,
                const struct strlist *trusted, struct strlist *picked, const char **why)
{
    struct envelope u, e;
    struct qf_info qi;
    int r = 0;
    env_init(&u);
    env_init(&e);
    if (qf_load(fd, DROP_CF_MAX, 1, &u, &qi, why) < 0) {
        if (!*why)
            *why = errno == EFBIG ? "control part too large" : "cannot read it";
        goto out;
    }
    struct passwd *pw = getpwuid(st->st_uid);
    if (!pw) {
        *why = "owner uid has no account";
        goto out;
    }
    int is_trusted = st->st_uid == 0 || (trusted && sl_contains(trusted, pw->pw_name));
    if (build_env(&u, pw->pw_name, is_trusted, &e, why) < 0)
        goto out;
    if (copy_in(queuedir, fd, &qi, &e) < 0) {
        log_err("maildrop %s: cannot queue: %s", qid, strerror(errno));
        r = -1;
        goto out;
    }
    log_info("%s: picked up maildrop %s from %s (uid %ld)", e.qid, qid, pw->pw_name,
             (long)st->st_uid);
    if (picked)
        sl_add(picked, e.qid);
    r = 1;
out:
    env_free(&u);
    env_free(&e);
    return r;
}

/* 1 picked up, 0 skipped (still being committed, or refused and removed), -1
 * error of our own (disk full...): stop. */
static int pickup_one(const char *queuedir, const char *dropdir, const char *qid,
                      const struct strlist *trusted, struct strlist *picked)
{
    char *path = xasprintf("%s/qf%s", dropdir, qid);
    const char *why = NULL;
    struct stat st = {0};
    int r = 0;
    int fd = open_drop_file(path, &st);
    if (fd < 0 && (errno == EPERM || errno == ELOOP))
        why = "not a plain file with one link";
    else if (fd < 0 && errno == EACCES)
        why = "not readable by the queue owner";
    else if (fd < 0) {
        if (errno != ENOENT) /* ENOENT: taken by a concurrent run */
            log_warn("maildrop %s: %s", qid, strerror(errno));
        goto out;
    } else if (writer_busy(fd))
        goto out; /* its sendmail is still flushing it */
    else
        r = take(queuedir, fd, &st, qid, trusted, picked, &why);
    if (r == 1 || why) {
        if (why)
            log_warn("maildrop %s (uid %ld): refused: %s", qid, (long)st.st_uid, why);
        /* the sticky maildrop lets its owner, the queue owner, remove it */
        unlink(path);
    }
out:
    if (fd >= 0)
        close(fd);
    free(path);
    return r;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int spool_pickup(const char *queuedir, const struct strlist *trusted_users,
                 struct strlist *picked)
{
    char *dropdir = xasprintf("%s/maildrop", queuedir);
    struct strlist qids;
    sl_init(&qids);
    DIR *dir = opendir(dropdir);
    if (!dir) {
        int e = errno;
        free(dropdir);
        errno = e;
        return e == ENOENT ? 0 : -1;
    }
    struct dirent *de;
    while ((de = readdir(dir)) != NULL)
        if (strncmp(de->d_name, "qf", 2) == 0 && spool_valid_qid(de->d_name + 2))
            sl_add(&qids, de->d_name + 2);
    closedir(dir);
    if (qids.n)
        qsort(qids.v, qids.n, sizeof *qids.v, cmp_str);
    int n = 0;
    for (size_t i = 0; i < qids.n; i++) {
        int r = pickup_one(queuedir, dropdir, qids.v[i], trusted_users, picked);
        if (r < 0) {
            n = -1;
            break;
        }
        n += r;
    }
    sl_free(&qids);
    free(dropdir);
    return n;
}
