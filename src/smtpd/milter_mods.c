/* milter_mods.c - mail filter changes: recorded while a filter answers the
 * end of a message, applied to the stored message and the envelope before
 * the message is committed (milter_mods.h).  Runs in the SMTP session child
 * as user=. */
#include "compat.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "address.h"
#include "milter_mods.h"
#include "spool.h"

#define READ_CHUNK 65536

/* ---- the header block ---- */

static int name_char(unsigned char ch)
{
    return ch > ' ' && ch < 0x7f && ch != ':';
}

/* Length of "Name:" at p (up to the colon), or 0 if p is no header line. */
static size_t header_name_len(const char *p, size_t n)
{
    size_t i = 0;
    while (i < n && name_char((unsigned char)p[i]))
        i++;
    return i > 0 && i < n && p[i] == ':' ? i : 0;
}

static void add_hdr(struct mhdrs *h, const char *p, size_t name_len, size_t len)
{
    h->v = xreallocarray(h->v, h->n + 1, sizeof *h->v);
    h->v[h->n].name = xstrndup(p, name_len);
    /* the value without the line end of its last line */
    h->v[h->n].value = xstrndup(p + name_len + 1, len - name_len - 2);
    h->n++;
}

/* Split the header block held in b (the start of the message).  Sets
 * body_off; fields are added to h. */
static void split_headers(const struct buf *b, struct mhdrs *h)
{
    size_t pos = 0;
    while (pos < b->len) {
        const char *p = b->s + pos;
        size_t left = b->len - pos;
        if (p[0] == '\n') {
            h->body_off = (long long)pos + 1;
            return;
        }
        size_t nl = header_name_len(p, left);
        const char *end = memchr(p, '\n', left);
        if (!nl || !end)
            break;
        /* continuation lines belong to the field */
        while ((size_t)(end - b->s) + 1 < b->len && (end[1] == ' ' || end[1] == '\t')) {
            const char *next = memchr(end + 1, '\n', b->len - (size_t)(end + 1 - b->s));
            if (!next)
                break;
            end = next;
        }
        if (memchr(p, '\0', (size_t)(end - p)))
            break; /* a field with a NUL byte: the body starts here (kept as is) */
        add_hdr(h, p, nl, (size_t)(end - p) + 1);
        pos = (size_t)(end - b->s) + 1;
    }
    h->body_off = (long long)pos;
}

int mmods_read_headers(mmods_read_fn rd, void *arg, long long size, size_t max,
                       struct mhdrs *h)
{
    struct buf b;
    buf_init(&b);
    memset(h, 0, sizeof *h);
    char *chunk = xmalloc(READ_CHUNK);
    long long off = 0;
    /* read until the empty line that ends the headers, or max */
    while (off < size && b.len < max) {
        ssize_t r = rd(arg, chunk, READ_CHUNK, off);
        if (r < 0) {
            int e = errno;
            free(chunk);
            buf_free(&b);
            errno = e;
            return -1;
        }
        if (r == 0)
            break;
        buf_add(&b, chunk, (size_t)r);
        off += r;
        if (b.len && (b.s[0] == '\n' || memmem(b.s, b.len, "\n\n", 2)))
            break;
    }
    free(chunk);
    if (b.len > max)
        buf_truncate(&b, max);
    split_headers(&b, h);
    buf_free(&b);
    return 0;
}

void mmods_free_headers(struct mhdrs *h)
{
    for (size_t i = 0; i < h->n; i++) {
        free(h->v[i].name);
        free(h->v[i].value);
    }
    free(h->v);
    memset(h, 0, sizeof *h);
}

/* ---- recording ---- */

void mmods_init(struct mmods *m, long long body_max)
{
    memset(m, 0, sizeof *m);
    buf_init(&m->body);
    m->body_max = body_max;
}

void mmods_free(struct mmods *m)
{
    for (size_t i = 0; i < m->n; i++) {
        free(m->v[i].a);
        free(m->v[i].b);
    }
    free(m->v);
    buf_free(&m->body);
    free(m->quarantine);
    memset(m, 0, sizeof *m);
}

void mmods_reset(struct mmods *m)
{
    long long max = m->body_max;
    mmods_free(m);
    mmods_init(m, max);
}

int mmods_any(const struct mmods *m)
{
    for (size_t i = 0; i < m->n; i++)
        if (m->v[i].type == MM_ADDHDR || m->v[i].type == MM_INSHDR ||
            m->v[i].type == MM_CHGHDR)
            return 1;
    return m->replace_body;
}

static void push(struct mmods *m, enum mmod_type t, long idx, char *a, char *b)
{
    m->v = xreallocarray(m->v, m->n + 1, sizeof *m->v);
    m->v[m->n++] = (struct mmod){ .type = t, .idx = idx, .a = a, .b = b };
}

/* A filter's header value as we store it: LF line ends, folded lines start
 * with white space, no NUL or lone CR, one leading space. */
static char *clean_value(const char *v)
{
    struct buf b;
    buf_init(&b);
    if (*v != ' ' && *v != '\t')
        buf_addc(&b, ' ');
    for (const char *p = v; *p; p++) {
        if (*p == '\r' && p[1] == '\n')
            continue;
        if (*p == '\r') {
            buf_addc(&b, ' ');
        } else if (*p == '\n') {
            if (!p[1])
                break;
            buf_addc(&b, '\n');
            if (p[1] != ' ' && p[1] != '\t')
                buf_addc(&b, '\t');
        } else {
            buf_addc(&b, *p);
        }
    }
    return buf_steal(&b);
}

int mmods_add_header(struct mmods *m, enum mmod_type t, long idx, const char *name,
                     const char *value)
{
    size_t n = strlen(name);
    if (n == 0 || n > 997)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (!name_char((unsigned char)name[i]))
            return -1;
    /* CHGHDR with an empty value deletes the field */
    char *v = (t == MM_CHGHDR && !*value) ? NULL : clean_value(value);
    push(m, t, idx, xstrdup(name), v);
    return 0;
}

/* "<addr>" or "addr" -> the bare address, checked as an SMTP path. */
static char *filter_addr(const char *s, int is_sender)
{
    char *path = s[0] == '<' ? xstrdup(s) : xasprintf("<%s>", s);
    char *addr = NULL;
    const char *rest = NULL, *why = NULL;
    int r = addr_parse_path(path, is_sender, &addr, &rest, &why);
    free(path);
    if (r < 0)
        return NULL;
    return addr;
}

int mmods_add_addr(struct mmods *m, enum mmod_type t, const char *addr)
{
    char *a = filter_addr(addr, t == MM_CHGFROM);
    if (!a || (t != MM_CHGFROM && !*a)) {
        free(a);
        return -1;
    }
    push(m, t, 0, a, NULL);
    return 0;
}

void mmods_body_start(struct mmods *m)
{
    m->replace_body = 1;
    buf_reset(&m->body);
}

int mmods_body_add(struct mmods *m, const char *p, size_t n)
{
    if (m->body_max > 0 && (long long)(m->body.len + n) > m->body_max) {
        errno = EFBIG;
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        /* CR LF -> LF; a CR at the end of a chunk is decided by the next */
        if (p[i] == '\r' && i + 1 < n && p[i + 1] == '\n')
            continue;
        if (p[i] == '\n' && m->body.len && m->body.s[m->body.len - 1] == '\r')
            m->body.len--;
        buf_addc(&m->body, p[i]);
    }
    return 0;
}

void mmods_set_quarantine(struct mmods *m, const char *reason)
{
    free(m->quarantine);
    /* shown by mailq on one line: printable, bounded */
    m->quarantine = str_sanitize(reason, strnlen(reason, 500));
    if (!m->quarantine[0]) {
        free(m->quarantine);
        m->quarantine = xstrdup("quarantined by a mail filter");
    }
}

/* ---- applying ---- */

static int same_addr(const char *a, const char *b)
{
    const char *at = strrchr(a, '@');
    size_t local = at ? (size_t)(at - a) : strlen(a);
    return strlen(a) == strlen(b) && !strncmp(a, b, local) && !strcasecmp(a + local, b + local);
}

static void del_rcpt(struct envelope *e, const char *addr)
{
    size_t j = 0;
    for (size_t i = 0; i < e->nrcpts; i++) {
        struct rcpt *r = &e->rcpts[i];
        if (same_addr(r->addr, addr) || (r->orig && same_addr(r->orig, addr))) {
            free(r->addr);
            free(r->orig);
            free(r->owner);
            free(r->status);
            free(r->remote_mta);
            continue;
        }
        e->rcpts[j++] = *r;
    }
    e->nrcpts = j;
}

int mmods_apply_envelope(const struct mmods *m, struct envelope *e)
{
    int changes = 0;
    for (size_t i = 0; i < m->n; i++) {
        const struct mmod *x = &m->v[i];
        if (x->type == MM_CHGFROM) {
            free(e->sender);
            e->sender = xstrdup(x->a);
        } else if (x->type == MM_ADDRCPT) {
            int have = 0;
            for (size_t k = 0; k < e->nrcpts && !have; k++)
                have = same_addr(e->rcpts[k].addr, x->a);
            if (!have)
                env_add_rcpt(e, x->a, x->a, NULL);
        } else if (x->type == MM_DELRCPT) {
            del_rcpt(e, x->a);
        } else {
            continue;
        }
        changes++;
    }
    return changes;
}

static void ins_hdr(struct mhdrs *h, size_t pos, const char *name, const char *value)
{
    if (pos > h->n)
        pos = h->n;
    h->v = xreallocarray(h->v, h->n + 1, sizeof *h->v);
    memmove(h->v + pos + 1, h->v + pos, (h->n - pos) * sizeof *h->v);
    h->v[pos].name = xstrdup(name);
    h->v[pos].value = xstrdup(value);
    h->n++;
}

/* CHGHDR: the idx-th field called name changes (NULL value: goes); when
 * there is no such field, a value is added (sendmail and Postfix do so). */
static void chg_hdr(struct mhdrs *h, long idx, const char *name, const char *value)
{
    long seen = 0;
    for (size_t i = 0; i < h->n; i++) {
        if (strcasecmp(h->v[i].name, name) || ++seen != idx)
            continue;
        if (value) {
            free(h->v[i].value);
            h->v[i].value = xstrdup(value);
        } else {
            free(h->v[i].name);
            free(h->v[i].value);
            memmove(h->v + i, h->v + i + 1, (h->n - i - 1) * sizeof *h->v);
            h->n--;
        }
        return;
    }
    if (value)
        ins_hdr(h, h->n, name, value);
}

static void apply_headers(const struct mmods *m, struct mhdrs *h)
{
    for (size_t i = 0; i < m->n; i++) {
        const struct mmod *x = &m->v[i];
        if (x->type == MM_ADDHDR)
            ins_hdr(h, h->n, x->a, x->b);
        else if (x->type == MM_INSHDR)
            ins_hdr(h, x->idx < 0 ? 0 : (size_t)x->idx, x->a, x->b);
        else if (x->type == MM_CHGHDR)
            chg_hdr(h, x->idx, x->a, x->b);
    }
}

static int copy_body(struct spool_new *out, mmods_read_fn rd, void *arg, long long from,
                     long long size)
{
    char *chunk = xmalloc(READ_CHUNK);
    int rc = 0;
    while (from < size && rc == 0) {
        ssize_t r = rd(arg, chunk, READ_CHUNK, from);
        if (r <= 0) {
            if (r == 0)
                errno = EIO;
            rc = -1;
            break;
        }
        rc = spool_new_write(out, chunk, (size_t)r);
        from += r;
    }
    free(chunk);
    return rc;
}

static int write_message(const struct mmods *m, const struct mhdrs *h, mmods_read_fn rd,
                         void *arg, long long size, struct spool_new *out)
{
    struct buf b;
    buf_init(&b);
    for (size_t i = 0; i < h->n; i++)
        buf_addf(&b, "%s:%s\n", h->v[i].name, h->v[i].value);
    buf_addc(&b, '\n');
    int rc = spool_new_write(out, b.s, b.len);
    buf_free(&b);
    if (rc < 0)
        return -1;
    if (!m->replace_body)
        return copy_body(out, rd, arg, h->body_off, size);
    if (m->body.len && spool_new_write(out, m->body.s, m->body.len) < 0)
        return -1;
    if (m->body.len && m->body.s[m->body.len - 1] != '\n')
        return spool_new_write(out, "\n", 1);
    return 0;
}

int mmods_apply_data(const struct mmods *m, mmods_read_fn rd, void *arg, long long size,
                     const char *dir, struct spool_new **sn)
{
    struct mhdrs h;
    if (mmods_read_headers(rd, arg, size, (size_t)size + 1, &h) < 0)
        return -1;
    apply_headers(m, &h);
    struct spool_new *out = spool_new(dir);
    int rc = out ? write_message(m, &h, rd, arg, size, out) : -1;
    if (rc == 0)
        rc = spool_new_replace(*sn, out);
    int e = errno;
    mmods_free_headers(&h);
    if (rc == 0)
        *sn = out;
    else if (out)
        spool_abort(out);
    errno = e;
    return rc;
}

int mmods_apply(const struct mmods *m, mmods_read_fn rd, void *arg, long long size,
                const char *dir, struct spool_new **sn, struct envelope *e)
{
    mmods_apply_envelope(m, e);
    if (e->nrcpts == 0)
        return 1;
    if (mmods_any(m) && mmods_apply_data(m, rd, arg, size, dir, sn) < 0)
        return -1;
    if (m->quarantine) {
        e->flags |= ENV_QUARANTINE;
        free(e->quarantine);
        e->quarantine = xstrdup(m->quarantine);
    }
    return 0;
}
