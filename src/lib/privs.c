/* privs.c - looking up accounts and becoming one of them.
 *
 * Runs as root: privs_become() and privs_drop_to() are called as root by the
 * daemon, the queue runner and the local delivery parent, to shed root in a
 * child before it touches network input, messages or users' files.  Every
 * change is verified afterwards: a child that could regain root is refused. */
#include "compat.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "privs.h"
#include "util.h"

static void fill(struct ident *id, const struct passwd *pw)
{
    id->uid = pw->pw_uid;
    id->gid = pw->pw_gid;
    id->name = xstrdup(pw->pw_name);
    id->home = xstrdup(pw->pw_dir ? pw->pw_dir : "/");
    id->gecos = xstrdup(pw->pw_gecos ? pw->pw_gecos : "");
}

/* getpwnam/getpwuid report "not found" as NULL with errno 0 or one of these. */
static int not_found_errno(int e)
{
    return e == 0 || e == ENOENT || e == ESRCH || e == EBADF || e == EPERM;
}

/* The original matched user names case-insensitively by scanning the whole
 * passwd database; do the same as a fallback after the exact lookup. */
static int scan_ci(const char *user, struct ident *id)
{
    struct passwd *pw;
    int found = 1;

    setpwent();
    for (;;) {
        errno = 0;
        pw = getpwent();
        if (pw == NULL) {
            if (!not_found_errno(errno) && errno != ENOENT)
                found = -1;
            break;
        }
        if (strcasecmp(pw->pw_name, user) == 0) {
            fill(id, pw);
            found = 0;
            break;
        }
    }
    endpwent();
    return found;
}

int privs_lookup(const char *user, struct ident *id)
{
    struct passwd *pw;

    memset(id, 0, sizeof *id);
    if (user == NULL || *user == '\0')
        return 1;
    errno = 0;
    pw = getpwnam(user);
    if (pw != NULL) {
        fill(id, pw);
        return 0;
    }
    if (!not_found_errno(errno))
        return -1;
    return scan_ci(user, id);
}

void privs_free(struct ident *id)
{
    free(id->name);
    free(id->home);
    free(id->gecos);
    memset(id, 0, sizeof *id);
}

/* initgroups, plus extra as one more supplementary group (the mail spool's
 * group when the spool is 0775 root:mail). */
static int set_groups(const struct ident *id, gid_t extra)
{
    if (initgroups(id->name, id->gid) < 0)
        return -1;
    if (extra == (gid_t)-1)
        return 0;
    int n = getgroups(0, NULL);
    if (n < 0)
        return -1;
    gid_t *g = xreallocarray(NULL, (size_t)n + 1, sizeof *g);
    n = getgroups(n, g);
    if (n < 0) {
        free(g);
        return -1;
    }
    int have = 0;
    for (int i = 0; i < n; i++)
        have |= g[i] == extra;
    if (!have)
        g[n++] = extra;
    int rc = setgroups((size_t)n, g);
    free(g);
    return rc;
}

/* After the change: every id is the target and root cannot come back. */
static int verify(const struct ident *id)
{
    if (getuid() != id->uid || geteuid() != id->uid || getgid() != id->gid ||
        getegid() != id->gid)
        return -1;
    if (setuid(0) == 0 || seteuid(0) == 0)
        return -1;
    if (id->gid != 0 && (setgid(0) == 0 || setegid(0) == 0))
        return -1;
    return 0;
}

int privs_become(const struct ident *id, gid_t extra_gid)
{
    if (id == NULL || id->uid == 0 || id->name == NULL) {
        errno = EPERM;
        return -1;
    }
    if (geteuid() != 0) {
        /* an unprivileged process can only "become" itself */
        if (getuid() == id->uid && geteuid() == id->uid)
            return 0;
        errno = EPERM;
        return -1;
    }
    if (set_groups(id, extra_gid) < 0 || setgid(id->gid) < 0 || setuid(id->uid) < 0)
        return -1;
    if (verify(id) < 0) {
        errno = EPERM;
        return -1;
    }
    return 0;
}

int privs_drop_to(const char *user)
{
    struct ident id;
    int rc;

    if (geteuid() != 0)
        return 0;
    rc = privs_lookup(user, &id);
    if (rc != 0) {
        if (rc == 1)
            errno = ENOENT;
        return -1;
    }
    rc = privs_become(&id, (gid_t)-1);
    privs_free(&id);
    return rc;
}
