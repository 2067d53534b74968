/* greylist.c - greylisting in the SMTP session (greylist(7)).
 * grey_daemon_setup runs in the master as root (it creates the database file
 * for user=); everything else runs in the session as user=. */
#include "compat.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "address.h"
#include "dns.h"
#include "greylist.h"
#include "greylist_db.h"
#include "log.h"
#include "privs.h"

/* How long a session waits for another process's lock before letting the
 * mail through: sessions hold it for well under a millisecond, authexpire
 * for one pass over the file. */
#define GREY_LOCK_WAIT_MS 2000

/* A passing entry's last-seen time is rewritten at most this often (seconds):
 * every rewrite flushes the file (gdbm syncs a writer's changes at close). */
#define GREY_SEEN_STEP 600

/* "The database is failing": logged on the change only.  The master maps a
 * shared page before it forks the session children, so the flag (and the one
 * log line) is daemon-wide; -bs sessions use the process's own. */
static atomic_int own_flag;
static atomic_int *failing = &own_flag;

static void db_failed(const char *err)
{
    if (!atomic_exchange(failing, 1))
        log_warn("greylist: %s: mail is accepted without greylisting until the database "
                 "can be used", err);
}

static void db_worked(const char *path)
{
    if (atomic_load(failing) && atomic_exchange(failing, 0))
        log_notice("greylist: the database %s.db works again", path);
}

int grey_multiplier(const struct client *cl, const char *sender)
{
    int m = 1;
    if (!cl->ptr && cl->ptr_status != DNS_TEMPFAIL)
        m += 1; /* no reverse DNS name (a lookup that failed is no proof) */
    if (!sender[0])
        m += 3; /* the null sender: bounces, and spam dressed as bounces */
    return m;
}

void grey_mail(struct grey_txn *g, const struct config *c, const struct client *cl,
               int submission, const char *auth_user, const char *sender)
{
    grey_reset(g);
    if (!c->greylist || cl->relay_ok || cl->trusted || cl->local || submission || auth_user ||
        !cl->ip[0])
        return;
    g->wait = c->delay * grey_multiplier(cl, sender);
    if (!sender[0]) {
        g->key = xasprintf("<>@[%s]", cl->ip);
        return;
    }
    if (c->greylist_from) {
        g->key = xstrdup(sender);
        return;
    }
    char *local = NULL, *domain = NULL;
    addr_split(sender, &local, &domain);
    g->key = xasprintf("%s@[%s]", local ? local : sender, cl->ip);
    if (domain)
        g->full = xstrdup(sender);
    free(local);
    free(domain);
}

static int wait_more(struct grey_txn *g, long secs)
{
    g->why = xasprintf("4.7.1 greylisted: mail from a new sender is accepted here after a "
                       "wait; try again in %ld seconds", secs);
    return 451;
}

/* The verdict for an entry that exists (updated: last seen now). */
static int judge(struct grey_txn *g, struct grey_db *db, const char *key, struct grey_rec *r,
                 time_t now)
{
    r->last = now;
    if (grey_rec_put(db->db, key, r) < 0)
        log_warn("greylist: cannot update %s: %s", key, gdbm_strerror(gdbm_errno));
    if (r->forbidden) {
        g->why = xstrdup("4.7.1 mail from this sender is not accepted here now; try again "
                         "later");
        return 451;
    }
    if (r->allowed > now)
        return wait_more(g, (long)(r->allowed - now));
    return 0;
}

/* The usual case, a known sender whose wait is over, read under a shared
 * lock: no write, so no flush of the file.  1 if that settles it (mail
 * passes), 0 if the entry must be made or updated, -1 if the database cannot
 * be used. */
static int known_and_fresh(struct grey_txn *g, const struct config *c, time_t now)
{
    struct grey_db db;
    char *err = NULL;
    if (grey_db_open(&db, c->greylist_db, 0, GREY_LOCK_WAIT_MS, &err) < 0) {
        db_failed(err);
        free(err);
        return -1;
    }
    struct grey_rec r;
    int found = (g->full && grey_rec_get(db.db, g->full, &r) == 1) ||
                grey_rec_get(db.db, g->key, &r) == 1;
    grey_db_close(&db);
    /* last seen is kept to GREY_SEEN_STEP: authexpire's ages are longer */
    return found && !r.forbidden && r.allowed <= now && r.last >= r.allowed &&
           now - r.last < GREY_SEEN_STEP;
}

/* Look the transaction up and record it: 0 or 451. */
static int check(struct grey_txn *g, const struct config *c)
{
    time_t now = time(NULL);
    int fresh = known_and_fresh(g, c, now);
    if (fresh) {
        if (fresh > 0)
            db_worked(c->greylist_db);
        return 0; /* passes, or fail open */
    }
    struct grey_db db;
    char *err = NULL;
    if (grey_db_open(&db, c->greylist_db, 1, GREY_LOCK_WAIT_MS, &err) < 0) {
        db_failed(err);
        free(err);
        return 0;
    }
    struct grey_rec r;
    int code = 0;
    /* an entry for the whole address (authexpire -a/-d) wins over the
     * automatic one for its local part and client */
    if (g->full && grey_rec_get(db.db, g->full, &r) == 1) {
        code = judge(g, &db, g->full, &r, now);
    } else if (grey_rec_get(db.db, g->key, &r) == 1) {
        code = judge(g, &db, g->key, &r, now);
    } else {
        r = (struct grey_rec){ .allowed = now + g->wait, .last = now };
        if (grey_rec_put(db.db, g->key, &r) < 0) {
            /* refusing without an entry would refuse forever */
            char *e = xasprintf("cannot store %s: %s", g->key, gdbm_strerror(gdbm_errno));
            grey_db_close(&db);
            db_failed(e);
            free(e);
            return 0;
        }
        log_info("greylist: new entry %s, mail accepted after %ld seconds", g->key, g->wait);
        code = wait_more(g, g->wait);
    }
    grey_db_close(&db);
    db_worked(c->greylist_db);
    return code;
}

int grey_rcpt(struct grey_txn *g, const struct config *c, struct buf *why)
{
    if (!g->key)
        return 0;
    if (!g->decided) {
        g->decided = 1;
        g->code = check(g, c);
    }
    if (g->code) {
        buf_reset(why);
        buf_adds(why, g->why);
    }
    return g->code;
}

void grey_reset(struct grey_txn *g)
{
    free(g->key);
    free(g->full);
    free(g->why);
    memset(g, 0, sizeof *g);
}

void grey_daemon_setup(const struct config *c)
{
    if (!c->greylist)
        return;
    if (failing == &own_flag) {
        void *p = mmap(NULL, sizeof *failing, PROT_READ | PROT_WRITE,
                       MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (p != MAP_FAILED) {
            failing = p;
            atomic_init(failing, 0);
        }
    }
    struct ident id;
    memset(&id, 0, sizeof id);
    uid_t uid = getuid();
    gid_t gid = getgid();
    if (uid == 0) {
        if (privs_lookup(c->user, &id) != 0) {
            log_err("greylist: no account %s (user=) to own the database", c->user);
            return;
        }
        uid = id.uid;
        gid = id.gid;
        privs_free(&id);
    }
    char *err = NULL;
    if (grey_db_prepare(c->greylist_db, uid, gid, &err) < 0) {
        db_failed(err);
        free(err);
    }
}
