/* forward.c - read a ~/.forward or :include: file as its reader, never as root.
 *
 * Runs as root: forward_read() starts a child (child_start) that becomes the
 * user before it opens anything; the parent (root) only reads the child's one
 * MSG_FORWARD_RESULT message (i64 verdict, str why or absent, u32 count and
 * that many str entries) and reaps it. */
#include "compat.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "aliases.h"
#include "child.h"
#include "forward.h"
#include "log.h"
#include "msg.h"
#include "util.h"

#define FWD_TIMEOUT_MS 30000

/* May directory d hold (strict) or lead to a .forward of who's?  It must
 * belong to who or root and not be group- or world-writable, except that a
 * sticky directory (/tmp) may lead to it. */
static int safe_dir(const struct ident *who, const char *d, const char *path, int strict,
                    char **why)
{
    struct stat st;
    if (stat(d, &st) < 0) {
        *why = xasprintf("%s: %s", d, strerror(errno));
        return FWD_TEMP;
    }
    if (st.st_uid != who->uid && st.st_uid != 0) {
        *why = xasprintf("directory %s (of %s) is owned by neither %s nor root", d, path,
                         who->name);
        return FWD_IGNORED;
    }
    if ((st.st_mode & (S_IWGRP | S_IWOTH)) && (strict || !(st.st_mode & S_ISVTX))) {
        *why = xasprintf("directory %s (of %s) is group- or world-writable", d, path);
        return FWD_IGNORED;
    }
    return FWD_OK;
}

/* Is every directory on the way to path safe (sendmail's rule)?  Whoever can
 * write there can put a .forward in or replace one.  FWD_OK, FWD_ABSENT, or
 * FWD_IGNORED/FWD_TEMP with *why naming the directory.  Runs as the reader. */
static int safe_dirs(const struct ident *who, const char *path, char **why)
{
    char *dir = xstrdup(path);
    char *slash = strrchr(dir, '/');
    if (slash)
        slash[slash == dir] = '\0';
    char *real = realpath(dir, NULL);
    int err = errno;
    free(dir);
    if (!real) {
        if (err == ENOENT || err == ENOTDIR)
            return FWD_ABSENT;
        *why = xasprintf("%s: %s", path, strerror(err));
        return err == EACCES ? FWD_IGNORED : FWD_TEMP;
    }
    if (strcmp(real, "/") == 0)
        real[0] = '\0';
    int rc;
    for (int strict = 1;; strict = 0) {
        rc = safe_dir(who, *real ? real : "/", path, strict, why);
        if (rc != FWD_OK || !*real)
            break;
        *strrchr(real, '/') = '\0'; /* absolute: "/tmp" becomes "" (the root) */
    }
    free(real);
    return rc;
}

/* The file's contents in text, or a verdict.  Runs as the reader. */
static int load_file(const struct ident *who, const char *path, enum fwd_mode mode,
                     struct buf *text, char **why)
{
    int flags = O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC;
    if (mode == FWD_FORWARD)
        flags |= O_NOFOLLOW;
    if (mode == FWD_FORWARD) {
        int rc = safe_dirs(who, path, why);
        if (rc != FWD_OK)
            return rc;
    }
    int fd = open(path, flags);
    if (fd < 0) {
        if (errno == ENOENT || errno == ENOTDIR)
            return FWD_ABSENT;
        if (errno == ELOOP) {
            *why = xasprintf("%s is a symbolic link", path);
            return FWD_IGNORED;
        }
        if (errno == EACCES || errno == EPERM) {
            *why = xasprintf("%s: permission denied for %s", path, who->name);
            return FWD_IGNORED;
        }
        *why = xasprintf("%s: %s", path, strerror(errno));
        return FWD_TEMP;
    }
    struct stat st;
    int rc = FWD_OK;
    if (fstat(fd, &st) < 0) {
        *why = xasprintf("%s: %s", path, strerror(errno));
        rc = FWD_TEMP;
    } else if (!S_ISREG(st.st_mode)) {
        *why = xasprintf("%s is not a regular file", path);
        rc = FWD_IGNORED;
    } else if (mode == FWD_FORWARD && st.st_uid != who->uid) {
        *why = xasprintf("%s is not owned by %s", path, who->name);
        rc = FWD_IGNORED;
    } else if (mode == FWD_FORWARD && (st.st_mode & (S_IWGRP | S_IWOTH))) {
        *why = xasprintf("%s is group- or world-writable", path);
        rc = FWD_IGNORED;
    } else if (st.st_mode & S_IWOTH) {
        *why = xasprintf("%s is world-writable", path);
        rc = FWD_IGNORED;
    } else if (st.st_size > FWD_FILE_MAX) {
        *why = xasprintf("%s is larger than %d bytes", path, FWD_FILE_MAX);
        rc = FWD_IGNORED;
    }
    if (rc == FWD_OK) {
        char chunk[4096];
        ssize_t n;
        while ((n = read_all(fd, chunk, sizeof chunk)) > 0 && text->len <= FWD_FILE_MAX)
            buf_add(text, chunk, (size_t)n);
        if (n < 0) {
            *why = xasprintf("%s: %s", path, strerror(errno));
            rc = FWD_TEMP;
        } else if (text->len > FWD_FILE_MAX) {
            *why = xasprintf("%s is larger than %d bytes", path, FWD_FILE_MAX);
            rc = FWD_IGNORED;
        } else if (memchr(text->s, '\0', text->len)) {
            *why = xasprintf("%s contains a NUL byte", path);
            rc = FWD_IGNORED;
        }
    }
    close(fd);
    return rc;
}

struct key_find {
    const char *key;
    char *value;
};

static int key_cb(void *arg, const char *name, const char *value, int line)
{
    struct key_find *k = arg;
    (void)line;
    if (strcasecmp(name, k->key) != 0)
        return 0;
    k->value = xstrdup(value);
    return 1; /* the first entry wins */
}

/* Read and split path as the current process; with key, path is in aliases(5)
 * format and the value of key (case-insensitive) is split instead (FWD_ABSENT
 * when key is not in it). */
static int read_here(const struct ident *who, const char *path, enum fwd_mode mode,
                     const char *key, struct strlist *entries, char **why)
{
    struct buf text;
    buf_init(&text);
    int rc = load_file(who, path, mode, &text, why);
    if (rc == FWD_OK && key) {
        struct key_find k = {key, NULL};
        aliases_parse(text.s, text.len, path, key_cb, &k, NULL);
        if (k.value)
            aliases_split_list(k.value, entries);
        else
            rc = FWD_ABSENT;
        free(k.value);
    } else if (rc == FWD_OK) {
        aliases_split_list(text.s, entries);
    }
    buf_free(&text);
    return rc;
}

/* The reader child keeps nothing of its parent's: no sockets, locks or
 * terminal, default signal handling.  Returns the pipe's new descriptor. */
static int child_isolate(int fd)
{
    static const int sigs[] = {SIGPIPE, SIGTERM, SIGHUP, SIGINT, SIGCHLD, SIGUSR1, SIGUSR2};
    for (size_t i = 0; i < sizeof sigs / sizeof *sigs; i++)
        signal(sigs[i], SIG_DFL);
    if (fd != 3) {
        if (dup2(fd, 3) < 0)
            _exit(1);
        fd = 3;
    }
    int null = open("/dev/null", O_RDWR);
    for (int i = 0; i < 3 && null >= 0; i++)
        if (null != i)
            dup2(null, i);
    close_range(4, ~0U, 0);
    return fd;
}

struct reader_job {
    const struct ident *who;
    const char *path;
    enum fwd_mode mode;
    const char *key;
};

/* In the child, as the user (child_start made it so): read, split, report
 * one MSG_FORWARD_RESULT. */
static PO_NORETURN void child(void *arg, int fd)
{
    const struct reader_job *rj = arg;
    struct strlist entries;
    char *why = NULL;
    sl_init(&entries);
    fd = child_isolate(fd);
    int rc = read_here(rj->who, rj->path, rj->mode, rj->key, &entries, &why);
    struct buf b;
    buf_init(&b);
    msg_put_i64(&b, rc);
    msg_put_str(&b, rc == FWD_IGNORED || rc == FWD_TEMP ? (why ? why : "") : NULL);
    msg_put_u32(&b, rc == FWD_OK ? (uint32_t)entries.n : 0);
    for (size_t i = 0; rc == FWD_OK && i < entries.n; i++)
        msg_put_str(&b, entries.v[i]);
    _exit(msg_send(fd, MSG_FORWARD_RESULT, b.s, b.len, -1) == 0 ? 0 : 1);
}

/* Decode the child's MSG_FORWARD_RESULT; entries only with FWD_OK. */
static int decode(const struct msg *m, const char *path, struct strlist *entries, char **why)
{
    struct msg_reader r;
    int64_t rc = -99;
    uint32_t n;
    char *text = NULL;
    struct strlist got;
    sl_init(&got);
    msg_reader_init(&r, m);
    if (m->type == MSG_FORWARD_RESULT && msg_get_i64(&r, &rc) == 0 &&
        msg_get_str(&r, &text) == 0 && msg_get_u32(&r, &n) == 0) {
        for (uint32_t i = 0; i < n; i++) {
            char *e;
            if (msg_get_str(&r, &e) < 0 || e == NULL)
                break;
            sl_add_owned(&got, e);
        }
    }
    int known = rc == FWD_OK || rc == FWD_ABSENT ? text == NULL
                : rc == FWD_IGNORED || rc == FWD_TEMP ? text != NULL : 0;
    if (msg_get_end(&r) < 0 || !known || (rc != FWD_OK && got.n > 0)) {
        free(text);
        sl_free(&got);
        *why = xasprintf("reading %s: garbled answer from the reader process", path);
        return FWD_TEMP;
    }
    for (size_t i = 0; i < got.n; i++)
        sl_add(entries, got.v[i]);
    sl_free(&got);
    *why = text;
    return (int)rc;
}

static int read_in_child(const struct ident *who, const char *path, enum fwd_mode mode,
                         const char *key, struct strlist *entries, char **why)
{
    struct reader_job rj = {.who = who, .path = path, .mode = mode, .key = key};
    char *title = xasprintf("forward %s", who->name);
    struct child_spec spec = {.title = title, .become = who, .extra_gid = (gid_t)-1,
                              .deadline_ms = FWD_TIMEOUT_MS, .report = 1};
    struct child ch;
    struct child_end end;
    struct msg m;
    int started = child_start(&ch, &spec, child, &rj);
    free(title);
    if (started < 0) {
        *why = xasprintf("fork: %s", strerror(errno));
        return FWD_TEMP;
    }
    int got = msg_recv(ch.fd, &m, MSG_MAX, ch.deadline);
    int e = errno;
    if (got < 0 && e == ETIMEDOUT) {
        child_kill(&ch);
        *why = xasprintf("timed out reading %s", path);
        return FWD_TEMP;
    }
    child_wait(&ch, &end);
    if (got == 1) {
        int rc = decode(&m, path, entries, why);
        msg_free(&m);
        return rc;
    }
    if (got < 0 && e == EMSGSIZE)
        *why = xasprintf("reading %s: reader sent too much", path);
    else if (got < 0 && e == EPROTO)
        *why = xasprintf("reading %s: garbled answer from the reader process", path);
    else if (end.exited && end.code == CHILD_EX_PRIVS)
        *why = xasprintf("cannot become %s", who->name);
    else
        *why = xasprintf("reading %s: the reader process died", path);
    return FWD_TEMP;
}

static int forward_get(const struct ident *who, const char *path, enum fwd_mode mode,
                       const char *key, struct strlist *entries, char **why)
{
    *why = NULL;
    if (who->uid == 0) {
        *why = xasprintf("%s: not parsed: files are never read as root", path);
        return FWD_IGNORED;
    }
    if (geteuid() == 0) {
        /* most users have no .forward: root may see that without a child
         * (it learns only that the name is absent; nothing is parsed) */
        struct stat st;
        if (lstat(path, &st) < 0 && (errno == ENOENT || errno == ENOTDIR))
            return FWD_ABSENT;
        return read_in_child(who, path, mode, key, entries, why);
    }
    if (geteuid() == who->uid)
        return read_here(who, path, mode, key, entries, why);
    *why = xasprintf("%s: not read: only root or %s may read it for delivery", path,
                     who->name);
    return FWD_IGNORED;
}

int forward_read(const struct ident *who, const char *path, enum fwd_mode mode,
                 struct strlist *entries, char **why)
{
    return forward_get(who, path, mode, NULL, entries, why);
}

int forward_lookup(const struct ident *who, const char *path, const char *key,
                   struct strlist *entries, char **why)
{
    return forward_get(who, path, FWD_FORWARD, key, entries, why);
}
