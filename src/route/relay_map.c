/* relay_map.c - relay-map=FILE and the destination of a domain (relay_map.h).
 *
 * Runs as whoever routes: root in the queue run and the credential loader
 * (the file is root's own, checked before it is read), user= in the delivery
 * processes.  Parsing is bounded (line and file size) and pure. */
#include "compat.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dns.h"
#include "log.h"
#include "mx.h"
#include "relay_map.h"
#include "util.h"

/* ---- parsing ---- */

int relay_nexthop_parse(const char *spec, char **host, int *port, int *no_mx)
{
    const char *end, *colon = NULL;
    *host = NULL;
    *port = 25;
    *no_mx = 0;
    if (!spec || !*spec)
        return -1;
    if (spec[0] == '[') {
        end = strchr(spec, ']');
        if (!end || end == spec + 1)
            return -1;
        if (end[1] == ':')
            colon = end + 1;
        else if (end[1])
            return -1;
        end++;
    } else {
        colon = strchr(spec, ':');
        end = colon ? colon : spec + strlen(spec);
    }
    if (colon) {
        unsigned long p;
        if (parse_ulong(colon + 1, &p) < 0 || p == 0 || p > 65535)
            return -1;
        *port = (int)p;
    }
    char *h = xstrndup(spec, (size_t)(end - spec));
    struct sockaddr_storage ss;
    if (h[0] == '[' && mx_parse_literal(h, &ss) < 0) {
        /* [name]: the name's own addresses, no MX lookup (Postfix's brackets) */
        char *name = xstrndup(h + 1, strlen(h) - 2);
        free(h);
        h = name;
        *no_mx = 1;
        if (!dns_valid_name(h)) {
            free(h);
            return -1;
        }
    } else if (h[0] != '[' && !dns_valid_name(h)) {
        free(h);
        return -1;
    }
    *host = h;
    return 0;
}

static int bad_bytes(const char *s)
{
    for (; *s; s++)
        if (((unsigned char)*s < 0x20 && *s != '\t') || *s == 0x7f)
            return 1;
    return 0;
}

/* The pattern field, lower-cased in place.  0 or -1. */
static int check_pattern(char *p)
{
    size_t n = strlen(p);
    if (n > 1 && p[n - 1] == '.')
        p[--n] = '\0';
    str_lower(p);
    if (strcmp(p, "*") == 0)
        return 0;
    if (n == 0 || p[n - 1] == '.') /* one trailing dot is the root, two are wrong */
        return -1;
    return dns_valid_name(p[0] == '.' ? p + 1 : p) ? 0 : -1;
}

static int tls_word(const char *v)
{
    static const struct { const char *w; int t; } words[] = {
        {"none", RELAY_TLS_NONE},       {"may", RELAY_TLS_MAY},
        {"require", RELAY_TLS_REQUIRE}, {"verify", RELAY_TLS_REQUIRE},
        {"smtps", RELAY_TLS_SMTPS},
    };
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
        if (strcasecmp(v, words[i].w) == 0)
            return words[i].t;
    return -1;
}

/* One option "key=value" into e.  0, or -1 with *why. */
static int set_option(struct relay_entry *e, const char *opt, char **why)
{
    const char *eq = strchr(opt, '=');
    size_t kl = eq ? (size_t)(eq - opt) : strlen(opt);
    const char *v = eq ? eq + 1 : "";
    if (kl == 3 && strncasecmp(opt, "tls", 3) == 0) {
        if (e->tls || (e->tls = tls_word(v)) < 0) {
            *why = xasprintf("line %d: tls= wants none, may, require, verify or smtps, once",
                             e->line);
            return -1;
        }
        return 0;
    }
    char **field = kl == 2 && strncasecmp(opt, "ca", 2) == 0     ? &e->ca
                   : kl == 4 && strncasecmp(opt, "auth", 4) == 0 ? &e->auth
                                                                 : NULL;
    if (!field) {
        *why = xasprintf("line %d: unknown option %.*s (tls=, ca= or auth=)", e->line,
                         kl > 40 ? 40 : (int)kl, opt);
        return -1;
    }
    if (*field || v[0] != '/') {
        *why = xasprintf("line %d: %.*s= wants an absolute file name, once", e->line, (int)kl,
                         opt);
        return -1;
    }
    *field = xstrdup(v);
    return 0;
}

/* The next hop and options of a line's fields f[0..n-1] into e. */
static int parse_fields(struct relay_entry *e, char **f, size_t n, char **why)
{
    if (n < 2) {
        *why = xasprintf("line %d: a pattern and a next hop are needed", e->line);
        return -1;
    }
    if (check_pattern(f[0]) < 0) {
        *why = xasprintf("line %d: the pattern is not a domain, .domain or *", e->line);
        return -1;
    }
    e->pattern = xstrdup(f[0]);
    e->port = 25;
    if (strcmp(f[1], "-") != 0 && relay_nexthop_parse(f[1], &e->host, &e->port, &e->no_mx) < 0) {
        *why = xasprintf("line %d: the next hop is not [host]:port, host:port, "
                         "[address]:port or -", e->line);
        return -1;
    }
    for (size_t i = 2; i < n; i++)
        if (set_option(e, f[i], why) < 0)
            return -1;
    if (!e->host && e->tls == RELAY_TLS_SMTPS) {
        *why = xasprintf("line %d: tls=smtps needs a next hop (the MX hosts listen on 25)",
                         e->line);
        return -1;
    }
    if (e->port == 465 && e->tls == RELAY_TLS_NONE) {
        *why = xasprintf("line %d: port 465 is TLS from the first byte: not with tls=none",
                         e->line);
        return -1;
    }
    return 0;
}

static void entry_free(struct relay_entry *e)
{
    free(e->pattern);
    free(e->host);
    free(e->ca);
    free(e->auth);
}

void relay_map_free(struct relay_map *m)
{
    for (size_t i = 0; i < m->n; i++)
        entry_free(&m->v[i]);
    free(m->v);
    m->v = NULL;
    m->n = 0;
}

/* One non-comment line (NUL-terminated, in place). */
static int parse_line(struct relay_map *m, char *l, int lineno, char **why)
{
    struct strlist f;
    sl_init(&f);
    sl_split(&f, l, " \t");
    struct relay_entry e = {.line = lineno};
    int rc = parse_fields(&e, f.v, f.n, why);
    sl_free(&f);
    for (size_t i = 0; rc == 0 && i < m->n; i++) {
        if (strcmp(m->v[i].pattern, e.pattern) == 0) {
            *why = xasprintf("line %d: %s is already on line %d", lineno, e.pattern,
                             m->v[i].line);
            rc = -1;
        }
    }
    if (rc < 0) {
        entry_free(&e);
        return -1;
    }
    m->v = xreallocarray(m->v, m->n + 1, sizeof *m->v);
    m->v[m->n++] = e;
    return 0;
}

int relay_map_parse(const char *text, size_t len, struct relay_map *m, char **why)
{
    m->v = NULL;
    m->n = 0;
    *why = NULL;
    int lineno = 0;
    for (size_t off = 0; off < len && !*why;) {
        const char *s = text + off;
        const char *nl = memchr(s, '\n', len - off);
        size_t n = nl ? (size_t)(nl - s) : len - off;
        off += n + (nl != NULL);
        lineno++;
        if (n > RELAY_MAP_LINE_MAX) {
            *why = xasprintf("line %d is longer than %d bytes", lineno, RELAY_MAP_LINE_MAX);
            break;
        }
        char *l = xstrndup(s, n);
        char *t = str_trim(l);
        if (memchr(s, '\0', n) || bad_bytes(t))
            *why = xasprintf("line %d has control characters", lineno);
        else if (*t && *t != '#')
            parse_line(m, t, lineno, why);
        free(l);
    }
    if (*why) {
        relay_map_free(m);
        return -1;
    }
    return 0;
}

/* ---- lookup ---- */

static const struct relay_entry *find_exact(const struct relay_map *m, const char *p, size_t n)
{
    for (size_t i = 0; i < m->n; i++)
        if (strlen(m->v[i].pattern) == n && strncasecmp(m->v[i].pattern, p, n) == 0)
            return &m->v[i];
    return NULL;
}

const struct relay_entry *relay_map_find(const struct relay_map *m, const char *domain)
{
    if (!m || !domain)
        return NULL;
    size_t n = strlen(domain);
    if (n > 1 && domain[n - 1] == '.')
        n--;
    const struct relay_entry *e = NULL;
    if (n && domain[0] != '[') {
        e = find_exact(m, domain, n);
        /* then ".parent" patterns, the longest (nearest) parent first */
        for (size_t i = 1; !e && i < n; i++)
            if (domain[i] == '.')
                e = find_exact(m, domain + i, n - i);
    }
    return e ? e : find_exact(m, "*", 1);
}

/* ---- the file, cached per process ---- */

static struct {
    char *path;
    struct stat st;
    int have;
    struct relay_map map;
    char *err; /* "4.3.5 relay-map=..." when the map cannot be used */
} cache;

void relay_map_flush(void)
{
    free(cache.path);
    free(cache.err);
    relay_map_free(&cache.map);
    memset(&cache, 0, sizeof cache);
}

static int same_file(const struct stat *a, const struct stat *b)
{
    return a->st_ino == b->st_ino && a->st_dev == b->st_dev && a->st_size == b->st_size &&
           a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
           a->st_ctim.tv_sec == b->st_ctim.tv_sec && a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

/* The file's text into b.  0, or -1 with *why. */
static int read_map(const char *path, struct buf *b, char **why)
{
    if (config_path_secure(path, why) < 0)
        return -1;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0) {
        *why = xasprintf("cannot be read%s: %s", geteuid() ? " by this user (make it mode 644: "
                         "it holds no secrets)" : "", strerror(errno));
        return -1;
    }
    char tmp[4096];
    ssize_t r;
    while ((r = read(fd, tmp, sizeof tmp)) > 0 && b->len <= RELAY_MAP_FILE_MAX)
        buf_add(b, tmp, (size_t)r);
    int err = errno;
    close(fd);
    if (r < 0 || b->len > RELAY_MAP_FILE_MAX) {
        *why = r < 0 ? xasprintf("cannot be read: %s", strerror(err))
                     : xasprintf("is larger than %d bytes", RELAY_MAP_FILE_MAX);
        return -1;
    }
    return 0;
}

static void load(const char *path, const struct stat *st, int exists)
{
    relay_map_flush();
    cache.path = xstrdup(path);
    cache.have = 1;
    if (exists)
        cache.st = *st;
    char *why = NULL;
    struct buf b;
    buf_init(&b);
    if (!exists)
        why = xasprintf("cannot be read: %s", strerror(ENOENT));
    else if (read_map(path, &b, &why) == 0)
        relay_map_parse(b.s ? b.s : "", b.len, &cache.map, &why);
    buf_free(&b);
    if (why) {
        cache.err = xasprintf("4.3.5 relay-map=%s %s; remote mail waits", path, why);
        log_err("%s", cache.err + 6);
        free(why);
    }
}

const struct relay_map *relay_map_current(const struct config *c, const char **why)
{
    struct stat st;
    int exists = stat(c->relay_map, &st) == 0;
    int fresh = cache.have && strcmp(cache.path, c->relay_map) == 0 &&
                (exists ? cache.st.st_ino && same_file(&st, &cache.st) : !cache.st.st_ino);
    if (!fresh)
        load(c->relay_map, &st, exists);
    *why = cache.err;
    return cache.err ? NULL : &cache.map;
}

/* ---- the destination ---- */

const char *relay_tls_name(int tls)
{
    switch (tls) {
    case RELAY_TLS_NONE: return "none";
    case RELAY_TLS_MAY: return "may";
    case RELAY_TLS_REQUIRE: return "require";
    case RELAY_TLS_SMTPS: return "smtps";
    }
    return "default";
}

static void from_entry(const struct config *c, const struct relay_entry *e, struct relay_dest *d)
{
    d->host = e->host ? xstrdup(e->host) : NULL;
    d->port = e->port;
    d->no_mx = e->no_mx;
    d->tls = e->tls ? e->tls : e->auth ? RELAY_TLS_REQUIRE : RELAY_TLS_MAY;
    d->implicit = d->tls == RELAY_TLS_SMTPS || (e->host && e->port == 465);
    d->ca = e->ca ? xstrdup(e->ca) : NULL;
    d->auth = e->auth ? xstrdup(e->auth) : NULL;
    d->origin = xasprintf("relay-map %s:%d", c->relay_map, e->line);
    d->ca_opt = "ca";
    d->auth_opt = "auth";
    d->line = e->line;
}

static int from_relay_host(const struct config *c, struct relay_dest *d, char **why)
{
    if (relay_nexthop_parse(c->relay_host, &d->host, &d->port, &d->no_mx) < 0) {
        *why = xasprintf("4.4.4 relay-host=%s is not host[:port], [host][:port] or "
                         "[address][:port]", c->relay_host);
        return -1;
    }
    const char *t = c->relay_tls;
    d->tls = t && strcasecmp(t, "smtps") == 0  ? RELAY_TLS_SMTPS
             : t && strcasecmp(t, "may") == 0 ? RELAY_TLS_MAY
             : t || c->relay_auth              ? RELAY_TLS_REQUIRE
                                               : RELAY_TLS_MAY;
    d->implicit = d->tls == RELAY_TLS_SMTPS || d->port == 465;
    d->ca = c->relay_tls_ca ? xstrdup(c->relay_tls_ca) : NULL;
    d->auth = c->relay_auth ? xstrdup(c->relay_auth) : NULL;
    d->origin = xstrdup("relay-host");
    d->ca_opt = "relay-tls-ca";
    d->auth_opt = "relay-auth";
    return 0;
}

int relay_dest_get(const struct config *c, const char *domain, struct relay_dest *d,
                   char **why)
{
    memset(d, 0, sizeof *d);
    d->port = 25;
    d->tls = RELAY_TLS_MAY;
    *why = NULL;
    if (c->relay_map && *c->relay_map) {
        const char *err;
        const struct relay_map *m = relay_map_current(c, &err);
        if (!m) {
            *why = xstrdup(err);
            return -1;
        }
        const struct relay_entry *e = relay_map_find(m, domain);
        if (e) {
            from_entry(c, e, d);
            return 0;
        }
    }
    if (c->relay_host && *c->relay_host && from_relay_host(c, d, why) < 0) {
        relay_dest_free(d);
        return -1;
    }
    return 0;
}

void relay_dest_free(struct relay_dest *d)
{
    free(d->host);
    free(d->ca);
    free(d->auth);
    free(d->origin);
    memset(d, 0, sizeof *d);
}

int relay_map_way(const struct config *c, const char *domain)
{
    if (!c->relay_map || !*c->relay_map)
        return -1;
    const char *err;
    const struct relay_map *m = relay_map_current(c, &err);
    if (!m)
        return 1;
    const struct relay_entry *e = relay_map_find(m, domain);
    return !e ? -1 : e->host ? 1 : 0;
}
