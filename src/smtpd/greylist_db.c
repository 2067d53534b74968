/* greylist_db.c - the greylist database file (smtpauth(5)).
 * grey_db_prepare runs as root (the master at start, authexpire before it
 * drops privileges); everything else runs as user=. */
#include "compat.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "greylist_db.h"
#include "util.h"

char *grey_db_file(const char *path)
{
    return xasprintf("%s.db", path);
}

static void block_signals(sigset_t *old)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGQUIT);
    sigprocmask(SIG_BLOCK, &set, old);
}

int grey_db_open(struct grey_db *g, const char *path, int writer, long wait_ms, char **err)
{
    char *file = grey_db_file(path);
    long long deadline = now_ms() + wait_ms;
    int nap = 1; /* ms, doubled up to 16: sessions hold the lock for microseconds */
    int flags = (writer ? GDBM_WRITER : GDBM_READER) | GDBM_CLOEXEC;
    block_signals(&g->oldmask);
    for (;;) {
        g->db = gdbm_open(file, 0, flags, 0600, NULL);
        if (g->db) {
            free(file);
            return 0;
        }
        int busy = gdbm_errno == GDBM_CANT_BE_WRITER || gdbm_errno == GDBM_CANT_BE_READER;
        if (!busy || now_ms() >= deadline) {
            int e = busy ? EWOULDBLOCK : gdbm_syserr[gdbm_errno] ? errno : EINVAL;
            if (busy)
                *err = xasprintf("%s: still locked by another process after %ld ms", file,
                                 wait_ms);
            else if (gdbm_syserr[gdbm_errno])
                *err = xasprintf("%s: %s", file, strerror(errno));
            else
                *err = xasprintf("%s: %s", file, gdbm_strerror(gdbm_errno));
            sigprocmask(SIG_SETMASK, &g->oldmask, NULL);
            free(file);
            errno = e;
            return -1;
        }
        poll(NULL, 0, nap);
        if (nap < 16)
            nap *= 2;
    }
}

void grey_db_close(struct grey_db *g)
{
    if (g->db)
        gdbm_close(g->db);
    g->db = NULL;
    sigprocmask(SIG_SETMASK, &g->oldmask, NULL);
}

/* Make the directory when only its last component is missing. */
static int prepare_dir(const char *file, char **err)
{
    char *dir = xstrdup(file);
    char *slash = strrchr(dir, '/');
    int rc = 0;
    struct stat st;
    if (slash && slash != dir) {
        *slash = '\0';
        if (stat(dir, &st) < 0 && errno == ENOENT && mkdir(dir, 0755) < 0) {
            *err = xasprintf("cannot make the directory %s: %s", dir, strerror(errno));
            rc = -1;
        }
    }
    free(dir);
    return rc;
}

/* A new, empty database owned by uid/gid, made under a temporary name and
 * linked into place whole: nobody ever opens a half-made file. */
static int create_db(const char *file, uid_t uid, gid_t gid, char **err)
{
    char *tmp = xasprintf("%s.new%ld", file, (long)getpid());
    int rc = -1;
    int fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    GDBM_FILE db = NULL;
    if (fd < 0) {
        *err = xasprintf("cannot create %s: %s", tmp, strerror(errno));
    } else if (fchown(fd, uid, gid) < 0) {
        *err = xasprintf("cannot give %s to uid %ld: %s", tmp, (long)uid, strerror(errno));
        close(fd);
    } else if (!(db = gdbm_fd_open(fd, tmp, 0, GDBM_NEWDB | GDBM_CLOERROR, NULL))) {
        *err = xasprintf("cannot create %s: %s", tmp, gdbm_strerror(gdbm_errno));
    } else if (gdbm_close(db) != 0) {
        *err = xasprintf("cannot write %s: %s", tmp, gdbm_strerror(gdbm_errno));
    } else if (link(tmp, file) < 0 && errno != EEXIST) { /* EEXIST: made meanwhile */
        *err = xasprintf("cannot link %s to %s: %s", tmp, file, strerror(errno));
    } else {
        rc = 0;
    }
    if (fd >= 0)
        unlink(tmp);
    free(tmp);
    return rc;
}

int grey_db_prepare(const char *path, uid_t uid, gid_t gid, char **err)
{
    char *file = grey_db_file(path);
    int rc = prepare_dir(file, err);
    if (rc == 0) {
        int fd = open(file, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
        struct stat st;
        if (fd < 0 && errno == ENOENT) {
            rc = create_db(file, uid, gid, err);
        } else if (fd < 0 || fstat(fd, &st) < 0) {
            *err = xasprintf("cannot open %s: %s", file, strerror(errno));
            rc = -1;
        } else if (!S_ISREG(st.st_mode)) {
            *err = xasprintf("%s is not a regular file", file);
            rc = -1;
        } else if ((st.st_uid != uid || st.st_gid != gid) && fchown(fd, uid, gid) < 0) {
            /* the original's sessions ran as root: its file was root's */
            *err = xasprintf("cannot give %s to uid %ld: %s", file, (long)uid, strerror(errno));
            rc = -1;
        }
        if (fd >= 0)
            close(fd);
    }
    free(file);
    return rc;
}

/* A decimal time_t at *p; advances *p.  -1 if there are no digits. */
static int parse_time(const char **p, const char *end, time_t *out)
{
    long long v = 0;
    const char *s = *p;
    while (*p < end && **p >= '0' && **p <= '9') {
        if (v > (long long)1 << 50)
            return -1;
        v = v * 10 + (**p - '0');
        (*p)++;
    }
    if (*p == s)
        return -1;
    *out = (time_t)v;
    return 0;
}

int grey_rec_parse(const char *v, size_t n, struct grey_rec *r)
{
    const char *p = v, *end = v + n;
    while (end > p && end[-1] == '\0')
        end--;
    memset(r, 0, sizeof *r);
    if (p < end && *p == '*') {
        r->forbidden = 1;
        p++;
    } else if (parse_time(&p, end, &r->allowed) < 0) {
        return -1;
    }
    if (p < end && *p == ' ') {
        p++;
        if (parse_time(&p, end, &r->last) < 0)
            return -1;
    }
    return p == end ? 0 : -1;
}

static datum key_datum(const char *key)
{
    datum k = { (char *)key, (int)strlen(key) + 1 };
    return k;
}

int grey_rec_get(GDBM_FILE db, const char *key, struct grey_rec *r)
{
    datum v = gdbm_fetch(db, key_datum(key));
    if (!v.dptr)
        return gdbm_errno == GDBM_ITEM_NOT_FOUND ? 0 : -1;
    int rc = grey_rec_parse(v.dptr, (size_t)v.dsize, r) == 0 ? 1 : -1;
    free(v.dptr);
    return rc;
}

size_t grey_rec_format(const struct grey_rec *r, char *out, size_t size)
{
    int n;
    if (r->forbidden)
        n = snprintf(out, size, "* %lld", (long long)r->last);
    else
        n = snprintf(out, size, "%lld %lld", (long long)r->allowed, (long long)r->last);
    return n < 0 ? 0 : (size_t)n;
}

int grey_rec_put(GDBM_FILE db, const char *key, const struct grey_rec *r)
{
    char val[GREY_VALUE_MAX];
    size_t n = grey_rec_format(r, val, sizeof val);
    datum v = { val, (int)n + 1 }; /* with the NUL, as the original stored it */
    return gdbm_store(db, key_datum(key), v, GDBM_REPLACE) == 0 ? 0 : -1;
}
