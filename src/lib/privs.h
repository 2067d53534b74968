/* privs.h - identities and dropping privileges.
 *
 * Root is needed only to bind port 25, to become a mailbox owner and to read
 * shadow passwords.  Every child that handles network input, message content or
 * a user's files calls privs_become() first; it verifies the change stuck. */
#ifndef PO_PRIVS_H
#define PO_PRIVS_H

#include <sys/types.h>

struct ident {
    uid_t uid;
    gid_t gid;
    char *name;
    char *home;
    char *gecos;
};

/* Look up a local account (case-sensitive first, then case-insensitive scan as
 * the original did).  0 found, 1 no such user, -1 error (errno). */
int privs_lookup(const char *user, struct ident *id);
void privs_free(struct ident *id);

/* Become id: initgroups (plus extra_gid as a supplementary group when it is not
 * (gid_t)-1), setgid, setuid, then check that neither uid 0 nor the old ids can
 * be regained.  When not running as root this succeeds only if id is already
 * who we are.  Never becomes uid 0.  0 or -1 with errno (EPERM). */
int privs_become(const struct ident *id, gid_t extra_gid);

/* Become the unprivileged account named user (config user=).  When not root:
 * stay who we are.  0 or -1. */
int privs_drop_to(const char *user);

#endif
