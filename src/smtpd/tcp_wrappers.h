/* tcp_wrappers.h - tcp wrappers (libwrap hosts_access) for SMTP clients.
 *
 * The daemon name is "smtp" (hosts.allow: "smtp: 192.0.2.0/24").  hosts-allow=
 * and hosts-deny= replace libwrap's tables (/etc/hosts.allow, /etc/hosts.deny).
 * Built without libwrap (configure --without-tcpwrappers), every client is
 * allowed unless hosts-allow=/hosts-deny= is set: then wrap_check refuses with
 * an error saying what is missing, rather than silently ignoring the tables.
 * libwrap (WRAP_LIBRARY, found by configure) is not linked in: it is loaded
 * with dlopen() in the short-lived child that asks it, and only when a table
 * has a rule (see tcp_wrappers.c for why). */
#ifndef PO_TCP_WRAPPERS_H
#define PO_TCP_WRAPPERS_H

#include "conf.h"

/* May the client ip (numeric) with verified host name (or NULL) connect?
 * The tables are hosts-allow=/hosts-deny=, else WRAP_ALLOW_TABLE and
 * WRAP_DENY_TABLE (libwrap's own, /etc/hosts.allow and /etc/hosts.deny).
 * 1 allowed, 0 denied, -1 cannot check (*why = static reason: the check
 * died, or libwrap cannot be loaded). */
int wrap_check(const struct config *c, const char *ip, const char *name,
               const char **why);

/* Could libwrap find a rule in the table at path?  0 when it certainly cannot:
 * the file is missing, or every line ends in LF and is blank (spaces, tabs,
 * CR) or a comment ('#' in the first column, at most 1000 bytes, no NUL).
 * 1 otherwise, including when it cannot tell (unreadable, not a regular file).
 * wrap_check uses it to skip libwrap when neither table has a rule: the answer
 * is then "allowed" anyway, and libwrap's stdio work would cost every idle
 * session child several private pages. */
int wrap_table_has_rules(const char *path);

#endif
