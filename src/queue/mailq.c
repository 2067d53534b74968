/* mailq.c - listing the queue (mailq, -bp).
 *
 * Reads queue files without locking them, each with one open that also asks
 * whether a runner holds it (spool_peek_listed).  Every string shown came from the
 * network or a user, so it is printed through str_sanitize.  The maildrop's
 * files are users' files: only their names and lstat are looked at (their
 * owner, size and time), never their content (mailq may run as root). */
#include "compat.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <time.h>

#include "date.h"
#include "envelope.h"
#include "log.h"
#include "mailq.h"
#include "queue_shape.h"
#include "spool.h"
#include "util.h"

struct mq {
    FILE *out;
    time_t now;
    int titled;          /* the title line is out */
    long long bytes;     /* sizes of the requests listed */
    size_t shown;        /* requests listed */
    struct shape *shape; /* MAILQ_SHAPE, else NULL */
    struct buf when;     /* scratch for dates */
};

static void put_clean(FILE *out, const char *s)
{
    char *c = str_sanitize(s, strlen(s));
    fputs(c, out);
    free(c);
}

/* The column titles, before the first line of the listing (Postfix's). */
static void title(struct mq *q)
{
    if (q->titled)
        return;
    q->titled = 1;
    fprintf(q->out, "%-19s %9s  %s  %s\n", "-Queue ID-", "--Size--",
            "------Arrival Time------", "-Sender/Recipient-------");
}

static const char *when(struct mq *q, time_t t)
{
    buf_reset(&q->when);
    if (date_asctime(t, &q->when) < 0) {
        buf_reset(&q->when);
        buf_adds(&q->when, "?");
    }
    return q->when.s;
}

/* A request's first line: id, mark, size, arrival, sender (or owner). */
static void put_head(struct mq *q, const char *qid, char mark, long long size, time_t t,
                     const char *who)
{
    title(q);
    fprintf(q->out, "%-18s%c %9lld  %s  ", qid, mark, size, when(q, t));
    if (who && *who)
        put_clean(q->out, who);
    else
        fputs("<>", q->out);
    fputc('\n', q->out);
    q->bytes += size;
    q->shown++;
}

/* How often it was tried and when it is tried next. */
static void put_attempts(struct mq *q, const struct envelope *e)
{
    fprintf(q->out, "        (%d attempt%s; ", e->attempts, e->attempts == 1 ? "" : "s");
    if (e->flags & ENV_QUARANTINE)
        fputs("none while held)\n", q->out);
    else if (e->next_try > q->now)
        fprintf(q->out, "next attempt %s)\n", when(q, e->next_try));
    else
        fputs("next attempt at the next queue run)\n", q->out);
}

/* One message: its line ('!' held or quarantined, '*' being delivered now),
 * a line saying what state it is in (NULL: none, an ordinary queued message),
 * its attempts, then its pending recipients with the last result for each. */
static void print_entry(struct mq *q, const char *qid, int locked, const struct envelope *e,
                        long long size, const char *state)
{
    char mark = (e->flags & ENV_QUARANTINE) ? '!' : locked ? '*' : ' ';
    put_head(q, qid, mark, size, e->ctime, e->sender);
    if (state)
        fprintf(q->out, "        (%s)\n", state);
    put_attempts(q, e);
    for (size_t i = 0; i < e->nrcpts; i++) {
        const struct rcpt *r = &e->rcpts[i];
        if (r->state != RS_PENDING)
            continue;
        fputs("        ", q->out);
        put_clean(q->out, r->addr);
        if (r->status) {
            fputs("  (", q->out);
            put_clean(q->out, r->status);
            fputc(')', q->out);
        }
        fputc('\n', q->out);
    }
    if (q->shape)
        shape_add(q->shape, e);
}

/* A request listed whose age and recipients are unknown. */
static void unreadable(struct mq *q)
{
    q->shown++;
    if (q->shape)
        shape_add_other(q->shape, "(unreadable)", q->now);
}

/* Messages the original postoffice left (converted by the next queue run,
 * not here: mailq changes nothing). */
static void print_original(struct mq *q, const struct config *c)
{
    struct strlist ids;
    sl_init(&ids);
    if (spool_list_original(c->queuedir, &ids) < 0) {
        sl_free(&ids);
        return;
    }
    for (size_t i = 0; i < ids.n; i++) {
        struct envelope e;
        long long size;
        const char *why;
        env_init(&e);
        if (spool_peek_original(c->queuedir, ids.v[i], &e, &size, &why) == 0) {
            print_entry(q, ids.v[i], 0, &e, size,
                        "original postoffice format, converted at next run");
        } else if (errno != ENOENT) { /* ENOENT: converted meanwhile */
            title(q);
            fprintf(q->out, "%-18s  (original postoffice format, unreadable: %s; set aside at "
                    "next run)\n", ids.v[i], errno == EINVAL && why ? why : strerror(errno));
            unreadable(q);
        }
        env_free(&e);
    }
    sl_free(&ids);
}

/* Files the queue runner set aside (never delivered; the admin's to look
 * at).  How many. */
static size_t print_aside(struct mq *q, const struct config *c)
{
    struct strlist names;
    sl_init(&names);
    if (spool_list_aside(c->queuedir, &names) < 0)
        names.n = 0;
    for (size_t i = 0; i < names.n; i++) {
        title(q);
        fputs("set aside: corrupt queue file ", q->out);
        put_clean(q->out, names.v[i]);
        fputs(", see postoffice-queue(5)\n", q->out);
    }
    size_t n = names.n;
    sl_free(&names);
    return n;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* A maildrop file's owner: the login (as pickup will take it), or the uid. */
static const char *owner_name(uid_t uid, uid_t *last, char **name)
{
    if (*name && *last == uid)
        return *name;
    free(*name);
    struct passwd *pw = getpwuid(uid);
    *name = pw ? xstrdup(pw->pw_name) : xasprintf("uid %lu", (unsigned long)uid);
    *last = uid;
    return *name;
}

/* Local users' submissions the queue runner has not picked up yet (only
 * committed ones, qf<id>: a tf<id> is still being written).  Their size is
 * the file's, envelope included. */
static void print_maildrop(struct mq *q, const struct config *c)
{
    char *dropdir = xasprintf("%s/maildrop", c->queuedir);
    DIR *dir = opendir(dropdir);
    free(dropdir);
    if (!dir) {
        if (errno != ENOENT) {
            title(q);
            fprintf(q->out, "(the maildrop cannot be read: %s; submissions waiting for "
                    "pickup are not shown)\n", strerror(errno));
        }
        return;
    }
    struct strlist names;
    sl_init(&names);
    struct dirent *de;
    while ((de = readdir(dir)) != NULL)
        if (strncmp(de->d_name, "qf", 2) == 0 && spool_valid_qid(de->d_name + 2))
            sl_add(&names, de->d_name);
    if (names.n)
        qsort(names.v, names.n, sizeof *names.v, cmp_str);
    uid_t last = 0;
    char *name = NULL;
    for (size_t i = 0; i < names.n; i++) {
        struct stat st;
        if (fstatat(dirfd(dir), names.v[i], &st, AT_SYMLINK_NOFOLLOW) < 0 ||
            !S_ISREG(st.st_mode))
            continue; /* picked up meanwhile, or not a submission (pickup refuses it) */
        put_head(q, names.v[i] + 2, ' ', (long long)st.st_size, st.st_mtime,
                 owner_name(st.st_uid, &last, &name));
        fputs("        (waiting for pickup from the maildrop)\n", q->out);
        if (q->shape)
            shape_add_other(q->shape, "(maildrop)", st.st_mtime);
    }
    free(name);
    sl_free(&names);
    closedir(dir);
}

/* The queue proper: qf<qid> files, oldest first. */
static void print_queue(struct mq *q, const struct config *c, const struct strlist *qids)
{
    for (size_t i = 0; i < qids->n; i++) {
        struct envelope e;
        long long size = 0;
        int locked;
        env_init(&e);
        if (spool_peek_listed(c->queuedir, qids->v[i], &e, &size, &locked) == 0) {
            char *st = NULL;
            if ((e.flags & ENV_QUARANTINE) && e.quarantine &&
                !strncmp(e.quarantine, "held by ", 8)) /* -Mf (quarantine.h) */
                st = xasprintf("%s; release with postoffice -Mt %s", e.quarantine, qids->v[i]);
            else if (e.flags & ENV_QUARANTINE)
                st = xasprintf("quarantined: %s; release with postoffice -bQ %s",
                               e.quarantine ? e.quarantine : "by a mail filter", qids->v[i]);
            print_entry(q, qids->v[i], locked, &e, size, st);
            free(st);
        } else if (errno == EINVAL) {
            /* torn or corrupt: not a message (yet, or any more); the next
             * queue run sets it aside, and it is listed from then on */
        } else if (errno != ENOENT) { /* ENOENT: delivered and removed meanwhile */
            title(q);
            fprintf(q->out, "%-18s  (unreadable control file: %s)\n", qids->v[i],
                    strerror(errno));
            unreadable(q);
        }
        env_free(&e);
    }
}

static void print_total(struct mq *q, size_t aside)
{
    if (q->shown == 0 && aside == 0) {
        fputs("Mail queue is empty\n", q->out);
        return;
    }
    fprintf(q->out, "-- %lld Kbytes in %zu request%s", (q->bytes + 1023) / 1024, q->shown,
            q->shown == 1 ? "" : "s");
    if (aside)
        fprintf(q->out, ", %zu set aside", aside);
    fputs(".\n", q->out);
}

int mailq_print(const struct config *c, FILE *out, time_t now, int flags)
{
    struct strlist qids;
    sl_init(&qids);
    if (spool_list_names(c->queuedir, &qids) < 0) {
        int e = errno;
        if (e == EACCES || e == EPERM) {
            say("cannot read the queue directory %s: mailq must be run by root or the "
                "queue owner (%s)", c->queuedir, c->user ? c->user : "user=");
            return EX_NOPERM;
        }
        say("cannot read the queue directory %s: %s (check queuedir=)", c->queuedir,
            strerror(e));
        return EX_OSFILE;
    }
    struct mq q = {.out = out, .now = now};
    buf_init(&q.when);
    if (flags & MAILQ_SHAPE)
        q.shape = shape_new(now);
    print_queue(&q, c, &qids);
    sl_free(&qids);
    print_maildrop(&q, c);
    print_original(&q, c);
    print_total(&q, print_aside(&q, c));
    if (q.shape) {
        fputc('\n', out);
        shape_print(q.shape, out);
        shape_free(q.shape);
    }
    buf_free(&q.when);
    return 0;
}
