/* address.c - mail address syntax: RFC 5321 paths and RFC 5322 address lists.
 *
 * All input here is untrusted (SMTP commands, message headers, command lines).
 * The strict parser (parse_path) is the single place that decides what an
 * address is; the header-list parser only cuts candidates out of a header
 * value and hands each one to the strict parser.  Runs unprivileged. */
#include "compat.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "address.h"

/* Reasons, for 501/553 replies: short, static, saying what to fix. */
#define R_CTRL "address has a control character"
#define R_UTF8 "address is not valid UTF-8"
#define R_EMPTY "address is empty"
#define R_NULL "the null address <> is not allowed here"
#define R_NOGT "missing > at the end of the address"
#define R_ANGLE "unbalanced < > in address"
#define R_QUOTE "unbalanced quotes in address"
#define R_BRACKET "unbalanced [ ] in address literal"
#define R_LOCAL_EMPTY "local part is empty"
#define R_LOCAL_CHAR "local part has a character that must be quoted"
#define R_LOCAL_AT "address has an unquoted @ in its local part"
#define R_LOCAL_LONG "local part is too long (max 64 characters)"
#define R_LOCAL_USER "local user name may not start with |, /, : or -"
#define R_LOCAL_DOT "local part may not start or end with a dot or hold two in a row " \
                    "(quote it: \"a..b\"@example.com)"
#define R_LOCAL_MIX "local part mixes quoted and unquoted text (quote all of it)"
#define R_ESCAPE "a backslash in a quoted local part may only escape printable ASCII"
#define R_COMMENT "comments ( ) are not allowed in an SMTP address"
#define R_TARGET "an address may not start with | or / (programs and files are named " \
                 "only in aliases and .forward files)"
#define R_DOMAIN_MISSING "domain name is missing after @"
#define R_DOMAIN "domain name is not valid"
#define R_DOMAIN_LONG "domain name is too long (max 255 characters)"
#define R_DOMAIN_DOT "domain name may not end with a dot"
#define R_LITERAL "address literal is not valid"
#define R_LONG "address is too long (max 254 characters)"
#define R_ROUTE "source route is not valid"
#define R_JUNK "junk after the address"

/* An address literal's text between the brackets is at most this long
 * ("IPv6:" + the longest IPv6 text form); longer is an error, not a split. */
#define LITERAL_MAX 64

/* One address being parsed. */
struct ap {
    const char *p;      /* cursor into the input */
    struct buf local;   /* local part with quotes and escapes removed */
    int quoted;         /* the local part was a Quoted-string */
    struct buf domain;  /* canonical domain; empty when there is none */
    const char *why;    /* reason of the failure */
};

static int fail(struct ap *a, const char *why)
{
    if (!a->why)
        a->why = why;
    return -1;
}

static int is_alnum(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* RFC 5322 atext (ASCII part). */
static int is_atext(unsigned char c)
{
    return is_alnum(c) || (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

static int is_ctrl(unsigned char c)
{
    return c < 0x20 || c == 0x7f;
}

/* Length of the valid UTF-8 sequence starting at s (a byte >= 0x80), or 0:
 * overlong forms, surrogates, code points past U+10FFFF and C1 controls are
 * invalid.  Stops at a NUL (never reads past the string). */
static size_t utf8_seq(const unsigned char *s)
{
    unsigned c = s[0], cp, min;
    size_t n;

    if (c >= 0xc2 && c <= 0xdf)
        n = 2, cp = c & 0x1f, min = 0x80;
    else if (c >= 0xe0 && c <= 0xef)
        n = 3, cp = c & 0x0f, min = 0x800;
    else if (c >= 0xf0 && c <= 0xf4)
        n = 4, cp = c & 0x07, min = 0x10000;
    else
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff) || cp <= 0x9f)
        return 0;
    return n;
}

int addr_utf8_valid(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        if (p[i] < 0x80) {
            i++;
            continue;
        }
        size_t k = utf8_seq(p + i);
        if (!k || k > n - i)
            return 0;
        i += k;
    }
    return 1;
}

/* The whole input must be free of control characters (a tab only between
 * words, which the parsers below never accept inside an address) and be valid
 * UTF-8: checked first, so nothing later has to worry about it. */
static int check_text(struct ap *a, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;

    while (*p) {
        if (*p >= 0x80) {
            size_t n = utf8_seq(p);
            if (!n)
                return fail(a, R_UTF8);
            p += n;
            continue;
        }
        if (is_ctrl(*p) && *p != '\t')
            return fail(a, R_CTRL);
        p++;
    }
    return 0;
}

/* Quoted-string (RFC 5321 4.1.2, RFC 6531 3.3): qtextSMTP is printable
 * ASCII but '"' and '\\', or UTF-8 (already validated by check_text);
 * quoted-pairSMTP is '\\' and printable ASCII.  Its content, unescaped, is the
 * local part. */
static int parse_quoted(struct ap *a)
{
    const unsigned char *start = (const unsigned char *)a->p;
    const unsigned char *p = start + 1;

    a->quoted = 1;
    for (;;) {
        unsigned char c = *p;
        if (c == '"')
            break;
        if (c == '\0')
            return fail(a, R_QUOTE);
        if (c == '\\') {
            c = *++p;
            if (c == '\0')
                return fail(a, R_QUOTE);
            if (c < 0x20 || c > 0x7e)
                return fail(a, is_ctrl(c) ? R_CTRL : R_ESCAPE);
        }
        if (is_ctrl(c))
            return fail(a, R_CTRL);
        buf_addc(&a->local, c);
        p++;
        if ((size_t)(p - start) > ADDR_LOCAL_MAX)
            return fail(a, R_LOCAL_LONG);
    }
    a->p = (const char *)p + 1;
    return 0;
}

/* Length of the atext run at p (RFC 5321 Atom; RFC 6531 adds UTF-8), or 0. */
static size_t atom_len(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n = 0;

    for (;;) {
        size_t k = p[n] >= 0x80 ? utf8_seq(p + n) : (size_t)is_atext(p[n]);
        if (k == 0)
            return n;
        n += k;
        if (n > ADDR_LOCAL_MAX)
            return n; /* long enough to fail: stop reading */
    }
}

/* Dot-string = Atom *("." Atom): no leading, trailing or doubled dot. */
static int parse_dot_string(struct ap *a)
{
    if (*a->p == '.')
        return fail(a, R_LOCAL_DOT);
    for (;;) {
        size_t n = atom_len(a->p);
        if (n == 0)
            return 0; /* empty: the caller says what is wrong */
        buf_add(&a->local, a->p, n);
        a->p += n;
        if (a->local.len > ADDR_LOCAL_MAX)
            return fail(a, R_LOCAL_LONG);
        if (*a->p != '.')
            return 0;
        if (atom_len(a->p + 1) == 0)
            return fail(a, a->p[1] == '"' ? R_LOCAL_MIX : R_LOCAL_DOT);
        buf_addc(&a->local, '.');
        a->p++;
    }
}

/* Local-part = Dot-string / Quoted-string, one or the other (RFC 5321
 * 4.1.2).  RFC 5322's obsolete mixtures ("a"b, a."b") and dot errors are
 * refused, never repaired into some other local part. */
static int parse_local(struct ap *a)
{
    return *a->p == '"' ? parse_quoted(a) : parse_dot_string(a);
}

static int valid_label(const unsigned char *s, size_t n)
{
    if (n == 0 || n > 63 || s[0] == '-' || s[n - 1] == '-')
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!is_alnum(s[i]) && s[i] != '-' && s[i] < 0x80)
            return 0;
    return 1;
}

/* Check the domain name s (n bytes, no trailing dot) label by label. */
static int valid_name(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t start = 0;

    if (n == 0)
        return 0;
    for (size_t i = 0; i <= n; i++) {
        if (i < n && p[i] != '.')
            continue;
        if (!valid_label(p + start, i - start))
            return 0;
        start = i + 1;
    }
    for (size_t i = 0; i < n; i++)
        if (p[i] >= 0x80) {
            size_t k = utf8_seq(p + i);
            if (!k || k > n - i)
                return 0;
            i += k - 1;
        }
    return 1;
}

/* The text between the brackets of an address literal (n bytes): write the
 * canonical literal "[1.2.3.4]" / "[IPv6:...]" to out (if not NULL) and the
 * bare numeric address to num.  Returns 4, 6 or 0 (not valid). */
static int parse_literal(const char *s, size_t n, struct buf *out, char *num, size_t numsz)
{
    char text[LITERAL_MAX + 1];
    unsigned char bin[sizeof(struct in6_addr)];
    char back[INET6_ADDRSTRLEN];
    int af = AF_INET;

    if (n > LITERAL_MAX)
        return 0;
    memcpy(text, s, n);
    text[n] = '\0';
    const char *ip = text;
    if (strncasecmp(text, "IPv6:", 5) == 0) {
        af = AF_INET6;
        ip += 5;
    }
    if (inet_pton(af, ip, bin) != 1 || !inet_ntop(af, bin, back, sizeof back))
        return 0;
    if (num && str_copy(num, back, numsz) < 0)
        return 0;
    if (out)
        buf_addf(out, "[%s%s]", af == AF_INET6 ? "IPv6:" : "", back);
    return af == AF_INET6 ? 6 : 4;
}

/* Canonicalise the domain text s (n bytes) into out: lower case (ASCII only,
 * no locale), length and label syntax checked.  A trailing dot is an error in
 * an address (RFC 5321 Domain has none); with trailing_dot one is dropped. */
static const char *canon_domain(const char *s, size_t n, int trailing_dot, struct buf *out)
{
    if (n == 0)
        return R_DOMAIN_MISSING;
    if (s[0] == '[') {
        if (n < 2 || s[n - 1] != ']')
            return R_BRACKET;
        if (!parse_literal(s + 1, n - 2, out, NULL, 0))
            return R_LITERAL;
        return NULL;
    }
    if (n > 1 && s[n - 1] == '.' && s[n - 2] != '.') {
        if (!trailing_dot)
            return R_DOMAIN_DOT;
        n--;
    }
    if (n > ADDR_DOMAIN_MAX)
        return R_DOMAIN_LONG;
    if (!valid_name(s, n))
        return R_DOMAIN;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        buf_addc(out, c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
    }
    return NULL;
}

/* Length of the domain text at s: a bracketed literal, or a run of the bytes
 * a domain may hold (anything else ends it; validation comes later). */
static size_t domain_span(struct ap *a, const char *s)
{
    if (*s == '[') {
        const char *e = s + 1 + strcspn(s + 1, "[]\\\"");
        if (*e != ']') {
            fail(a, R_BRACKET);
            return 0;
        }
        return (size_t)(e - s) + 1;
    }
    const unsigned char *p = (const unsigned char *)s;
    while (is_alnum(*p) || *p == '-' || *p == '.' || *p >= 0x80)
        p++;
    return (size_t)(p - (const unsigned char *)s);
}

static int parse_domain(struct ap *a)
{
    size_t n = domain_span(a, a->p);
    if (a->why)
        return -1;
    const char *why = canon_domain(a->p, n, 0, &a->domain);
    if (why)
        return fail(a, why);
    a->p += n;
    return 0;
}

/* "@a,@b:" before the mailbox (RFC 5321 A-d-l): checked, then dropped. */
static int parse_route(struct ap *a)
{
    struct buf scratch;
    buf_init(&scratch);
    while (*a->p == '@') {
        a->p++;
        size_t n = domain_span(a, a->p);
        if (n == 0 || canon_domain(a->p, n, 0, &scratch)) {
            buf_free(&scratch);
            return fail(a, n == 0 || a->p[n] == '>' ? R_LOCAL_EMPTY : R_ROUTE);
        }
        a->p += n;
        if (*a->p == ':') {
            a->p++;
            buf_free(&scratch);
            return 0;
        }
        if (*a->p != ',') {
            buf_free(&scratch);
            return fail(a, *a->p == '>' || *a->p == '\0' ? R_LOCAL_EMPTY : R_ROUTE);
        }
        a->p++;
    }
    buf_free(&scratch);
    return fail(a, R_ROUTE);
}

/* local ["@" domain] */
static int parse_mailbox(struct ap *a)
{
    if (parse_local(a) < 0)
        return -1;
    if (*a->p != '@')
        return 0;
    if (a->local.len == 0)
        return fail(a, R_LOCAL_EMPTY);
    a->p++;
    return parse_domain(a);
}

/* Why the address stopped at a->p, which is not where it should have ended. */
static int fail_at(struct ap *a, int bracketed)
{
    char c = *a->p;

    if (c == '\0')
        return fail(a, bracketed ? R_NOGT : R_EMPTY);
    if (c == '@')
        return fail(a, R_LOCAL_AT);
    if (c == '<' || c == '>')
        return fail(a, R_ANGLE);
    if ((c == '(' || c == ')') && (a->domain.len || (!a->quoted && !a->local.len)))
        return fail(a, R_COMMENT);
    if (a->domain.len == 0 && (a->quoted || a->local.len) &&
        (c == '"' || c == '.' || (unsigned char)c >= 0x80 || is_atext((unsigned char)c)))
        return fail(a, R_LOCAL_MIX);
    if (c == '"' && a->domain.len == 0)
        return fail(a, R_QUOTE);
    if (a->domain.len)
        return fail(a, bracketed && (c == ' ' || c == '\t') ? R_JUNK : R_DOMAIN);
    if (a->local.len == 0 && c == '[')
        return fail(a, R_LOCAL_EMPTY);
    return fail(a, R_LOCAL_CHAR);
}

/* The canonical form of what was parsed, or NULL with a->why set. */
static char *canonical(struct ap *a)
{
    struct buf out;
    const char *local = a->local.s;

    if (a->domain.len == 0 && strchr("|/:-", local[0]))
        return fail(a, local[0] ? R_LOCAL_USER : R_EMPTY), NULL;
    buf_init(&out);
    if (addr_needs_quotes(local)) {
        buf_addc(&out, '"');
        for (const char *p = local; *p; p++) {
            if (*p == '"' || *p == '\\')
                buf_addc(&out, '\\');
            buf_addc(&out, *p);
        }
        buf_addc(&out, '"');
    } else {
        buf_adds(&out, local);
    }
    if (out.len > ADDR_LOCAL_MAX) {
        buf_free(&out);
        return fail(a, R_LOCAL_LONG), NULL;
    }
    if (a->domain.len) {
        buf_addc(&out, '@');
        buf_add(&out, a->domain.s, a->domain.len);
    }
    if (out.len > ADDR_MAX) {
        buf_free(&out);
        return fail(a, R_LONG), NULL;
    }
    /* the queue reads a recipient starting with | or / as a program or file
     * target (envelope.h), so no address may look like one */
    if (out.s[0] == '|' || out.s[0] == '/') {
        buf_free(&out);
        return fail(a, R_TARGET), NULL;
    }
    return out.s; /* ownership passes to the caller */
}

static int skip_space(const char **p)
{
    while (**p == ' ' || **p == '\t')
        (*p)++;
    return 0;
}

/* The path itself, after check_text; *null set for "<>". */
static int parse_path(struct ap *a, int *null)
{
    skip_space(&a->p);
    if (*a->p != '<') {
        if (*a->p == '\0')
            return fail(a, R_EMPTY);
        if (*a->p == '@')
            return fail(a, R_LOCAL_EMPTY);
        if (parse_mailbox(a) < 0)
            return -1;
        if (*a->p != '\0' && *a->p != ' ' && *a->p != '\t')
            return fail_at(a, 0);
        return 0;
    }
    a->p++;
    if (*a->p == '>') {
        a->p++;
        *null = 1;
        return 0;
    }
    if (*a->p == '@' && parse_route(a) < 0)
        return -1;
    if (parse_mailbox(a) < 0)
        return -1;
    if (*a->p != '>')
        return fail_at(a, 1);
    a->p++;
    return 0;
}

int addr_parse_path(const char *s, int allow_null, char **addr, const char **rest,
                    const char **why)
{
    struct ap a = { .p = s, .why = NULL };
    int null = 0;

    *addr = NULL;
    *rest = s;
    *why = NULL;
    buf_init(&a.local);
    buf_init(&a.domain);
    if (check_text(&a, s) == 0 && parse_path(&a, &null) == 0) {
        if (null && !allow_null)
            fail(&a, R_NULL);
        else
            *addr = null ? xstrdup("") : canonical(&a);
    }
    buf_free(&a.local);
    buf_free(&a.domain);
    if (!*addr) {
        *why = a.why ? a.why : R_EMPTY;
        return -1;
    }
    skip_space(&a.p);
    *rest = a.p;
    return 0;
}

int addr_parse_mailbox(const char *s, char **addr, const char **why)
{
    const char *rest;

    if (addr_parse_path(s, 0, addr, &rest, why) < 0)
        return -1;
    if (*rest != '\0') {
        free(*addr);
        *addr = NULL;
        *why = R_JUNK;
        return -1;
    }
    return 0;
}

/* Where the '@' between local part and domain is: after a quoted local part
 * if there is one, then the last '@' (a domain never holds one). */
static const char *find_at(const char *addr)
{
    const char *p = addr;

    if (*p == '"') {
        for (p++; *p && *p != '"'; p++)
            if (*p == '\\' && p[1])
                p++;
    }
    return strrchr(p, '@');
}

void addr_split(const char *addr, char **local, char **domain)
{
    const char *at = addr ? find_at(addr) : NULL;

    if (!addr) {
        *local = NULL;
        *domain = NULL;
    } else if (at) {
        *local = xstrndup(addr, (size_t)(at - addr));
        *domain = xstrdup(at + 1);
    } else {
        *local = xstrdup(addr);
        *domain = NULL;
    }
}

const char *addr_domain(const char *addr)
{
    const char *at = addr ? find_at(addr) : NULL;
    return at ? at + 1 : NULL;
}

int addr_valid_domain(const char *s)
{
    struct buf b;
    const char *why;

    if (!s)
        return 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (is_ctrl(*p))
            return 0;
    buf_init(&b);
    why = canon_domain(s, strlen(s), 1, &b);
    buf_free(&b);
    return why == NULL;
}

int addr_literal(const char *domain, char *out, size_t outsz)
{
    size_t n = domain ? strlen(domain) : 0;

    if (n < 2 || domain[0] != '[' || domain[n - 1] != ']')
        return 0;
    return parse_literal(domain + 1, n - 2, NULL, out, outsz);
}

int addr_needs_quotes(const char *local)
{
    const unsigned char *p = (const unsigned char *)local;
    unsigned char prev = '.';

    if (!*p)
        return 1;
    for (; *p; p++) {
        if (*p == '.' ? prev == '.' : !is_atext(*p) && *p < 0x80)
            return 1;
        prev = *p;
    }
    return prev == '.';
}

/* ---- RFC 5322 address lists ----
 *
 * The list parser does not decide what a valid address is: it strips comments
 * and display names, cuts the value at top-level commas and group delimiters,
 * and passes each candidate "<...>" to the strict path parser. */

struct elem {
    struct buf plain;   /* addr-spec text outside <> */
    struct buf angle;   /* text inside <> */
    int in_angle, had_angle;
    int words;          /* plain text had words separated by space: a phrase */
    int bad;            /* this element can't be an address */
    int space;          /* whitespace or a comment since the last byte */
    const char *start;  /* where the entry began in the value (for reports) */
};

static void elem_reset(struct elem *e)
{
    buf_reset(&e->plain);
    buf_reset(&e->angle);
    e->in_angle = e->had_angle = e->words = e->bad = e->space = 0;
}

/* Append c, dropping whitespace where RFC 5322 allows CFWS inside an addr-spec
 * or a route (around "." "@" "," ":"); whitespace elsewhere separates phrase words. */
static void elem_addc(struct elem *e, char c)
{
    struct buf *b = e->in_angle ? &e->angle : &e->plain;

    if (e->space && b->len && !strchr(".@,:", b->s[b->len - 1]) && !strchr(".@,:", c)) {
        if (e->in_angle)
            e->bad = 1;
        else
            e->words = 1;
    }
    e->space = 0;
    buf_addc(b, c);
}

/* A nested comment at p ('('): returns the position after it. */
static const char *skip_comment(const char *p)
{
    int depth = 0;

    for (; *p; p++) {
        if (*p == '\\' && p[1])
            p++;
        else if (*p == '(')
            depth++;
        else if (*p == ')' && --depth == 0)
            return p + 1;
    }
    return p;
}

/* Copy a quoted string or a domain literal verbatim (the strict parser reads it). */
static const char *copy_delimited(struct elem *e, const char *p, char close)
{
    elem_addc(e, *p++);
    for (; *p && *p != close; p++) {
        if (*p == '\\' && p[1])
            elem_addc(e, *p++);
        elem_addc(e, *p);
    }
    if (!*p) {
        e->bad = 1;
        return p;
    }
    elem_addc(e, *p);
    return p + 1;
}

/* Report an entry that is not an address: "TEXT: why" (TEXT as written in
 * the value, trimmed and made printable). */
static void elem_report(const struct elem *e, const char *end, const char *why,
                        struct strlist *bad)
{
    const char *s = e->start;
    while (s < end && (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n' || *s == ','))
        s++;
    while (end > s && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r' ||
                       end[-1] == '\n'))
        end--;
    char *text = str_sanitize(s, (size_t)(end - s));
    sl_add_owned(bad, xasprintf("%s: %s", text, why));
    free(text);
}

/* The element (ending at end in the value) is complete: add its address to
 * out, or report it to bad (if not NULL) when it is not empty.  Returns 1 if
 * added. */
static int elem_finish(struct elem *e, const char *end, struct strlist *out,
                       struct strlist *bad)
{
    const struct buf *b = e->had_angle ? &e->angle : &e->plain;
    const char *why = NULL;
    int added = 0;

    if (e->bad || e->in_angle) {
        why = "not an address (unbalanced or misplaced < > \" ; or ,)";
    } else if (!e->had_angle && e->words) {
        why = "not an address (a name without <address>)";
    } else if (b->len || e->had_angle) {
        char *text = xasprintf("<%s>", b->s ? b->s : "");
        char *addr;
        const char *rest;
        if (addr_parse_path(text, 0, &addr, &rest, &why) == 0) {
            if (*rest == '\0') {
                sl_add_owned(out, addr);
                added = 1;
            } else {
                free(addr);
                why = R_JUNK;
            }
        }
        free(text);
    }
    if (why && bad)
        elem_report(e, end, why, bad);
    elem_reset(e);
    e->start = end;
    return added;
}

int addr_parse_list(const char *value, struct strlist *out)
{
    return addr_parse_list_report(value, out, NULL);
}

int addr_parse_list_report(const char *value, struct strlist *out, struct strlist *bad)
{
    struct elem e;
    const char *p = value;
    int added = 0, in_group = 0;

    buf_init(&e.plain);
    buf_init(&e.angle);
    elem_reset(&e);
    e.start = value;
    while (p && *p) {
        char c = *p;
        if (c == '(') {
            p = skip_comment(p);
            e.space = 1;
        } else if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
            e.space = 1;
            p++;
        } else if (e.had_angle && !e.in_angle && c != ',' && c != ';' && c != '<') {
            p++; /* after "<addr>" only a comment belongs; ignore the rest */
        } else if (c == '"' || c == '[') {
            p = copy_delimited(&e, p, c == '"' ? '"' : ']');
        } else if (!e.in_angle && (c == ',' || (c == ';' && in_group))) {
            added += elem_finish(&e, p, out, bad);
            in_group &= c == ',';
            p++;
            e.start = p;
        } else if (!e.in_angle && c == ';') {
            e.bad = 1; /* ';' outside a group: this element is broken */
            p++;
        } else if (!e.in_angle && c == ':') {
            elem_reset(&e); /* "group name:" - the phrase so far is no address */
            in_group = 1;
            p++;
            e.start = p;
        } else if (c == '<') {
            if (e.had_angle)
                e.bad = 1;
            e.in_angle = e.had_angle = 1;
            e.space = 0;
            p++;
        } else if (c == '>') {
            if (!e.in_angle)
                e.bad = 1;
            e.in_angle = 0;
            p++;
        } else {
            elem_addc(&e, c);
            p++;
        }
    }
    if (p)
        added += elem_finish(&e, p, out, bad);
    buf_free(&e.plain);
    buf_free(&e.angle);
    return added;
}
