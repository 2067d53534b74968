/* pickup.c - spool_pickup() of spool.h: move local users' submissions from
 * QUEUEDIR/maildrop into the queue.
 *
 * Everything in the maildrop is untrusted: any local user can drop files
 * there.  This must run as the queue owner, never as root.  A submission is
 * taken only when both files are plain files with one link, owned by the same
 * uid, and the control file parses strictly.  Only the fields a submitter may
 * choose are copied (recipients, DSN options, the sender for root and
 * trusted-users); everything else is set here, the sender from the owner's
 * login name.  The data is copied through the descriptors we checked into new
 * queue files, never renamed (the user still owns that inode). */
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

#include "ctl.h"
#include "envelope.h"
#include "log.h"
#include "spool.h"
#include "util.h"

#define DROP_CF_MAX (1L * 1024 * 1024)

struct drop {
    char *cfpath, *dfpath;
    int cf, df;         /* descriptors of the checked files, -1 if not open */
    struct stat cst, dst;
};

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

/* Copy the data through d->df into a new queue message with envelope e. */
static int copy_in(const char *queuedir, struct drop *d, struct envelope *e)
{
    struct spool_new *sn = spool_new(queuedir);
    if (!sn)
        return -1;
    char tmp[16384];
    for (;;) {
        ssize_t r = read(d->df, tmp, sizeof tmp);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 || (r > 0 && spool_new_write(sn, tmp, (size_t)r) < 0)) {
            int err = errno;
            spool_abort(sn);
            errno = err;
            return -1;
        }
        if (r == 0)
            break;
    }
    return spool_commit(sn, e);
}

static void drop_close(struct drop *d)
{
    if (d->cf >= 0)
        close(d->cf);
    if (d->df >= 0)
        close(d->df);
    free(d->cfpath);
    free(d->dfpath);
}

/* Remove a submission we took or refused (the sticky maildrop lets its owner
 * directory's owner, the queue owner, do that). */
static void drop_remove(struct drop *d)
{
    unlink(d->cfpath);
    unlink(d->dfpath);
}

/* 1 picked up, 0 skipped (not complete yet, or refused and removed), -1 error
 * of our own (disk full...): stop. */
static int pickup_one(const char *queuedir, const char *dropdir, const char *qid,
                      const struct strlist *trusted, struct strlist *picked)
{
    struct drop d = {.cf = -1, .df = -1};
    struct envelope u, e;
    struct buf text;
    const char *why = NULL;
    int r = 0;

    d.cfpath = xasprintf("%s/cf%s", dropdir, qid);
    d.dfpath = xasprintf("%s/df%s", dropdir, qid);
    env_init(&u);
    env_init(&e);
    buf_init(&text);
    if ((d.cf = open_drop_file(d.cfpath, &d.cst)) < 0
        || (d.df = open_drop_file(d.dfpath, &d.dst)) < 0) {
        log_warn("maildrop %s: %s", qid, errno == EPERM ? "not a plain file with one link"
                                                         : strerror(errno));
        goto out; /* possibly still being written: cleanup removes stale ones */
    }
    if (d.cst.st_uid != d.dst.st_uid) {
        why = "control and data file have different owners";
    } else if (d.cst.st_size > DROP_CF_MAX) {
        why = "control file too large";
    } else {
        ssize_t n;
        char tmp[8192];
        while ((n = read(d.cf, tmp, sizeof tmp)) > 0 && text.len <= (size_t)DROP_CF_MAX)
            buf_add(&text, tmp, (size_t)n);
        if (n < 0 || text.len > (size_t)DROP_CF_MAX)
            why = "cannot read the control file";
        else if (ctl_parse(text.s, text.len, &u, &why) < 0 && !memmem(text.s, text.len, "\n.\n", 3))
            goto out; /* incomplete: not committed (yet) */
    }
    struct passwd *pw = why ? NULL : getpwuid(d.cst.st_uid);
    if (!why && !pw)
        why = "owner uid has no account";
    if (!why) {
        int is_trusted = d.cst.st_uid == 0 || (trusted && sl_contains(trusted, pw->pw_name));
        if (build_env(&u, pw->pw_name, is_trusted, &e, &why) == 0) {
            if (copy_in(queuedir, &d, &e) < 0) {
                log_err("maildrop %s: cannot queue: %s", qid, strerror(errno));
                r = -1;
                goto out;
            }
            log_info("%s: picked up maildrop %s from %s (uid %ld)", e.qid, qid, pw->pw_name,
                     (long)d.cst.st_uid);
            if (picked)
                sl_add(picked, e.qid);
            drop_remove(&d);
            r = 1;
            goto out;
        }
    }
    log_warn("maildrop %s (uid %ld): refused: %s", qid, (long)d.cst.st_uid, why);
    drop_remove(&d);
out:
    buf_free(&text);
    env_free(&u);
    env_free(&e);
    drop_close(&d);
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
        if (strncmp(de->d_name, "cf", 2) == 0 && spool_valid_qid(de->d_name + 2))
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
