/* log.c - syslog (facility mail) and stderr reporting.  Depends on libc only
 * (util.c calls die() when memory runs out, so log.c must not allocate
 * through util: that would be a cycle, and a loop when out of memory). */
#include "compat.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "log.h"

/* The process's log identity: set once at start (and again in forked
 * children).  Thread-local only for where it lives: the static TLS block shares
 * its page with errno, which every forked SMTP session child writes anyway,
 * while a write to .data would cost each idle child one more private page.
 * (postoffice has one thread.) */
static _Thread_local struct {
    char ident[64];
    int to_stderr;
    int opened;   /* openlog done with ident */
    int pending;  /* ident set; openlog still to do (at the first message) */
} lg = {"postoffice", 0, 0, 0};

/* Connect to syslog under the current identity, if not done yet. */
static void log_ready(void)
{
    if (!lg.pending)
        return;
    if (lg.opened)
        closelog();
    openlog(lg.ident, LOG_PID | LOG_NDELAY, LOG_MAIL);
    lg.opened = 1;
    lg.pending = 0;
}

void log_open_deferred(const char *ident, int to_stderr)
{
    snprintf(lg.ident, sizeof lg.ident, "%s", ident);
    lg.to_stderr = to_stderr;
    lg.pending = 1;
}

void log_open(const char *ident, int to_stderr)
{
    log_open_deferred(ident, to_stderr);
    log_ready();
}

void log_set_stderr(int on)
{
    lg.to_stderr = on;
}

int log_to_stderr(void)
{
    return lg.to_stderr;
}

/* The formatted message, malloc'd; NULL when memory ran out. */
static char *format(const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    char *m = n < 0 ? NULL : malloc((size_t)n + 1);
    if (m)
        vsnprintf(m, (size_t)n + 1, fmt, ap);
    return m;
}

static void vlog(int prio, const char *fmt, va_list ap, int force_stderr)
{
    char *msg = format(fmt, ap);
    const char *m = msg ? msg : "out of memory formatting a log message";
    log_ready();
    syslog(prio, "%s", m);
    if ((lg.to_stderr && prio != LOG_DEBUG) || force_stderr)
        fprintf(stderr, "%s: %s\n", lg.ident, m);
    free(msg);
}

void log_msg(int prio, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vlog(prio, fmt, ap, 0);
    va_end(ap);
}

void die(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vlog(LOG_ERR, fmt, ap, 1);
    va_end(ap);
    exit(code);
}

void say(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", lg.ident);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}
