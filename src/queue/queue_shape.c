/* queue_shape.c - the queue's shape for mailq -v (queue_shape.h).
 *
 * Every (domain, message) pair is kept, then sorted once: a message with
 * several recipients in one domain counts once there, and a queue of
 * 100,000 messages costs one qsort, not a lookup per recipient. */
#include "compat.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "queue_shape.h"
#include "util.h"

static const char *const labels[SHAPE_NBUCKETS] = {
    "5", "10", "20", "40", "80", "160", "320", "640", "1280", "1280+"};

struct pair {
    char *dom;
    size_t msg;
    int bucket;
};

struct row {
    char *dom; /* borrowed from a pair */
    unsigned long n[SHAPE_NBUCKETS + 1]; /* [0]: all ages (T) */
};

struct shape {
    time_t now;
    size_t nmsg;
    unsigned long total[SHAPE_NBUCKETS + 1];
    struct pair *v;
    size_t n, cap;
};

struct shape *shape_new(time_t now)
{
    struct shape *s = xcalloc(1, sizeof *s);
    s->now = now;
    return s;
}

int shape_bucket(time_t now, time_t since)
{
    long long min = since >= now ? 0 : (long long)(now - since) / 60;
    int b = 0;
    for (long long edge = 5; b < SHAPE_NBUCKETS - 1 && min >= edge; edge *= 2)
        b++;
    return b;
}

static void add_pair(struct shape *s, char *dom, int bucket)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 256;
        s->v = xrealloc(s->v, s->cap * sizeof *s->v);
    }
    s->v[s->n++] = (struct pair){dom, s->nmsg, bucket};
}

/* The lower-cased domain of a recipient, or "(local)". */
static char *rcpt_domain(const struct rcpt *r)
{
    const char *at = strrchr(r->addr, '@');
    if (rcpt_is_target(r) || r->addr[0] == '|' || r->addr[0] == '/' || !at || !at[1])
        return xstrdup("(local)");
    char *d = xstrdup(at + 1);
    for (char *p = d; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    return d;
}

void shape_add(struct shape *s, const struct envelope *e)
{
    int b = shape_bucket(s->now, e->ctime);
    for (size_t i = 0; i < e->nrcpts; i++)
        if (e->rcpts[i].state == RS_PENDING)
            add_pair(s, rcpt_domain(&e->rcpts[i]), b);
    s->total[0]++;
    s->total[b + 1]++;
    s->nmsg++;
}

void shape_add_other(struct shape *s, const char *row, time_t since)
{
    int b = shape_bucket(s->now, since);
    add_pair(s, xstrdup(row), b);
    s->total[0]++;
    s->total[b + 1]++;
    s->nmsg++;
}

static int cmp_pair(const void *a, const void *b)
{
    const struct pair *x = a, *y = b;
    int c = strcmp(x->dom, y->dom);
    if (c)
        return c;
    return x->msg < y->msg ? -1 : x->msg > y->msg;
}

static int cmp_row(const void *a, const void *b)
{
    const struct row *x = a, *y = b;
    if (x->n[0] != y->n[0])
        return x->n[0] > y->n[0] ? -1 : 1;
    return strcmp(x->dom, y->dom);
}

/* One row per domain, each message counted once in it.  *nrows set. */
static struct row *make_rows(struct shape *s, size_t *nrows)
{
    qsort(s->v, s->n, sizeof *s->v, cmp_pair);
    struct row *rows = xcalloc(s->n ? s->n : 1, sizeof *rows);
    size_t nr = 0;
    for (size_t i = 0; i < s->n; i++) {
        const struct pair *p = &s->v[i];
        if (i > 0 && !strcmp(p->dom, s->v[i - 1].dom) && p->msg == s->v[i - 1].msg)
            continue; /* the same message again in this domain */
        if (nr == 0 || strcmp(rows[nr - 1].dom, p->dom))
            rows[nr++].dom = p->dom;
        rows[nr - 1].n[0]++;
        rows[nr - 1].n[p->bucket + 1]++;
    }
    qsort(rows, nr, sizeof *rows, cmp_row);
    *nrows = nr;
    return rows;
}

static int digits(unsigned long v)
{
    int d = 1;
    while (v >= 10) {
        v /= 10;
        d++;
    }
    return d;
}

static void print_row(FILE *out, const char *name, int namew, const unsigned long *n,
                      const int *w)
{
    char *c = str_sanitize(name, strlen(name));
    fprintf(out, "%*s", namew, c);
    free(c);
    for (int k = 0; k <= SHAPE_NBUCKETS; k++)
        fprintf(out, " %*lu", w[k], n[k]);
    fputc('\n', out);
}

void shape_print(struct shape *s, FILE *out)
{
    size_t nr;
    struct row *rows = make_rows(s, &nr);
    int namew = 5, w[SHAPE_NBUCKETS + 1];
    for (size_t i = 0; i < nr; i++) {
        int l = (int)strlen(rows[i].dom);
        if (l > namew)
            namew = l < 40 ? l : 40; /* longer names just push their row right */
    }
    for (int k = 0; k <= SHAPE_NBUCKETS; k++) {
        int lw = k == 0 ? 1 : (int)strlen(labels[k - 1]);
        int dw = digits(s->total[k]); /* no row exceeds TOTAL */
        w[k] = lw > dw ? lw : dw;
    }
    fprintf(out, "%*s %*s", namew, "", w[0], "T");
    for (int k = 1; k <= SHAPE_NBUCKETS; k++)
        fprintf(out, " %*s", w[k], labels[k - 1]);
    fputc('\n', out);
    print_row(out, "TOTAL", namew, s->total, w);
    for (size_t i = 0; i < nr; i++)
        print_row(out, rows[i].dom, namew, rows[i].n, w);
    free(rows);
}

void shape_free(struct shape *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n; i++)
        free(s->v[i].dom);
    free(s->v);
    free(s);
}
