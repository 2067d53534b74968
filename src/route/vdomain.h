/* vdomain.h - vm-pop3d style virtual domains: VHOSTDIR/domains.cf and each
 * domain's passwd file (see domains.cf(5), vhosts(7)).
 *
 * domains.cf lines are "owner:domain:active[:comment]"; "#" starts a comment
 * line; a domain whose active field is a number other than 0 is active.  Only
 * active domains are virtual domains.  The file is re-read when its change
 * time or size changes, so edits are seen without a restart.
 *
 * A domain's passwd file VHOSTDIR/DOMAIN/passwd holds "user:hash[:...]"
 * lines (htpasswd or vm-pop3d style); user names match without regard to
 * case.  Who calls: routing (is a domain ours, does a user exist), the
 * privileged AUTH helper (the hash to check a password against).  Both files
 * belong to the admin; reading them needs no privilege beyond read access.
 * Nothing here writes. */
#ifndef PO_VDOMAIN_H
#define PO_VDOMAIN_H

#include "conf.h"

/* Longest line read from either file; a longer line is skipped with a log
 * line naming the file and line number. */
#define VDOMAIN_LINE_MAX 4096

/* Is domain (any case, a trailing dot ignored) an active virtual domain?
 * 1 yes, 0 no (also when domains.cf is missing; an unreadable file is logged
 * once per change and counts as no domains). */
int vdomain_active(const struct config *c, const char *domain);

/* Is domain listed in domains.cf but not active (active field 0)?  1 or 0.
 * Such a domain is not ours; routing asks so that mail for it is never taken
 * for local accounts when its MX still points here (route.h ROUTE_OFF). */
int vdomain_switched_off(const struct config *c, const char *domain);

/* The canonical (lower-case, no trailing dot) spelling of an active virtual
 * domain, malloc'd; NULL when domain is not one. */
char *vdomain_name(const struct config *c, const char *domain);

/* Look user up in the passwd file of virtual domain domain.
 *   1  found; *hash (if hash != NULL) is the stored hash, malloc'd
 *   0  no such user (or no passwd file)
 *  -1  the file exists but cannot be read (errno; logged)
 * The domain must be active (vdomain_active): this function does not check. */
int vdomain_passwd(const struct config *c, const char *domain, const char *user,
                   char **hash);

/* Same, on a given passwd file (tests, and the AUTH helper). */
int vdomain_passwd_file(const char *path, const char *user, char **hash);

/* Is user usable as a virtual user's name, and so as a mailbox file name
 * VSPOOL/DOMAIN/USER: 1 to 255 bytes of printable ASCII without '/', ':',
 * '@' or a leading '.'.  1 or 0. */
int vdomain_user_ok(const char *user);

/* VHOSTDIR/DOMAIN/aliases of virtual domain domain (any case), malloc'd; NULL
 * when domain could not be part of a path (empty, '/', leading '.'). */
char *vdomain_aliases_path(const struct config *c, const char *domain);

/* Same again, also giving the number of the line the user was found on
 * (*lineno, when found), so a log line can name file and line. */
int vdomain_passwd_file_at(const char *path, const char *user, char **hash, long *lineno);
/* Forget the cached domains.cf (tests; after a SIGHUP). */
void vdomain_flush(void);

#endif
