/* mailbox_place.h - where a local account's mail goes (mailbox=,
 * mailbox_spec.h) and who may open it there.
 *
 * Who calls: local.c, in the delivery process (root), before it forks the
 * writer.  It reads no user file: it expands the template, resolves the
 * directory that holds the mailbox and looks at the owners of the
 * directories on the way (lstat).  Root opens or creates a mailbox only in a
 * directory that root alone controls, all the way up (a spool such as
 * /var/mail): anywhere else (a home directory) the owner's own process does
 * it, so a link swapped into a user's directory can never make root create or
 * give away a file elsewhere.  Fails with DELIV_DEFER/DELIV_FAIL and a
 * malloc'd "X.Y.Z text". */
#ifndef PO_MAILBOX_PLACE_H
#define PO_MAILBOX_PLACE_H

#include "conf.h"
#include "local.h"
#include "mailbox_spec.h"
#include "privs.h"

struct mbplace {
    enum mailbox_kind kind; /* MB_SPOOL, MB_MBOX, MB_MAILDIR or MB_LMTP */
    char *path;             /* the mbox file or the maildir (no trailing "/");
                               NULL for MB_LMTP */
    char *dir;              /* the directory holding path, symbolic links resolved
                               when root_owned (else as written) */
    int root_owned;         /* 1: dir and every directory above it belong to root
                               and are no symbolic links: root may open there */
};

/* Where id's mail goes under config c: MB_SPOOL is c->mailspool/NAME (as
 * before mailbox= existed: dir is c->mailspool, root_owned 1, and local.c
 * checks the spool's modes); a template is expanded with %u = id->name, %d = c->hostname, %h
 * and "~/" = id->home.  DELIV_OK with *p filled (mbplace_free), else
 * DELIV_DEFER 4.3.0 (a template that cannot be expanded for this account:
 * no home directory, a name with "/"). */
enum deliv_result mbplace_find(const struct config *c, const struct ident *id,
                               struct mbplace *p, char **status);

/* Is every directory from "/" down to dir (resolved) root's and no symbolic
 * link?  1 yes (*real: the resolved path, malloc'd), 0 no or not there. */
int mbplace_root_chain(const char *dir, char **real);

/* As root, for a maildir in a root-owned directory (p->root_owned): create
 * it when missing (0700, given to uid:gid); the writer makes tmp/ new/ cur/.
 * DELIV_OK (made, or already there: the writer checks it), else DELIV_DEFER
 * 4.3.0. */
enum deliv_result mbplace_make_maildir(const struct mbplace *p, uid_t uid, gid_t gid,
                                       char **status);

void mbplace_free(struct mbplace *p);

#endif
