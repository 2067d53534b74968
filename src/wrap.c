/* wrap.c - libwrap hosts_access with daemon name "smtp".
 * Runs in the unprivileged session child (the tables are world-readable). */
#include "compat.h"

#include <stddef.h>

#include "wrap.h"

#if HAVE_LIBWRAP
#include <syslog.h>
#include <tcpd.h>

/* libwrap's logging levels: it refers to these from the program */
int allow_severity = LOG_INFO;
int deny_severity = LOG_WARNING;

int wrap_available(void)
{
    return 1;
}

int wrap_check(const struct config *c, const char *ip, const char *name,
               const char **why)
{
    /* libwrap's own table pointers are its documented way to use other
     * files; each session child sets them once before its single check */
    if (c->hosts_allow)
        hosts_allow_table = c->hosts_allow;
    if (c->hosts_deny)
        hosts_deny_table = c->hosts_deny;
    char unk[] = STRING_UNKNOWN;
    char service[] = "smtp";
    char *n = name ? (char *)name : unk;
    *why = NULL;
    return hosts_ctl(service, n, (char *)ip, unk) ? 1 : 0;
}

#else

int wrap_available(void)
{
    return 0;
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
