/* relay_auth.c - the relay-auth= file (see relay_auth.h).
 *
 * Runs as root: relay_cred_load and relay_creds_load, in the queue run and
 * the process holding a message, before they fork remote-delivery children.  The file is root's
 * own (checked on the open descriptor before reading), bounded in size, and
 * parsed as two strings: no interpretation beyond splitting a line. */
#include "compat.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "relay_auth.h"
#include "relay_map.h"
#include "util.h"

static int bad_chars(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return 1;
    return 0;
}

/* One "user:password" line.  0, or -1 with *why. */
static int parse_line(const char *l, size_t n, int lineno, char **user, char **pass, char **why)
{
    const char *colon = memchr(l, ':', n);
    size_t ul = colon ? (size_t)(colon - l) : 0, pl = colon ? n - ul - 1 : 0;
    if (!colon || ul == 0 || pl == 0) {
        *why = xasprintf("line %d is not user:password", lineno);
        return -1;
    }
    if (ul > RELAY_CRED_MAX || pl > RELAY_CRED_MAX || bad_chars(l, n)) {
        *why = xasprintf("line %d: user name or password longer than %d bytes or with "
                         "control characters", lineno, RELAY_CRED_MAX);
        return -1;
    }
    *user = xstrndup(l, ul);
    *pass = xstrndup(colon + 1, pl);
    return 0;
}

int relay_cred_parse(const char *text, size_t len, char **user, char **pass, char **why)
{
    *user = *pass = *why = NULL;
    int lineno = 0;
    for (size_t off = 0; off < len;) {
        const char *l = text + off;
        const char *nl = memchr(l, '\n', len - off);
        size_t n = nl ? (size_t)(nl - l) : len - off;
        off += n + (nl != NULL);
        lineno++;
        if (n && l[n - 1] == '\r')
            n--;
        if (n == 0 || l[0] == '#')
            continue;
        if (*user) {
            *why = xasprintf("line %d: a second account (only the first line is used: "
                             "remove the others)", lineno);
            break;
        }
        if (parse_line(l, n, lineno, user, pass, why) < 0)
            break;
    }
    if (!*why && !*user)
        *why = xstrdup("no user:password line in it");
    if (*why) {
        free(*user);
        if (*pass)
            explicit_bzero(*pass, strlen(*pass));
        free(*pass);
        *user = *pass = NULL;
        return -1;
    }
    return 0;
}

/* The file's text, checked to be root's alone.  0, or -1 with *why. */
static int read_cred_file(const char *path, struct buf *b, char **why)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) {
        *why = xasprintf("cannot be read: %s%s", strerror(errno),
                         errno == EACCES && geteuid() ? " (only root can read it: run the "
                                                        "queue as root)" : "");
        if (fd >= 0)
            close(fd);
        return -1;
    }
    if (!S_ISREG(st.st_mode) || st.st_uid != 0 || (st.st_mode & 077)) {
        *why = !S_ISREG(st.st_mode) ? xstrdup("is not a regular file")
               : st.st_uid != 0     ? xstrdup("is not owned by root (chown root it)")
                                    : xasprintf("is open to group or others (mode %04o): "
                                                "chmod 600 it", (unsigned)(st.st_mode & 07777));
        close(fd);
        return -1;
    }
    char tmp[4096];
    ssize_t r;
    while ((r = read(fd, tmp, sizeof tmp)) > 0 && b->len <= RELAY_AUTH_FILE_MAX)
        buf_add(b, tmp, (size_t)r);
    explicit_bzero(tmp, sizeof tmp);
    int err = errno;
    close(fd);
    if (r < 0 || b->len > RELAY_AUTH_FILE_MAX) {
        *why = r < 0 ? xasprintf("cannot be read: %s", strerror(err))
                     : xasprintf("is larger than %d bytes", RELAY_AUTH_FILE_MAX);
        return -1;
    }
    return 0;
}

/* Read path (named by option opt, of origin) into cr. */
static void cred_load_file(const char *path, const char *opt, const char *origin,
                           struct relay_cred *cr)
{
    memset(cr, 0, sizeof *cr);
    struct buf b;
    buf_init(&b);
    char *why = NULL;
    if (read_cred_file(path, &b, &why) == 0)
        relay_cred_parse(b.s ? b.s : "", b.len, &cr->user, &cr->pass, &why);
    if (b.s)
        explicit_bzero(b.s, b.len);
    buf_free(&b);
    if (why) {
        cr->err = origin ? xasprintf("4.3.5 %s=%s %s (%s); mail for that destination waits",
                                     opt, path, why, origin)
                         : xasprintf("4.3.5 %s=%s %s; mail for the relay host waits", opt,
                                     path, why);
        log_err("%s", cr->err + 6);
        free(why);
    }
}

void relay_cred_load(const struct config *c, struct relay_cred *cr)
{
    memset(cr, 0, sizeof *cr);
    if (!c->relay_auth || !c->relay_host)
        return;
    cred_load_file(c->relay_auth, "relay-auth", NULL, cr);
}

/* Add path to s unless it is there. */
static void creds_add(struct relay_creds *s, const char *path, const char *opt,
                      const char *origin)
{
    if (relay_creds_find(s, path))
        return;
    s->path = xreallocarray(s->path, s->n + 1, sizeof *s->path);
    s->v = xreallocarray(s->v, s->n + 1, sizeof *s->v);
    s->path[s->n] = xstrdup(path);
    cred_load_file(path, opt, origin, &s->v[s->n]);
    s->n++;
}

static void creds_add_entry(struct relay_creds *s, const struct config *c,
                            const struct relay_entry *e)
{
    if (!e || !e->auth)
        return;
    char *origin = xasprintf("relay-map %s:%d", c->relay_map, e->line);
    creds_add(s, e->auth, "auth", origin);
    free(origin);
}

void relay_creds_load(const struct config *c, const char *const *domains, size_t nd,
                      struct relay_creds *s)
{
    memset(s, 0, sizeof *s);
    const char *err = NULL;
    const struct relay_map *m = c->relay_map && *c->relay_map ? relay_map_current(c, &err)
                                                               : NULL;
    for (size_t i = 0; m && !domains && i < m->n; i++)
        creds_add_entry(s, c, &m->v[i]);
    int need_global = !domains;
    for (size_t i = 0; domains && i < nd; i++) {
        const struct relay_entry *e = m ? relay_map_find(m, domains[i]) : NULL;
        creds_add_entry(s, c, e);
        need_global |= !e;
    }
    if (need_global && c->relay_auth && c->relay_host)
        creds_add(s, c->relay_auth, "relay-auth", NULL);
}

const struct relay_cred *relay_creds_find(const struct relay_creds *s, const char *path)
{
    for (size_t i = 0; s && path && i < s->n; i++)
        if (strcmp(s->path[i], path) == 0)
            return &s->v[i];
    return NULL;
}

void relay_creds_free(struct relay_creds *s)
{
    for (size_t i = 0; i < s->n; i++) {
        relay_cred_free(&s->v[i]);
        free(s->path[i]);
    }
    free(s->v);
    free(s->path);
    memset(s, 0, sizeof *s);
}

void relay_cred_free(struct relay_cred *cr)
{
    if (cr->pass)
        explicit_bzero(cr->pass, strlen(cr->pass));
    free(cr->user);
    free(cr->pass);
    free(cr->err);
    memset(cr, 0, sizeof *cr);
}
