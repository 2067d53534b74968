/* preflight.c - the daemon's start-up checks (preflight.h).  Runs as root. */
#include "compat.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <unistd.h>

#include "log.h"
#include "preflight.h"
#include "privs.h"
#include "spool.h"
#include "util.h"

/* The queue: created when missing (its parent must exist: we do not invent
 * directory trees), and then it must be user='s. */
static int check_queue(const struct config *c, const struct ident *id)
{
    struct stat st;
    if (stat(c->queuedir, &st) < 0 && errno == ENOENT) {
        if (spool_setup(c->queuedir, id->uid, id->gid) < 0) {
            say("cannot create the queue directory %s: %s (queuedir= in %s)", c->queuedir,
                strerror(errno), c->confpath);
            return EX_CANTCREAT;
        }
        log_notice("created the queue directory %s for %s", c->queuedir, id->name);
        return 0;
    }
    if (stat(c->queuedir, &st) < 0 || !S_ISDIR(st.st_mode)) {
        say("the queue %s is not a directory (queuedir= in %s)", c->queuedir, c->confpath);
        return EX_OSFILE;
    }
    if (st.st_uid != id->uid) {
        say("the queue %s belongs to uid %ld, not to %s (user=): chown -R %s %s",
            c->queuedir, (long)st.st_uid, id->name, id->name, c->queuedir);
        return EX_OSFILE;
    }
    return 0;
}

static int check_spool(const struct config *c)
{
    struct stat st;
    if (stat(c->mailspool, &st) < 0 || !S_ISDIR(st.st_mode)) {
        say("the mail spool %s is %s (mailspool= in %s)", c->mailspool,
            errno == ENOENT ? "missing" : "not a directory", c->confpath);
        return EX_OSFILE;
    }
    return 0;
}

static void check_aliases(const struct config *c)
{
    struct stat text, db;
    char *dbp = xasprintf("%s.db", c->aliases);
    if (stat(c->aliases, &text) == 0) {
        if (stat(dbp, &db) < 0)
            log_warn("%s has no database %s yet: run newaliases", c->aliases, dbp);
        else if (db.st_mtime < text.st_mtime)
            log_warn("%s is newer than its database %s: run newaliases", c->aliases, dbp);
    }
    free(dbp);
}

int preflight_daemon(const struct config *c)
{
    struct ident id;
    memset(&id, 0, sizeof id);
    if (geteuid() == 0) {
        if (privs_lookup(c->user, &id) != 0) {
            say("the account %s (user= in %s) does not exist: create it or set user=",
                c->user, c->confpath);
            return EX_NOUSER;
        }
    } else {
        id.uid = getuid();
        id.gid = getgid();
        id.name = xstrdup(c->user);
    }
    int rc = check_queue(c, &id);
    if (!rc)
        rc = check_spool(c);
    if (!rc)
        check_aliases(c);
    privs_free(&id);
    return rc;
}
