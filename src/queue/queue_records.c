/* queue_records.c - the control file format (postoffice-queue(5)): envelope <-> text.
 *
 * Every line is a record: one type character, then its value.  String values
 * run to the end of the line and are percent-encoded: '%', every byte below
 * 0x20 and DEL become %XX, so no value can hold a CR, LF or NUL and no stored
 * string can forge a record.  Recipient records carry the recipient's index
 * ("R0 ...", "S0 ...") so each field has its own line and none needs a field
 * separator.  The parser is strict (unknown, duplicate, out-of-order or
 * malformed records are errors) because the same code reads the untrusted
 * control files of the maildrop. */
#include "compat.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "queue_records.h"
#include "util.h"

#define CTL_VERSION "1"
#define CTL_MAX_RCPTS 1000000 /* far above any max-recipients= */

static const char hexdig[] = "0123456789ABCDEF";

/* ---- writing ---- */

static int must_escape(unsigned char c, int token)
{
    if (c < 0x20 || c == 0x7f || c == '%')
        return 1;
    return token && c == ' ';
}

/* Percent-encode s; a token (a field followed by more fields) also escapes
 * spaces and a leading '-' (a lone "-" stands for "none"). */
static void put_enc(struct buf *out, const char *s, int token)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (must_escape(*p, token) || (token && p == (const unsigned char *)s && *p == '-')) {
            buf_addc(out, '%');
            buf_addc(out, hexdig[*p >> 4]);
            buf_addc(out, hexdig[*p & 15]);
        } else {
            buf_addc(out, *p);
        }
    }
}

static void put_str(struct buf *out, char type, const char *s)
{
    if (!s)
        return; /* absent record = NULL */
    buf_addc(out, type);
    put_enc(out, s, 0);
    buf_addc(out, '\n');
}

static void put_rstr(struct buf *out, char type, size_t i, const char *s)
{
    if (!s)
        return;
    buf_addf(out, "%c%zu ", type, i);
    put_enc(out, s, 0);
    buf_addc(out, '\n');
}

static char state_char(enum rcpt_state st)
{
    switch (st) {
    case RS_DONE: return 'D';
    case RS_FAILED: return 'F';
    case RS_BOUNCED: return 'B';
    default: return 'P';
    }
}

void ctl_format(const struct envelope *e, struct buf *out)
{
    buf_adds(out, "V" CTL_VERSION "\n");
    put_str(out, 'Q', e->qid);
    buf_addf(out, "T%lld\n", (long long)(e->ctime < 0 ? 0 : e->ctime));
    buf_addf(out, "N%lld\n", (long long)(e->next_try < 0 ? 0 : e->next_try));
    buf_addf(out, "A%d\n", e->attempts < 0 ? 0 : e->attempts);
    buf_addf(out, "G%d\n", e->flags & 0xffff);
    put_str(out, 'F', e->sender ? e->sender : "");
    put_str(out, 'C', e->client_name);
    put_str(out, 'I', e->client_addr);
    put_str(out, 'H', e->helo);
    put_str(out, 'L', e->local_user);
    put_str(out, 'X', e->quarantine);
    for (size_t i = 0; i < e->nrcpts; i++) {
        const struct rcpt *r = &e->rcpts[i];
        buf_addf(out, "R%zu %c %d ", i, state_char(r->state), r->notify & 15);
        put_enc(out, r->addr ? r->addr : "", 0);
        buf_addc(out, '\n');
        put_rstr(out, 'O', i, r->orig);
        put_rstr(out, 'W', i, r->owner);
        put_rstr(out, 'S', i, r->status);
        put_rstr(out, 'M', i, r->remote_mta);
    }
    buf_adds(out, ".\n");
}

void ctl_format_status(size_t i, enum rcpt_state st, const char *status,
                       const char *remote_mta, struct buf *out)
{
    size_t start = out->len;
    buf_addf(out, "D%zu %c ", i, state_char(st));
    if (remote_mta && *remote_mta)
        put_enc(out, remote_mta, 1);
    else
        buf_addc(out, '-');
    if (status) {
        buf_addc(out, ' ');
        put_enc(out, status, 0);
    }
    /* its own checksum: a flipped byte must not mark a recipient delivered */
    uint64_t h = fnv1a64(FNV1A64_INIT, out->s + start, out->len - start);
    buf_addf(out, "\t%016llx\n", (unsigned long long)h);
}

void ctl_format_retry(int attempts, time_t next_try, struct buf *out)
{
    size_t start = out->len;
    buf_addf(out, "B%d %lld", attempts < 0 ? 0 : attempts,
             (long long)(next_try < 0 ? 0 : next_try));
    uint64_t h = fnv1a64(FNV1A64_INIT, out->s + start, out->len - start);
    buf_addf(out, "\t%016llx\n", (unsigned long long)h);
}

/* ---- reading ---- */

struct span {
    const char *p;
    size_t n;
};

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* Decode a percent-encoded value; NULL if malformed (raw control byte, bad
 * escape, or an escaped NUL). */
static char *decode(struct span v)
{
    struct buf b;
    buf_init(&b);
    for (size_t i = 0; i < v.n; i++) {
        unsigned char c = (unsigned char)v.p[i];
        if (c < 0x20 || c == 0x7f)
            goto bad;
        if (c == '%') {
            if (i + 2 >= v.n)
                goto bad;
            int h = hexval(v.p[i + 1]), l = hexval(v.p[i + 2]);
            if (h < 0 || l < 0 || (h == 0 && l == 0))
                goto bad;
            c = (unsigned char)(h << 4 | l);
            i += 2;
        }
        buf_addc(&b, c);
    }
    return b.s;
bad:
    buf_free(&b);
    return NULL;
}

/* Strict unsigned decimal: digits only, no sign, no leading zeros, <= max. */
static int span_num(struct span v, unsigned long long max, unsigned long long *out)
{
    if (v.n == 0 || v.n > 20 || (v.n > 1 && v.p[0] == '0'))
        return -1;
    unsigned long long x = 0;
    for (size_t i = 0; i < v.n; i++) {
        if (v.p[i] < '0' || v.p[i] > '9')
            return -1;
        unsigned d = (unsigned)(v.p[i] - '0');
        if (x > (max - d) / 10)
            return -1;
        x = x * 10 + d;
    }
    *out = x;
    return 0;
}

/* Split off the next space-terminated field of v (the space is consumed). */
static int next_field(struct span *v, struct span *f)
{
    const char *sp = memchr(v->p, ' ', v->n);
    if (!sp)
        return -1;
    f->p = v->p;
    f->n = (size_t)(sp - v->p);
    v->n -= f->n + 1;
    v->p = sp + 1;
    return 0;
}

static int parse_state(struct span v, enum rcpt_state *st)
{
    if (v.n != 1)
        return -1;
    switch (v.p[0]) {
    case 'P': *st = RS_PENDING; return 0;
    case 'D': *st = RS_DONE; return 0;
    case 'F': *st = RS_FAILED; return 0;
    case 'B': *st = RS_BOUNCED; return 0;
    default: return -1;
    }
}

/* Which header records have been seen (duplicates are errors). */
struct seen {
    unsigned mask;
};

static int once(struct seen *s, char type)
{
    unsigned bit = 1u << (type - 'A');
    if (s->mask & bit)
        return -1;
    s->mask |= bit;
    return 0;
}

/* Store a decoded string header field (duplicates already rejected). */
static int set_str(char **field, struct span v)
{
    char *s = decode(v);
    if (!s)
        return -1;
    free(*field);
    *field = s;
    return 0;
}

static int header_record(char type, struct span v, struct envelope *e, struct seen *seen)
{
    unsigned long long x;
    if (type < 'A' || type > 'Z' || once(seen, type) < 0)
        return -1;
    switch (type) {
    case 'Q': {
        char *q = decode(v);
        int ok = q && qid_valid(q);
        if (ok)
            str_copy(e->qid, q, sizeof e->qid);
        free(q);
        return ok ? 0 : -1;
    }
    case 'T':
        if (span_num(v, (unsigned long long)LLONG_MAX / 2, &x) < 0)
            return -1;
        e->ctime = (time_t)x;
        return 0;
    case 'N':
        if (span_num(v, (unsigned long long)LLONG_MAX / 2, &x) < 0)
            return -1;
        e->next_try = (time_t)x;
        return 0;
    case 'A':
        if (span_num(v, INT_MAX, &x) < 0)
            return -1;
        e->attempts = (int)x;
        return 0;
    case 'G':
        if (span_num(v, 0xffff, &x) < 0)
            return -1;
        e->flags = (int)x;
        return 0;
    case 'F': return set_str(&e->sender, v);
    case 'C': return set_str(&e->client_name, v);
    case 'I': return set_str(&e->client_addr, v);
    case 'H': return set_str(&e->helo, v);
    case 'E': /* DSN ENVID and AUTH user: older versions wrote them, */
    case 'U': /* nothing ever set them; accepted and ignored */
        return 0;
    case 'L': return set_str(&e->local_user, v);
    case 'X': return set_str(&e->quarantine, v);
    default: return -1;
    }
}

/* "R<i> <state> <notify> <addr>": starts recipient i, which must be the next. */
static int rcpt_record(size_t i, struct span v, struct envelope *e)
{
    struct span st, nt;
    enum rcpt_state state;
    unsigned long long notify;
    if (i != e->nrcpts || i >= CTL_MAX_RCPTS)
        return -1;
    if (next_field(&v, &st) < 0 || parse_state(st, &state) < 0)
        return -1;
    if (next_field(&v, &nt) < 0 || span_num(nt, 15, &notify) < 0)
        return -1;
    char *addr = decode(v);
    if (!addr)
        return -1;
    env_add_rcpt(e, addr, NULL, NULL);
    free(addr);
    e->rcpts[i].state = state;
    e->rcpts[i].notify = (int)notify;
    return 0;
}

/* O/W/S/M<i> <value>: one optional field of an existing recipient, once. */
static int rcpt_field(char type, size_t i, struct span v, struct envelope *e)
{
    if (i >= e->nrcpts)
        return -1;
    struct rcpt *r = &e->rcpts[i];
    char **f = type == 'O' ? &r->orig : type == 'W' ? &r->owner
             : type == 'S' ? &r->status : &r->remote_mta;
    if (*f)
        return -1;
    *f = decode(v);
    return *f ? 0 : -1;
}

/* Split "<i> rest" of a recipient record. */
static int rcpt_index(struct span *v, size_t *i)
{
    struct span f;
    unsigned long long x;
    if (next_field(v, &f) < 0 || span_num(f, CTL_MAX_RCPTS, &x) < 0)
        return -1;
    *i = (size_t)x;
    return 0;
}

static int envelope_record(struct span line, struct envelope *e, struct seen *seen)
{
    char type = line.p[0];
    struct span v = {line.p + 1, line.n - 1};
    size_t i;
    if (type == 'R' || type == 'O' || type == 'W' || type == 'S' || type == 'M') {
        if (!(seen->mask & (1u << ('F' - 'A'))) || rcpt_index(&v, &i) < 0)
            return -1; /* recipients come after the header records */
        return type == 'R' ? rcpt_record(i, v, e) : rcpt_field(type, i, v, e);
    }
    if (e->nrcpts)
        return -1; /* header record after the recipients */
    return header_record(type, v, e, seen);
}

/* "B<attempts> <next_try>": an appended retry (back-off) record. */
static int retry_record(struct span line, struct envelope *e)
{
    struct span v = {line.p + 1, line.n - 1}, a;
    unsigned long long na, nt;
    if (next_field(&v, &a) < 0 || span_num(a, INT_MAX, &na) < 0 ||
        span_num(v, (unsigned long long)LLONG_MAX / 2, &nt) < 0)
        return -1;
    e->attempts = (int)na;
    e->next_try = (time_t)nt;
    return 0;
}

/* "D<i> <state> <mta|-> [<status>]": an appended result. */
static int status_record(struct span line, struct envelope *e)
{
    if (line.p[0] == 'B')
        return retry_record(line, e);
    struct span v = {line.p + 1, line.n - 1}, st, mta;
    size_t i;
    enum rcpt_state state;
    if (line.p[0] != 'D' || rcpt_index(&v, &i) < 0 || i >= e->nrcpts)
        return -1;
    int has_status = 1;
    if (next_field(&v, &st) < 0 || parse_state(st, &state) < 0)
        return -1;
    if (next_field(&v, &mta) < 0) { /* "D0 P -": no status text */
        mta = v;
        v.n = 0;
        has_status = 0;
    }
    char *m = NULL, *s = NULL;
    if (!(mta.n == 1 && mta.p[0] == '-')) {
        if (mta.n == 0 || memchr(mta.p, ' ', mta.n) || mta.p[0] == '-' || !(m = decode(mta)))
            return -1;
    }
    if (has_status && !(s = decode(v))) {
        free(m);
        return -1;
    }
    struct rcpt *r = &e->rcpts[i];
    r->state = state;
    free(r->status);
    r->status = s;
    free(r->remote_mta);
    r->remote_mta = m;
    return 0;
}

static int next_line(const char *text, size_t len, size_t *off, struct span *line);

/* Check and strip a status record's checksum ("<record> TAB <16 hex>": no
 * encoded value holds a TAB).  1 checked, 0 none (a record written before
 * status records had one), -1 wrong or malformed. */
static int status_checksum(struct span *line)
{
    const char *tab = memchr(line->p, '\t', line->n);
    if (!tab)
        return 0;
    size_t n = (size_t)(tab - line->p);
    if (line->n - n - 1 != 16)
        return -1;
    unsigned long long want = 0;
    for (size_t k = n + 1; k < line->n; k++) {
        int d = hexval(line->p[k]);
        if (d < 0 || (line->p[k] >= 'A' && line->p[k] <= 'F'))
            return -1;
        want = want << 4 | (unsigned)d;
    }
    if (fnv1a64(FNV1A64_INIT, line->p, n) != want)
        return -1;
    line->n = n;
    return 1;
}

/* Apply the status records after the envelope; returns the offset after the
 * last complete line.  Each is one write() of an encoded line by us; one that
 * is malformed or fails its checksum (damaged, or the remains of a torn write)
 * is skipped and counted in *bad: at worst that result is redone, never lost.
 * Once a record with a checksum was seen, one without is damage too. */
static size_t status_records(const char *text, size_t len, size_t off, struct envelope *e,
                             size_t *bad)
{
    struct span line;
    size_t good = off;
    int summed = 0;
    while (next_line(text, len, &off, &line)) {
        int ck = line.n && !memchr(line.p, '\0', line.n) ? status_checksum(&line) : -1;
        summed |= ck == 1;
        /* retry records were always written with a checksum */
        if (ck < 0 || (ck == 0 && (summed || line.p[0] == 'B')) || status_record(line, e) < 0)
            (*bad)++;
        good = off;
    }
    return good;
}

/* Next complete line (without its LF) starting at *off; 0 if none left. */
static int next_line(const char *text, size_t len, size_t *off, struct span *line)
{
    if (*off >= len)
        return 0;
    const char *nl = memchr(text + *off, '\n', len - *off);
    if (!nl)
        return 0;
    line->p = text + *off;
    line->n = (size_t)(nl - line->p);
    *off = (size_t)(nl - text) + 1;
    return 1;
}

int ctl_parse_ex(const char *text, size_t len, struct envelope *e, const char **why,
                 size_t *validlen, size_t *badrecs)
{
    static const char *bad = "malformed control record";
    struct seen seen = {0};
    struct span line;
    size_t off = 0;
    int ended = 0;

    *why = NULL;
    while (!ended && next_line(text, len, &off, &line)) {
        if (line.n == 0 || memchr(line.p, '\0', line.n)) {
            *why = bad;
        } else if (line.n == 1 && line.p[0] == '.') {
            ended = 1;
        } else if (off == line.n + 1) { /* the first line: our version only */
            if (line.n != 2 || memcmp(line.p, "V" CTL_VERSION, 2) != 0)
                *why = "unknown control file version";
            else
                seen.mask |= 1u << ('V' - 'A');
        } else if (envelope_record(line, e, &seen) < 0) {
            *why = bad;
        }
        if (*why)
            return -1;
    }
    if (!ended) {
        *why = "incomplete control file (no end marker)";
        return -1;
    }
    if (!e->qid[0] || !(seen.mask & (1u << ('T' - 'A'))) || !(seen.mask & (1u << ('F' - 'A')))) {
        *why = "control file lacks a required record (Q, T or F)";
        return -1;
    }
    size_t nbad = 0;
    size_t good = status_records(text, len, off, e, &nbad);
    if (validlen)
        *validlen = good; /* anything after is an interrupted append */
    if (badrecs)
        *badrecs = nbad;
    return 0;
}

int ctl_parse(const char *text, size_t len, struct envelope *e, const char **why)
{
    return ctl_parse_ex(text, len, e, why, NULL, NULL);
}
