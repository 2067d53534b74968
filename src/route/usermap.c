/* usermap.c - personal addresses (usermap.h).  Reads no file itself: the
 * personal aliases files go through forward_lookup (a child as their owner
 * when we are root). */
#include "compat.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "forward.h"
#include "log.h"
#include "privs.h"
#include "usermap.h"

#define MATCH_STEPS_MAX 100000 /* '*' backtracking is bounded */
#define ACCOUNT_NAME_MAX 32    /* what '~' may match (Linux user names) */

static int user_char(int ch)
{
    return isalnum(ch) || ch == '.' || ch == '_';
}

/* Split "PATTERN:TARGETS"; *pattern and targets malloc'd.  0 or -1. */
static int split(const char *v, char **pattern, struct strlist *targets)
{
    const char *colon = strchr(v, ':');
    *pattern = NULL;
    if (!colon || colon == v)
        return -1;
    *pattern = xstrndup(v, (size_t)(colon - v));
    sl_split(targets, colon + 1, ", \t");
    return targets->n ? 0 : -1;
}

struct matcher {
    long steps;
    char *user;  /* what '~' matched, once the whole pattern matched */
    int err;     /* an account lookup failed */
};

static int account(struct matcher *m, const char *name, size_t n)
{
    char *u = xstrndup(name, n);
    struct ident id;
    int rc = privs_lookup(u, &id);
    if (rc < 0)
        m->err = errno ? errno : EIO;
    int ok = rc == 0 && id.uid != 0;
    if (ok) {
        free(m->user);
        m->user = xstrdup(id.name);
    }
    if (rc == 0)
        privs_free(&id);
    free(u);
    return ok;
}

static int match(struct matcher *m, const char *p, const char *s)
{
    if (++m->steps > MATCH_STEPS_MAX || m->err)
        return 0;
    if (!*p)
        return !*s;
    if (*p == '*') {
        for (const char *t = s;; t++) {
            if (match(m, p + 1, t))
                return 1;
            if (!*t)
                return 0;
        }
    }
    if (*p == '~') {
        size_t n = 0;
        while (n < ACCOUNT_NAME_MAX && user_char((unsigned char)s[n]))
            n++;
        for (; n > 0; n--) /* the longest account name first */
            if (match(m, p + 1, s + n) && account(m, s, n))
                return 1;
        return 0;
    }
    if (tolower((unsigned char)*p) != tolower((unsigned char)*s))
        return 0;
    return match(m, p + 1, s + 1);
}

int usermap_match(const struct config *c, const char *local, struct usermap_hit *hit)
{
    memset(hit, 0, sizeof *hit);
    if (strlen(local) > USERMAP_NAME_MAX)
        return 0;
    for (size_t i = 0; i < c->usermap.n; i++) {
        char *pattern;
        struct strlist t;
        struct matcher m = {0, NULL, 0};
        sl_init(&t);
        if (split(c->usermap.v[i], &pattern, &t) < 0) {
            free(pattern);
            sl_free(&t);
            continue; /* conf.c refused it already */
        }
        int ok = match(&m, pattern, local);
        free(pattern);
        if (m.err) {
            free(m.user);
            sl_free(&t);
            errno = m.err;
            return -1;
        }
        if (ok) {
            hit->entry = c->usermap.v[i];
            hit->user = m.user;
            hit->targets = t;
            return 1;
        }
        free(m.user);
        sl_free(&t);
    }
    return 0;
}

void usermap_hit_free(struct usermap_hit *hit)
{
    free(hit->user);
    sl_free(&hit->targets);
    memset(hit, 0, sizeof *hit);
}

/* ~/FILE: local looked up in the account's personal aliases file.  1, 0, -1. */
static int personal(const struct usermap_hit *hit, const char *file, const char *local,
                    struct strlist *entries, char **why)
{
    struct ident id;
    if (privs_lookup(hit->user, &id) != 0) {
        *why = xasprintf("cannot look up user %s", hit->user);
        return -1;
    }
    int r = 0;
    if (id.home && id.home[0] == '/') {
        char *path = xasprintf("%s%s%s", id.home,
                               id.home[strlen(id.home) - 1] == '/' ? "" : "/", file);
        char *err = NULL;
        int rc = forward_lookup(&id, path, local, entries, &err);
        if (rc == FWD_OK)
            r = 1;
        else if (rc == FWD_TEMP)
            r = -1, *why = xasprintf("usermap %s: %s", hit->entry, err ? err : path);
        else if (rc == FWD_IGNORED)
            log_warn("usermap %s: ignoring %s: %s", hit->entry, path, err ? err : "");
        free(err);
        free(path);
    }
    privs_free(&id);
    return r;
}

int usermap_resolve(const struct usermap_hit *hit, const char *local, struct strlist *entries,
                    const char **owner, char **why)
{
    *why = NULL;
    *owner = NULL;
    for (size_t i = 0; i < hit->targets.n; i++) {
        const char *t = hit->targets.v[i];
        if (!strcmp(t, "~") && hit->user) {
            sl_add(entries, hit->user);
            return 1;
        }
        if (t[0] == '~' && t[1] == '/' && hit->user) {
            int r = personal(hit, t + 2, local, entries, why);
            if (r > 0)
                *owner = hit->user; /* the user's own file: the user's rights */
            if (r != 0)
                return r;
            continue;
        }
        if (t[0] != '~') {
            sl_add(entries, t);
            return 1;
        }
    }
    return 0;
}
