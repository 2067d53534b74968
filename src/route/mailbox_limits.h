/* mailbox_limits.h - how many bytes a mailbox may hold (postoffice.cf(5)
 * mailbox-limit=, mailbox-limits=; the file format is mailbox-limits(5)).
 *
 * A limits file holds lines "NAME SIZE" (NAME a user or user@domain, SIZE as
 * size=: 50m, 2g, 0 for no limit), "#" comments and empty lines; the first
 * line naming the user wins.  Files are read on each lookup (a changed file
 * counts at once).  Who calls: the mailbox writer (local.c's child, as the
 * mailbox's owner or vuser=) and the SMTP session (as user=) for RCPT with
 * SIZE=; never as root.  Reads only the admin's files, which must be regular
 * files nobody but their owner may write. */
#ifndef PO_MAILBOX_LIMITS_H
#define PO_MAILBOX_LIMITS_H

#include <stddef.h>

#include "conf.h"

#define MLIMIT_LINE_MAX 1024 /* a longer line is an error in the file */

/* Look user (or user@domain; domain may be NULL) up in path, names compared
 * without regard to case.  1 found (*limit set), 0 not listed (also when
 * path does not exist and missing_ok), -1 with *why (malloc'd text: cannot
 * read it, writable by others, a bad line - with its number). */
int mlimit_lookup_file(const char *path, const char *user, const char *domain,
                       int missing_ok, long long *limit, char **why);

/* The same on text (len bytes, the contents of a file called name, for
 * messages): 1, 0 or -1 as above. */
int mlimit_lookup_text(const char *text, size_t len, const char *name, const char *user,
                       const char *domain, long long *limit, char **why);

/* The limit of local account user: its mailbox-limits= line ("user" or
 * "user@HOSTNAME"), else mailbox-limit=.  Bytes (0 = none), or -1 with *why
 * (the file cannot be used now). */
long long mlimit_local(const struct config *c, const char *user, char **why);

/* The limit of virtual user user@domain (domain in lower case): a line of
 * VHOSTDIR/DOMAIN/limits ("user" or "user@domain"; a missing file is no
 * entry), else a "user@domain" line of mailbox-limits=, else
 * mailbox-limit=.  Bytes, or -1 with *why. */
long long mlimit_virtual(const struct config *c, const char *user, const char *domain,
                         char **why);

#endif
