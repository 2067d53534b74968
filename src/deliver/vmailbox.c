/* vmailbox.c - a virtual user's mailbox: VSPOOL/DOMAIN/USER (vmailbox.h).
 *
 * Runs as root (the delivery process): lstat and mkdir/fchown of the
 * domain's directory under VSPOOL; the user lookup runs as user= (vlookup). */
#include "compat.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "util.h"
#include "vdomain.h"
#include "vlookup.h"
#include "vmailbox.h"

int vmbox_is_virtual(const char *box)
{
    return box != NULL && strchr(box, '@') != NULL;
}

void vmbox_free(struct vmbox *v)
{
    free(v->path);
    free(v->dir);
    privs_free(&v->owner);
    memset(v, 0, sizeof *v);
}

static enum deliv_result defer(char **status, const char *fmt, const char *a, const char *b)
{
    *status = xasprintf(fmt, a, b);
    return DELIV_DEFER;
}

/* A directory on the way to the mailbox: a real directory (no symlink: root
 * opens the mailbox through it), owned by root or the vuser. */
static enum deliv_result check_dir(const char *dir, const struct stat *st,
                                   const struct ident *vu, char **status)
{
    if (S_ISLNK(st->st_mode))
        return defer(status, "4.3.0 virtual mail spool %s is a symbolic link; make it a "
                     "directory%s", dir, "");
    if (!S_ISDIR(st->st_mode))
        return defer(status, "4.3.0 virtual mail spool %s is not a directory%s", dir, "");
    if (st->st_uid != 0 && st->st_uid != vu->uid)
        return defer(status, "4.3.0 virtual mail spool %s belongs to neither root nor %s "
                     "(vuser=)", dir, vu->name);
    return DELIV_OK;
}

/* VSPOOL/DOMAIN, made when missing: 0700, vuser's (dovecot reads it as vuser). */
static enum deliv_result domain_dir(const char *dir, const struct ident *vu, char **status)
{
    struct stat st;
    if (lstat(dir, &st) == 0)
        return check_dir(dir, &st, vu, status);
    if (errno != ENOENT)
        return defer(status, "4.3.0 virtual mail spool %s: %s", dir, strerror(errno));
    if (mkdir(dir, 0700) < 0 && errno != EEXIST)
        return defer(status, "4.3.0 cannot make the virtual mail spool %s: %s", dir,
                     strerror(errno));
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return defer(status, "4.3.0 virtual mail spool %s: %s", dir, strerror(errno));
    int rc = fstat(fd, &st);
    if (rc == 0 && st.st_uid == 0 && geteuid() == 0)
        rc = fchown(fd, vu->uid, vu->gid);
    int e = errno;
    close(fd);
    if (rc < 0)
        return defer(status, "4.3.0 cannot give %s to vuser=: %s", dir, strerror(e));
    log_info("made the virtual mail spool %s (owner %s, mode 0700)", dir, vu->name);
    return DELIV_OK;
}

/* vuser=: an existing account other than root. */
static enum deliv_result vuser_of(const struct config *c, struct ident *vu, char **status)
{
    const char *name = c->vuser && *c->vuser ? c->vuser : "mail";
    int rc = privs_lookup(name, vu);
    if (rc != 0)
        return defer(status, "4.3.0 vuser=%s (owner of the virtual mailboxes): %s", name,
                     rc > 0 ? "no such account" : strerror(errno));
    if (vu->uid == 0) {
        privs_free(vu);
        return defer(status, "4.3.0 vuser=%s is root: set vuser= to an unprivileged "
                     "account%s", name, "");
    }
    return DELIV_OK;
}

/* Does user still exist in domain (its passwd file, read as user=)? */
static enum deliv_result user_exists(const struct config *c, const char *domain,
                                     const char *user, const char *rcpt, char **status)
{
    struct vlookup v;
    char *why = NULL;
    if (vlookup_name(c, domain, user, &v, &why) < 0) {
        *status = xasprintf("4.3.0 %s", why);
        free(why);
        return DELIV_DEFER;
    }
    int found = v.user;
    vlookup_free(&v);
    if (found)
        return DELIV_OK;
    *status = xasprintf("5.1.1 <%s>: no such user %s@%s here", rcpt ? rcpt : user, user,
                        domain);
    return DELIV_FAIL;
}

enum deliv_result vmbox_prepare(const struct config *c, const char *box, const char *rcpt,
                                struct vmbox *v, char **status)
{
    memset(v, 0, sizeof *v);
    *status = NULL;
    const char *at = strrchr(box, '@');
    char *user = xstrndup(box, at ? (size_t)(at - box) : 0);
    char *domain = at ? vdomain_name(c, at + 1) : NULL;
    enum deliv_result r = DELIV_OK;
    struct stat st;
    str_lower(user);
    if (!at || !vdomain_user_ok(user)) {
        *status = xasprintf("5.1.3 %s is not a valid mailbox name", box);
        r = DELIV_FAIL;
    } else if (!domain) {
        r = defer(status, "4.3.0 %s is not an active virtual domain now (see %s/domains.cf)",
                  at + 1, c->vpath);
    } else if ((r = user_exists(c, domain, user, rcpt, status)) == DELIV_OK &&
               (r = vuser_of(c, &v->owner, status)) == DELIV_OK) {
        if (lstat(c->vspool, &st) < 0)
            r = defer(status, "4.3.0 virtual mail spool %s: %s (create it, owned by vuser=)",
                      c->vspool, strerror(errno));
        else
            r = check_dir(c->vspool, &st, &v->owner, status);
        v->dir = xasprintf("%s/%s", c->vspool, domain);
        if (r == DELIV_OK)
            r = domain_dir(v->dir, &v->owner, status);
        v->path = xasprintf("%s/%s", v->dir, user);
        if (r != DELIV_OK)
            vmbox_free(v);
    }
    free(user);
    free(domain);
    return r;
}
