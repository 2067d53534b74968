/* vlookup.c - a name's meaning in a virtual domain (vlookup.h).
 *
 * Runs as root only to start the reader child (child_start becomes user=
 * before anything is opened) and to read its one MSG_VLOOKUP_RESULT. */
#include "compat.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "aliases.h"
#include "child.h"
#include "log.h"
#include "msg.h"
#include "privs.h"
#include "util.h"
#include "vdomain.h"
#include "vlookup.h"

int vlookup_alias(const struct config *c, const char *domain, const char *key,
                  char **value)
{
    *value = NULL;
    char *path = vdomain_aliases_path(c, domain);
    if (!path)
        return 0;
    char *db = xasprintf("%s.db", path);
    int rc;
    /* as the system aliases (expand.c): the text file until the first newaliases */
    if (access(db, F_OK) < 0 && errno == ENOENT && access(path, F_OK) == 0) {
        log_warn("%s is missing: run newaliases %s; reading %s directly", db, domain, path);
        rc = aliases_lookup_text(path, key, value);
    } else {
        rc = aliases_lookup(db, key, value);
    }
    int e = errno;
    free(db);
    free(path);
    errno = e;
    return rc;
}

void vlookup_free(struct vlookup *v)
{
    free(v->alias_value);
    free(v->star_value);
    memset(v, 0, sizeof *v);
}

/* The lookups themselves, as the caller. */
static int lookup_here(const struct config *c, const char *domain, const char *name,
                       struct vlookup *v, char **why)
{
    memset(v, 0, sizeof *v);
    char *key = xstrdup(name);
    str_lower(key);
    int rc = vlookup_alias(c, domain, key, &v->alias_value);
    if (rc >= 0) {
        v->alias = rc;
        rc = 0;
    }
    if (rc == 0 && vdomain_user_ok(key)) {
        rc = vdomain_passwd(c, domain, key, NULL);
        if (rc >= 0) {
            v->user = rc;
            rc = 0;
        }
    }
    if (rc == 0 && !v->alias && !v->user) {
        rc = vlookup_alias(c, domain, "*", &v->star_value);
        if (rc >= 0) {
            v->star = rc;
            rc = 0;
        }
    }
    if (rc < 0) {
        *why = xasprintf("cannot read the files of virtual domain %s in %s: %s", domain,
                         c->vpath, strerror(errno));
        vlookup_free(v);
    }
    free(key);
    return rc;
}

struct job {
    const struct config *c;
    const char *domain, *name;
};

/* The child keeps nothing of its parent's (as forward.c's reader): no
 * sockets, queue files or terminal, default signals.  The pipe's new fd. */
static int isolate(int fd)
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

/* In the child, as user=: look up, report, exit. */
static PO_NORETURN void child(void *arg, int fd)
{
    const struct job *j = arg;
    struct vlookup v;
    char *why = NULL;
    fd = isolate(fd);
    int rc = lookup_here(j->c, j->domain, j->name, &v, &why);
    struct buf b;
    buf_init(&b);
    msg_put_i64(&b, rc);
    msg_put_str(&b, why);
    msg_put_i64(&b, v.alias);
    msg_put_str(&b, v.alias_value);
    msg_put_i64(&b, v.user);
    msg_put_str(&b, NULL);
    msg_put_i64(&b, v.star);
    msg_put_str(&b, v.star_value);
    _exit(msg_send(fd, MSG_VLOOKUP_RESULT, b.s, b.len, -1) == 0 ? 0 : 1);
}

/* One (found, value) pair: found 0 or 1, a value exactly when found (the
 * account has none). */
static int get_pair(struct msg_reader *r, int *found, char **value, int has_value)
{
    int64_t f;
    char *s = NULL;
    if (msg_get_i64(r, &f) < 0 || msg_get_str(r, &s) < 0)
        return -1;
    if ((f != 0 && f != 1) || (s != NULL) != (has_value && f == 1)) {
        free(s);
        return -1;
    }
    *found = (int)f;
    *value = s;
    return 0;
}

static int decode(const struct msg *m, struct vlookup *v, char **why)
{
    struct msg_reader r;
    int64_t rc = -2;
    char *text = NULL, *none = NULL;
    memset(v, 0, sizeof *v);
    msg_reader_init(&r, m);
    int ok = m->type == MSG_VLOOKUP_RESULT && msg_get_i64(&r, &rc) == 0 &&
             msg_get_str(&r, &text) == 0 && (rc == 0 || rc == -1) &&
             (text != NULL) == (rc == -1) &&
             get_pair(&r, &v->alias, &v->alias_value, 1) == 0 &&
             get_pair(&r, &v->user, &none, 0) == 0 &&
             get_pair(&r, &v->star, &v->star_value, 1) == 0 && msg_get_end(&r) == 0;
    if (!ok) {
        free(text);
        vlookup_free(v);
        *why = xstrdup("garbled answer from the virtual-domain lookup process");
        return -1;
    }
    if (rc < 0) {
        vlookup_free(v);
        *why = text;
        return -1;
    }
    return 0;
}

static int lookup_in_child(const struct config *c, const char *domain, const char *name,
                           struct vlookup *v, char **why)
{
    struct ident who;
    const char *user = c->user ? c->user : "mail";
    int r = privs_lookup(user, &who);
    if (r != 0) {
        *why = xasprintf("cannot read virtual domain files as user=%s: %s", user,
                         r > 0 ? "no such account" : strerror(errno));
        return -1;
    }
    if (who.uid == 0) {
        *why = xasprintf("user=%s is root: virtual domain files are not read as root", user);
        privs_free(&who);
        return -1;
    }
    struct job j = {.c = c, .domain = domain, .name = name};
    char *title = xasprintf("vlookup %s", domain);
    struct child_spec spec = {.title = title, .become = &who, .extra_gid = (gid_t)-1,
                              .deadline_ms = VLOOKUP_TIMEOUT_MS, .report = 1};
    struct child ch;
    struct child_end end;
    struct msg m;
    int started = child_start(&ch, &spec, child, &j);
    free(title);
    privs_free(&who);
    if (started < 0) {
        *why = xasprintf("fork: %s", strerror(errno));
        return -1;
    }
    int got = msg_recv(ch.fd, &m, MSG_MAX, ch.deadline);
    int e = errno;
    if (got < 0 && e == ETIMEDOUT) {
        child_kill(&ch);
        *why = xasprintf("timed out reading the files of virtual domain %s", domain);
        return -1;
    }
    child_wait(&ch, &end);
    if (got == 1) {
        int rc = decode(&m, v, why);
        msg_free(&m);
        return rc;
    }
    if (end.exited && end.code == CHILD_EX_PRIVS)
        *why = xasprintf("cannot become %s to read virtual domain files", user);
    else
        *why = xasprintf("the virtual-domain lookup process for %s gave no answer", domain);
    return -1;
}

int vlookup_name(const struct config *c, const char *domain, const char *name,
                 struct vlookup *v, char **why)
{
    *why = NULL;
    memset(v, 0, sizeof *v);
    if (geteuid() == 0)
        return lookup_in_child(c, domain, name, v, why);
    return lookup_here(c, domain, name, v, why);
}
