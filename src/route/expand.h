/* expand.h - what a recipient means: local mailbox, program, file, alias,
 * .forward, or a remote address.
 *
 * Expansion is recursive (aliases -> addresses -> aliases/.forward ...), with loop
 * detection and duplicate suppression; each final destination appears once.
 * A local name that is no alias, account or usermap= name: user+tag is
 * expanded as user (recipient-delimiter=, subaddress.h) when user is one,
 * else the aliases file's "*" entry takes it (the catch-all, aliases(5);
 * "*@other" means name@other; never again for a name the catch-all's own
 * list leads to).  "*" itself is never a name.
 * .forward files are read in a child running as their owner (never as root) and
 * honoured only when owned by the user and not group/world-writable, in a
 * directory only the user or root can write to (forward.h).
 *
 * Virtual domains (vhosts(7)): user@vdomain resolves within the domain - its
 * aliases (VHOSTDIR/DOMAIN/aliases), its accounts (VHOSTDIR/DOMAIN/passwd,
 * no .forward), its "*" catch-all ("*@other" rewrites to user@other) - and
 * a bare name in its aliases is a name of that domain.  Programs, files and
 * :include: there are refused (5.7.1): the domain's owner may keep them. */
#ifndef PO_EXPAND_H
#define PO_EXPAND_H

#include <stddef.h>

#include "conf.h"

enum target_kind { T_MBOX = 1, T_PIPE, T_FILE, T_REMOTE };

struct target {
    enum target_kind kind;
    char *dest;  /* T_MBOX: user name, or "user@domain" for a virtual user's
                    mailbox (lower case; vhosts(7)); T_PIPE: command; T_FILE:
                    path; T_REMOTE: address user@domain */
    char *user;  /* identity for T_PIPE/T_FILE: the .forward owner, NULL = the
                    unprivileged user (aliases file); T_MBOX: the owner */
};

struct targets {
    struct target *v;
    size_t n, cap;
};

void targets_init(struct targets *t);
void targets_free(struct targets *t);

/* Expand one envelope recipient.  owner: the local user whose .forward named
 * addr (NULL otherwise).  Returns 0 with targets appended to out; 1 permanent
 * failure with *why = malloc'd "5.1.1 <addr>: no such user here" etc.; -1 temporary
 * failure with *why = "4.3.0 ...". */
int expand_address(const struct config *c, const char *addr, const char *owner,
                   struct targets *out, char **why);

/* For RCPT checks in the SMTP server: does local name exist (alias, account
 * or usermap= name; for user+tag also user's; or is there a "*" catch-all)?
 * 1 yes, 0 no, -1 cannot tell now. */
int expand_local_exists(const struct config *c, const char *local);

/* The same for local@domain in active virtual domain domain: an alias of the
 * domain, an account of its passwd file (for user+tag also user's), or any
 * name when the domain has a "*" catch-all alias.  1, 0, -1 (a file
 * unreadable now). */
int expand_virtual_exists(const struct config *c, const char *local, const char *domain);

#endif
