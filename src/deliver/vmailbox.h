/* vmailbox.h - where a virtual user's mailbox is (vhosts(7)): the file
 * VSPOOL/DOMAIN/USER (user and domain in lower case), owned by vuser=, and
 * the checks before local.c has it opened, locked and written by the same
 * code as any mailbox (mbox.h) - all in the writer child, as vuser=: root
 * opens nothing in VSPOOL/DOMAIN.
 *
 * Who calls: local_deliver_mbox_batch (local.c), in the delivery process, as
 * root, for a T_MBOX target "user@domain" (expand.h).  It reads no user file
 * itself: whether the user still exists is asked through vlookup.h (a child
 * as user=).  It creates VSPOOL/DOMAIN when missing (mode 0700, owner vuser=
 * and its group) and nothing else; VSPOOL itself is the admin's. */
#ifndef PO_VMAILBOX_H
#define PO_VMAILBOX_H

#include "conf.h"
#include "local.h"
#include "privs.h"

struct vmbox {
    char *path;          /* VSPOOL/DOMAIN/USER */
    char *dir;           /* VSPOOL/DOMAIN */
    struct ident owner;  /* vuser=: owns the mailbox and writes it */
};

/* Is box (a T_MBOX target) a virtual user's mailbox ("user@domain")?  1 or 0. */
int vmbox_is_virtual(const char *box);

/* Check and prepare box "user@domain" for delivery:
 *   DELIV_OK    *v filled (vmbox_free it)
 *   DELIV_FAIL  5.1.3 a name that cannot be a mailbox ('/', leading '.',
 *               ...), 5.1.1 no such user in the domain's passwd file
 *               (*status names rcpt)
 *   DELIV_DEFER 4.3.0 the domain is not active now, vuser= is missing or
 *               root, VSPOOL or VSPOOL/DOMAIN is missing, a symlink, not a
 *               directory, owned by another account, or cannot be made; the
 *               passwd file cannot be read now
 * *status is malloc'd "X.Y.Z text" unless DELIV_OK. */
enum deliv_result vmbox_prepare(const struct config *c, const char *box, const char *rcpt,
                                struct vmbox *v, char **status);

void vmbox_free(struct vmbox *v);

#endif
