/* tcp_wrappers.c - libwrap hosts_access with daemon name "smtp".
 * Runs in the unprivileged session child (the tables are world-readable). */
#include "compat.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tcp_wrappers.h"

#define COMMENT_MAX 1000 /* longer comment lines: let libwrap decide */

/* Line state of wrap_table_has_rules: only blank and comment lines so far? */
struct tscan {
    size_t len;   /* bytes of the current line */
    int comment;  /* the line starts with '#' */
    int blank;    /* only spaces, tabs and CRs so far */
    int odd;      /* a NUL, or a comment too long for libwrap's buffer */
};

/* Feed n bytes; 1 as soon as a line may hold a rule. */
static int tscan_feed(struct tscan *t, const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char ch = p[i];
        if (ch == '\n') {
            if (!t->blank && (!t->comment || t->odd))
                return 1;
            *t = (struct tscan){ .blank = 1 };
            continue;
        }
        if (t->len == 0)
            t->comment = ch == '#';
        if (ch != ' ' && ch != '\t' && ch != '\r')
            t->blank = 0;
        if (ch == '\0' || ++t->len > COMMENT_MAX)
            t->odd = 1;
    }
    return 0;
}

int wrap_table_has_rules(const char *path)
{
    /* O_NONBLOCK: a FIFO must not hang the session (libwrap then decides) */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return errno == ENOENT ? 0 : 1;
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return 1;
    }
    struct tscan t = { .blank = 1 };
    char tmp[512]; /* small: this runs in every session child */
    int rules = 0;
    for (;;) {
        ssize_t r = read(fd, tmp, sizeof tmp);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rules = 1;
            break;
        }
        if (r == 0) {
            rules = t.len > 0; /* a last line without LF: libwrap warns */
            break;
        }
        if (tscan_feed(&t, tmp, (size_t)r)) {
            rules = 1;
            break;
        }
    }
    close(fd);
    return rules;
}

#if HAVE_LIBWRAP
#include <dlfcn.h>
#include <stdint.h>
#include <tcpd.h>

#include "child.h"
#include "msg.h"
#include "util.h"

/* libwrap is loaded (dlopen) only where a table has a rule, in the child
 * that asks it: linked into the program, it and the nine libraries it pulls
 * in (libnsl, libtirpc, Kerberos...) would be mapped in the master, and every
 * fork of the master would copy and every exit tear down their fifty-odd
 * mappings, whether the tables hold a rule or not. */
struct wraplib {
    int (*ctl)(char *, char *, char *, char *);
    char **allow, **deny; /* libwrap's table variables (its documented way to
                             use other files) */
};

static int load(struct wraplib *w)
{
    void *h = dlopen(WRAP_LIBRARY, RTLD_NOW | RTLD_LOCAL);
    if (h == NULL)
        return -1;
    /* POSIX's way to turn dlsym's object pointer into a function pointer */
    *(void **)&w->ctl = dlsym(h, "hosts_ctl");
    w->allow = dlsym(h, "hosts_allow_table");
    w->deny = dlsym(h, "hosts_deny_table");
    return w->ctl && w->allow && w->deny ? 0 : -1;
}

/* Load libwrap, point it at the configured tables and ask it.  1 allowed,
 * 0 denied, 2 libwrap cannot be loaded. */
static int ask(const struct config *c, char *service, char *name, char *ip, char *user)
{
    struct wraplib w;
    if (load(&w) < 0)
        return 2;
    if (c->hosts_allow)
        *w.allow = c->hosts_allow;
    if (c->hosts_deny)
        *w.deny = c->hosts_deny;
    return w.ctl(service, name, ip, user) ? 1 : 0;
}

struct question {
    const struct config *c;
    char *service, *name, *ip, *user;
};

/* In the child: ask, and answer with one MSG_WRAP_RESULT (u32: 1 allowed,
 * 0 denied, 2 libwrap cannot be loaded). */
static PO_NORETURN void ask_child(void *arg, int fd)
{
    const struct question *q = arg;
    struct buf b;
    buf_init(&b);
    msg_put_u32(&b, (uint32_t)ask(q->c, q->service, q->name, q->ip, q->user));
    _exit(msg_send(fd, MSG_WRAP_RESULT, b.s, b.len, -1) == 0 ? 0 : 1);
}

/* The child's answer, or -1. */
static int answer(struct child *ch)
{
    struct msg m;
    struct msg_reader r;
    struct child_end end;
    uint32_t v;
    int got = msg_recv(ch->fd, &m, 16, 0);
    child_wait(ch, &end);
    if (got != 1)
        return -1;
    msg_reader_init(&r, &m);
    int ok = m.type == MSG_WRAP_RESULT && msg_get_u32(&r, &v) == 0 &&
             msg_get_end(&r) == 0 && v <= 2;
    msg_free(&m);
    return ok ? (int)v : -1;
}

/* The question in a short-lived child ("wrappers") that reports the answer.
 * libwrap reads the tables through stdio (a 4 KiB buffer, libc's FILE list),
 * on a deep stack and into its own static data: done in the session, all of
 * that would stay behind as private pages of every idle session.  So options
 * of hosts_options(5) that change the process itself (nice, umask, setenv)
 * do not reach the session.  When the child cannot be started the check
 * runs here.  1 allowed, 0 denied, -1 the child died without an answer, -2
 * libwrap cannot be loaded. */
static int ctl(const struct config *c, char *service, char *name, char *ip, char *user)
{
    struct question q = {.c = c, .service = service, .name = name, .ip = ip, .user = user};
    struct child_spec spec = {.title = "wrappers", .report = 1};
    struct child ch;
    int r;
    if (child_start(&ch, &spec, ask_child, &q) == 0)
        r = answer(&ch);
    else
        r = ask(c, service, name, ip, user);
    return r == 2 ? -2 : r;
}

int wrap_check(const struct config *c, const char *ip, const char *name,
               const char **why)
{
    *why = NULL;
    /* no rule in either table: libwrap would allow; skip loading it */
    if (!wrap_table_has_rules(c->hosts_allow ? c->hosts_allow : WRAP_ALLOW_TABLE) &&
        !wrap_table_has_rules(c->hosts_deny ? c->hosts_deny : WRAP_DENY_TABLE))
        return 1;
    char unk[] = STRING_UNKNOWN;
    char service[] = "smtp";
    char *n = name ? (char *)name : unk;
    int ok = ctl(c, service, n, (char *)ip, unk);
    if (ok == -1)
        *why = "the tcp wrappers check ended without an answer";
    else if (ok == -2)
        *why = "cannot load " WRAP_LIBRARY " to apply the hosts.allow/hosts.deny "
               "rules: install it (Debian package libwrap0) or remove the rules";
    return ok < 0 ? -1 : ok;
}

#else

int wrap_check(const struct config *c, const char *ip, const char *name,
               const char **why)
{
    (void)ip;
    (void)name;
    if (c->hosts_allow || c->hosts_deny) {
        *why = "hosts-allow=/hosts-deny= need tcp wrappers: rebuild with "
               "./configure.sh --with-tcpwrappers (Debian package libwrap0-dev)";
        return -1;
    }
    *why = NULL;
    return 1;
}

#endif
