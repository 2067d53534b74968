/* wrap.h - tcp wrappers (libwrap hosts_access) for SMTP clients.
 *
 * The daemon name is "smtp" (hosts.allow: "smtp: 192.0.2.0/24").  hosts-allow=
 * and hosts-deny= replace libwrap's tables (/etc/hosts.allow, /etc/hosts.deny).
 * Built without libwrap (configure --without-tcpwrappers), every client is
 * allowed unless hosts-allow=/hosts-deny= is set: then wrap_check refuses with
 * an error saying what is missing, rather than silently ignoring the tables. */
#ifndef PO_WRAP_H
#define PO_WRAP_H

#include "conf.h"

/* Point libwrap at hosts-allow=/hosts-deny= (or back at its own tables).  The
 * daemon calls it after loading the configuration, before forking sessions,
 * so that session children do not write libwrap's variables (each write
 * would cost every idle child a private page).  wrap_check does it too. */
void wrap_init(const struct config *c);

/* May the client ip (numeric) with verified host name (or NULL) connect?
 * 1 allowed, 0 denied, -1 cannot check (*why = static reason). */
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

/* Is tcp-wrappers support compiled in?  1 or 0. */
int wrap_available(void);

#endif
