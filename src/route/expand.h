/* expand.h - what a recipient means: local mailbox, program, file, alias,
 * .forward, or a remote address.
 *
 * Expansion is recursive (aliases -> addresses -> aliases/.forward ...), with loop
 * detection and duplicate suppression; each final destination appears once.
 * .forward files are read in a child running as their owner (never as root) and
 * honoured only when owned by the user and not group/world-writable, in a
 * directory only the user or root can write to (forward.h). */
#ifndef PO_EXPAND_H
#define PO_EXPAND_H

#include <stddef.h>

#include "conf.h"

enum target_kind { T_MBOX = 1, T_PIPE, T_FILE, T_REMOTE };

struct target {
    enum target_kind kind;
    char *dest;  /* T_MBOX: user name; T_PIPE: command; T_FILE: path;
                    T_REMOTE: address user@domain */
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

/* For RCPT checks in the SMTP server: does local name exist (alias or account)?
 * 1 yes, 0 no, -1 cannot tell now. */
int expand_local_exists(const struct config *c, const char *local);

#endif
