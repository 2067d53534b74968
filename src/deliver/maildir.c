/* maildir.c - deliver messages into a maildir, safely (maildir.h).
 *
 * Never runs as root: maildir_write is called in the delivery child as the
 * maildir's owner and refuses uid 0.  Every name is opened relative to a
 * directory descriptor with O_NOFOLLOW, so a symbolic link planted for the
 * maildir, one of its subdirectories or a folder is refused, never followed;
 * the directories must be the caller's own and not writable by others. */
#include "compat.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "maildir.h"
#include "message_out.h"
#include "util.h"

#define DIR_FLAGS (O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
#define TAG_MAX 200
#define SIZEFILE "maildirsize"

void maildir_name(struct buf *out, long long sec, long usec, long pid, unsigned long q,
                  const char *host, long long size)
{
    buf_addf(out, "%lld.M%ldP%ldQ%lu.", sec, usec, pid, q);
    if (host == NULL || *host == '\0')
        host = "localhost";
    for (const char *p = host; *p; p++) {
        if (*p == '/')
            buf_adds(out, "\\057");
        else if (*p == ':')
            buf_adds(out, "\\072");
        else
            buf_addc(out, *p);
    }
    if (size >= 0)
        buf_addf(out, ",S=%lld", size);
}

char *maildir_folder_of(const char *rcpt, const char *delim)
{
    if (rcpt == NULL || delim == NULL || delim[0] == '\0')
        return NULL;
    const char *at = strrchr(rcpt, '@');
    size_t local = at ? (size_t)(at - rcpt) : strlen(rcpt);
    const char *d = memchr(rcpt, delim[0], local);
    if (d == NULL)
        return NULL;
    const char *tag = d + 1;
    size_t len = local - (size_t)(tag - rcpt);
    if (len == 0 || len > TAG_MAX || tag[0] == '.')
        return NULL;
    for (size_t k = 0; k < len; k++)
        if (tag[k] == '/' || (unsigned char)tag[k] < ' ' || tag[k] == 0x7f)
            return NULL;
    char *f = xmalloc(len + 2);
    f[0] = '.';
    memcpy(f + 1, tag, len);
    f[len + 1] = '\0';
    return f;
}

/* ---- directories ---- */

/* Open name under at as a directory of ours, making it 0700 when missing.
 * The descriptor, or -1 with *why ("X.Y.Z text", shown names it). */
static int open_dir(int at, const char *name, const char *shown, char **why)
{
    int fd = openat(at, name, DIR_FLAGS);
    if (fd < 0 && errno == ENOENT) {
        if (mkdirat(at, name, 0700) < 0 && errno != EEXIST) {
            *why = xasprintf("4.3.0 cannot create %s: %s", shown, strerror(errno));
            return -1;
        }
        fd = openat(at, name, DIR_FLAGS);
    }
    struct stat st;
    if (fd < 0) {
        int e = errno;
        if (fstatat(at, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode))
            *why = xasprintf("4.2.0 %s is a symbolic link: remove it; will retry", shown);
        else if (e == ENOTDIR)
            *why = xasprintf("4.2.0 %s is not a directory: remove it; will retry", shown);
        else
            *why = xasprintf("4.3.0 cannot open %s: %s", shown, strerror(e));
        return -1;
    }
    if (fstat(fd, &st) < 0) {
        *why = xasprintf("4.3.0 cannot stat %s: %s", shown, strerror(errno));
    } else if (st.st_uid != geteuid()) {
        *why = xasprintf("4.2.0 %s belongs to uid %lu, not to the recipient (uid %lu): "
                         "remove it or give it to the recipient; will retry", shown,
                         (unsigned long)st.st_uid, (unsigned long)geteuid());
    } else if (st.st_mode & S_IWOTH) {
        *why = xasprintf("4.2.0 %s is writable by everybody: chmod 700 it; will retry", shown);
    } else {
        return fd;
    }
    close(fd);
    return -1;
}

/* One maildir or folder being written: its tmp/ and new/ (cur/ made). */
struct folder {
    char *name;   /* NULL: INBOX, else ".tag" */
    char *shown;  /* its path, for messages */
    int dir, tmp, new;
    int used;     /* something was linked into new/ */
};

static void folder_close(struct folder *f)
{
    if (f->dir >= 0)
        close(f->dir);
    if (f->tmp >= 0)
        close(f->tmp);
    if (f->new >= 0)
        close(f->new);
    free(f->name);
    free(f->shown);
}

/* Open (making what is missing) the subdirectories of f->dir. */
static int folder_subdirs(struct folder *f, char **why)
{
    char *s = xasprintf("%s/cur", f->shown);
    int cur = open_dir(f->dir, "cur", s, why);
    free(s);
    if (cur < 0)
        return -1;
    close(cur);
    s = xasprintf("%s/tmp", f->shown);
    f->tmp = open_dir(f->dir, "tmp", s, why);
    free(s);
    if (f->tmp < 0)
        return -1;
    s = xasprintf("%s/new", f->shown);
    f->new = open_dir(f->dir, "new", s, why);
    free(s);
    return f->new < 0 ? -1 : 0;
}

/* A Maildir++ folder: the directory and its "maildirfolder" marker. */
static int folder_open(int top, const char *path, const char *name, struct folder *f,
                       char **why)
{
    memset(f, 0, sizeof *f);
    f->dir = f->tmp = f->new = -1;
    f->name = xstrdup(name);
    f->shown = xasprintf("%s/%s", path, name);
    f->dir = open_dir(top, name, f->shown, why);
    if (f->dir < 0)
        return -1;
    int m = openat(f->dir, "maildirfolder", O_WRONLY | O_CREAT | O_NOFOLLOW | O_NONBLOCK |
                                            O_CLOEXEC | O_NOCTTY, 0600);
    if (m < 0) {
        *why = xasprintf("4.3.0 cannot create %s/maildirfolder: %s", f->shown, strerror(errno));
        return -1;
    }
    close(m);
    return folder_subdirs(f, why);
}

/* The maildir itself: its parent is followed (the admin's template, a home
 * directory), the last component never. */
static int top_open(const char *path, struct folder *f, char **why)
{
    memset(f, 0, sizeof *f);
    f->dir = f->tmp = f->new = -1;
    char *p = xstrdup(path);
    size_t n = strlen(p);
    while (n > 1 && p[n - 1] == '/')
        p[--n] = '\0';
    f->shown = xstrdup(p);
    char *slash = strrchr(p, '/');
    if (slash == NULL || slash[1] == '\0') {
        *why = xasprintf("4.3.0 %s is not a usable maildir path: name a directory "
                         "below /, such as /var/mail/USER/ or ~/Maildir/", path);
        free(p);
        return -1;
    }
    *slash = '\0';
    int parent = open(*p ? p : "/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (parent < 0) {
        *why = xasprintf("4.3.0 cannot open %s: %s", *p ? p : "/", strerror(errno));
        free(p);
        return -1;
    }
    f->dir = open_dir(parent, slash + 1, f->shown, why);
    close(parent);
    free(p);
    return f->dir < 0 ? -1 : folder_subdirs(f, why);
}

/* ---- maildirsize (Maildir++) ---- */

/* Sizes from one directory of messages. */
static int scan_msgs(int at, const char *name, long long *bytes, long long *count)
{
    int fd = openat(at, name, DIR_FLAGS);
    if (fd < 0)
        return errno == ENOENT ? 0 : -1;
    DIR *d = fdopendir(fd);
    if (d == NULL) {
        close(fd);
        return -1;
    }
    struct dirent *e;
    while ((errno = 0, e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        const char *s = strstr(e->d_name, ",S=");
        long long sz = -1;
        if (s != NULL) {
            char *end;
            errno = 0;
            sz = strtoll(s + 3, &end, 10);
            if (errno || end == s + 3 || (*end && *end != ',' && *end != ':') || sz < 0)
                sz = -1;
        }
        struct stat st;
        if (sz < 0 && fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
            S_ISREG(st.st_mode))
            sz = st.st_size;
        if (sz >= 0) {
            *bytes += sz;
            (*count)++;
        }
    }
    int rc = errno ? -1 : 0;
    closedir(d);
    return rc;
}

/* The maildir's and its folders' new/ and cur/. */
static int scan_all(int top, long long *bytes, long long *count)
{
    *bytes = *count = 0;
    if (scan_msgs(top, "new", bytes, count) < 0 || scan_msgs(top, "cur", bytes, count) < 0)
        return -1;
    int fd = openat(top, ".", DIR_FLAGS);
    DIR *d = fd < 0 ? NULL : fdopendir(fd);
    if (d == NULL) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    struct dirent *e;
    int rc = 0;
    while (rc == 0 && (errno = 0, e = readdir(d)) != NULL) {
        if (e->d_name[0] != '.' || !strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        int sub = openat(dirfd(d), e->d_name, DIR_FLAGS);
        if (sub < 0)
            continue; /* a dot file, or a link: not a folder */
        if (scan_msgs(sub, "new", bytes, count) < 0 || scan_msgs(sub, "cur", bytes, count) < 0)
            rc = -1;
        close(sub);
    }
    if (rc == 0 && errno)
        rc = -1;
    closedir(d);
    return rc;
}

/* Count again and replace the file (written in tmp/, renamed in). */
static int recount(int top, long long limit, long long *bytes)
{
    long long count;
    if (scan_all(top, bytes, &count) < 0)
        return -1;
    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct buf name;
    buf_init(&name);
    buf_addf(&name, "tmp/%s.%lld.%ld.%ld", SIZEFILE, (long long)tv.tv_sec, (long)tv.tv_usec,
             (long)getpid());
    char *text = xasprintf("%lldS\n%lld %lld\n", limit, *bytes, count);
    int fd = openat(top, name.s, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    int rc = fd < 0 ? -1 : write_all(fd, text, strlen(text));
    if (fd >= 0 && close(fd) < 0)
        rc = -1;
    if (rc == 0)
        rc = renameat(top, name.s, top, SIZEFILE);
    if (rc < 0 && fd >= 0) {
        int e = errno;
        (void)unlinkat(top, name.s, 0);
        errno = e;
    }
    free(text);
    buf_free(&name);
    return rc;
}

#define SIZE_LINE_MAX 1000000000000000LL /* 10^15: no maildir holds more */

int maildirsize_parse(const char *text, size_t len, long long limit, long long *bytes)
{
    char want[32];
    snprintf(want, sizeof want, "%lldS\n", limit);
    size_t wl = strlen(want);
    if (len < wl || memcmp(text, want, wl) != 0 || memchr(text, '\0', len) != NULL)
        return -1;
    long long sum = 0;
    for (const char *p = text + wl, *end = text + len; p < end;) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (nl == NULL)
            return -1;
        char line[64];
        if ((size_t)(nl - p) >= sizeof line)
            return -1;
        memcpy(line, p, (size_t)(nl - p));
        line[nl - p] = '\0';
        char *e1, *e2 = NULL;
        errno = 0;
        long long b = strtoll(line, &e1, 10);
        long long n = e1 > line && *e1 == ' ' ? strtoll(e1 + 1, &e2, 10) : 0;
        if (e1 == line || *e1 != ' ' || e2 == e1 + 1 || *e2 != '\0' || errno ||
            b > SIZE_LINE_MAX || b < -SIZE_LINE_MAX || n > SIZE_LINE_MAX || n < -SIZE_LINE_MAX)
            return -1;
        sum += b;
        p = nl + 1;
    }
    *bytes = sum < 0 ? 0 : sum;
    return 0;
}

int maildirsize_get(int dirfd, long long limit, long long *bytes)
{
    char buf[MAILDIRSIZE_MAX + 1];
    int fd = openat(dirfd, SIZEFILE, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0 && errno != ENOENT)
        return -1;
    ssize_t got = -1;
    struct stat st;
    if (fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode))
        got = read_all(fd, buf, sizeof buf - 1);
    if (fd >= 0)
        close(fd);
    if (got >= 0 && got < (ssize_t)sizeof buf - 1 &&
        maildirsize_parse(buf, (size_t)got, limit, bytes) == 0 &&
        (*bytes <= limit || time(NULL) - st.st_mtime < MAILDIRSIZE_STALE))
        return 0;
    return recount(dirfd, limit, bytes);
}

int maildirsize_add(int dirfd, long long bytes, long long count)
{
    int fd = openat(dirfd, SIZEFILE, O_WRONLY | O_APPEND | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? 0 : -1;
    char *line = xasprintf("%lld %lld\n", bytes, count);
    int rc = write_all(fd, line, strlen(line));
    free(line);
    if (close(fd) < 0)
        rc = -1;
    return rc;
}

/* ---- writing ---- */

struct mdwriter {
    const struct maildir_req *r;
    struct folder *f;     /* [0] the maildir (INBOX), then folders */
    size_t nf;
    char host[256];
    unsigned long q;
    long long used;       /* bytes, when r->limit */
    char **names;         /* per message: its name in new/ once linked */
    size_t *where;        /* per message: its folder */
};

static struct folder *folder_for(struct mdwriter *w, const char *rcpt, char **why)
{
    char *name = w->r->delim ? maildir_folder_of(rcpt, w->r->delim) : NULL;
    if (name == NULL)
        return &w->f[0];
    for (size_t k = 1; k < w->nf; k++)
        if (strcmp(w->f[k].name, name) == 0) {
            free(name);
            return &w->f[k];
        }
    struct folder *f = &w->f[w->nf];
    int rc = folder_open(w->f[0].dir, w->f[0].shown, name, f, why);
    free(name);
    if (rc < 0) { /* the next message for it tries again */
        folder_close(f);
        return NULL;
    }
    w->nf++;
    return f;
}

static char *write_error(const char *what, int e)
{
    if (e == ENOSPC || e == EDQUOT || e == EFBIG)
        return xasprintf("4.2.2 %s: the file system is full: %s", what, strerror(e));
    return xasprintf("4.3.0 cannot write %s: %s", what, strerror(e));
}

/* Write msg into f's tmp/; its size, or -1 (*why). */
static long long write_tmp(struct folder *f, const char *tmpname, struct mbox_msg *m,
                           char **why)
{
    int fd = openat(f->tmp, tmpname, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        *why = xasprintf("4.3.0 cannot create a file in %s/tmp: %s", f->shown, strerror(errno));
        return -1;
    }
    char *prepend = mbox_prepend(m->sender, m->rcpt);
    struct msgout mo = {.flags = 0, .sender = m->sender, .prepend = prepend};
    struct stat st;
    int rc = msgout_write(&m->data, fd, &mo);
    if (rc == 0)
        rc = fsync(fd);
    if (rc == 0)
        rc = fstat(fd, &st);
    int e = errno;
    free(prepend);
    if (close(fd) < 0 && rc == 0) {
        rc = -1;
        e = errno;
    }
    if (rc == 0)
        return st.st_size;
    (void)unlinkat(f->tmp, tmpname, 0);
    char *what = xasprintf("%s/tmp", f->shown);
    *why = write_error(what, e);
    free(what);
    return -1;
}

/* Is there room for size more bytes?  A count over the limit is checked
 * against the files once (readers that do not keep maildirsize). */
static int room_for(struct mdwriter *w, long long size, int *recounted)
{
    if (w->r->limit <= 0 || w->used + size <= w->r->limit)
        return 1;
    struct stat st;
    if (!*recounted && fstatat(w->f[0].dir, SIZEFILE, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
        time(NULL) - st.st_mtime >= MAILDIRSIZE_STALE) {
        *recounted = 1;
        long long b;
        if (recount(w->f[0].dir, w->r->limit, &b) == 0)
            w->used = b;
    }
    return w->used + size <= w->r->limit;
}

static char *full(const struct maildir_req *r, long long used, long long size)
{
    return xasprintf("%s mailbox %s is full: %lld bytes of %lld, the message has %lld",
                     r->limit_bounce ? "5.2.2" : "4.2.2", r->path, used, r->limit, size);
}

/* Into new/: a hard link (the tmp/ name stays until it is in), or a rename
 * that never replaces a file. */
static int into_new(struct folder *f, const char *tmpname, const char *name)
{
    if (linkat(f->tmp, tmpname, f->new, name, 0) == 0) {
        (void)unlinkat(f->tmp, tmpname, 0);
        return 0;
    }
    if (errno != EPERM && errno != EXDEV && errno != ENOSYS && errno != EOPNOTSUPP &&
        errno != EMLINK)
        return -1;
    struct stat st;
    if (fstatat(f->new, name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
        errno = EEXIST;
        return -1;
    }
    return renameat(f->tmp, tmpname, f->new, name);
}

static void deliver_one(struct mdwriter *w, size_t k, struct mbox_msg *m, int *recounted)
{
    struct folder *f = folder_for(w, m->rcpt, &m->status);
    if (f == NULL)
        return;
    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct buf tmp, name;
    buf_init(&tmp);
    buf_init(&name);
    unsigned long q = w->q++;
    maildir_name(&tmp, (long long)tv.tv_sec, (long)tv.tv_usec, (long)getpid(), q, w->host, -1);
    long long size = write_tmp(f, tmp.s, m, &m->status);
    if (size >= 0 && !room_for(w, size, recounted)) {
        (void)unlinkat(f->tmp, tmp.s, 0);
        m->status = full(w->r, w->used, size);
        m->res = w->r->limit_bounce ? DELIV_FAIL : DELIV_DEFER;
    } else if (size >= 0) {
        maildir_name(&name, (long long)tv.tv_sec, (long)tv.tv_usec, (long)getpid(), q,
                     w->host, size);
        if (into_new(f, tmp.s, name.s) < 0) {
            m->status = xasprintf("4.3.0 cannot move the message into %s/new: %s", f->shown,
                                  strerror(errno));
            (void)unlinkat(f->tmp, tmp.s, 0);
        } else {
            w->used += size;
            f->used = 1;
            w->names[k] = buf_steal(&name);
            w->where[k] = (size_t)(f - w->f);
        }
    }
    buf_free(&tmp);
    buf_free(&name);
}

/* new/ of every folder written to, synced: else its messages are taken back. */
static void sync_new(struct mdwriter *w, struct mbox_msg *msgs, size_t n)
{
    for (size_t i = 0; i < w->nf; i++) {
        struct folder *f = &w->f[i];
        if (!f->used || fsync(f->new) == 0)
            continue;
        int e = errno;
        for (size_t k = 0; k < n; k++)
            if (w->names[k] && w->where[k] == i) {
                (void)unlinkat(f->new, w->names[k], 0);
                free(w->names[k]);
                w->names[k] = NULL;
                char *what = xasprintf("%s/new", f->shown);
                msgs[k].status = write_error(what, e);
                free(what);
            }
    }
}

static void finish(struct mdwriter *w, struct mbox_msg *msgs, size_t n)
{
    long long bytes = 0, count = 0;
    for (size_t k = 0; k < n; k++) {
        if (w->names[k] == NULL)
            continue;
        struct stat st;
        if (fstatat(w->f[w->where[k]].new, w->names[k], &st, AT_SYMLINK_NOFOLLOW) == 0) {
            bytes += st.st_size;
            count++;
        }
        msgs[k].res = DELIV_OK;
        msgs[k].status = xasprintf("2.0.0 delivered to maildir %s/", w->f[w->where[k]].shown);
    }
    if (count > 0 && maildirsize_add(w->f[0].dir, bytes, count) < 0)
        log_warn("%s/%s: cannot add to the count: %s", w->f[0].shown, SIZEFILE, strerror(errno));
}

void maildir_write(const struct maildir_req *r, struct mbox_msg *msgs, size_t n)
{
    char *why = NULL;
    for (size_t k = 0; k < n; k++) {
        msgs[k].res = DELIV_DEFER;
        msgs[k].status = NULL;
    }
    if (n == 0)
        return;
    struct mdwriter w = {.r = r, .f = xcalloc(n + 1, sizeof *w.f), .nf = 1,
                         .names = xcalloc(n, sizeof *w.names), .where = xcalloc(n, sizeof *w.where)};
    if (geteuid() == 0)
        why = xasprintf("4.3.0 refusing to write maildir %s as root", r->path);
    else if (top_open(r->path, &w.f[0], &why) == 0 && r->limit > 0 &&
             maildirsize_get(w.f[0].dir, r->limit, &w.used) < 0)
        why = xasprintf("4.3.0 cannot count the size of %s: %s", r->path, strerror(errno));
    if (why == NULL) {
        if (gethostname(w.host, sizeof w.host) < 0)
            w.host[0] = '\0';
        w.host[sizeof w.host - 1] = '\0';
        int recounted = 0;
        for (size_t k = 0; k < n; k++)
            deliver_one(&w, k, &msgs[k], &recounted);
        sync_new(&w, msgs, n);
        finish(&w, msgs, n);
    }
    for (size_t k = 0; k < n; k++) {
        if (msgs[k].status == NULL)
            msgs[k].status = xstrdup(why ? why : "4.3.0 not delivered");
        free(w.names[k]);
    }
    for (size_t i = 0; i < w.nf; i++)
        folder_close(&w.f[i]);
    free(w.f);
    free(w.names);
    free(w.where);
    free(why);
}
