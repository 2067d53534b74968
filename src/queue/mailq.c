/* mailq.c - listing the queue (mailq, -bp).
 *
 * Reads queue files without locking them, each with one open that also asks
 * whether a runner holds it (spool_peek_listed).  Every string shown came from the
 * network or a user, so it is printed through str_sanitize. */
#include "compat.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>

#include "date.h"
#include "envelope.h"
#include "log.h"
#include "mailq.h"
#include "spool.h"
#include "util.h"

static void put_clean(FILE *out, const char *s)
{
    char *c = str_sanitize(s, strlen(s));
    fputs(c, out);
    free(c);
}

/* One message: its line, a line saying what state it is in (NULL: none,
 * an ordinary queued message), then its pending recipients. */
static void print_entry(FILE *out, const char *qid, int locked, const struct envelope *e,
                        long long size, const char *state)
{
    struct buf when;
    buf_init(&when);
    if (date_asctime(e->ctime, &when) < 0) {
        buf_reset(&when);
        buf_adds(&when, "?");
    }
    fprintf(out, "%-18s%c %9lld  %s  ", qid, locked ? '*' : ' ', size, when.s);
    buf_free(&when);
    if (e->sender && *e->sender)
        put_clean(out, e->sender);
    else
        fputs("<>", out);
    fputc('\n', out);
    if (state)
        fprintf(out, "        (%s)\n", state);
    for (size_t i = 0; i < e->nrcpts; i++) {
        const struct rcpt *r = &e->rcpts[i];
        if (r->state != RS_PENDING)
            continue;
        fputs("        ", out);
        put_clean(out, r->addr);
        if (r->status) {
            fputs("  (", out);
            put_clean(out, r->status);
            fputc(')', out);
        }
        fputc('\n', out);
    }
}

/* Messages the original postoffice left (converted by the next queue run,
 * not here: mailq changes nothing).  How many were listed. */
static size_t print_original(const struct config *c, FILE *out)
{
    struct strlist ids;
    sl_init(&ids);
    if (spool_list_original(c->queuedir, &ids) < 0) {
        sl_free(&ids);
        return 0;
    }
    size_t shown = 0;
    for (size_t i = 0; i < ids.n; i++) {
        struct envelope e;
        long long size;
        const char *why;
        env_init(&e);
        if (spool_peek_original(c->queuedir, ids.v[i], &e, &size, &why) == 0) {
            print_entry(out, ids.v[i], 0, &e, size,
                        "original postoffice format, converted at next run");
            shown++;
        } else if (errno != ENOENT) { /* ENOENT: converted meanwhile */
            fprintf(out, "%-18s  (original postoffice format, unreadable: %s; set aside at "
                    "next run)\n", ids.v[i], errno == EINVAL && why ? why : strerror(errno));
            shown++;
        }
        env_free(&e);
    }
    sl_free(&ids);
    return shown;
}

/* Files the queue runner set aside (never delivered; the admin's to look
 * at).  How many. */
static size_t print_aside(const struct config *c, FILE *out)
{
    struct strlist names;
    sl_init(&names);
    if (spool_list_aside(c->queuedir, &names) < 0)
        names.n = 0;
    for (size_t i = 0; i < names.n; i++) {
        fputs("set aside: corrupt queue file ", out);
        put_clean(out, names.v[i]);
        fputs(", see postoffice-queue(5)\n", out);
    }
    size_t n = names.n;
    sl_free(&names);
    return n;
}

int mailq_print(const struct config *c, FILE *out)
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
    size_t shown = 0;
    for (size_t i = 0; i < qids.n; i++) {
        struct envelope e;
        long long size = 0;
        int locked;
        env_init(&e);
        if (spool_peek_listed(c->queuedir, qids.v[i], &e, &size, &locked) == 0) {
            print_entry(out, qids.v[i], locked, &e, size, NULL);
            shown++;
        } else if (errno == EINVAL) {
            /* torn or corrupt: not a message (yet, or any more); the next
             * queue run sets it aside, and it is listed from then on */
        } else if (errno != ENOENT) { /* ENOENT: delivered and removed meanwhile */
            fprintf(out, "%-18s  (unreadable control file: %s)\n", qids.v[i],
                    errno == EINVAL ? "corrupt" : strerror(errno));
            shown++;
        }
        env_free(&e);
    }
    shown += print_original(c, out);
    size_t aside = print_aside(c, out);
    if (shown == 0 && aside == 0)
        fputs("Mail queue is empty\n", out);
    else if (aside == 0)
        fprintf(out, "%zu request%s\n", shown, shown == 1 ? "" : "s");
    else
        fprintf(out, "%zu request%s, %zu set aside\n", shown, shown == 1 ? "" : "s", aside);
    sl_free(&qids);
    return 0;
}
