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

/* May the client ip (numeric) with verified host name (or NULL) connect?
 * 1 allowed, 0 denied, -1 cannot check (*why = static reason). */
int wrap_check(const struct config *c, const char *ip, const char *name,
               const char **why);

/* Is tcp-wrappers support compiled in?  1 or 0. */
int wrap_available(void);

#endif
