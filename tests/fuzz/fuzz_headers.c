/* fuzz_headers.c - headers.h: the header block scanner and the header writers.
 * Invariants: hdr_len within the input; hdr_get values unfolded and trimmed
 * (no LF, no edge blanks); hdr_strip_bcc leaves no Bcc: field, never
 * grows the text and is idempotent; recipients are canonical addresses;
 * hdr_line/hdr_from_line write exactly one line with no control byte, which
 * the scanner reads back as one complete field. */
#include "compat.h"

#include "address.h"
#include "fuzz.h"
#include "headers.h"
#include "util.h"

static void check_value(char *v)
{
    if (!v)
        return;
    size_t n = strlen(v);
    for (size_t i = 0; i < n; i++)
        FUZZ_CHECK(v[i] != '\n', "hdr_get value not unfolded"); /* a lone CR is data */
    if (n)
        FUZZ_CHECK(v[0] != ' ' && v[0] != '\t' && v[n - 1] != ' ' && v[n - 1] != '\t',
                   "hdr_get value not trimmed");
    free(v);
}

/* One line "Name: value\n" with no control byte but tab, read back as a field. */
static void check_one_line(const struct buf *b, const char *name)
{
    FUZZ_CHECK(b->len > 0 && b->s[b->len - 1] == '\n', "header line does not end in LF");
    FUZZ_CHECK(!fuzz_has_ctl(b->s, b->len - 1, 1), "header line holds a control byte");
    if (!*name)
        return;
    struct buf m;
    buf_init(&m);
    buf_add(&m, b->s, b->len);
    buf_adds(&m, "\nbody\n");
    struct hdr_info hi;
    hdr_scan(m.s, m.len, &hi);
    FUZZ_CHECK(hi.hdr_len == b->len, "written header line is not one complete field");
    char *v = hdr_get(m.s, m.len, name);
    FUZZ_CHECK(v != NULL, "written field not found by hdr_get");
    check_value(v);
    buf_free(&m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *msg = (const char *)data;
    struct hdr_info hi;
    hdr_scan(msg, size, &hi);
    FUZZ_CHECK(hi.hdr_len <= size, "hdr_len past the input");
    FUZZ_CHECK(hi.received >= 0, "negative Received: count");

    static const char *const names[] = {"To", "Cc", "Bcc", "Subject", "From", "Message-ID"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        check_value(hdr_get(msg, size, names[i]));

    struct strlist rc;
    sl_init(&rc);
    hdr_recipients(msg, size, &rc);
    for (size_t i = 0; i < rc.n; i++) {
        char *a = NULL;
        const char *why;
        FUZZ_CHECK(addr_parse_mailbox(rc.v[i], &a, &why) == 0 && strcmp(a, rc.v[i]) == 0,
                   "hdr_recipients returned a non-canonical address");
        free(a);
    }
    sl_free(&rc);

    struct buf s1, s2;
    buf_init(&s1);
    buf_init(&s2);
    hdr_strip_bcc(msg, size, &s1);
    FUZZ_CHECK(s1.len <= size, "hdr_strip_bcc grew the text");
    char *bcc = hdr_get(s1.s ? s1.s : "", s1.len, "Bcc");
    FUZZ_CHECK(bcc == NULL, "a Bcc: field survived hdr_strip_bcc");
    hdr_strip_bcc(s1.s ? s1.s : "", s1.len, &s2);
    FUZZ_CHECK(s1.len == s2.len && (s1.len == 0 || memcmp(s1.s, s2.s, s1.len) == 0),
               "hdr_strip_bcc is not idempotent");
    buf_free(&s1);
    buf_free(&s2);

    /* the writers: name / value / user / host / gecos carved from the input */
    char *s = fuzz_str(data, size);
    char *parts[4] = {s, "", "", ""};
    for (int k = 1; k < 4; k++) {
        char *p = strchr(parts[k - 1], '|');
        if (!p)
            break;
        *p = '\0';
        parts[k] = p + 1;
    }
    struct buf b;
    buf_init(&b);
    hdr_from_line(parts[1], parts[2], parts[3], &b);
    FUZZ_CHECK(b.len > 6 && memcmp(b.s, "From: ", 6) == 0, "hdr_from_line does not start with From:");
    check_one_line(&b, "From");
    buf_free(&b);
    free(s);
    return 0;
}
