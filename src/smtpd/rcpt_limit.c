/* rcpt_limit.c - the mailbox limit at RCPT (rcpt_limit.h).  Runs as user=
 * in the SMTP session; reads the aliases and the limits file, stat()s a
 * mailbox and a .forward, reads no user's file. */
#include "compat.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "aliases.h"
#include "mailbox_limits.h"
#include "mailbox_place.h"
#include "privs.h"
#include "rcpt_limit.h"
#include "route.h"

/* Is name an alias?  Unknown counts as yes (nothing is refused then). */
static int is_alias(const struct config *c, const char *name)
{
    if (c->aliases == NULL)
        return 0;
    char *db = xasprintf("%s.db", c->aliases), *value = NULL;
    int rc = access(db, F_OK) < 0 && errno == ENOENT
                 ? aliases_lookup_text(c->aliases, name, &value)
                 : aliases_lookup(db, name, &value);
    free(db);
    free(value);
    return rc != 0;
}

/* The account local names directly (its own name, or name+tag), or -1. */
static int account_of(const struct config *c, const char *local, struct ident *id)
{
    if (strchr(local, '"') || strchr(local, '\\') || is_alias(c, local))
        return -1;
    if (privs_lookup(local, id) == 0)
        return 0;
    const char *d = c->recipient_delimiter;
    const char *tag = d && *d ? strchr(local, d[0]) : NULL;
    if (tag == NULL || tag == local)
        return -1;
    char *base = xstrndup(local, (size_t)(tag - local));
    int rc = !is_alias(c, base) && privs_lookup(base, id) == 0 ? 0 : -1;
    free(base);
    return rc;
}

/* Bytes in id's mbox, or -1 when that is not where its mail goes or
 * cannot be told. */
static long long mbox_size(const struct config *c, const struct ident *id)
{
    struct stat st;
    if (id->home && id->home[0] == '/') {
        char *fwd = xasprintf("%s/.forward", id->home);
        int seen = lstat(fwd, &st) == 0 || errno != ENOENT;
        free(fwd);
        if (seen)
            return -1;
    }
    struct mbplace p;
    char *why = NULL;
    long long size = -1;
    if (mbplace_find(c, id, &p, &why) == DELIV_OK &&
        (p.kind == MB_SPOOL || p.kind == MB_MBOX)) {
        if (stat(p.path, &st) == 0 && S_ISREG(st.st_mode))
            size = st.st_size;
        else if (errno == ENOENT)
            size = 0;
    }
    free(why);
    mbplace_free(&p);
    return size;
}

int rlimit_rcpt(const struct config *c, const char *addr, long long size, struct buf *why)
{
    if (size <= 0 || (c->mailbox_limit <= 0 && c->mailbox_limits == NULL))
        return 0;
    const char *at = strrchr(addr, '@');
    if (at != NULL && !route_is_our_host(c, at + 1))
        return 0;
    char *local = at ? xstrndup(addr, (size_t)(at - addr)) : xstrdup(addr);
    struct ident id;
    int code = 0;
    if (account_of(c, local, &id) == 0) {
        char *err = NULL;
        long long limit = mlimit_local(c, id.name, &err);
        long long used = limit > 0 ? mbox_size(c, &id) : -1;
        if (used >= 0 && used + size > limit) {
            buf_reset(why);
            buf_addf(why, "5.2.2 <%s>: mailbox full (%lld bytes of %lld; the message "
                     "has %lld)", addr, used, limit, size);
            code = 552;
        }
        free(err);
        privs_free(&id);
    }
    free(local);
    return code;
}
