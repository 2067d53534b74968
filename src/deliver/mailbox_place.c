/* mailbox_place.c - where a local account's mail goes (mailbox_place.h).
 *
 * Runs as root (the delivery process): it only expands names, lstat()s
 * directories and, for a maildir in a root-owned directory, makes the one
 * missing directory and gives it to its owner. */
#include "compat.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mailbox_place.h"
#include "util.h"

int mbplace_root_chain(const char *dir, char **real)
{
    *real = realpath(dir, NULL);
    if (*real == NULL)
        return 0;
    struct buf b;
    buf_init(&b);
    int ok = 1;
    const char *p = *real;
    do { /* "/", then each prefix */
        const char *next = strchr(p + 1, '/');
        size_t n = next ? (size_t)(next - *real) : strlen(*real);
        buf_reset(&b);
        buf_add(&b, *real, n ? n : 1);
        struct stat st;
        if (lstat(b.s, &st) < 0 || !S_ISDIR(st.st_mode) || st.st_uid != 0)
            ok = 0;
        p = next;
    } while (ok && p != NULL && p[1] != '\0');
    buf_free(&b);
    if (!ok) {
        free(*real);
        *real = NULL;
    }
    return ok;
}

enum deliv_result mbplace_find(const struct config *c, const struct ident *id,
                               struct mbplace *p, char **status)
{
    struct mailbox_spec ms;
    char *why = NULL;
    memset(p, 0, sizeof *p);
    if (mailbox_spec_parse(c->mailbox, &ms, &why) < 0) { /* conf.c checked it */
        *status = xasprintf("4.3.0 mailbox=%s", why);
        free(why);
        return DELIV_DEFER;
    }
    p->kind = ms.kind;
    if (ms.kind == MB_LMTP) {
        mailbox_spec_free(&ms);
        return DELIV_OK;
    }
    if (ms.kind == MB_SPOOL) { /* as before: the admin's spool, local.c checks it */
        mailbox_spec_free(&ms);
        p->path = xasprintf("%s/%s", c->mailspool, id->name);
        p->dir = xstrdup(c->mailspool);
        p->root_owned = 1;
        return DELIV_OK;
    }
    p->path = mailbox_spec_expand(ms.template, id->name, c->hostname, id->home, &why);
    mailbox_spec_free(&ms);
    if (p->path == NULL) {
        *status = xasprintf("4.3.0 mailbox=%s", why);
        free(why);
        return DELIV_DEFER;
    }
    size_t n = strlen(p->path);
    while (n > 1 && p->path[n - 1] == '/')
        p->path[--n] = '\0';
    char *slash = strrchr(p->path, '/');
    char *dir = xstrndup(p->path, slash > p->path ? (size_t)(slash - p->path) : 1);
    char *real;
    p->root_owned = mbplace_root_chain(dir, &real);
    if (p->root_owned) {
        free(dir);
        p->dir = real;
        char *path = xasprintf("%s%s%s", real, strcmp(real, "/") ? "/" : "", slash + 1);
        free(p->path);
        p->path = path;
    } else {
        p->dir = dir;
    }
    return DELIV_OK;
}

enum deliv_result mbplace_make_maildir(const struct mbplace *p, uid_t uid, gid_t gid,
                                       char **status)
{
    const char *name = strrchr(p->path, '/') + 1;
    int dfd = open(p->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) {
        *status = xasprintf("4.3.0 cannot open %s: %s", p->dir, strerror(errno));
        return DELIV_DEFER;
    }
    enum deliv_result r = DELIV_OK;
    if (mkdirat(dfd, name, 0700) == 0) {
        /* ours, just made: give it away through a descriptor, never by name */
        int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) < 0 || st.st_uid != 0 || fchown(fd, uid, gid) < 0) {
            *status = xasprintf("4.3.0 cannot give %s to uid %lu: %s", p->path,
                                (unsigned long)uid, strerror(errno));
            r = DELIV_DEFER;
        }
        if (fd >= 0)
            close(fd);
    } else if (errno != EEXIST) {
        *status = xasprintf("4.3.0 cannot create %s: %s", p->path, strerror(errno));
        r = DELIV_DEFER;
    }
    close(dfd);
    return r;
}

void mbplace_free(struct mbplace *p)
{
    free(p->path);
    free(p->dir);
    memset(p, 0, sizeof *p);
}
