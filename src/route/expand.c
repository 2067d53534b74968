/* expand.c - what a recipient means: aliases, accounts, .forward, :include:,
 * programs, files and remote addresses, recursively, once each.
 *
 * Nothing here runs privileged code itself; user files are read through
 * forward_read(), which parses them in a child that has become their reader. */
#include "compat.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "address.h"
#include "aliases.h"
#include "conf.h"
#include "expand.h"
#include "forward.h"
#include "log.h"
#include "privs.h"
#include "route.h"
#include "subaddress.h"
#include "usermap.h"
#include "util.h"
#include "vdomain.h"
#include "vlookup.h"

#define EXPAND_DEPTH_MAX 32
#define EXPAND_STEPS_MAX 100000
#define EXPAND_ENTRY_MAX 4096

/* ---- target lists ---- */

void targets_init(struct targets *t)
{
    t->v = NULL;
    t->n = t->cap = 0;
}

void targets_free(struct targets *t)
{
    for (size_t i = 0; i < t->n; i++) {
        free(t->v[i].dest);
        free(t->v[i].user);
    }
    free(t->v);
    targets_init(t);
}

static int same_user(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* Append unless the same kind+dest+user is already there. */
static void targets_add(struct targets *t, enum target_kind kind, const char *dest,
                        const char *user)
{
    for (size_t i = 0; i < t->n; i++)
        if (t->v[i].kind == kind && strcmp(t->v[i].dest, dest) == 0 &&
            same_user(t->v[i].user, user))
            return;
    if (t->n == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 8;
        t->v = xreallocarray(t->v, t->cap, sizeof *t->v);
    }
    t->v[t->n].kind = kind;
    t->v[t->n].dest = xstrdup(dest);
    t->v[t->n].user = user ? xstrdup(user) : NULL;
    t->n++;
}

/* ---- the expansion state ---- */

struct xp {
    const struct config *c;
    struct targets *out;
    const char *top;        /* the recipient being expanded, for messages */
    struct strlist chain;   /* names/includes being expanded, outermost first */
    struct strlist done;    /* names fully expanded already */
    long steps;
    size_t resolved;        /* final destinations found (duplicates included) */
    char *perm;             /* first permanent failure */
    char *temp;             /* first temporary failure */
};

static void fail(struct xp *x, int temporary, const char *fmt, ...) PO_PRINTF(3, 4);

static void fail(struct xp *x, int temporary, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *msg = xvasprintf(fmt, ap);
    va_end(ap);
    char **slot = temporary ? &x->temp : &x->perm;
    if (!*slot) {
        *slot = msg;
        return;
    }
    log_notice("expanding <%s>: %s", x->top, msg);
    free(msg);
}

static void add(struct xp *x, enum target_kind kind, const char *dest, const char *user)
{
    targets_add(x->out, kind, dest, user);
    x->resolved++;
}

static char *chain_text(const struct xp *x, const char *last)
{
    struct buf b;
    buf_init(&b);
    for (size_t i = 0; i < x->chain.n; i++)
        buf_addf(&b, "%s -> ", x->chain.v[i]);
    buf_adds(&b, last);
    return b.s; /* not buf_steal: it allocates a fresh buffer */
}

/* Printable text without spaces: what an address or a name may be. */
static int is_token(const char *s)
{
    if (!*s)
        return 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p <= 0x20 || *p == 0x7f)
            return 0;
    return 1;
}

/* No control characters (tabs allowed): for commands and paths. */
static int is_text(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if ((*p < 0x20 && *p != '\t') || *p == 0x7f)
            return 0;
    return 1;
}

/* "local" or "local@domain": no controls, both parts present; spaces only
 * inside a quoted local part ("a b"@example.org). */
static int is_address(const char *a)
{
    const char *at = strrchr(a, '@');
    size_t llen = at ? (size_t)(at - a) : strlen(a);
    if (!is_text(a) || strchr(a, '\t') || strlen(a) > EXPAND_ENTRY_MAX || llen == 0)
        return 0;
    int quoted = llen >= 2 && a[0] == '"' && a[llen - 1] == '"';
    if (!quoted && memchr(a, ' ', llen))
        return 0;
    return !at || addr_valid_domain(at + 1);
}

/* Local part without its quotes and escapes ("a b" -> a b). */
static char *unquote_local(const char *local)
{
    size_t n = strlen(local);
    if (n < 2 || local[0] != '"' || local[n - 1] != '"')
        return xstrdup(local);
    struct buf b;
    buf_init(&b);
    for (size_t i = 1; i + 1 < n; i++) {
        if (local[i] == '\\' && i + 2 < n)
            i++;
        buf_addc(&b, local[i]);
    }
    return b.s; /* not buf_steal: it allocates a fresh buffer */
}

static void expand_name(struct xp *x, const char *local, int depth);
static void expand_vname(struct xp *x, const char *local, const char *vdom, int depth);
static void expand_vmailbox(struct xp *x, const char *name, const char *vdom);
static void expand_entry(struct xp *x, const char *entry, const char *owner,
                         const char *vdom, int depth);

/* "\user": the account's own mailbox, nothing else. */
static void expand_mailbox(struct xp *x, const char *name)
{
    struct ident id;
    int rc = privs_lookup(name, &id);
    if (rc < 0) {
        fail(x, 1, "4.3.0 <%s>: cannot look up user %s: %s", x->top, name, strerror(errno));
        return;
    }
    if (rc > 0) {
        fail(x, 0, "5.1.1 <%s>: no such user here (%s)", x->top, name);
        return;
    }
    add(x, T_MBOX, id.name, id.name);
    privs_free(&id);
}

/* The identity :include: files are read as: the unprivileged user when we are
 * root, else ourselves. */
static int include_reader(struct xp *x, struct ident *id)
{
    if (geteuid() != 0) {
        id->uid = geteuid();
        id->gid = getegid();
        id->name = xstrdup("the current user");
        id->home = xstrdup("");
        id->gecos = xstrdup("");
        return 0;
    }
    const char *user = x->c->user ? x->c->user : "mail";
    int rc = privs_lookup(user, id);
    if (rc != 0)
        fail(x, 1, "4.3.0 <%s>: cannot read include files: user=%s %s", x->top, user,
             rc > 0 ? "does not exist" : "cannot be looked up");
    return rc == 0 ? 0 : -1;
}

static void expand_include(struct xp *x, const char *path, int depth)
{
    if (path[0] != '/') {
        fail(x, 0, "5.3.5 <%s>: :include: needs an absolute path, not %s", x->top, path);
        return;
    }
    char *key = xasprintf(":include:%s", path);
    if (sl_contains(&x->chain, key)) {
        char *loop = chain_text(x, key);
        log_warn("include loop %s", loop);
        fail(x, 0, "5.4.6 <%s>: include loop %s", x->top, loop);
        free(loop);
        free(key);
        return;
    }
    struct ident who;
    if (include_reader(x, &who) < 0) {
        free(key);
        return;
    }
    struct strlist entries;
    char *why = NULL;
    sl_init(&entries);
    int rc = forward_read(&who, path, FWD_INCLUDE, &entries, &why);
    if (rc == FWD_TEMP)
        fail(x, 1, "4.3.0 <%s>: %s", x->top, why);
    else if (rc == FWD_ABSENT)
        fail(x, 0, "5.3.5 <%s>: include file %s does not exist", x->top, path);
    else if (rc == FWD_IGNORED)
        fail(x, 0, "5.3.5 <%s>: include file ignored: %s", x->top, why);
    sl_add(&x->chain, key);
    for (size_t i = 0; rc == FWD_OK && i < entries.n; i++)
        expand_entry(x, entries.v[i], NULL, NULL, depth + 1);
    free(x->chain.v[--x->chain.n]);
    free(why);
    free(key);
    sl_free(&entries);
    privs_free(&who);
}

/* An address from a list: remote, or a local name to expand again.  vdom:
 * the virtual domain whose aliases named it (a bare name is a name there),
 * NULL elsewhere. */
static void expand_addr(struct xp *x, const char *addr, const char *vdom, int depth)
{
    char *a = xstrdup(addr);
    size_t n = strlen(a);
    char *lt = strchr(a, '<');
    if (lt && n && a[n - 1] == '>') { /* "Name<addr>" after the splitter ate spaces */
        size_t len = n - (size_t)(lt - a) - 2;
        memmove(a, lt + 1, len);
        a[len] = '\0';
    }
    char *at = strrchr(a, '@');
    char *vd = at ? vdomain_name(x->c, at + 1) : NULL;
    if (!is_address(a)) {
        char *clean = str_sanitize(addr, strlen(addr));
        fail(x, 0, "5.1.3 <%s>: bad address %s in an alias or forward list", x->top, clean);
        free(clean);
    } else if (vd || (!at && vdom)) {
        if (at)
            *at = '\0';
        expand_vname(x, a, vd ? vd : vdom, depth);
    } else if (at && !route_is_local_domain(x->c, at + 1)) {
        str_lower(at + 1);
        add(x, T_REMOTE, a, NULL);
    } else {
        if (at)
            *at = '\0';
        expand_name(x, a, depth);
    }
    free(vd);
    free(a);
}

/* A program, file or :include: in the aliases of virtual domain vdom: refused.
 * Those aliases may be kept by the domain's owner, who must not run programs
 * or write files as anybody (vhosts(7)). */
static void refuse_in_vdomain(struct xp *x, const char *entry, const char *vdom)
{
    const char *what = entry[0] == '|' ? "program" : entry[0] == '/' ? "file" : ":include:";
    log_warn("the aliases of virtual domain %s name a %s (%s): refused; only addresses "
             "are allowed there", vdom, what, entry);
    fail(x, 0, "5.7.1 <%s>: the aliases of virtual domain %s may name addresses only, "
         "not a %s", x->top, vdom, what);
}

/* One entry of an aliases/:include:/.forward list.  owner: the .forward's
 * owner, NULL for aliases and include files.  vdom: the virtual domain whose
 * aliases hold the entry, or NULL. */
static void expand_entry(struct xp *x, const char *entry, const char *owner,
                         const char *vdom, int depth)
{
    if (++x->steps > EXPAND_STEPS_MAX || depth > EXPAND_DEPTH_MAX) {
        fail(x, 0, "5.4.6 <%s>: alias expansion too deep or too large", x->top);
        return;
    }
    if (!is_text(entry) || strlen(entry) > EXPAND_ENTRY_MAX) {
        fail(x, 0, "5.3.5 <%s>: control characters or excessive length in an alias entry",
             x->top);
        return;
    }
    int special = entry[0] == '|' || entry[0] == '/' || str_has_prefix_ci(entry, ":include:");
    if (vdom && special) {
        refuse_in_vdomain(x, entry, vdom);
    } else if (vdom && entry[0] == '\\') {
        expand_vmailbox(x, entry + 1, vdom);
    } else if (entry[0] == '|') {
        const char *cmd = entry + 1;
        while (*cmd == ' ' || *cmd == '\t')
            cmd++;
        if (*cmd)
            add(x, T_PIPE, cmd, owner);
        else
            fail(x, 0, "5.3.5 <%s>: empty program in an alias entry", x->top);
    } else if (entry[0] == '/') {
        add(x, T_FILE, entry, owner);
    } else if (str_has_prefix_ci(entry, ":include:")) {
        if (owner)
            log_notice("%s's .forward: :include: is not allowed there; ignored", owner);
        else
            expand_include(x, entry + 9, depth); /* the splitter ate spaces */
    } else if (entry[0] == '\\') {
        expand_mailbox(x, entry + 1);
    } else {
        expand_addr(x, entry, vdom, depth);
    }
}

/* A subaddress's tag that may be part of a file name (~/.forward+TAG):
 * letters, digits, '-', '_', '=', '.' and '+', not first a dot, at most 64
 * bytes.  Anything else (a slash above all) means no such file is read. */
static int tag_for_file(const char *tag)
{
    size_t n = strlen(tag);
    if (n == 0 || n > 64 || tag[0] == '.')
        return 0;
    return strspn(tag, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_=.+") ==
           n;
}

/* Read one of id's forward files, path, into entries: forward_read's
 * result, the failure recorded or logged. */
static int read_forward(struct xp *x, const struct ident *id, const char *path,
                        struct strlist *entries)
{
    char *why = NULL;
    const char *file = strrchr(path, '/') + 1;
    int rc = forward_read(id, path, FWD_FORWARD, entries, &why);
    if (rc == FWD_TEMP)
        fail(x, 1, "4.3.0 <%s>: cannot read %s's %s: %s", x->top, id->name, file, why);
    else if (rc == FWD_IGNORED)
        log_warn("ignoring %s's %s: %s", id->name, file, why);
    free(why);
    return rc;
}

/* Read id's ~/.forward; for user+tag (delim, tag: subaddress.h)
 * ~/.forward+tag first, as Postfix does, the plain one when there is none.
 * 1 if it produced the destinations, 0 to use the mailbox, -1 after
 * recording a temporary failure. */
static int expand_forward(struct xp *x, const struct ident *id, const char *key, char delim,
                          const char *tag, int depth)
{
    if (!id->home || id->home[0] != '/')
        return 0;
    const char *sep = id->home[strlen(id->home) - 1] == '/' ? "" : "/";
    struct strlist entries;
    sl_init(&entries);
    int rc = FWD_ABSENT;
    if (tag && tag_for_file(tag)) {
        char *lower = xstrdup(tag);
        str_lower(lower);
        char *path = xasprintf("%s%s.forward%c%s", id->home, sep, delim, lower);
        rc = read_forward(x, id, path, &entries);
        free(path);
        free(lower);
    }
    if (rc == FWD_ABSENT || rc == FWD_IGNORED) {
        char *path = xasprintf("%s%s.forward", id->home, sep);
        rc = read_forward(x, id, path, &entries);
        free(path);
    }
    int used = 0;
    if (rc == FWD_TEMP) {
        used = -1;
    } else if (rc == FWD_OK && entries.n) {
        size_t before = x->resolved;
        sl_add(&x->chain, key);
        for (size_t i = 0; i < entries.n; i++)
            expand_entry(x, entries.v[i], id->name, NULL, depth + 1);
        free(x->chain.v[--x->chain.n]);
        used = 1;
        if (x->resolved == before && !x->temp) {
            /* a .forward that leads nowhere must not lose the mail */
            log_notice("%s's .forward gives no destination: using the mailbox", id->name);
            used = 0;
        }
    }
    sl_free(&entries);
    return used;
}

/* A name that comes around again: the account's own mailbox, if it is one. */
static void expand_loop(struct xp *x, const char *local, const char *key)
{
    char *loop = chain_text(x, key);
    struct ident id;
    int rc = privs_lookup(local, &id);
    if (rc == 0 && id.uid != 0) {
        log_info("alias loop %s: delivering to %s's mailbox", loop, id.name);
        add(x, T_MBOX, id.name, id.name);
    } else if (rc < 0) {
        fail(x, 1, "4.3.0 <%s>: cannot look up user %s", x->top, local);
    } else {
        log_warn("alias loop %s", loop);
        fail(x, 0, "5.4.6 <%s>: alias loop %s", x->top, loop);
    }
    if (rc == 0)
        privs_free(&id);
    free(loop);
}

/* Look key up in ALIASES.db; while that has never been built, in the text
 * file (with a warning), so that postmaster works before the first newaliases. */
static int alias_value(const struct config *c, const char *key, char **value)
{
    *value = NULL;
    if (!c->aliases)
        return 0;
    char *db = xasprintf("%s.db", c->aliases);
    int rc;
    if (access(db, F_OK) < 0 && errno == ENOENT && access(c->aliases, F_OK) == 0) {
        log_warn("%s is missing: run newaliases; reading %s directly", db, c->aliases);
        rc = aliases_lookup_text(c->aliases, key, value);
    } else {
        rc = aliases_lookup(db, key, value);
    }
    free(db);
    return rc;
}

/* The aliases file's entry key: 1 with *value (malloc'd), 0 none, -1 after
 * recording a temporary failure. */
static int alias_lookup(struct xp *x, const char *key, char **value)
{
    int rc = alias_value(x->c, key, value);
    if (rc < 0)
        fail(x, 1, "4.3.0 <%s>: cannot read the aliases of %s: %s", x->top,
             x->c->aliases, strerror(errno));
    return rc;
}

/* Expand alias key's list value (freed here).  With name set (the
 * catch-all), an entry "*@domain" stands for name@domain. */
static void expand_list(struct xp *x, const char *key, char *value, const char *name,
                        int depth)
{
    struct strlist entries;
    sl_init(&entries);
    aliases_split_list(value, &entries);
    if (entries.n == 0)
        fail(x, 0, "5.1.1 <%s>: alias %s has no targets", x->top, key);
    sl_add(&x->chain, key);
    for (size_t i = 0; i < entries.n; i++) {
        const char *e = entries.v[i];
        char *a = name && e[0] == '*' && e[1] == '@' ? xasprintf("%s%s", name, e + 1)
                                                     : xstrdup(e);
        expand_entry(x, a, NULL, NULL, depth + 1);
        free(a);
    }
    free(x->chain.v[--x->chain.n]);
    sl_free(&entries);
    free(value);
}

/* Aliases.  1 expanded, 0 not an alias, -1 after a temporary failure. */
static int expand_alias(struct xp *x, const char *key, int depth)
{
    char *value = NULL;
    int rc = alias_lookup(x, key, &value);
    if (rc <= 0)
        return rc;
    expand_list(x, key, value, NULL, depth);
    return 1;
}

/* The "*" entry of the aliases file (aliases(5)): where a name that is no
 * alias, account or usermap= name goes.  An entry "*@domain" means
 * name@domain.  Never again for a name the catch-all's own list leads to
 * (a "*" in the chain): that one is unknown.  1 expanded, 0 no catch-all,
 * -1 after a temporary failure. */
static int expand_catchall(struct xp *x, const char *name, int depth)
{
    char *value = NULL;
    if (sl_contains(&x->chain, "*"))
        return 0;
    int rc = alias_lookup(x, "*", &value);
    if (rc <= 0)
        return rc;
    log_debug("<%s>: %s is unknown: the catch-all (*) takes it", x->top, name);
    expand_list(x, "*", value, name, depth);
    return 1;
}

static void expand_account(struct xp *x, const char *local, const char *key, char delim,
                           const char *tag, int depth)
{
    struct ident id;
    int rc = privs_lookup(local, &id);
    if (rc < 0) {
        fail(x, 1, "4.3.0 <%s>: cannot look up user %s: %s", x->top, local, strerror(errno));
        return;
    }
    if (rc > 0) {
        if (expand_catchall(x, local, depth) == 0)
            fail(x, 0, "5.1.1 <%s>: no such user here", x->top);
        return;
    }
    /* a uid 0 account's .forward is never read (that would be as root); its
     * mailbox is written by an unprivileged child (local.h) */
    if (id.uid == 0 || expand_forward(x, &id, key, delim, tag, depth) == 0)
        add(x, T_MBOX, id.name, id.name);
    privs_free(&id);
}

/* usermap= (usermap.h), for a name that is neither an alias nor an account.
 * 1 handled (expanded, or a failure recorded), 0 not a usermap name. */
static int expand_usermap(struct xp *x, const char *name, const char *key, int depth)
{
    struct ident id;
    struct usermap_hit hit;
    if (!x->c->usermap.n)
        return 0;
    int acct = privs_lookup(name, &id);
    if (acct == 0)
        privs_free(&id);
    if (acct != 1) /* an account (or cannot tell): expand_account decides */
        return 0;
    int m = usermap_match(x->c, name, &hit);
    if (m < 0) {
        fail(x, 1, "4.3.0 <%s>: cannot look up accounts for usermap=: %s", x->top,
             strerror(errno));
        return 1;
    }
    if (m == 0)
        return 0;
    struct strlist entries;
    char *why = NULL;
    const char *owner = NULL;
    sl_init(&entries);
    int r = usermap_resolve(&hit, name, &entries, &owner, &why);
    log_debug("usermap %s: %s -> %s", hit.entry, name,
              r > 0 ? entries.v[0] : r == 0 ? "(no target matched)" : "(failed)");
    if (r < 0)
        fail(x, 1, "4.3.0 <%s>: %s", x->top, why);
    else if (r == 0)
        fail(x, 0, "5.1.1 <%s>: no such user here", x->top);
    sl_add(&x->chain, key);
    for (size_t i = 0; r > 0 && i < entries.n; i++)
        expand_entry(x, entries.v[i], owner, NULL, depth + 1);
    free(x->chain.v[--x->chain.n]);
    free(why);
    sl_free(&entries);
    usermap_hit_free(&hit);
    return 1;
}

/* Is name (unquoted) an alias, an account or a usermap= name?  1, 0, -1
 * cannot tell now.  What the SMTP session asks, and what decides whether
 * user+tag is a name of its own. */
static int name_known(const struct config *c, const char *name)
{
    char *value = NULL;
    char *key = xstrdup(name);
    str_lower(key);
    int rc = alias_value(c, key, &value);
    free(value);
    free(key);
    if (rc == 0) {
        struct ident id;
        int r = privs_lookup(name, &id);
        if (r == 0) {
            rc = 1;
            privs_free(&id);
        } else {
            rc = r < 0 ? -1 : 0;
        }
    }
    if (rc == 0 && c->usermap.n) {
        /* the personal files cannot be read in the session (user=): a name
         * a usermap= pattern matches is taken (usermap(7)) */
        struct usermap_hit hit;
        rc = usermap_match(c, name, &hit);
        if (rc > 0)
            usermap_hit_free(&hit);
    }
    return rc;
}

/* user+tag (recipient-delimiter=, subaddress.h): the name to expand instead
 * of name, malloc'd, when name is unknown and its user part is known (or
 * cannot be told now: its expansion then says so); NULL to keep name. */
static char *subaddr_user(const struct config *c, const char *name)
{
    char *user;
    const char *tag;
    if (!subaddr_split(c->recipient_delimiter, name, &user, &tag))
        return NULL;
    if (name_known(c, name) == 0 && name_known(c, user) != 0)
        return user;
    free(user);
    return NULL;
}

/* A local name: alias, else account (+ .forward), else usermap=; user+tag
 * as user when user+tag is none of those; else the "*" catch-all. */
static void expand_name(struct xp *x, const char *local, int depth)
{
    char *name = unquote_local(local);
    char *user = is_token(name) ? subaddr_user(x->c, name) : NULL;
    char *tag = NULL, delim = 0;
    if (user) {
        delim = name[strlen(user)];
        tag = xstrdup(name + strlen(user) + 1);
        log_debug("<%s>: %s is subaddress %s of %s", x->top, name, tag, user);
        free(name);
        name = user;
    }
    char *key = xstrdup(name);
    str_lower(key);
    if (depth > EXPAND_DEPTH_MAX) {
        fail(x, 0, "5.4.6 <%s>: aliases nested too deep", x->top);
    } else if (!is_token(key) || strcmp(key, "*") == 0) {
        /* "*" is the catch-all's key, never a name */
        fail(x, 0, "5.1.1 <%s>: no such user here", x->top);
    } else if (sl_contains(&x->chain, key)) {
        expand_loop(x, name, key);
    } else if (!sl_contains(&x->done, key)) {
        int rc = expand_alias(x, key, depth);
        if (rc == 0 && !expand_usermap(x, name, key, depth))
            expand_account(x, name, key, delim, tag, depth);
        sl_add(&x->done, key);
    }
    free(key);
    free(name);
    free(tag);
}

/* ---- virtual domains (vhosts(7)): names resolve within their domain ---- */

/* The mailbox of virtual user name@vdom (the file VSPOOL/VDOM/NAME, lower
 * case): "name@vdom" as a T_MBOX target (local.h tells it by the '@'). */
static void add_vmbox(struct xp *x, const char *name, const char *vdom)
{
    char *box = xasprintf("%s@%s", name, vdom);
    str_lower(box);
    add(x, T_MBOX, box, box);
    free(box);
}

/* Look name up in vdom; 0 with *v, or -1 after recording a temporary failure. */
static int vlook(struct xp *x, const char *name, const char *vdom, struct vlookup *v)
{
    char *why = NULL;
    if (vlookup_name(x->c, vdom, name, v, &why) == 0)
        return 0;
    fail(x, 1, "4.3.0 <%s>: %s", x->top, why);
    free(why);
    return -1;
}

/* "\name" in the aliases of vdom: that user's mailbox, nothing else. */
static void expand_vmailbox(struct xp *x, const char *name, const char *vdom)
{
    struct vlookup v;
    if (!vdomain_user_ok(name)) {
        fail(x, 0, "5.1.1 <%s>: no such user here (\\%s in virtual domain %s)", x->top,
             name, vdom);
    } else if (vlook(x, name, vdom, &v) == 0) {
        int user = v.user;
        vlookup_free(&v);
        if (user)
            add_vmbox(x, name, vdom);
        else
            fail(x, 0, "5.1.1 <%s>: no such user here (%s@%s)", x->top, name, vdom);
    }
}

/* An alias value (or the "*" one, for star_name) of vdom, expanded there.
 * In the "*" value, an entry "*@otherdomain" means star_name@otherdomain. */
static void expand_vlist(struct xp *x, const char *value, const char *star_name,
                         const char *vdom, const char *key, int depth)
{
    struct strlist entries;
    sl_init(&entries);
    aliases_split_list(value, &entries);
    if (entries.n == 0)
        fail(x, 0, "5.1.1 <%s>: alias %s has no targets", x->top, key);
    sl_add(&x->chain, key);
    for (size_t i = 0; i < entries.n; i++) {
        const char *e = entries.v[i];
        if (star_name && e[0] == '*' && e[1] == '@') {
            char *a = xasprintf("%s%s", star_name, e + 1);
            expand_entry(x, a, NULL, vdom, depth + 1);
            free(a);
        } else {
            expand_entry(x, e, NULL, vdom, depth + 1);
        }
    }
    free(x->chain.v[--x->chain.n]);
    sl_free(&entries);
}

/* A name that comes around again in vdom: the user's mailbox, if it has one. */
static void expand_vloop(struct xp *x, const char *name, const char *vdom, const char *key)
{
    char *loop = chain_text(x, key);
    struct vlookup v;
    int rc = vlook(x, name, vdom, &v);
    if (rc == 0 && v.user) {
        log_info("alias loop %s: delivering to %s@%s's mailbox", loop, name, vdom);
        add_vmbox(x, name, vdom);
    } else if (rc == 0) {
        log_warn("alias loop %s", loop);
        fail(x, 0, "5.4.6 <%s>: alias loop %s", x->top, loop);
    }
    if (rc == 0)
        vlookup_free(&v);
    free(loop);
}

/* The meaning of name@vdom: the domain's alias, else its account (a
 * mailbox; virtual users have no .forward), else its "*" alias. */
static void expand_vresolve(struct xp *x, const char *name, const char *vdom,
                            const char *key, int depth, struct vlookup *known)
{
    struct vlookup v;
    if (known)
        v = *known; /* taken over */
    else if (vlook(x, name, vdom, &v) < 0)
        return;
    if (v.alias)
        expand_vlist(x, v.alias_value, NULL, vdom, key, depth);
    else if (v.user)
        add_vmbox(x, name, vdom);
    else if (v.star)
        expand_vlist(x, v.star_value, name, vdom, key, depth);
    else
        fail(x, 0, "5.1.1 <%s>: no such user here", x->top);
    vlookup_free(&v);
}

/* user+tag in vdom (subaddress.h): when name is neither alias nor account
 * of vdom and its user part is one, *name becomes the user part.  0 with
 * *v looked up for *name (*have = 1; *have = 0 when name does not split),
 * or -1 after recording a temporary failure. */
static int vsubaddr(struct xp *x, char **name, const char *vdom, struct vlookup *v,
                    int *have)
{
    char *user;
    const char *tag;
    *have = 0;
    if (!is_token(*name) || strchr(*name, '@') ||
        !subaddr_split(x->c->recipient_delimiter, *name, &user, &tag))
        return 0;
    int rc = vlook(x, *name, vdom, v);
    struct vlookup vu;
    if (rc == 0 && !v->alias && !v->user && (rc = vlook(x, user, vdom, &vu)) == 0) {
        if (vu.alias || vu.user) {
            log_debug("<%s>: %s is subaddress %s of %s@%s", x->top, *name, tag, user, vdom);
            vlookup_free(v);
            *v = vu;
            free(*name);
            *name = user;
            user = NULL;
        } else {
            vlookup_free(&vu);
        }
    }
    free(user);
    *have = rc == 0;
    return rc;
}

/* A local part in virtual domain vdom (canonical spelling).  Its keys in the
 * chain and done lists are "name@vdom": joe@one.example, joe@two.example and
 * the local joe never meet. */
static void expand_vname(struct xp *x, const char *local, const char *vdom, int depth)
{
    char *name = unquote_local(local);
    struct vlookup v;
    int have = 0;
    if (vsubaddr(x, &name, vdom, &v, &have) < 0) {
        free(name);
        return;
    }
    char *key = xasprintf("%s@%s", name, vdom);
    str_lower(key);
    if (depth > EXPAND_DEPTH_MAX)
        fail(x, 0, "5.4.6 <%s>: aliases nested too deep", x->top);
    else if (!is_token(name) || strchr(name, '@'))
        fail(x, 0, "5.1.1 <%s>: no such user here", x->top);
    else if (sl_contains(&x->chain, key))
        expand_vloop(x, name, vdom, key);
    else if (!sl_contains(&x->done, key)) {
        expand_vresolve(x, name, vdom, key, depth, have ? &v : NULL);
        have = 0;
        sl_add(&x->done, key);
    }
    if (have)
        vlookup_free(&v);
    free(key);
    free(name);
}

/* Split the top-level address at its last '@' (quoted '@' in a local part is
 * rare enough to fall to "no such user"). */
int expand_address(const struct config *c, const char *addr, const char *owner,
                   struct targets *out, char **why)
{
    /* the address appears in replies, logs and bounces: never raw */
    char *top = str_sanitize(addr, strlen(addr));
    struct xp x = {.c = c, .out = out, .top = top};
    *why = NULL;
    sl_init(&x.chain);
    sl_init(&x.done);
    if (owner) {
        /* the .forward owner naming itself means its own mailbox */
        char *k = xstrdup(owner);
        str_lower(k);
        sl_add_owned(&x.chain, k);
    }
    const char *at = strrchr(addr, '@');
    char *vd = at ? vdomain_name(c, at + 1) : NULL;
    if (!is_address(addr)) {
        fail(&x, 0, "5.1.3 <%s>: bad recipient address syntax", top);
    } else if (vd) {
        char *local = xstrndup(addr, (size_t)(at - addr));
        expand_vname(&x, local, vd, 0);
        free(local);
    } else if (at && !route_is_local_domain(c, at + 1)) {
        char *a = xstrdup(addr);
        str_lower(a + (at - addr) + 1);
        add(&x, T_REMOTE, a, NULL);
        free(a);
    } else {
        char *local = at ? xstrndup(addr, (size_t)(at - addr)) : xstrdup(addr);
        expand_name(&x, local, 0);
        free(local);
    }

    int rc = 0;
    if (x.temp) {
        *why = x.temp;
        x.temp = NULL;
        rc = -1;
    } else if (x.resolved == 0) {
        *why = x.perm ? x.perm : xasprintf("5.1.1 <%s>: expands to nothing", top);
        x.perm = NULL;
        rc = 1;
    } else if (x.perm) {
        /* some members of a list failed; the rest is delivered */
        log_notice("expanding <%s>: %s", top, x.perm);
    }
    free(x.perm);
    free(x.temp);
    free(vd);
    sl_free(&x.chain);
    sl_free(&x.done);
    free(top);
    return rc;
}

int expand_local_exists(const struct config *c, const char *local)
{
    char *name = unquote_local(local);
    if (!is_token(name) || strcmp(name, "*") == 0) {
        free(name);
        return 0;
    }
    int rc = name_known(c, name);
    char *user;
    const char *tag;
    if (rc == 0 && subaddr_split(c->recipient_delimiter, name, &user, &tag)) {
        rc = name_known(c, user);
        free(user);
    }
    if (rc == 0) {
        /* the "*" catch-all takes every other name */
        char *value = NULL;
        rc = alias_value(c, "*", &value);
        free(value);
    }
    free(name);
    return rc;
}

int expand_virtual_exists(const struct config *c, const char *local, const char *domain)
{
    char *name = unquote_local(local);
    char *why = NULL;
    struct vlookup v;
    int rc = 0;
    if (is_token(name) && !strchr(name, '@')) {
        char *user;
        const char *tag;
        if (vlookup_name(c, domain, name, &v, &why) < 0) {
            log_warn("checking <%s@%s>: %s", name, domain, why);
            rc = -1;
        } else {
            rc = v.alias || v.user || v.star;
            int split = !v.alias && !v.user &&
                        subaddr_split(c->recipient_delimiter, name, &user, &tag);
            vlookup_free(&v);
            if (split && vlookup_name(c, domain, user, &v, &why) < 0) {
                log_warn("checking <%s@%s>: %s", user, domain, why);
                rc = -1;
            } else if (split) {
                rc = rc || v.alias || v.user;
                vlookup_free(&v);
            }
            if (split)
                free(user);
        }
    }
    free(why);
    free(name);
    return rc;
}
