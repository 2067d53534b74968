/* pickup.c - pickup_maildrop() of pickup.h: move local users' submissions
 * from QUEUEDIR/maildrop into the queue.
 *
 * Everything in the maildrop is untrusted: any local user can drop files
 * there.  This must run as the queue owner, never as root.  A submission is
 * taken only when its queue file is a plain file with one link that passes
 * the same check as the queue's own (queue_file.h: header, length, end line,
 * checksum, strict control records), with the control part bounded.  Only the
 * fields a submitter may choose are copied (recipients, DSN options, the
 * sender for root and trusted-users); everything else is set here, the sender
 * from the owner's login name.  Recipients go through the same check as the
 * sendmail front end's (addr_parse_mailbox): one that fails it is queued
 * already failed, to be bounced, so it never costs the others.  The data is
 * copied through the descriptor we checked into a new queue file, never
 * renamed (the user still owns that inode); a message over size= is not
 * copied at all, only its header block for the bounce. */
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

#include "address.h"
#include "bounce.h"
#include "envelope.h"
#include "log.h"
#include "logfmt.h"
#include "pickup.h"
#include "queue_file.h"
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

/* Recipient text from the file as it will be reported: quoted, so that the
 * queue can never read it as a program or file target. */
static char *refused_rcpt(const char *a)
{
    char *safe = str_sanitize(a, strlen(a));
    struct buf b;
    buf_init(&b);
    buf_addc(&b, '"');
    for (const char *p = safe; *p; p++) { /* safe has its backslashes doubled */
        if (*p == '"')
            buf_addc(&b, '\\');
        buf_addc(&b, *p);
    }
    buf_addc(&b, '"');
    free(safe);
    return b.s;
}

/* Add recipient r of the submission to e: as it is when it is an address
 * (the front end's own check), else already failed with the reason. */
static void add_rcpt(struct envelope *e, const struct rcpt *r)
{
    char *addr = NULL, *orig = NULL;
    const char *why = NULL;
    size_t j;
    if (addr_parse_mailbox(r->addr, &addr, &why) == 0 &&
        (!r->orig || addr_parse_mailbox(r->orig, &orig, &why) == 0)) {
        j = env_add_rcpt(e, addr, r->orig ? orig : NULL, NULL);
    } else {
        char *shown = refused_rcpt(r->addr), *status = xasprintf("5.1.3 not an address: %s", why);
        j = env_add_rcpt(e, shown, NULL, NULL);
        e->rcpts[j].state = RS_FAILED;
        env_set_status(e, j, status);
        free(shown);
        free(status);
    }
    e->rcpts[j].notify = r->notify;
    free(addr);
    free(orig);
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
    /* a quarantine mark (filter-local=) can only hold mail back: kept */
    e->flags = u->flags & (ENV_8BIT | ENV_SMTPUTF8 | ENV_RET_HDRS | ENV_QUARANTINE);
    if ((e->flags & ENV_QUARANTINE) && u->quarantine)
        e->quarantine = xstrdup(u->quarantine);
    e->ctime = time(NULL);
    for (size_t i = 0; i < u->nrcpts; i++)
        add_rcpt(e, &u->rcpts[i]);
    return 0;
}

/* A message over size=: every recipient fails with 5.3.4 and only the header
 * block is kept (the bounce returns headers only). */
static void fail_too_big(struct envelope *e, long long limit, struct qf_info *qi)
{
    char *status = xasprintf("5.3.4 message too large (limit %lld bytes)", limit);
    for (size_t i = 0; i < e->nrcpts; i++) {
        if (e->rcpts[i].state != RS_PENDING)
            continue;
        e->rcpts[i].state = RS_FAILED;
        env_set_status(e, i, status);
    }
    free(status);
    e->flags |= ENV_RET_HDRS;
    qi->data_len = qi->data_len < BOUNCE_HDRS_MAX ? qi->data_len : BOUNCE_HDRS_MAX;
}

/* Copy the data (len bytes at off of fd) into a new queue message with
 * envelope e. */
/* envelope e.  With heads_only, stop after the header block's empty line. */
static int copy_in(const char *queuedir, int fd, const struct qf_info *qi,
                   struct envelope *e, int heads_only)
{
    struct spool_new *sn = spool_new(queuedir);
    if (!sn)
        return -1;
    char tmp[16384];
    long long off = qi->data_off, left = qi->data_len;
    int nl = 0; /* the last byte copied was a LF */
    while (left > 0) {
        ssize_t r = pread(fd, tmp, left > (long long)sizeof tmp ? sizeof tmp : (size_t)left,
                          (off_t)off);
        if (r < 0 && errno == EINTR)
            continue;
        size_t n = r > 0 ? (size_t)r : 0;
        for (size_t i = 0; heads_only && i < n; i++) {
            if (tmp[i] == '\n' && (nl || (i == 0 && off == qi->data_off))) {
                n = i + 1; /* the empty line ends the header block */
                left = (long long)n;
                break;
            }
            nl = tmp[i] == '\n';
        }
        if (r <= 0 || spool_new_write(sn, tmp, n) < 0) {
            int err = r == 0 ? EIO : errno; /* r == 0: shrank since it was checked */
            spool_abort(sn);
            errno = err;
            return -1;
        }
        off += (long long)n;
        left -= (long long)n;
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
static int take(const struct config *c, int fd, const struct stat *st, const char *qid,
                struct strlist *picked, const char **why)
{
    struct envelope u, e;
    struct qf_info qi;
    int r = 0;
    env_init(&u);
    env_init(&e);
    /* the length first (no checksum: that would read it all), so an
     * oversized one is never read through */
    if (qf_load(fd, DROP_CF_MAX, 0, &u, &qi, why) < 0) {
        if (!*why)
            *why = errno == EFBIG ? "control part too large" : "cannot read it";
        goto out;
    }
    /* what the header says is what copy_in copies, however the file grows */
    int too_big = c->size > 0 && qi.data_len > c->size;
    env_free(&u);
    env_init(&u);
    if (qf_load(fd, DROP_CF_MAX, !too_big, &u, &qi, why) < 0) {
        if (!*why)
            *why = errno == EFBIG ? "control part too large" : "cannot read it";
        goto out;
    }
    struct passwd *pw = getpwuid(st->st_uid);
    if (!pw) {
        *why = "owner uid has no account";
        goto out;
    }
    int is_trusted = st->st_uid == 0 || sl_contains(&c->trusted_users, pw->pw_name);
    if (build_env(&u, pw->pw_name, is_trusted, &e, why) < 0)
        goto out;
    if (too_big)
        fail_too_big(&e, c->size, &qi);
    if (copy_in(c->queuedir, fd, &qi, &e, too_big) < 0) {
        log_err("maildrop %s: cannot queue: %s", qid, strerror(errno));
        r = -1;
        goto out;
    }
    struct logfmt l; /* the submission's "queued" line was the front end's */
    lf_begin(&l, e.qid, "pickup");
    lf_str(&l, "maildrop", qid);
    lf_addr(&l, "from", e.sender);
    lf_num(&l, "size", qi.data_len);
    lf_num(&l, "nrcpt", (long long)e.nrcpts);
    lf_str(&l, "user", pw->pw_name);
    lf_num(&l, "uid", (long long)st->st_uid);
    if (too_big)
        lf_str(&l, "reason", "too large, to be bounced");
    lf_log(&l, LOG_INFO);
    for (size_t i = 0; i < e.nrcpts; i++)
        if (e.rcpts[i].state == RS_FAILED && !too_big)
            log_warn("%s: refused recipient %s: %s", e.qid, e.rcpts[i].addr,
                     e.rcpts[i].status);
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
static int pickup_one(const struct config *c, const char *dropdir, const char *qid,
                      struct strlist *picked)
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
        r = take(c, fd, &st, qid, picked, &why);
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

/* Is the queue's file system below minfree=?  Then nothing is copied now. */
static int short_of_space(const struct config *c)
{
    if (spool_below_minfree(c) != 1)
        return 0;
    log_warn("maildrop: the queue file system has less than minfree= (%lld bytes) free; "
             "submissions wait", c->minfree);
    return 1;
}

int pickup_maildrop(const struct config *c, struct strlist *picked)
{
    char *dropdir = xasprintf("%s/maildrop", c->queuedir);
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
    for (size_t i = 0; i < qids.n && !short_of_space(c); i++) {
        int r = pickup_one(c, dropdir, qids.v[i], picked);
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
