/* header_qualify.c - "@domain" for unqualified addresses in address fields
 * (header_qualify.h).  A field body is cut into RFC 5322 tokens (comments
 * and white space dropped, their bytes kept in place), the tokens are
 * parsed as an address list, and the places where "@domain" goes are
 * noted; the body is then copied with those insertions. */
#include "compat.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "header_qualify.h"
#include "util.h"

enum tok_type { TK_ATOM, TK_QSTR, TK_DLIT, TK_SPECIAL };

struct tok {
    enum tok_type type;
    char ch;            /* TK_SPECIAL: the character */
    size_t start, end;  /* bytes of the value */
};

struct toks {
    struct tok *v;
    size_t n, cap;
};

static void tok_add(struct toks *t, enum tok_type type, char ch, size_t start, size_t end)
{
    if (t->n == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 32;
        t->v = xreallocarray(t->v, t->cap, sizeof *t->v);
    }
    t->v[t->n++] = (struct tok){type, ch, start, end};
}

/* atext (RFC 5322 3.2.3), and any byte past ASCII (RFC 6532's UTF-8). */
static int is_atext(unsigned char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch >= 0x80 || (ch && strchr("!#$%&'*+-/=?^_`{|}~", ch));
}

/* White space at i: blanks, a fold (LF then a blank), CR LF, the final LF.
 * Its length, or 0. */
static size_t ws_len(const char *s, size_t n, size_t i)
{
    if (s[i] == ' ' || s[i] == '\t')
        return 1;
    size_t j = i + (s[i] == '\r' && i + 1 < n && s[i + 1] == '\n');
    if (s[j] != '\n')
        return 0;
    if (j + 1 == n || s[j + 1] == ' ' || s[j + 1] == '\t')
        return j + 1 - i;
    return 0;
}

/* A quoted string, comment or domain literal opened at s[i]: the index past
 * its closing character, or 0 when it does not close, holds a control
 * character or a line end that is no fold, or nests comments too deep. */
static size_t skip_delimited(const char *s, size_t n, size_t i, char open, char close)
{
    int depth = 0;
    for (size_t j = i; j < n; j++) {
        unsigned char ch = (unsigned char)s[j];
        size_t w;
        if (ch == '\\' && j + 1 < n && s[j + 1] != '\n' && s[j + 1] != '\r') {
            j++;
        } else if (j > i && ch == (unsigned char)open && open == '(') {
            if (++depth >= HQ_COMMENT_DEPTH_MAX)
                return 0;
        } else if (j > i && ch == (unsigned char)close) {
            if (depth-- == 0)
                return j + 1;
        } else if ((w = ws_len(s, n, j)) > 0) {
            j += w - 1;
        } else if ((ch < 0x20 && ch != '\t') || ch == 0x7f) {
            return 0;
        }
    }
    return 0;
}

/* Cut value into tokens.  0, or -1 when it is not made of RFC 5322 tokens. */
static int tokenize(const char *s, size_t n, struct toks *t)
{
    size_t i = 0;
    while (i < n) {
        unsigned char ch = (unsigned char)s[i];
        size_t w = ws_len(s, n, i), end;
        if (w) {
            i += w;
        } else if (ch == '(') {
            if (!(end = skip_delimited(s, n, i, '(', ')')))
                return -1;
            i = end;
        } else if (ch == '"' || ch == '[') {
            if (!(end = skip_delimited(s, n, i, ch, ch == '"' ? '"' : ']')))
                return -1;
            tok_add(t, ch == '"' ? TK_QSTR : TK_DLIT, 0, i, end);
            i = end;
        } else if (is_atext(ch)) {
            for (end = i; end < n && is_atext((unsigned char)s[end]); end++)
                ;
            tok_add(t, TK_ATOM, 0, i, end);
            i = end;
        } else if (ch && strchr("<>:;@,.", ch)) {
            tok_add(t, TK_SPECIAL, (char)ch, i, i + 1);
            i++;
        } else {
            return -1; /* a control character, a stray ) ] or \ */
        }
    }
    return 0;
}

/* ---- the parser: where "@domain" goes ---- */

struct parse {
    const struct tok *v;
    size_t n;
    size_t *at;  /* offsets in the value to insert "@domain" at, ascending */
    size_t nat;
    int bad;
};

static int is_sp(const struct tok *t, char ch)
{
    return t->type == TK_SPECIAL && t->ch == ch;
}

static void insert_at(struct parse *p, size_t off)
{
    if (p->nat == HQ_ADDRS_MAX) {
        p->bad = 1;
        return;
    }
    p->at[p->nat++] = off;
}

/* Tokens [a, b) as an addr-spec: local-part ["@" domain].  Notes the
 * insertion when there is no domain and the local part is a dot-atom
 * (obsolete spaces around the dots allowed).  Anything else is left. */
static void addr_spec(struct parse *p, size_t a, size_t b)
{
    for (size_t i = a; i < b; i++)
        if (is_sp(&p->v[i], '@'))
            return; /* qualified (or not an address: not ours to mend) */
    if (a == b)
        return;
    for (size_t i = a; i < b; i++) {
        int want_word = (i - a) % 2 == 0;
        if (want_word ? p->v[i].type != TK_ATOM : !is_sp(&p->v[i], '.'))
            return; /* a quoted local part, or no local part at all */
    }
    if ((b - a) % 2 == 1)
        insert_at(p, p->v[b - 1].end);
}

/* One mailbox in tokens [a, b): [display-name] "<" [route ":"] addr-spec ">"
 * or a bare addr-spec. */
static void mailbox(struct parse *p, size_t a, size_t b)
{
    size_t lt = a;
    while (lt < b && !is_sp(&p->v[lt], '<')) {
        if (is_sp(&p->v[lt], '>') || is_sp(&p->v[lt], ';')) {
            p->bad = 1; /* a ">" without its "<", a ";" outside a group */
            return;
        }
        lt++;
    }
    if (lt == b) {
        addr_spec(p, a, b);
        return;
    }
    size_t gt = lt + 1;
    while (gt < b && !is_sp(&p->v[gt], '>') && !is_sp(&p->v[gt], '<'))
        gt++;
    if (gt + 1 != b || !is_sp(&p->v[gt], '>')) {
        p->bad = 1; /* "<" without its ">", or text after it */
        return;
    }
    size_t s = lt + 1;
    if (s < gt && is_sp(&p->v[s], '@')) { /* obs-route: @a,@b: */
        while (s < gt && !is_sp(&p->v[s], ':'))
            s++;
        s++;
    }
    if (s < gt)
        addr_spec(p, s, gt);
}

/* The element starting at token i, up to a ',' (or the ';' ending the group
 * we are in) outside angle brackets.  Its end index. */
static size_t element_end(const struct parse *p, size_t i, int in_group)
{
    int angle = 0;
    for (; i < p->n; i++) {
        const struct tok *t = &p->v[i];
        if (is_sp(t, '<'))
            angle = 1;
        else if (is_sp(t, '>'))
            angle = 0;
        else if (!angle && (is_sp(t, ',') || (in_group && is_sp(t, ';'))))
            break;
        else if (!angle && !in_group && is_sp(t, ':'))
            break; /* a group's name ends here */
    }
    return i;
}

/* The address list, from token i; in a group up to its ';'.  The index
 * after the list (after the ';' in a group). */
static size_t address_list(struct parse *p, size_t i, int in_group)
{
    while (i < p->n && !p->bad) {
        if (is_sp(&p->v[i], ',')) {
            i++; /* empty elements are allowed (obs-addr-list) */
            continue;
        }
        if (in_group && is_sp(&p->v[i], ';'))
            return i + 1;
        size_t e = element_end(p, i, in_group);
        if (e < p->n && is_sp(&p->v[e], ':')) {
            /* group: display-name ":" [members] ";" - the name is left alone */
            if (in_group || e == i) {
                p->bad = 1;
                break;
            }
            i = address_list(p, e + 1, 1);
            continue;
        }
        if (e > i)
            mailbox(p, i, e);
        i = e;
    }
    if (in_group)
        p->bad = 1; /* no ';' */
    return i;
}

size_t hq_value(const char *value, size_t n, const char *domain, struct buf *out)
{
    struct toks t = {0};
    struct parse p = {0};
    if (tokenize(value, n, &t) == 0) {
        p.v = t.v;
        p.n = t.n;
        p.at = xreallocarray(NULL, HQ_ADDRS_MAX, sizeof *p.at);
        address_list(&p, 0, 0);
    }
    if (p.bad || !p.at)
        p.nat = 0; /* not an address list: left as it is */
    /* the insertions were noted in token order: ascending offsets */
    size_t from = 0;
    for (size_t k = 0; k < p.nat; k++) {
        buf_add(out, value + from, p.at[k] - from);
        buf_addc(out, '@');
        buf_adds(out, domain);
        from = p.at[k];
    }
    buf_add(out, value + from, n - from);
    free(p.at);
    free(t.v);
    return p.nat;
}

int hq_field(const char *name, size_t n)
{
    static const char *const names[] = {"from", "sender", "reply-to", "to", "cc", "bcc"};
    if (n > 7 && strncasecmp(name, "resent-", 7) == 0) {
        name += 7;
        n -= 7;
        if (n == 8 && strncasecmp(name, "reply-to", 8) == 0)
            return 0; /* no Resent-Reply-To in RFC 5322 */
    }
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        if (strlen(names[i]) == n && strncasecmp(name, names[i], n) == 0)
            return 1;
    return 0;
}

/* The end of the field starting at i: past its last continuation line. */
static size_t field_end(const char *h, size_t len, size_t i)
{
    for (;;) {
        const char *nl = memchr(h + i, '\n', len - i);
        if (!nl)
            return len;
        i = (size_t)(nl - h) + 1;
        if (i == len || (h[i] != ' ' && h[i] != '\t'))
            return i;
    }
}

size_t hq_headers(const char *hdrs, size_t len, const char *domain, struct buf *out)
{
    size_t done = 0, i = 0;
    while (i < len) {
        size_t end = field_end(hdrs, len, i);
        const char *colon = memchr(hdrs + i, ':', end - i);
        size_t nlen = colon ? (size_t)(colon - (hdrs + i)) : 0;
        if (colon && hq_field(hdrs + i, nlen)) {
            size_t body = i + nlen + 1;
            buf_add(out, hdrs + i, body - i);
            done += hq_value(hdrs + body, end - body, domain, out);
        } else {
            buf_add(out, hdrs + i, end - i);
        }
        i = end;
    }
    return done;
}
