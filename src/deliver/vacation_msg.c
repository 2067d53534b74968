/* vacation_msg.c - the vacation file and the reply made from it: see
 * vacation_msg.h.  Pure functions; run as the user, never as root. */
#include "compat.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "address.h"
#include "date.h"
#include "headers.h"
#include "util.h"
#include "vacation_msg.h"

#define ORIG_TEXT_MAX 200 /* bytes of the original's subject taken over */
#define QP_LINE 76        /* RFC 2045 6.7 (5): encoded lines, with the soft break */

static int fail(char **err, const char *fmt, ...) PO_PRINTF(2, 3);
static int fail(char **err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    *err = xvasprintf(fmt, ap);
    va_end(ap);
    return -1;
}

static int ascii_only(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s >= 0x80)
            return 0;
    return 1;
}

/* Length of the valid UTF-8 sequence at p (n bytes left), 0 if none. */
static size_t utf8_len(const char *p, size_t n)
{
    for (size_t k = 2; k <= 4 && k <= n; k++)
        if (addr_utf8_valid(p, k))
            return k;
    return 0;
}

char *vac_clean_text(const char *s, size_t max)
{
    struct buf b;
    buf_init(&b);
    size_t n = s ? strlen(s) : 0;
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        size_t k = c >= 0x80 ? utf8_len(s + i, n - i) : 1;
        if (b.len + (k ? k : 1) > max)
            break;
        if (c >= 0x80 && k)
            buf_add(&b, s + i, k);
        else
            buf_addc(&b, c >= 0x80 ? '?' : (c < 0x20 || c == 0x7f) ? ' ' : (char)c);
        i += k ? k : 1;
    }
    char *t = buf_steal(&b);
    char *trimmed = xstrdup(str_trim(t));
    free(t);
    return trimmed;
}

void vac_file_free(struct vac_file *f)
{
    free(f->subject);
    free(f->from);
    free(f->body);
    sl_free(&f->extra);
    sl_free(&f->aliases);
    memset(f, 0, sizeof *f);
}

int vac_period_parse(const char *s, long *secs)
{
    char *end;
    if (!isdigit((unsigned char)*s))
        return -1;
    unsigned long v = strtoul(s, &end, 10);
    long unit = 86400;
    if (*end) {
        if (end[1])
            return -1;
        switch (tolower((unsigned char)*end)) {
        case 's': unit = 1; break;
        case 'm': unit = 60; break;
        case 'h': unit = 3600; break;
        case 'd': unit = 86400; break;
        case 'w': unit = 7 * 86400; break;
        default: return -1;
        }
    }
    if (v > (unsigned long)(VAC_PERIOD_MAX / unit))
        return -1;
    *secs = (long)v * unit;
    return 0;
}

/* Is this a field the header block of a vacation file may begin with? */
static int known_field(const char *name)
{
    static const char *const names[] = {"Subject", "From", "Reply-To", "Vacation-Period",
                                        "Vacation-Alias", "Vacation-Check-To",
                                        "MIME-Version", "Content-Type", "Precedence",
                                        "Content-Transfer-Encoding", NULL};
    for (size_t i = 0; names[i]; i++)
        if (strcasecmp(name, names[i]) == 0)
            return 1;
    return str_has_prefix_ci(name, "X-") && name[2];
}

/* The field name at the start of line (n bytes), malloc'd, or NULL. */
static char *field_name(const char *line, size_t n)
{
    size_t c = 0;
    while (c < n && line[c] != ':' && line[c] > ' ' && line[c] < 0x7f)
        c++;
    return c > 0 && c < n && line[c] == ':' ? xstrndup(line, c) : NULL;
}

/* An address field's value: ASCII, with at least one address. */
static int check_addresses(const char *name, const char *v, int line, char **err)
{
    struct strlist a;
    sl_init(&a);
    int n = addr_parse_list(v, &a), bare = 0;
    for (size_t i = 0; i < a.n; i++)
        bare |= addr_domain(a.v[i]) == NULL;
    sl_free(&a);
    if (!ascii_only(v))
        return fail(err, "line %d: %s: write it in ASCII (no 8-bit characters)", line, name);
    if (n < 1 || bare)
        return fail(err, "line %d: %s: no address (user@domain) in \"%s\"", line, name, v);
    return 0;
}

static int mime_field(const char *name, const char *v, int line, char **err)
{
    char *lv = xstrdup(v);
    str_lower(lv);
    int ok = 1;
    if (!strcasecmp(name, "Content-Type")) {
        const char *cs = strstr(lv, "charset=");
        ok = strncmp(lv, "text/plain", 10) == 0 && (!cs || !strncmp(cs + 8, "utf-8", 5) ||
                                                    !strncmp(cs + 8, "\"utf-8\"", 7) ||
                                                    !strncmp(cs + 8, "us-ascii", 8));
    } else if (!strcasecmp(name, "Content-Transfer-Encoding")) {
        ok = !strcmp(lv, "7bit") || !strcmp(lv, "8bit");
    }
    free(lv);
    if (!ok)
        return fail(err, "line %d: %s: %s: the reply is plain UTF-8 text (text/plain, "
                         "charset=utf-8, 7bit or 8bit)", line, name, v);
    return 0;
}

/* One field of the file's header block (value trimmed, unfolded). */
static int take_field(struct vac_file *f, const char *name, const char *v, int line,
                      char **err)
{
    if (!strcasecmp(name, "Subject") || !strcasecmp(name, "From")) {
        char **slot = !strcasecmp(name, "Subject") ? &f->subject : &f->from;
        if (*slot)
            return fail(err, "line %d: a second %s: field", line, name);
        if (!strcasecmp(name, "From") && check_addresses(name, v, line, err) < 0)
            return -1;
        *slot = xstrdup(v);
    } else if (!strcasecmp(name, "Vacation-Period")) {
        if (vac_period_parse(v, &f->period) < 0)
            return fail(err, "line %d: Vacation-Period: \"%s\" is not a period (a number "
                             "and s, m, h, d or w; at most 3650 days)", line, v);
    } else if (!strcasecmp(name, "Vacation-Alias")) {
        if (check_addresses(name, v, line, err) < 0)
            return -1;
        addr_parse_list(v, &f->aliases);
    } else if (!strcasecmp(name, "Vacation-Check-To")) {
        if (strcasecmp(v, "yes") && strcasecmp(v, "no"))
            return fail(err, "line %d: Vacation-Check-To: yes or no, not \"%s\"", line, v);
        f->check_to = strcasecmp(v, "no") != 0;
    } else if (!strcasecmp(name, "Reply-To") || (str_has_prefix_ci(name, "X-") && name[2])) {
        if (!strcasecmp(name, "Reply-To") ? check_addresses(name, v, line, err) < 0
                                          : !ascii_only(v))
            return *err ? -1 : fail(err, "line %d: %s: write it in ASCII", line, name);
        sl_add_owned(&f->extra, xasprintf("%s: %s", name, v));
    } else if (!strcasecmp(name, "MIME-Version") || !strcasecmp(name, "Precedence")) {
        return 0; /* ours: MIME below; Precedence is not for replies (RFC 3834 5) */
    } else if (!strcasecmp(name, "Content-Type") ||
               !strcasecmp(name, "Content-Transfer-Encoding")) {
        return mime_field(name, v, line, err);
    } else {
        return fail(err, "line %d: unknown field %s: (the header block may hold Subject:, "
                         "From:, Reply-To:, X-*: and Vacation-*: fields; an empty line "
                         "ends it)", line, name);
    }
    return 0;
}

/* A control character other than tab (and form feed, in the body)? */
static int has_ctl(const char *s, size_t n, int ff_ok)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c < 0x20 && c != '\t' && !(ff_ok && c == '\f')) || c == 0x7f)
            return 1;
    }
    return 0;
}

/* The lines of text: each checked for length and NUL, CR LF taken as LF. */
struct lines {
    const char *text;
    size_t len, pos;
    int no;
};

/* The next line (without its line end): 1, 0 at the end, -1 too long. */
static int next_line(struct lines *l, const char **p, size_t *n)
{
    if (l->pos >= l->len)
        return 0;
    const char *s = l->text + l->pos;
    const char *nl = memchr(s, '\n', l->len - l->pos);
    size_t k = nl ? (size_t)(nl - s) : l->len - l->pos;
    l->pos += k + (nl != NULL);
    l->no++;
    if (k && s[k - 1] == '\r')
        k--;
    *p = s;
    *n = k;
    return k > VAC_LINE_MAX ? -1 : 1;
}

/* The header block; l is left at the body's first line. */
static int parse_header(struct lines *l, struct vac_file *f, char **err)
{
    const char *p;
    size_t n;
    char *name = NULL;
    struct buf v;
    buf_init(&v);
    int rc = 0, r, start = 0;
    while (rc == 0) {
        size_t at = l->pos;
        r = next_line(l, &p, &n);
        if (r < 0) {
            rc = fail(err, "line %d: longer than %d bytes", l->no, VAC_LINE_MAX);
            break;
        }
        if (r > 0 && has_ctl(p, n, 0)) {
            rc = fail(err, "line %d: a control character (only tabs may be in fields)",
                      l->no);
            break;
        }
        int cont = r > 0 && n > 0 && (p[0] == ' ' || p[0] == '\t');
        if (cont && name) {
            buf_add(&v, p, n);
            continue;
        }
        if (name) {
            char *val = str_trim(v.s);
            rc = take_field(f, name, val, start, err);
            free(name);
            name = NULL;
            buf_reset(&v);
            if (rc < 0)
                break;
        }
        if (r == 0 || n == 0)
            break; /* the end of the block */
        if (!(name = field_name(p, n))) {
            l->pos = at;
            rc = fail(err, "line %d: not a header field (an empty line must end the header "
                           "block)", l->no);
            break;
        }
        start = l->no;
        buf_add(&v, p + strlen(name) + 1, n - strlen(name) - 1);
    }
    free(name);
    buf_free(&v);
    return rc;
}

static int parse_body(struct lines *l, struct vac_file *f, char **err)
{
    struct buf b;
    buf_init(&b);
    const char *p;
    size_t n;
    int r;
    while ((r = next_line(l, &p, &n)) > 0) {
        if (has_ctl(p, n, 1)) {
            buf_free(&b);
            return fail(err, "line %d: a control character (a lone CR, an escape...): "
                             "plain text only", l->no);
        }
        buf_add(&b, p, n);
        buf_addc(&b, '\n');
    }
    if (r < 0) {
        buf_free(&b);
        return fail(err, "line %d: longer than %d bytes", l->no, VAC_LINE_MAX);
    }
    if (!addr_utf8_valid(b.s, b.len)) {
        buf_free(&b);
        return fail(err, "the text is not UTF-8 (save the file as UTF-8)");
    }
    f->body = buf_steal(&b);
    return 0;
}

int vac_file_parse(const char *text, size_t len, struct vac_file *f, char **err)
{
    memset(f, 0, sizeof *f);
    sl_init(&f->extra);
    sl_init(&f->aliases);
    f->period = VAC_PERIOD_DEFAULT;
    f->check_to = 1;
    *err = NULL;
    if (len > VAC_FILE_MAX)
        return fail(err, "larger than %d bytes", VAC_FILE_MAX);
    if (memchr(text, '\0', len))
        return fail(err, "holds a NUL byte: not a text file");
    struct lines l = {.text = text, .len = len};
    const char *nl = memchr(text, '\n', len);
    char *first = field_name(text, nl ? (size_t)(nl - text) : len);
    int headed = first && known_field(first);
    free(first);
    if ((headed && parse_header(&l, f, err) < 0) || parse_body(&l, f, err) < 0) {
        char *e = *err;
        vac_file_free(f);
        *err = e;
        return -1;
    }
    if (f->subject && !addr_utf8_valid(f->subject, strlen(f->subject))) {
        vac_file_free(f);
        return fail(err, "Subject: is not UTF-8 (save the file as UTF-8)");
    }
    return 0;
}

/* ---- the reply ---- */

/* text with every $SUBJECT replaced by subj. */
static char *subst(const char *text, const char *subj)
{
    struct buf b;
    buf_init(&b);
    for (const char *p = text; *p;) {
        const char *q = strstr(p, "$SUBJECT");
        if (!q) {
            buf_adds(&b, p);
            break;
        }
        buf_add(&b, p, (size_t)(q - p));
        buf_adds(&b, subj);
        p = q + 8;
    }
    return buf_steal(&b);
}

/* "Subject: " and s: as it is when ASCII, else RFC 2047 B encoded words of at
 * most 45 bytes of text each (60 characters of base64: a word under 75). */
static void put_subject(const char *s, struct buf *out)
{
    static const char b64[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    buf_adds(out, "Subject: ");
    if (ascii_only(s)) {
        buf_adds(out, s);
        buf_addc(out, '\n');
        return;
    }
    size_t n = strlen(s);
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n) {
            size_t k = (unsigned char)s[j] >= 0x80 ? utf8_len(s + j, n - j) : 1;
            if (!k)
                k = 1;
            if (j + k - i > 45)
                break;
            j += k;
        }
        buf_adds(out, i ? "\n =?UTF-8?B?" : "=?UTF-8?B?");
        for (size_t p = i; p < j; p += 3) {
            unsigned v = (unsigned char)s[p] << 16;
            if (p + 1 < j)
                v |= (unsigned char)s[p + 1] << 8;
            if (p + 2 < j)
                v |= (unsigned char)s[p + 2];
            buf_addc(out, b64[v >> 18 & 63]);
            buf_addc(out, b64[v >> 12 & 63]);
            buf_addc(out, p + 1 < j ? b64[v >> 6 & 63] : '=');
            buf_addc(out, p + 2 < j ? b64[v & 63] : '=');
        }
        buf_adds(out, "?=");
        i = j;
    }
    buf_addc(out, '\n');
}

/* One msg-id "<left@right>": no spaces, controls or 8-bit bytes, one '<' and
 * one '>' at the ends. */
static int msgid_ok(const char *s, size_t n)
{
    if (n < 3 || n > 250 || s[0] != '<' || s[n - 1] != '>')
        return 0;
    for (size_t i = 1; i + 1 < n; i++)
        if ((unsigned char)s[i] <= ' ' || (unsigned char)s[i] >= 0x7f || s[i] == '<' ||
            s[i] == '>')
            return 0;
    return memchr(s, '@', n) != NULL;
}

/* In-Reply-To: and References: (RFC 5322 3.6.4). */
static void put_threading(const struct vac_orig *o, struct buf *out)
{
    char *id = o->msgid ? vac_clean_text(o->msgid, 250) : NULL;
    if (id && msgid_ok(id, strlen(id))) {
        buf_addf(out, "In-Reply-To: %s\nReferences:", id);
        struct strlist refs;
        sl_init(&refs);
        if (o->refs && strlen(o->refs) < 800)
            sl_split(&refs, o->refs, " \t");
        int all_ok = 1;
        for (size_t i = 0; i < refs.n; i++)
            all_ok &= msgid_ok(refs.v[i], strlen(refs.v[i]));
        for (size_t i = 0; all_ok && i < refs.n; i++)
            buf_addf(out, "\n %s", refs.v[i]); /* folded: each line short */
        buf_addf(out, "%s%s\n", refs.n && all_ok ? "\n " : " ", id);
        sl_free(&refs);
    }
    free(id);
}

static int needs_qp(unsigned char c, int at_end)
{
    return c >= 0x80 || c == '=' || (c < 0x20 && c != '\t') || c == 0x7f ||
           (at_end && (c == ' ' || c == '\t'));
}

/* The body in quoted-printable (RFC 2045 6.7), lines under 77 characters. */
static void put_qp(const char *body, struct buf *out)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const char *p = body; *p;) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p), col = 0;
        for (size_t i = 0; i < n; i++) {
            unsigned char c = (unsigned char)p[i];
            int enc = needs_qp(c, i + 1 == n);
            size_t w = enc ? 3 : 1;
            if (col + w > QP_LINE - 1) {
                buf_adds(out, "=\n");
                col = 0;
            }
            if (enc) {
                buf_addc(out, '=');
                buf_addc(out, hex[c >> 4]);
                buf_addc(out, hex[c & 15]);
            } else {
                buf_addc(out, (char)c);
            }
            col += w;
        }
        buf_addc(out, '\n');
        p += n + (nl != NULL);
    }
}

/* The longest line of text. */
static size_t longest_line(const char *s)
{
    size_t best = 0;
    while (*s) {
        size_t n = strcspn(s, "\n");
        if (n > best)
            best = n;
        s += n + (s[n] == '\n');
    }
    return best;
}

int vac_compose(const struct vac_file *f, const struct vac_orig *o, const char *from,
                const char *to, const char *host, time_t now, struct buf *out, char **err)
{
    *err = NULL;
    char *osubj = vac_clean_text(o->subject, ORIG_TEXT_MAX);
    char *subj = f->subject ? subst(f->subject, osubj)
                            : xasprintf("Auto: %s", *osubj ? osubj : "(no subject)");
    char *body = subst(f->body ? f->body : "", osubj);
    int rc = 0;
    if (strlen(subj) + 9 > VAC_LINE_MAX || longest_line(body) > VAC_LINE_MAX)
        rc = fail(err, "with the original's subject put in, a line is longer than %d bytes",
                  VAC_LINE_MAX);
    if (rc == 0) {
        if (f->from)
            buf_addf(out, "From: %s\n", f->from);
        else
            hdr_from_addr(from, NULL, out);
        buf_addf(out, "To: <%s>\n", to);
        put_subject(subj, out);
        struct buf d;
        buf_init(&d);
        date_rfc5322(now, &d);
        buf_addf(out, "Date: %s\nMessage-ID: ", d.s);
        buf_free(&d);
        hdr_msgid(NULL, host, out);
        buf_addc(out, '\n');
        put_threading(o, out);
        buf_adds(out, "Auto-Submitted: auto-replied\n");
        for (size_t i = 0; i < f->extra.n; i++)
            buf_addf(out, "%s\n", f->extra.v[i]);
        int eight = !ascii_only(body);
        buf_addf(out, "MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n"
                      "Content-Transfer-Encoding: %s\n\n",
                 eight ? "quoted-printable" : "7bit");
        if (eight)
            put_qp(body, out);
        else
            buf_adds(out, body);
    }
    free(osubj);
    free(subj);
    free(body);
    return rc;
}
