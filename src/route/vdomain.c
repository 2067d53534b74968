/* vdomain.c - domains.cf and the per-domain passwd files (vdomain.h). */
#include "compat.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "log.h"
#include "util.h"
#include "vdomain.h"

/* What domains.cf said the last time it was read, and how it looked then. */
static struct {
    char *path;
    struct stat st;     /* st_ino 0 and st_size -1: not read (missing) */
    int have;
    struct strlist names; /* active domains, lower case */
    struct strlist off;   /* listed but not active, lower case */
} cache;

void vdomain_flush(void)
{
    free(cache.path);
    cache.path = NULL;
    if (cache.have) {
        sl_free(&cache.names);
        sl_free(&cache.off);
    }
    cache.have = 0;
}

/* Read one line of at most VDOMAIN_LINE_MAX bytes into *line (getline's
 * buffer); 1 read, 0 end of file.  A longer line is skipped and logged. */
static int next_line(FILE *f, const char *path, char **line, size_t *cap, long *lineno)
{
    ssize_t n;
    while ((n = getline(line, cap, f)) >= 0) {
        ++*lineno;
        if (n > VDOMAIN_LINE_MAX) {
            log_warn("%s:%ld: line longer than %d bytes ignored", path, *lineno,
                        VDOMAIN_LINE_MAX);
            continue;
        }
        while (n > 0 && ((*line)[n - 1] == '\n' || (*line)[n - 1] == '\r'))
            (*line)[--n] = '\0';
        return 1;
    }
    return 0;
}

/* "owner:domain:active[:comment]": the domain (*active set), or NULL for a
 * comment or a line without the three fields. */
static char *listed_domain(char *line, int *active)
{
    char *p = line;
    while (isspace((unsigned char)*p))
        p++;
    if (*p == '#' || *p == '\0')
        return NULL;
    char *c1 = strchr(p, ':');
    if (!c1)
        return NULL;
    char *dom = c1 + 1, *c2 = strchr(dom, ':');
    if (!c2)
        return NULL;
    *c2 = '\0';
    char *act = c2 + 1, *c3 = strchr(act, ':');
    if (c3)
        *c3 = '\0';
    long a = strtol(str_trim(act), NULL, 10);
    dom = str_trim(dom);
    size_t n = strlen(dom);
    while (n > 0 && (dom[n - 1] == '.' || isspace((unsigned char)dom[n - 1])))
        dom[--n] = '\0';
    if (n == 0)
        return NULL;
    str_lower(dom);
    *active = a != 0;
    return dom;
}

static void load(const char *path, const struct stat *st)
{
    vdomain_flush();
    cache.path = xstrdup(path);
    sl_init(&cache.names);
    sl_init(&cache.off);
    cache.have = 1;
    if (st)
        cache.st = *st;
    else {
        memset(&cache.st, 0, sizeof cache.st);
        cache.st.st_size = -1;
    }
    if (!st)
        return;
    FILE *f = fopen(path, "r");
    if (!f) {
        log_warn("%s: cannot read it (%s): no virtual domains", path, strerror(errno));
        return;
    }
    char *line = NULL;
    size_t cap = 0;
    long lineno = 0;
    while (next_line(f, path, &line, &cap, &lineno)) {
        int active = 0;
        char *d = listed_domain(line, &active);
        struct strlist *l = active ? &cache.names : &cache.off;
        if (d && !sl_contains(l, d))
            sl_add(l, d);
    }
    free(line);
    fclose(f);
}

static int same_file(const struct stat *a, const struct stat *b)
{
    return a->st_ino == b->st_ino && a->st_dev == b->st_dev && a->st_size == b->st_size &&
           a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
           a->st_ctim.tv_sec == b->st_ctim.tv_sec && a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

/* The active domains, re-read when domains.cf changed since last time. */
static const struct strlist *domains(const struct config *c)
{
    if (!c->vpath || !*c->vpath)
        return NULL;
    char *path = xasprintf("%s/domains.cf", c->vpath);
    struct stat st;
    int exists = stat(path, &st) == 0;
    int fresh = cache.have && cache.path && strcmp(cache.path, path) == 0 &&
                (exists ? same_file(&st, &cache.st) : cache.st.st_size == -1);
    if (!fresh)
        load(path, exists ? &st : NULL);
    free(path);
    return &cache.names;
}

char *vdomain_name(const struct config *c, const char *domain)
{
    if (!domain || !*domain)
        return NULL;
    const struct strlist *l = domains(c);
    if (!l || l->n == 0)
        return NULL;
    char *d = xstrdup(domain);
    size_t n = strlen(d);
    while (n > 0 && d[n - 1] == '.')
        d[--n] = '\0';
    str_lower(d);
    if (n > 0 && sl_contains(l, d))
        return d;
    free(d);
    return NULL;
}

int vdomain_switched_off(const struct config *c, const char *domain)
{
    if (!domain || !*domain || vdomain_active(c, domain))
        return 0;
    const struct strlist *l = domains(c);
    if (!l || cache.off.n == 0)
        return 0;
    char *d = xstrdup(domain);
    size_t n = strlen(d);
    while (n > 0 && d[n - 1] == '.')
        d[--n] = '\0';
    str_lower(d);
    int off = sl_contains(&cache.off, d);
    free(d);
    return off;
}

int vdomain_active(const struct config *c, const char *domain)
{
    char *d = vdomain_name(c, domain);
    free(d);
    return d != NULL;
}

int vdomain_passwd_file(const char *path, const char *user, char **hash)
{
    long lineno;
    return vdomain_passwd_file_at(path, user, hash, &lineno);
}

int vdomain_passwd_file_at(const char *path, const char *user, char **hash, long *at)
{
    if (hash)
        *hash = NULL;
    FILE *f = fopen(path, "r");
    if (!f) {
        if (errno == ENOENT)
            return 0;
        int e = errno;
        log_err("%s: cannot read it: %s", path, strerror(e));
        errno = e;
        return -1;
    }
    char *line = NULL;
    size_t cap = 0, ulen = strlen(user);
    long lineno = 0;
    int found = 0;
    while (!found && next_line(f, path, &line, &cap, &lineno)) {
        if (line[0] == '#' || strncasecmp(line, user, ulen) != 0 || line[ulen] != ':')
            continue;
        found = 1;
        *at = lineno;
        if (hash) {
            char *h = line + ulen + 1, *end = strchr(h, ':');
            *hash = end ? xstrndup(h, (size_t)(end - h)) : xstrdup(h);
        }
    }
    free(line);
    fclose(f);
    return found;
}

int vdomain_passwd(const struct config *c, const char *domain, const char *user,
                   char **hash)
{
    if (hash)
        *hash = NULL;
    /* a user or domain name with a slash or a leading dot must not walk the tree */
    if (!*user || strchr(user, '/') || strchr(user, ':') || !*domain ||
        strchr(domain, '/') || domain[0] == '.')
        return 0;
    char *d = xstrdup(domain);
    str_lower(d);
    char *path = xasprintf("%s/%s/passwd", c->vpath, d);
    int rc = vdomain_passwd_file(path, user, hash);
    free(path);
    free(d);
    return rc;
}

int vdomain_user_ok(const char *user)
{
    size_t n = user ? strlen(user) : 0;
    if (n == 0 || n > 255 || user[0] == '.')
        return 0;
    for (const unsigned char *p = (const unsigned char *)user; *p; p++)
        if (*p <= ' ' || *p >= 0x7f || *p == '/' || *p == ':' || *p == '@')
            return 0;
    return 1;
}

char *vdomain_aliases_path(const struct config *c, const char *domain)
{
    if (!domain || !*domain || strchr(domain, '/') || domain[0] == '.' || !c->vpath)
        return NULL;
    char *d = xstrdup(domain);
    str_lower(d);
    char *path = xasprintf("%s/%s/aliases", c->vpath, d);
    free(d);
    return path;
}
