/* logfmt.c - event log lines: building them (every writer) and parsing them
 * back (the summary, tests).  Any process, any uid. */
#include "compat.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "logfmt.h"
#include "util.h"

/* ---- writing ---- */

void lf_begin(struct logfmt *l, const char *qid, const char *event)
{
    buf_init(&l->b);
    l->nfields = 0;
    if (qid && *qid)
        buf_addf(&l->b, "%s: ", qid);
    buf_adds(&l->b, event);
}

static void key(struct logfmt *l, const char *k)
{
    buf_adds(&l->b, l->nfields++ ? ", " : " ");
    buf_adds(&l->b, k);
    buf_addc(&l->b, '=');
}

/* Bytes written as \xHH: control bytes and everything outside ASCII (log
 * lines stay ASCII, as str_sanitize's do). */
static int is_ctl(unsigned char c)
{
    return c < 0x20 || c >= 0x7f;
}

static int token_ok(const char *v)
{
    if (!*v)
        return 0;
    for (const unsigned char *p = (const unsigned char *)v; *p; p++)
        if (is_ctl(*p) || strchr(" ,\"\\<=", *p))
            return 0;
    return 1;
}

/* Append v escaped: '\' and special, control bytes as \xHH; cut at
 * LF_VALUE_MAX bytes. */
static void escaped(struct buf *b, const char *v, char special)
{
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)v; *p; p++, n++) {
        if (n >= LF_VALUE_MAX) {
            buf_adds(b, "...");
            return;
        }
        if (is_ctl(*p))
            buf_addf(b, "\\x%02X", *p);
        else if (*p == '\\' || *p == (unsigned char)special)
            buf_addf(b, "\\%c", *p);
        else
            buf_addc(b, *p);
    }
}

void lf_str(struct logfmt *l, const char *k, const char *val)
{
    if (!val)
        return;
    key(l, k);
    if (token_ok(val) && strlen(val) <= LF_VALUE_MAX) {
        buf_adds(&l->b, val);
        return;
    }
    buf_addc(&l->b, '"');
    escaped(&l->b, val, '"');
    buf_addc(&l->b, '"');
}

void lf_fmt(struct logfmt *l, const char *k, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *v = xvasprintf(fmt, ap);
    va_end(ap);
    lf_str(l, k, v);
    free(v);
}

void lf_addr(struct logfmt *l, const char *k, const char *addr)
{
    if (!addr)
        return;
    key(l, k);
    buf_addc(&l->b, '<');
    escaped(&l->b, addr, '>');
    buf_addc(&l->b, '>');
}

void lf_num(struct logfmt *l, const char *k, long long v)
{
    key(l, k);
    buf_addf(&l->b, "%lld", v);
}

void lf_msgid(struct logfmt *l, const char *msgid)
{
    size_t n = msgid ? strlen(msgid) : 0;
    if (n < 2 || msgid[0] != '<' || msgid[n - 1] != '>' || memchr(msgid + 1, '>', n - 2)) {
        lf_str(l, "msgid", msgid);
        return;
    }
    char *id = xstrndup(msgid + 1, n - 2);
    lf_addr(l, "msgid", id);
    free(id);
}

void lf_client(struct logfmt *l, const char *name, const char *ip)
{
    if (!ip || !*ip)
        lf_str(l, "client", "local");
    else
        lf_fmt(l, "client", "%s[%s]", name && *name ? name : "unknown", ip);
}

/* "X.Y.Z" at the start of t: its length, else 0. */
static size_t dsn_len(const char *t)
{
    size_t n = 0;
    if (!strchr("245", t[0]) || t[1] != '.')
        return 0;
    n = 2;
    for (int part = 0; part < 2; part++) {
        size_t d = strspn(t + n, "0123456789");
        if (d == 0 || d > 3 || (part == 0 && t[n + d] != '.'))
            return 0;
        n += d + (part == 0);
    }
    return t[n] == ' ' || t[n] == '\0' ? n : 0;
}

void lf_reply(struct logfmt *l, int code, const char *text)
{
    lf_num(l, "code", code);
    size_t d = dsn_len(text);
    if (d) {
        char dsn[16];
        snprintf(dsn, sizeof dsn, "%.*s", (int)d, text);
        lf_str(l, "dsn", dsn);
        text += d + (text[d] == ' ');
    }
    lf_str(l, "reason", text);
}

void lf_log_delivery(const struct lf_delivery *d)
{
    struct logfmt l;
    lf_begin(&l, d->qid, "delivery");
    lf_addr(&l, "to", d->to);
    if (d->orig_to && d->to && strcmp(d->orig_to, d->to))
        lf_addr(&l, "orig_to", d->orig_to);
    lf_str(&l, "relay", d->relay && *d->relay ? d->relay : "none");
    lf_num(&l, "delay", d->delay < 0 ? 0 : d->delay);
    const char *st = d->status ? d->status : "";
    size_t n = dsn_len(st);
    const char *word = d->word ? d->word : "deferred";
    if (n) {
        lf_fmt(&l, "dsn", "%.*s", (int)n, st);
        st += n + (st[n] == ' ');
    } else {
        lf_str(&l, "dsn", !strcmp(word, "sent") ? "2.0.0"
                          : !strcmp(word, "deferred") ? "4.0.0" : "5.0.0");
    }
    lf_str(&l, "status", word);
    lf_str(&l, "reason", st);
    lf_log(&l, LOG_INFO);
}

long lf_delay(long long then)
{
    time_t now = time(NULL);
    return (long long)now > then ? (long)((long long)now - then) : 0;
}

const char *lf_line(const struct logfmt *l)
{
    return l->b.s ? l->b.s : "";
}

void lf_log(struct logfmt *l, int prio)
{
    log_msg(prio, "%s", lf_line(l));
    lf_free(l);
}

void lf_free(struct logfmt *l)
{
    buf_free(&l->b);
}

/* ---- reading ---- */

static int event_known(const char *w, size_t n)
{
    const char *list = LF_EVENTS;
    while (*list) {
        size_t k = strcspn(list, " ");
        if (k == n && !strncmp(list, w, n))
            return 1;
        list += k + (list[k] == ' ');
    }
    return 0;
}

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                          : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* Decode an escaped value in place from *pp up to the closing char close;
 * *pp moves past it.  The value, or NULL if malformed. */
static char *unescape(char **pp, char close)
{
    char *p = *pp, *out = p, *start = p;
    for (;;) {
        if (*p == '\0')
            return NULL;
        if (*p == close)
            break;
        if (*p != '\\') {
            *out++ = *p++;
            continue;
        }
        if (p[1] == 'x' && hexval(p[2]) >= 0 && hexval(p[3]) >= 0) {
            *out++ = (char)(hexval(p[2]) * 16 + hexval(p[3]));
            p += 4;
        } else if (p[1] == '\\' || p[1] == close) {
            *out++ = p[1];
            p += 2;
        } else {
            return NULL;
        }
    }
    *pp = p + 1;
    *out = '\0';
    return start;
}

/* One "key=value" at *pp into f, and the ", " after it (then more must
 * follow) or the end.  0, or -1 if malformed. */
static int parse_field(char **pp, struct lf_field *f)
{
    char *p = *pp;
    size_t k = strspn(p, "abcdefghijklmnopqrstuvwxyz0123456789_");
    if (k == 0 || p[k] != '=')
        return -1;
    p[k] = '\0';
    f->key = p;
    p += k + 1;
    f->addr = *p == '<';
    if (*p == '<' || *p == '"') {
        char close = *p == '<' ? '>' : '"';
        p++;
        if (!(f->val = unescape(&p, close)))
            return -1;
    } else {
        size_t n = strcspn(p, ",");
        if (n == 0 || memchr(p, ' ', n) || memchr(p, '"', n) || memchr(p, '<', n))
            return -1;
        f->val = p;
        p += n;
    }
    if (*p == '\0') {
        *pp = p;
        return 0;
    }
    if (p[0] != ',' || p[1] != ' ' || p[2] == '\0')
        return -1;
    p[0] = '\0';
    *pp = p + 2;
    return 0;
}

static int parse_fields(char *p, struct lf_rec *r)
{
    while (*p) {
        if (r->n >= LF_FIELDS_MAX || parse_field(&p, &r->f[r->n++]) < 0)
            return -1;
    }
    return 0;
}

/* "QID: " at the start of p: its length, else 0. */
static size_t qid_prefix(const char *p)
{
    size_t n = strspn(p, "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz");
    return n > 0 && n < LF_QID_MAX && p[n] == ':' && p[n + 1] == ' ' ? n : 0;
}

int lf_parse(const char *msg, struct lf_rec *r)
{
    memset(r, 0, sizeof *r);
    char *p = r->mem = xstrdup(msg);
    size_t q = qid_prefix(p);
    if (q) {
        memcpy(r->qid, p, q);
        p += q + 2;
    }
    size_t e = strspn(p, "abcdefghijklmnopqrstuvwxyz");
    if (!event_known(p, e) || (p[e] != ' ' && p[e] != '\0'))
        goto not_ours;
    r->event = p;
    char *rest = p + e + (p[e] == ' ');
    p[e] = '\0';
    if (parse_fields(rest, r) < 0)
        goto not_ours;
    return 0;
not_ours:
    lf_rec_free(r);
    return -1;
}

const char *lf_get(const struct lf_rec *r, const char *k)
{
    for (size_t i = 0; i < r->n; i++)
        if (!strcmp(r->f[i].key, k))
            return r->f[i].val;
    return NULL;
}

void lf_rec_free(struct lf_rec *r)
{
    free(r->mem);
    memset(r, 0, sizeof *r);
}
