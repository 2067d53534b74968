/* queue_tools.c - -M, -Mrm, -qI/-qR/-qS (queue_tools.h).  Runs as root or
 * the queue owner. */
#include "compat.h"

#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sysexits.h>
#include <unistd.h>

#include "envelope.h"
#include "log.h"
#include "logfmt.h"
#include "queue_run.h"
#include "quarantine.h"
#include "queue_tools.h"
#include "spool.h"

/* Root, or the account the queue belongs to. */
static int may_change_queue(const struct config *c)
{
    if (geteuid() == 0)
        return 1;
    struct passwd *pw = getpwnam(c->user);
    if (pw && pw->pw_uid == geteuid())
        return 1;
    say("only root or %s (user=) may change the queue", c->user);
    return 0;
}

static int check_ids(const struct strlist *qids)
{
    if (qids->n == 0) {
        say("name the messages: their queue ids, as mailq shows them");
        return EX_USAGE;
    }
    for (size_t i = 0; i < qids->n; i++) {
        if (!spool_valid_qid(qids->v[i])) {
            say("%s is not a queue id (mailq shows them)", qids->v[i]);
            return EX_USAGE;
        }
    }
    return 0;
}

int qtool_deliver(const struct config *c, const struct strlist *qids, int verbose)
{
    int rc = check_ids(qids);
    if (rc)
        return rc;
    if (!may_change_queue(c))
        return EX_NOPERM;
    struct strlist present;
    sl_init(&present);
    for (size_t i = 0; i < qids->n; i++) {
        if (spool_locked(c->queuedir, qids->v[i]) < 0) {
            say("%s: no such message in the queue", qids->v[i]);
            rc = EX_NOINPUT;
        } else {
            sl_add(&present, qids->v[i]);
        }
    }
    struct runq_opts o = {.force = 1, .verbose = verbose};
    int r = present.n ? runq_messages(c, &present, &o) : 0;
    sl_free(&present);
    return rc ? rc : r;
}

static int contains_ci(const char *hay, const char *needle)
{
    size_t n = strlen(needle);
    for (; hay && *hay; hay++)
        if (!strncasecmp(hay, needle, n))
            return 1;
    return n == 0;
}

static int matches(const struct envelope *e, enum qsel_kind kind, const char *substr)
{
    if (kind == QSEL_ID)
        return contains_ci(e->qid, substr);
    if (kind == QSEL_SENDER)
        return contains_ci(e->sender, substr);
    for (size_t i = 0; i < e->nrcpts; i++)
        if (e->rcpts[i].state == RS_PENDING && contains_ci(e->rcpts[i].addr, substr))
            return 1;
    return 0;
}

int qtool_deliver_matching(const struct config *c, enum qsel_kind kind, const char *substr,
                           int verbose)
{
    if (!may_change_queue(c))
        return EX_NOPERM;
    struct strlist all, chosen;
    sl_init(&all);
    sl_init(&chosen);
    if (spool_list(c->queuedir, &all) < 0) {
        say("cannot read the queue %s: %s", c->queuedir, strerror(errno));
        sl_free(&all);
        return EX_NOPERM;
    }
    for (size_t i = 0; i < all.n; i++) {
        struct envelope e;
        env_init(&e);
        long long size;
        if (spool_peek(c->queuedir, all.v[i], &e, &size) == 0 && matches(&e, kind, substr))
            sl_add(&chosen, all.v[i]);
        env_free(&e);
    }
    if (verbose)
        fprintf(stderr, "%zu of %zu messages match\n", chosen.n, all.n);
    struct runq_opts o = {.force = 1, .verbose = verbose};
    int rc = chosen.n ? runq_messages(c, &chosen, &o) : 0;
    sl_free(&all);
    sl_free(&chosen);
    return rc;
}

static const char *who_am_i(void)
{
    struct passwd *pw = getpwuid(getuid());
    return pw ? pw->pw_name : "?";
}

int qtool_remove(const struct config *c, const struct strlist *qids)
{
    int rc = check_ids(qids);
    if (rc)
        return rc;
    if (!may_change_queue(c))
        return EX_NOPERM;
    for (size_t i = 0; i < qids->n; i++) {
        const char *qid = qids->v[i];
        struct qmsg *m = NULL;
        int r = spool_open(c->queuedir, qid, &m);
        if (r == 1) {
            say("%s: being delivered now; try again when it is done", qid);
            rc = rc ? rc : EX_TEMPFAIL;
            continue;
        }
        if (r < 0) {
            say("%s: %s", qid, errno == ENOENT ? "no such message in the queue" : strerror(errno));
            rc = rc ? rc : (errno == ENOENT ? EX_NOINPUT : EX_IOERR);
            continue;
        }
        const struct envelope *e = spool_env(m);
        size_t left = 0;
        for (size_t j = 0; j < e->nrcpts; j++)
            left += e->rcpts[j].state == RS_PENDING;
        if (spool_remove(m) < 0) {
            say("%s: cannot remove it: %s", qid, strerror(errno));
            rc = rc ? rc : EX_IOERR;
        } else {
            fsync_dir(c->queuedir); /* an admin's removal must not come back */
            struct logfmt l; /* spool_remove logged "removed"; this says who and why */
            lf_begin(&l, qid, "deleted");
            lf_str(&l, "by", who_am_i());
            lf_num(&l, "uid", (long long)getuid());
            lf_addr(&l, "from", e->sender);
            lf_num(&l, "undelivered", (long long)left);
            lf_log(&l, LOG_NOTICE);
            printf("%s: removed\n", qid);
        }
        spool_close(m);
    }
    return rc;
}

int qtool_hold(const struct config *c, const struct strlist *qids, int hold)
{
    int rc = check_ids(qids);
    if (rc)
        return rc;
    if (!may_change_queue(c))
        return EX_NOPERM;
    for (size_t i = 0; i < qids->n; i++) {
        const char *qid = qids->v[i];
        char *why = xasprintf("held by %s (uid %ld)", who_am_i(), (long)getuid());
        int r = hold ? quar_hold(c, qid, why) : quar_release(c, qid);
        free(why);
        if (r == 0) {
            struct logfmt l;
            lf_begin(&l, qid, hold ? "held" : "released");
            lf_str(&l, "by", who_am_i());
            lf_num(&l, "uid", (long long)getuid());
            lf_log(&l, LOG_NOTICE);
            printf("%s: %s\n", qid, hold ? "held" : "released");
        } else if (r == 1) {
            say("%s: %s", qid, hold ? "held already" : "not held; nothing to release");
        } else {
            say("%s: %s", qid, errno == ENOENT ? "no such message in the queue"
                               : errno == EBUSY ? "being delivered now; try again when it is done"
                                                : strerror(errno));
            rc = rc ? rc : errno == ENOENT ? EX_NOINPUT : EX_TEMPFAIL;
        }
    }
    return rc;
}
