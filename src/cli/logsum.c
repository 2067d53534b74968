/* logsum.c - postoffice -bS: the event log summarised (logsum.h).  Runs as
 * the invoking user; reads only the files named (or stdin). */
#include "compat.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "log.h"
#include "logfmt.h"
#include "logsum.h"
#include "syslog_prefix.h"
#include "util.h"

/* ---- counting tables: string -> counters ---- */

struct entry {
    char *key;
    long long n, bytes;
};

struct table {
    struct entry *v;
    size_t cap, used;
};

static uint64_t hash(const char *k)
{
    return fnv1a64(14695981039346656037ULL, k, strlen(k));
}

static void t_grow(struct table *t)
{
    struct table g = {xcalloc(t->cap ? t->cap * 2 : 64, sizeof *g.v), t->cap ? t->cap * 2 : 64,
                      t->used};
    for (size_t i = 0; i < t->cap; i++) {
        if (!t->v[i].key)
            continue;
        size_t j = hash(t->v[i].key) & (g.cap - 1);
        while (g.v[j].key)
            j = (j + 1) & (g.cap - 1);
        g.v[j] = t->v[i];
    }
    free(t->v);
    *t = g;
}

/* The entry for k, made when missing. */
static struct entry *t_get(struct table *t, const char *k)
{
    if (2 * (t->used + 1) > t->cap)
        t_grow(t);
    size_t j = hash(k) & (t->cap - 1);
    while (t->v[j].key && strcmp(t->v[j].key, k))
        j = (j + 1) & (t->cap - 1);
    if (!t->v[j].key) {
        t->v[j].key = xstrdup(k);
        t->used++;
    }
    return &t->v[j];
}

static const struct entry *t_find(const struct table *t, const char *k)
{
    if (!t->cap)
        return NULL;
    size_t j = hash(k) & (t->cap - 1);
    while (t->v[j].key && strcmp(t->v[j].key, k))
        j = (j + 1) & (t->cap - 1);
    return t->v[j].key ? &t->v[j] : NULL;
}

static void t_free(struct table *t)
{
    for (size_t i = 0; i < t->cap; i++)
        free(t->v[i].key);
    free(t->v);
}

/* ---- the figures ---- */

enum { C_RECEIVED, C_DELIVERED, C_DEFERRED, C_BOUNCED, C_EXPIRED, C_REJECTED, C_NCOL };
static const char *const col_names[C_NCOL] = {"received", "delivered", "deferred",
                                              "bounced", "expired", "rejected"};

struct logsum {
    long long received, delivered, deferrals, bounced, expired, rejected, tempfailed;
    long long bounces, delay_notices, connections, removed, deleted;
    long long bytes_in, bytes_out, lines, ours;
    struct table size_of;      /* qid -> message size */
    struct table deferred_ids; /* qids deferred at least once */
    struct table senders, sender_domains, rcpts, rcpt_domains;
    struct table reject_reasons, reject_clients, defer_reasons;
    struct table days;         /* "YYYY-MM-DD" or "Mmm DD" -> index into day_counts */
    long long (*day_counts)[C_NCOL];
    char **day_names;
    size_t ndays;
    long long hours[24][C_NCOL];
    long *delays;
    size_t ndelays, delays_cap;
};

struct logsum *ls_new(void)
{
    return xcalloc(1, sizeof(struct logsum));
}

void ls_free(struct logsum *s)
{
    if (!s)
        return;
    struct table *tabs[] = {&s->size_of, &s->deferred_ids, &s->senders, &s->sender_domains,
                            &s->rcpts, &s->rcpt_domains, &s->reject_reasons,
                            &s->reject_clients, &s->defer_reasons, &s->days};
    for (size_t i = 0; i < sizeof tabs / sizeof tabs[0]; i++)
        t_free(tabs[i]);
    for (size_t i = 0; i < s->ndays; i++)
        free(s->day_names[i]);
    free(s->day_names);
    free(s->day_counts);
    free(s->delays);
    free(s);
}

/* Count one event of column col at the line's time. */
static void at_time(struct logsum *s, const struct syslog_prefix *p, int col)
{
    if (!p->have_date)
        return;
    static const char *const mon[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                      "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    char day[48];
    if (p->year)
        snprintf(day, sizeof day, "%04d-%02d-%02d", p->year, p->mon, p->mday);
    else
        snprintf(day, sizeof day, "%s %02d", mon[p->mon - 1], p->mday);
    struct entry *e = t_get(&s->days, day);
    if (e->n == 0) {
        e->n = (long long)++s->ndays;
        s->day_counts = xreallocarray(s->day_counts, s->ndays, sizeof *s->day_counts);
        memset(s->day_counts[s->ndays - 1], 0, sizeof *s->day_counts);
        s->day_names = xreallocarray(s->day_names, s->ndays, sizeof *s->day_names);
        s->day_names[s->ndays - 1] = xstrdup(day);
    }
    s->day_counts[e->n - 1][col]++;
    s->hours[p->hour][col]++;
}

/* Count addr (its domain lower-cased) and its domain: "(local)" for a
 * local name without one, "<>" for the null sender. */
static void count_addr(struct table *who, struct table *dom, const char *addr,
                       long long bytes)
{
    char *key = xstrdup(*addr ? addr : "<>");
    char *at = strrchr(key, '@');
    if (at && at[1])
        str_lower(at + 1);
    struct entry *e = t_get(who, key);
    e->n++;
    e->bytes += bytes;
    e = t_get(dom, at && at[1] ? at + 1 : *addr ? "(local)" : "<>");
    e->n++;
    e->bytes += bytes;
    free(key);
}

/* A reason without what differs from line to line: the text inside <...>
 * and digit runs (sizes, counts) are folded. */
static char *fold(const char *r)
{
    struct buf b;
    buf_init(&b);
    buf_adds(&b, "");
    for (const char *p = r; *p; p++) {
        if (*p == '<') {
            const char *e = strchr(p, '>');
            if (e) {
                buf_adds(&b, "<...>");
                p = e;
                continue;
            }
        }
        if (*p >= '0' && *p <= '9') {
            buf_addc(&b, 'N');
            while (p[1] >= '0' && p[1] <= '9')
                p++;
            continue;
        }
        buf_addc(&b, *p);
    }
    return buf_steal(&b);
}

static long long num(const char *v)
{
    return v ? strtoll(v, NULL, 10) : 0;
}

static void on_queued(struct logsum *s, const struct lf_rec *r, const struct syslog_prefix *p)
{
    long long size = num(lf_get(r, "size"));
    if (r->qid[0])
        t_get(&s->size_of, r->qid)->bytes = size;
    const char *proto = lf_get(r, "proto");
    if (proto && !strcmp(proto, "bounce"))
        return; /* our own report: counted as a bounce notice */
    s->received++;
    s->bytes_in += size;
    const char *from = lf_get(r, "from");
    count_addr(&s->senders, &s->sender_domains, from ? from : "", size);
    at_time(s, p, C_RECEIVED);
}

static void add_delay(struct logsum *s, long d)
{
    if (s->ndelays == s->delays_cap) {
        s->delays_cap = s->delays_cap ? s->delays_cap * 2 : 256;
        s->delays = xreallocarray(s->delays, s->delays_cap, sizeof *s->delays);
    }
    s->delays[s->ndelays++] = d;
}

static void on_delivery(struct logsum *s, const struct lf_rec *r,
                        const struct syslog_prefix *p)
{
    const char *st = lf_get(r, "status");
    if (!st)
        return;
    if (!strcmp(st, "sent")) {
        const struct entry *q = t_find(&s->size_of, r->qid);
        long long size = q ? q->bytes : 0;
        const char *to = lf_get(r, "orig_to");
        if (!to)
            to = lf_get(r, "to");
        s->delivered++;
        s->bytes_out += size;
        count_addr(&s->rcpts, &s->rcpt_domains, to ? to : "", size);
        add_delay(s, (long)num(lf_get(r, "delay")));
        at_time(s, p, C_DELIVERED);
    } else if (!strcmp(st, "deferred")) {
        s->deferrals++;
        t_get(&s->deferred_ids, r->qid)->n++;
        char *why = fold(lf_get(r, "reason") ? lf_get(r, "reason") : "");
        char *k = xasprintf("%s %s", lf_get(r, "dsn") ? lf_get(r, "dsn") : "-", why);
        t_get(&s->defer_reasons, k)->n++;
        free(k);
        free(why);
        at_time(s, p, C_DEFERRED);
    } else if (!strcmp(st, "bounced")) {
        s->bounced++;
        at_time(s, p, C_BOUNCED);
    } else if (!strcmp(st, "expired")) {
        s->expired++;
        at_time(s, p, C_EXPIRED);
    }
}

static void on_reject(struct logsum *s, const struct lf_rec *r, const struct syslog_prefix *p)
{
    long long code = num(lf_get(r, "code"));
    if (code >= 500)
        s->rejected++;
    else
        s->tempfailed++;
    const char *cmd = lf_get(r, "cmd"), *dsn = lf_get(r, "dsn");
    char *why = fold(lf_get(r, "reason") ? lf_get(r, "reason") : "");
    char *k = xasprintf("%s %lld %s %s", cmd ? cmd : "-", code, dsn ? dsn : "-", why);
    t_get(&s->reject_reasons, k)->n++;
    free(k);
    free(why);
    const char *cl = lf_get(r, "client");
    t_get(&s->reject_clients, cl ? cl : "unknown")->n++;
    at_time(s, p, C_REJECTED);
}

void ls_line(struct logsum *s, const char *line)
{
    s->lines++;
    struct syslog_prefix p;
    struct lf_rec r;
    if (syslog_prefix_parse(line, &p) < 0 || !syslog_ident_ours(p.ident) ||
        lf_parse(p.msg, &r) < 0)
        return;
    s->ours++;
    const char *ev = r.event;
    if (!strcmp(ev, "queued")) {
        on_queued(s, &r, &p);
    } else if (!strcmp(ev, "pickup")) {
        t_get(&s->size_of, r.qid)->bytes = num(lf_get(&r, "size"));
    } else if (!strcmp(ev, "delivery")) {
        on_delivery(s, &r, &p);
    } else if (!strcmp(ev, "reject")) {
        on_reject(s, &r, &p);
    } else if (!strcmp(ev, "connect")) {
        s->connections++;
    } else if (!strcmp(ev, "bounce")) {
        const char *kind = lf_get(&r, "kind");
        if (kind && !strcmp(kind, "delay"))
            s->delay_notices++;
        else
            s->bounces++;
    } else if (!strcmp(ev, "removed")) {
        s->removed++;
    } else if (!strcmp(ev, "deleted")) {
        s->deleted++;
    }
    lf_rec_free(&r);
}

/* ---- the report ---- */

static int by_count(const void *a, const void *b)
{
    const struct entry *x = *(const struct entry *const *)a, *y = *(const struct entry *const *)b;
    if (x->n != y->n)
        return x->n > y->n ? -1 : 1;
    return strcmp(x->key, y->key);
}

static void top_list(FILE *out, const char *title, const struct table *t, size_t top,
                     int bytes)
{
    fprintf(out, "\n%s\n", title);
    if (t->used == 0) {
        fprintf(out, "  none\n");
        return;
    }
    const struct entry **v = xcalloc(t->used, sizeof *v);
    size_t n = 0;
    for (size_t i = 0; i < t->cap; i++)
        if (t->v[i].key)
            v[n++] = &t->v[i];
    qsort(v, n, sizeof *v, by_count);
    for (size_t i = 0; i < n && i < top; i++) {
        if (bytes)
            fprintf(out, "  %8lld %12lld  %s\n", v[i]->n, v[i]->bytes, v[i]->key);
        else
            fprintf(out, "  %8lld  %s\n", v[i]->n, v[i]->key);
    }
    free(v);
}

static int by_long(const void *a, const void *b)
{
    long x = *(const long *)a, y = *(const long *)b;
    return x < y ? -1 : x > y;
}

static void delays(FILE *out, const struct logsum *s)
{
    fprintf(out, "\nDelivery delays (seconds from queueing to delivery)\n");
    if (!s->ndelays) {
        fprintf(out, "  none\n");
        return;
    }
    long *v = xreallocarray(NULL, s->ndelays, sizeof *v);
    memcpy(v, s->delays, s->ndelays * sizeof *v);
    qsort(v, s->ndelays, sizeof *v, by_long);
    long long sum = 0;
    for (size_t i = 0; i < s->ndelays; i++)
        sum += v[i];
    size_t n = s->ndelays;
    fprintf(out, "  %8zu  delivered\n  %8.1f  average\n  %8ld  median\n  %8ld  95th percentile\n"
                 "  %8ld  maximum\n",
            n, (double)sum / (double)n, v[(n - 1) / 2], v[(n * 95 + 99) / 100 - 1], v[n - 1]);
    free(v);
}

static void table_head(FILE *out, const char *first)
{
    fprintf(out, "  %-12s", first);
    for (int c = 0; c < C_NCOL; c++)
        fprintf(out, " %9s", col_names[c]);
    fputc('\n', out);
}

static void table_row(FILE *out, const char *name, const long long *v)
{
    fprintf(out, "  %-12s", name);
    for (int c = 0; c < C_NCOL; c++)
        fprintf(out, " %9lld", v[c]);
    fputc('\n', out);
}

static void traffic(FILE *out, const struct logsum *s)
{
    fprintf(out, "\nPer-day traffic\n");
    if (!s->ndays) {
        fprintf(out, "  none (no time stamps)\n");
    } else {
        table_head(out, "date");
        for (size_t i = 0; i < s->ndays; i++)
            table_row(out, s->day_names[i], s->day_counts[i]);
    }
    fprintf(out, "\nPer-hour traffic (all days)\n");
    if (!s->ndays) {
        fprintf(out, "  none (no time stamps)\n");
        return;
    }
    table_head(out, "hour");
    for (int h = 0; h < 24; h++) {
        char name[32];
        snprintf(name, sizeof name, "%02d:00-%02d:00", h, (h + 1) % 24);
        table_row(out, name, s->hours[h]);
    }
}

void ls_report(const struct logsum *s, FILE *out, size_t top)
{
    fprintf(out, "postoffice log summary (%lld lines read, %lld of them events)\n\n"
                 "Grand totals\n",
            s->lines, s->ours);
    const struct { long long v; const char *what; } g[] = {
        {s->received, "received"},
        {s->delivered, "delivered"},
        {s->deferrals, "deferred (attempts)"},
        {(long long)s->deferred_ids.used, "deferred (messages)"},
        {s->bounced, "bounced"},
        {s->expired, "expired"},
        {s->rejected, "rejected (5xx)"},
        {s->tempfailed, "rejected temporarily (4xx)"},
        {s->bounces, "bounce notices sent"},
        {s->delay_notices, "delay notices sent"},
        {s->connections, "connections"},
        {s->removed, "removed from the queue"},
        {s->deleted, "deleted by an administrator"},
        {s->bytes_in, "bytes received"},
        {s->bytes_out, "bytes delivered"},
        {(long long)s->senders.used, "senders"},
        {(long long)s->sender_domains.used, "sending domains"},
        {(long long)s->rcpts.used, "recipients"},
        {(long long)s->rcpt_domains.used, "receiving domains"},
    };
    for (size_t i = 0; i < sizeof g / sizeof g[0]; i++)
        fprintf(out, "  %8lld  %s\n", g[i].v, g[i].what);
    delays(out, s);
    traffic(out, s);
    top_list(out, "Top senders (messages, bytes)", &s->senders, top, 1);
    top_list(out, "Top sending domains (messages, bytes)", &s->sender_domains, top, 1);
    top_list(out, "Top recipients (delivered, bytes)", &s->rcpts, top, 1);
    top_list(out, "Top receiving domains (delivered, bytes)", &s->rcpt_domains, top, 1);
    top_list(out, "Rejections by reason (command, code, status, reason)", &s->reject_reasons,
             top, 0);
    top_list(out, "Top rejected clients", &s->reject_clients, top, 0);
    top_list(out, "Deferrals by reason (status, reason)", &s->defer_reasons, top, 0);
}

/* ---- -bS ---- */

static void read_stream(struct logsum *s, FILE *f)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, f)) >= 0) {
        if (n > LS_LINE_MAX)
            continue;
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            line[--n] = '\0';
        ls_line(s, line);
    }
    free(line);
}

int logsum_main(const struct strlist *files, FILE *out)
{
    struct logsum *s = ls_new();
    int rc = 0;
    for (size_t i = 0; i < files->n; i++) {
        if (!strcmp(files->v[i], "-")) {
            read_stream(s, stdin);
            continue;
        }
        FILE *f = fopen(files->v[i], "r");
        if (!f) {
            say("cannot read %s: %s", files->v[i], strerror(errno));
            rc = EX_NOINPUT;
            continue;
        }
        read_stream(s, f);
        fclose(f);
    }
    if (files->n == 0)
        read_stream(s, stdin);
    if (rc == 0)
        ls_report(s, out, LS_TOP);
    ls_free(s);
    return rc;
}
