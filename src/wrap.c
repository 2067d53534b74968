/* wrap.c - libwrap hosts_access with daemon name "smtp".
 * Runs in the unprivileged session child (the tables are world-readable). */
#include "compat.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <sys/stat.h>
#include <unistd.h>

#include "wrap.h"

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
#include <signal.h>
#include <sys/wait.h>
#include <syslog.h>
#include <tcpd.h>

/* libwrap's logging levels: it refers to these from the program */
int allow_severity = LOG_INFO;
int deny_severity = LOG_WARNING;

int wrap_available(void)
{
    return 1;
}

/* libwrap's compiled-in tables, remembered before the first change so that a
 * reload without hosts-allow=/hosts-deny= goes back to them. */
static char *lib_allow, *lib_deny;
static int lib_saved;

/* Point libwrap's table variables (its documented way to use other files) at
 * the configured tables.  They are written only when they change: the daemon
 * sets them before forking, so a session child leaves the page alone. */
static void point_tables(const struct config *c)
{
    if (!lib_saved) {
        lib_allow = hosts_allow_table;
        lib_deny = hosts_deny_table;
        lib_saved = 1;
    }
    char *allow = c->hosts_allow ? c->hosts_allow : lib_allow;
    char *deny = c->hosts_deny ? c->hosts_deny : lib_deny;
    if (hosts_allow_table != allow)
        hosts_allow_table = allow;
    if (hosts_deny_table != deny)
        hosts_deny_table = deny;
}

void wrap_init(const struct config *c)
{
    point_tables(c);
}

/* hosts_ctl in a short-lived child that answers through its exit status.
 * libwrap reads the tables through stdio (a 4 KiB buffer, libc's FILE list),
 * on a deep stack and into its own static data: done in the session, all of
 * that would stay behind as private pages of every idle session.  So options
 * of hosts_options(5) that change the process itself (nice, umask, setenv)
 * do not reach the session.  When SIGCHLD is ignored (no exit status to
 * read) or fork fails, the check runs here.  1 allowed, 0 denied, -1 the
 * child died without an answer. */
static int ctl(char *service, char *name, char *ip, char *user)
{
    struct sigaction sa;
    if (sigaction(SIGCHLD, NULL, &sa) == 0 && sa.sa_handler != SIG_IGN &&
        !(sa.sa_flags & SA_NOCLDWAIT)) {
        pid_t pid = fork();
        if (pid == 0)
            _exit(hosts_ctl(service, name, ip, user) ? 0 : 1);
        if (pid > 0) {
            int st;
            pid_t r;
            while ((r = waitpid(pid, &st, 0)) < 0 && errno == EINTR)
                ;
            if (r == pid && WIFEXITED(st) && WEXITSTATUS(st) <= 1)
                return WEXITSTATUS(st) == 0;
            return -1;
        }
    }
    return hosts_ctl(service, name, ip, user) ? 1 : 0;
}

int wrap_check(const struct config *c, const char *ip, const char *name,
               const char **why)
{
    *why = NULL;
    point_tables(c);
    /* no rule in either table: libwrap would allow; skip its stdio work */
    if (!wrap_table_has_rules(hosts_allow_table) && !wrap_table_has_rules(hosts_deny_table))
        return 1;
    char unk[] = STRING_UNKNOWN;
    char service[] = "smtp";
    char *n = name ? (char *)name : unk;
    int ok = ctl(service, n, (char *)ip, unk);
    if (ok < 0)
        *why = "the tcp wrappers check ended without an answer";
    return ok;
}

#else

int wrap_available(void)
{
    return 0;
}

void wrap_init(const struct config *c)
{
    (void)c;
}

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
