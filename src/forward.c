/* forward.c - read a ~/.forward or :include: file as its reader, never as root.
 *
 * Runs as root: forward_read() forks; the parent (root) only reads the pipe
 * and waits; the child calls privs_become() before it opens anything.  The pipe
 * carries records "E<entry>\0" followed by one final record: "K\0" (read),
 * "A\0" (absent), "I<why>\0" (ignored) or "T<why>\0" (temporary failure). */
#include "compat.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "aliases.h"
#include "forward.h"
#include "log.h"
#include "util.h"

#define FWD_TIMEOUT_MS 30000
/* entries + framing can't exceed 3 bytes per byte of file, plus the trailer */
#define FWD_PIPE_MAX (3 * FWD_FILE_MAX + 4096)

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

/* Read and split path as the current process. */
static int read_here(const struct ident *who, const char *path, enum fwd_mode mode,
                     struct strlist *entries, char **why)
{
    struct buf text;
    buf_init(&text);
    int rc = load_file(who, path, mode, &text, why);
    if (rc == FWD_OK)
        aliases_split_list(text.s, entries);
    buf_free(&text);
    return rc;
}

static void child_send(int fd, char tag, const char *text)
{
    struct buf b;
    buf_init(&b);
    buf_addc(&b, tag);
    buf_adds(&b, text ? text : "");
    buf_addc(&b, '\0');
    if (write_all(fd, b.s, b.len) < 0)
        _exit(1);
    buf_free(&b);
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

static PO_NORETURN void child(int fd, const struct ident *who, const char *path,
                              enum fwd_mode mode)
{
    struct strlist entries;
    char *why = NULL;
    sl_init(&entries);
    fd = child_isolate(fd);
    if (privs_become(who, (gid_t)-1) < 0) {
        char *msg = xasprintf("cannot become %s: %s", who->name, strerror(errno));
        child_send(fd, 'T', msg);
        _exit(0);
    }
    int rc = read_here(who, path, mode, &entries, &why);
    for (size_t i = 0; rc == FWD_OK && i < entries.n; i++)
        child_send(fd, 'E', entries.v[i]);
    switch (rc) {
    case FWD_OK: child_send(fd, 'K', NULL); break;
    case FWD_ABSENT: child_send(fd, 'A', NULL); break;
    case FWD_IGNORED: child_send(fd, 'I', why); break;
    default: child_send(fd, 'T', why); break;
    }
    _exit(0);
}

/* Read everything the child writes, up to FWD_PIPE_MAX bytes and the deadline.
 * 0 at EOF, -1 with *why otherwise. */
static int drain(int fd, struct buf *in, const char *path, char **why)
{
    long long deadline = now_ms() + FWD_TIMEOUT_MS;
    char chunk[4096];
    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int r = poll(&p, 1, ms_left(deadline));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            *why = r == 0 ? xasprintf("timed out reading %s", path)
                          : xasprintf("poll: %s", strerror(errno));
            return -1;
        }
        ssize_t n = read(fd, chunk, sizeof chunk);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            *why = xasprintf("reading %s: %s", path, strerror(errno));
            return -1;
        }
        if (n == 0)
            return 0;
        if (in->len + (size_t)n > FWD_PIPE_MAX) {
            *why = xasprintf("reading %s: reader sent too much", path);
            return -1;
        }
        buf_add(in, chunk, (size_t)n);
    }
}

/* Decode the child's records.  The last record must be the verdict. */
static int decode(const struct buf *in, const char *path, struct strlist *entries, char **why)
{
    if (in->len == 0 || in->s[in->len - 1] != '\0') {
        *why = xasprintf("reading %s: the reader process died", path);
        return FWD_TEMP;
    }
    size_t pos = 0;
    while (pos < in->len) {
        const char *rec = in->s + pos;
        size_t n = strlen(rec);
        pos += n + 1;
        int last = pos >= in->len;
        if (rec[0] == 'E' && !last) {
            sl_add(entries, rec + 1);
            continue;
        }
        if (!last)
            break;
        switch (rec[0]) {
        case 'K': return FWD_OK;
        case 'A': return FWD_ABSENT;
        case 'I': *why = xstrdup(rec + 1); return FWD_IGNORED;
        case 'T': *why = xstrdup(rec + 1); return FWD_TEMP;
        default: break;
        }
    }
    *why = xasprintf("reading %s: garbled answer from the reader process", path);
    return FWD_TEMP;
}

static int read_in_child(const struct ident *who, const char *path, enum fwd_mode mode,
                         struct strlist *entries, char **why)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0) {
        *why = xasprintf("pipe: %s", strerror(errno));
        return FWD_TEMP;
    }
    pid_t pid = fork();
    if (pid < 0) {
        *why = xasprintf("fork: %s", strerror(errno));
        close(p[0]);
        close(p[1]);
        return FWD_TEMP;
    }
    if (pid == 0) {
        close(p[0]);
        child(p[1], who, path, mode);
    }
    close(p[1]);
    struct buf in;
    struct strlist got;
    buf_init(&in);
    sl_init(&got);
    int rc = drain(p[0], &in, path, why);
    close(p[0]);
    if (rc < 0)
        kill(pid, SIGKILL);
    /* ECHILD is fine (a SIGCHLD handler may reap it): the records decide */
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
        ;
    if (rc == 0)
        rc = decode(&in, path, &got, why);
    else
        rc = FWD_TEMP;
    for (size_t i = 0; rc == FWD_OK && i < got.n; i++)
        sl_add(entries, got.v[i]);
    sl_free(&got);
    buf_free(&in);
    return rc;
}

int forward_read(const struct ident *who, const char *path, enum fwd_mode mode,
                 struct strlist *entries, char **why)
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
        return read_in_child(who, path, mode, entries, why);
    }
    if (geteuid() == who->uid)
        return read_here(who, path, mode, entries, why);
    *why = xasprintf("%s: not read: only root or %s may read it for delivery", path,
                     who->name);
    return FWD_IGNORED;
}
