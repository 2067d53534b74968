/* headers.c - the header block of a message: scanning and the headers we add.
 *
 * Message text is untrusted: every walk below is bounded by the length the
 * caller gives (NUL bytes are data), and nothing we generate can contain a
 * CR or LF inside a field.  Runs unprivileged. */
#include "compat.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "address.h"
#include "headers.h"

/* Longest full name we put in a From: line (bytes): keeps the line well under
 * the 998-byte limit of RFC 5322. */
#define FULLNAME_MAX 200

/* One header field: name and the whole field text (continuations and the
 * final LF included). */
struct field {
    const char *name;
    size_t namelen;
    const char *text;
    size_t len;
};

static int is_name_char(unsigned char c)
{
    return c > 0x20 && c < 0x7f && c != ':';
}

/* End of the line starting at off: the offset after its LF, or len. */
static size_t line_end(const char *h, size_t len, size_t off)
{
    const char *nl = memchr(h + off, '\n', len - off);
    return nl ? (size_t)(nl - h) + 1 : len;
}

/* The field starting at *off, if the line there starts one; *off moves past it.
 * A last line cut short (no LF) made only of name characters counts as the
 * start of a field: the caller may have passed only part of the message. */
static int next_field(const char *h, size_t len, size_t *off, struct field *f)
{
    size_t i = *off, end = line_end(h, len, *off);

    while (i < end && is_name_char((unsigned char)h[i]))
        i++;
    if (i == *off || (i < len && h[i] != ':'))
        return 0;
    f->name = h + *off;
    f->namelen = i - *off;
    while (end < len && (h[end] == ' ' || h[end] == '\t'))
        end = line_end(h, len, end);
    f->text = h + *off;
    f->len = end - *off;
    *off = end;
    return 1;
}

static int field_is(const struct field *f, const char *name)
{
    size_t n = strlen(name);
    return f->namelen == n && strncasecmp(f->name, name, n) == 0;
}

/* The value of f unfolded (line breaks removed, NUL bytes turned into spaces
 * since a C string can't carry them) and trimmed of spaces and tabs. */
static char *field_value(const struct field *f)
{
    struct buf b;
    const char *p = f->text + f->namelen + 1, *end = f->text + f->len;

    buf_init(&b);
    if (p > end)
        p = end;
    for (; p < end; p++) {
        if (*p == '\n' || (*p == '\r' && p + 1 < end && p[1] == '\n'))
            continue;
        buf_addc(&b, *p ? *p : ' ');
    }
    char *s = b.s, *t = s + b.len;
    while (*s == ' ' || *s == '\t')
        s++;
    while (t > s && (t[-1] == ' ' || t[-1] == '\t'))
        t--;
    char *v = xstrndup(s, (size_t)(t - s));
    buf_free(&b);
    return v;
}

void hdr_scan(const char *msg, size_t len, struct hdr_info *hi)
{
    struct field f;
    size_t off = 0;

    memset(hi, 0, sizeof *hi);
    while (next_field(msg, len, &off, &f)) {
        if (field_is(&f, "Date"))
            hi->has_date = 1;
        else if (field_is(&f, "Message-ID"))
            hi->has_msgid = 1;
        else if (field_is(&f, "From"))
            hi->has_from = 1;
        else if (field_is(&f, "Sender"))
            hi->has_sender = 1;
        else if (field_is(&f, "To"))
            hi->has_to = 1;
        else if (field_is(&f, "Received"))
            hi->received++;
    }
    hi->hdr_len = off;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)msg[i] >= 0x80) {
            hi->eight_bit = 1;
            break;
        }
}

void hdr_recipients(const char *hdrs, size_t len, struct strlist *out)
{
    hdr_recipients_report(hdrs, len, out, NULL);
}

void hdr_recipients_report(const char *hdrs, size_t len, struct strlist *out,
                           struct strlist *bad)
{
    struct field f;
    size_t off = 0;
    struct strlist b;

    sl_init(&b);
    while (next_field(hdrs, len, &off, &f)) {
        if (field_is(&f, "To") || field_is(&f, "Cc") || field_is(&f, "Bcc")) {
            char *v = field_value(&f);
            addr_parse_list_report(v, out, bad ? &b : NULL);
            free(v);
            for (size_t i = 0; i < b.n; i++) /* say which field it was in */
                sl_add_owned(bad, xasprintf("%.*s: %s", (int)f.namelen, f.name, b.v[i]));
            sl_free(&b);
            sl_init(&b);
        }
    }
    sl_free(&b);
}

void hdr_strip_bcc(const char *hdrs, size_t len, struct buf *out)
{
    struct field f;
    size_t off = 0;

    while (next_field(hdrs, len, &off, &f))
        if (!field_is(&f, "Bcc"))
            buf_add(out, f.text, f.len);
    buf_add(out, hdrs + off, len - off); /* past the header block: unchanged */
}

char *hdr_get(const char *hdrs, size_t len, const char *name)
{
    struct field f;
    size_t off = 0;

    while (next_field(hdrs, len, &off, &f))
        if (field_is(&f, name))
            return field_value(&f);
    return NULL;
}

/* n random bytes: getrandom(2), else /dev/urandom.  0 or -1. */
static int random_bytes(unsigned char *p, size_t n)
{
    while (n > 0) {
        ssize_t r = getrandom(p, n, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        p += r;
        n -= (size_t)r;
    }
    if (n == 0)
        return 0;
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t r = read_all(fd, p, n);
    close(fd);
    return r == (ssize_t)n ? 0 : -1;
}

/* RFC 5322 atext, ASCII part. */
static int is_atext(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

/* Copy s keeping only dot-atom characters (what a Message-ID may hold). */
static void add_atom_text(struct buf *out, const char *s)
{
    for (; s && *s; s++)
        if (*s == '.' || is_atext((unsigned char)*s))
            buf_addc(out, *s);
}

void hdr_msgid(const char *qid, const char *host, struct buf *out)
{
    unsigned char rnd[8];
    struct timespec ts;
    struct tm tm;

    clock_gettime(CLOCK_REALTIME, &ts);
    if (random_bytes(rnd, sizeof rnd) < 0) {
        /* No randomness at all: time in nanoseconds + pid + qid still
         * make the id unique on this host. */
        uint64_t x = (uint64_t)ts.tv_nsec ^ ((uint64_t)getpid() << 32);
        for (size_t i = 0; i < sizeof rnd; i++, x >>= 8)
            rnd[i] = (unsigned char)x;
    }
    if (!gmtime_r(&ts.tv_sec, &tm))
        memset(&tm, 0, sizeof tm);
    buf_addf(out, "<%04d%02d%02d%02d%02d%02d.%ld.", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (long)getpid());
    for (size_t i = 0; i < sizeof rnd; i++)
        buf_addf(out, "%02x", rnd[i]);
    if (qid && *qid) {
        buf_addc(out, '.');
        add_atom_text(out, qid);
    }
    buf_addc(out, '@');
    if (host && *host) {
        add_atom_text(out, host);
    } else {
        char *n = host_nodename();
        add_atom_text(out, n);
        free(n);
    }
    buf_addc(out, '>');
}

/* A display name made safe: control characters as spaces, trimmed, at most
 * FULLNAME_MAX bytes (cut before a UTF-8 continuation).  Takes b's text. */
static char *clean_name(struct buf *b)
{
    for (size_t i = 0; i < b->len; i++)
        if ((unsigned char)b->s[i] < 0x20 || b->s[i] == 0x7f)
            b->s[i] = ' ';
    if (b->len > FULLNAME_MAX) {
        size_t n = FULLNAME_MAX;
        while (n > 0 && ((unsigned char)b->s[n] & 0xc0) == 0x80)
            n--;
        buf_truncate(b, n);
    }
    char *name = xstrdup(str_trim(b->s));
    buf_free(b);
    return name;
}

/* The full name from a GECOS field: up to the first comma, '&' standing for
 * the capitalised login name (BSD convention), then clean_name. */
static char *gecos_name(const char *gecos, const char *user)
{
    struct buf b;

    buf_init(&b);
    for (const char *p = gecos; *p && *p != ','; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '&' && *user) {
            char u = user[0];
            buf_addc(&b, u >= 'a' && u <= 'z' ? u - 'a' + 'A' : u);
            buf_adds(&b, user + 1);
        } else {
            buf_addc(&b, c);
        }
    }
    return clean_name(&b);
}

/* A display name as an RFC 5322 phrase: bare words when it is only atoms and
 * spaces, else a quoted string with '"' and '\' escaped. */
static void add_phrase(struct buf *out, const char *name)
{
    int plain = 1;

    for (const unsigned char *p = (const unsigned char *)name; *p; p++)
        if (*p != ' ' && *p < 0x80 && !is_atext(*p))
            plain = 0;
    if (plain) {
        buf_adds(out, name);
        return;
    }
    buf_addc(out, '"');
    for (const char *p = name; *p; p++) {
        if (*p == '"' || *p == '\\')
            buf_addc(out, '\\');
        buf_addc(out, *p);
    }
    buf_addc(out, '"');
}

/* user@host with the local part quoted when it needs it; control characters
 * can't come through (dropped). */
static void add_user_address(struct buf *out, const char *user, const char *host)
{
    struct buf u;

    buf_init(&u);
    for (const unsigned char *p = (const unsigned char *)user; *p; p++)
        if (*p >= 0x20 && *p != 0x7f)
            buf_addc(&u, *p);
    if (addr_needs_quotes(u.s)) {
        buf_addc(out, '"');
        for (const char *p = u.s; *p; p++) {
            if (*p == '"' || *p == '\\')
                buf_addc(out, '\\');
            buf_addc(out, *p);
        }
        buf_addc(out, '"');
    } else {
        buf_adds(out, u.s);
    }
    buf_free(&u);
    if (host && *host) {
        buf_addc(out, '@');
        for (const unsigned char *p = (const unsigned char *)host; *p; p++)
            if (*p > 0x20 && *p != 0x7f && *p != '<' && *p != '>')
                buf_addc(out, *p);
    }
}

void hdr_from_line(const char *user, const char *host, const char *fullname,
                   struct buf *out)
{
    char *name = gecos_name(fullname ? fullname : "", user ? user : "");

    buf_adds(out, "From: ");
    if (*name) {
        add_phrase(out, name);
        buf_addc(out, ' ');
    }
    buf_addc(out, '<');
    add_user_address(out, user ? user : "", host);
    buf_adds(out, ">\n");
    free(name);
}

void hdr_from_addr(const char *addr, const char *name, struct buf *out)
{
    struct buf b;

    buf_init(&b);
    buf_adds(&b, name ? name : "");
    char *phrase = clean_name(&b);
    buf_adds(out, "From: ");
    if (*phrase) {
        add_phrase(out, phrase);
        buf_addc(out, ' ');
    }
    buf_addc(out, '<');
    for (const unsigned char *p = (const unsigned char *)(addr ? addr : ""); *p; p++)
        if (*p >= 0x20 && *p != 0x7f)
            buf_addc(out, *p);
    buf_adds(out, ">\n");
    free(phrase);
}
