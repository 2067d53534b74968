/* test_headers.c - headers.c: header block scan, recipients, Bcc, generated fields. */
#include "compat.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "headers.h"

#define S(lit) lit, sizeof(lit) - 1

struct scan_case {
    const char *msg;
    size_t len;
    size_t hdr_len;
    int date, msgid, from, sender, to, received, eight_bit;
};

static const struct scan_case scan_cases[] = {
    { S("Subject: hi\n\nbody\n"), 12, 0, 0, 0, 0, 0, 0, 0 },
    { S("From: a@b\nTo: c@d\nDate: x\nMessage-ID: <1@x>\nSender: s@x\n\nbody\n"), 56,
      1, 1, 1, 1, 1, 0, 0 },
    { S("from: a\nTO: b\ndate: x\nmessage-id: y\nSENDER: z\n\n"), 46, 1, 1, 1, 1, 1, 0, 0 },
    { S("Received: a\n  b\nReceived: c\n\tfrom d\nX: y\n\nbody"), 41, 0, 0, 0, 0, 0, 2, 0 },
    /* no header block: first line is not a field */
    { S("Hello there\nFrom: a\n\n"), 0, 0, 0, 0, 0, 0, 0, 0 },
    { S("\nFrom: a\n"), 0, 0, 0, 0, 0, 0, 0, 0 },
    { S(" continuation first\n"), 0, 0, 0, 0, 0, 0, 0, 0 },
    { S(": no name\n"), 0, 0, 0, 0, 0, 0, 0, 0 },
    { S("From a@b Sat Nov 21 2026\nTo: x\n"), 0, 0, 0, 0, 0, 0, 0, 0 },
    { S("Bad Name: x\n"), 0, 0, 0, 0, 0, 0, 0, 0 },
    /* the block ends at the first line that is neither field nor continuation */
    { S("To: a\nnot a header\nFrom: b\n\n"), 6, 0, 0, 0, 0, 1, 0, 0 },
    { S("To: a\r\n\r\nbody"), 7, 0, 0, 0, 0, 1, 0, 0 },
    /* unfinished within len: hdr_len = len */
    { S("To: a\nSubject: b"), 16, 0, 0, 0, 0, 1, 0, 0 },
    { S("To: a\nSubj"), 10, 0, 0, 0, 0, 1, 0, 0 },
    { S("To: a\n  more"), 12, 0, 0, 0, 0, 1, 0, 0 },
    { S(""), 0, 0, 0, 0, 0, 0, 0, 0 },
    /* 8-bit anywhere in the scanned text, headers or body */
    { S("Subject: caf\xc3\xa9\n\n"), 15, 0, 0, 0, 0, 0, 0, 1 },
    { S("Subject: x\n\nbody \xff\n"), 11, 0, 0, 0, 0, 0, 0, 1 },
    { S("X-\xff: y\n\n"), 0, 0, 0, 0, 0, 0, 0, 1 },
    /* NUL and CR are data, not terminators */
    { S("X: a\0b\nTo: c\n\n"), 13, 0, 0, 0, 0, 1, 0, 0 },
    { S("X\0: a\n"), 0, 0, 0, 0, 0, 0, 0, 0 },
    { S("Received-SPF: pass\nX-Received: y\nReceived : z\n"), 33, 0, 0, 0, 0, 0, 0, 0 },
};

static void test_scan_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof scan_cases / sizeof scan_cases[0]; i++) {
        const struct scan_case *c = &scan_cases[i];
        struct hdr_info hi;
        memset(&hi, 0x55, sizeof hi);
        hdr_scan(c->msg, c->len, &hi);
        if (hi.hdr_len != c->hdr_len)
            print_error("scan case %zu: hdr_len %zu, want %zu\n", i, hi.hdr_len, c->hdr_len);
        assert_int_equal(hi.hdr_len, c->hdr_len);
        assert_int_equal(hi.has_date, c->date);
        assert_int_equal(hi.has_msgid, c->msgid);
        assert_int_equal(hi.has_from, c->from);
        assert_int_equal(hi.has_sender, c->sender);
        assert_int_equal(hi.has_to, c->to);
        assert_int_equal(hi.received, c->received);
        assert_int_equal(hi.eight_bit, c->eight_bit);
    }
}

/* Only the first len bytes are looked at (the caller may pass part of a message). */
static void test_scan_bounded(void **state)
{
    (void)state;
    const char msg[] = "To: a\nFrom: b\n\n";
    char *copy = malloc(9);
    struct hdr_info hi;

    assert_non_null(copy);
    memcpy(copy, msg, 9); /* "To: a\nFro", no terminator anywhere */
    hdr_scan(copy, 9, &hi);
    assert_int_equal(hi.hdr_len, 9);
    assert_int_equal(hi.has_to, 1);
    assert_int_equal(hi.has_from, 0);
    free(copy);
}

/* A megabyte header line, a megabyte of continuation lines, 100k fields. */
static void test_scan_huge(void **state)
{
    (void)state;
    size_t n = 1 << 20;
    char *m = malloc(n + 64);
    struct hdr_info hi;

    assert_non_null(m);
    memcpy(m, "Subject: ", 9);
    memset(m + 9, 'x', n);
    memcpy(m + 9 + n, "\n\nbody\n", 7);
    hdr_scan(m, n + 16, &hi);
    assert_int_equal(hi.hdr_len, n + 10);
    memset(m + 9, '\n', n);
    for (size_t i = 9; i < n + 9; i += 2)
        m[i] = ' ';
    hdr_scan(m, n + 16, &hi);
    assert_int_equal(hi.hdr_len, n + 9);
    for (size_t i = 0; i + 12 <= n; i += 12)
        memcpy(m + i, "Received: x\n", 12);
    hdr_scan(m, n - n % 12, &hi);
    assert_int_equal(hi.received, (int)(n / 12));
    assert_int_equal(hi.hdr_len, n - n % 12);
    free(m);
}

static void check_list(const struct strlist *l, const char *const *want)
{
    size_t n = 0;
    while (want[n])
        n++;
    if (l->n != n)
        for (size_t k = 0; k < l->n; k++)
            print_error("  got %s\n", l->v[k]);
    assert_int_equal(l->n, n);
    for (size_t k = 0; k < n; k++)
        assert_string_equal(l->v[k], want[k]);
}

static void test_recipients(void **state)
{
    (void)state;
    static const char h[] =
        "From: me@x\n"
        "To: A <a@Example.COM>,\n"
        "  b@y (B)\n"
        "Cc: \"Doe, J\" <jd@z>\n"
        "cc: team: t1@z, t2@z;\n"
        "Bcc: hidden@w\n"
        "Resent-To: not@me\n"
        "X-To: nor@me\n"
        "Subject: To: fake@x\n"
        "BCC:\n"
        "\n"
        "To: body@x\n";
    static const char *const want[] = { "a@example.com", "b@y", "jd@z", "t1@z", "t2@z",
                                        "hidden@w", NULL };
    struct strlist l;

    sl_init(&l);
    hdr_recipients(h, sizeof h - 1, &l);
    check_list(&l, want);
    sl_free(&l);

    /* a NUL in a value doesn't cut the list short */
    static const char h2[] = "To: a@b,\0 c@d\n";
    static const char *const want2[] = { "a@b", "c@d", NULL };
    sl_init(&l);
    hdr_recipients(h2, sizeof h2 - 1, &l);
    check_list(&l, want2);
    sl_free(&l);

    /* CR LF line ends and folding inside an address */
    static const char h3[] = "To: first@x,\r\n second\r\n @y\r\n\r\n";
    static const char *const want3[] = { "first@x", "second@y", NULL };
    sl_init(&l);
    hdr_recipients(h3, sizeof h3 - 1, &l);
    check_list(&l, want3);
    sl_free(&l);

    /* hostile values are skipped, never passed on */
    static const char h4[] = "To: <|/bin/sh>, <a\x01@b>, \"x\ry\"@z, ok@q\n";
    static const char *const want4[] = { "ok@q", NULL };
    sl_init(&l);
    hdr_recipients(h4, sizeof h4 - 1, &l);
    check_list(&l, want4);
    sl_free(&l);

    /* ... and reported when asked, so sendmail -t can refuse them */
    static const char h5[] = "To: <|/bin/sh>, ok@q, /x@y, John Smith, "
                             "empty:;, (only a comment)\nCc: a@b@c\n";
    static const char *const want5[] = { "ok@q", NULL };
    static const char *const bad5[] = {
        "To: <|/bin/sh>: local user name may not start with |, /, : or -",
        "To: /x@y: an address may not start with | or / (programs and files are named "
        "only in aliases and .forward files)",
        "To: John Smith: not an address (a name without <address>)",
        "Cc: a@b@c: address has an unquoted @ in its local part", NULL };
    struct strlist bad;
    sl_init(&l);
    sl_init(&bad);
    hdr_recipients_report(h5, sizeof h5 - 1, &l, &bad);
    check_list(&l, want5);
    check_list(&bad, bad5);
    sl_free(&l);
    sl_free(&bad);
}

static void test_from_addr(void **state)
{
    (void)state;
    static const struct { const char *addr, *name, *want; } cases[] = {
        { "boss@example.org", NULL, "From: <boss@example.org>\n" },
        { "boss@example.org", "", "From: <boss@example.org>\n" },
        { "boss@example.org", "The Boss", "From: The Boss <boss@example.org>\n" },
        { "boss@example.org", "Doe, John", "From: \"Doe, John\" <boss@example.org>\n" },
        { "b@x", "a \"q\" \\ z", "From: \"a \\\"q\\\" \\\\ z\" <b@x>\n" },
        { "b@x", "two\nlines\r", "From: two lines <b@x>\n" },
        { "\"a b\"@x", "& Co", "From: & Co <\"a b\"@x>\n" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct buf b;
        buf_init(&b);
        hdr_from_addr(cases[i].addr, cases[i].name, &b);
        assert_string_equal(b.s, cases[i].want);
        buf_free(&b);
    }
}

/* -t: what is not an address is reported with its field, not dropped. */
static void test_recipients_report(void **state)
{
    (void)state;
    static const char h[] = "To: ok@y, a..b@x\nSubject: a..b@x\ncc: John Doe\n\nTo: body@x\n";
    struct strlist l, bad;
    sl_init(&l);
    sl_init(&bad);
    hdr_recipients_report(h, sizeof h - 1, &l, &bad);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.v[0], "ok@y");
    assert_int_equal(bad.n, 2);
    assert_non_null(strstr(bad.v[0], "To: a..b@x: local part may not start or end with a dot"));
    assert_string_equal(bad.v[1], "cc: John Doe: not an address (a name without <address>)");
    sl_free(&l);
    sl_free(&bad);
}

static void test_recipients_huge(void **state)
{
    (void)state;
    size_t n = 1 << 20;
    char *m = malloc(n + 8);
    struct strlist l;

    assert_non_null(m);
    memcpy(m, "To: ", 4);
    for (size_t i = 4; i < n; i++)
        m[i] = "r@x.y,\n "[(i - 4) % 8];
    m[n] = '\n';
    sl_init(&l);
    hdr_recipients(m, n + 1, &l);
    /* (n - 4) % 8 == 4: the last one is cut to "r@x.", not an address (a
     * domain does not end with a dot, RFC 5321 4.1.2) */
    assert_int_equal((n - 4) % 8, 4);
    assert_int_equal(l.n, (n - 4) / 8);
    assert_string_equal(l.v[l.n - 1], "r@x.y");
    assert_string_equal(l.v[0], "r@x.y");
    sl_free(&l);
    free(m);
}

struct strip_case {
    const char *in;
    size_t len;
    const char *want;
    size_t wantlen;
};

static const struct strip_case strip_cases[] = {
    { S("From: a\nBcc: b@c\nTo: d\n"), S("From: a\nTo: d\n") },
    { S("Bcc: b@c,\n  e@f\n\tg@h\nTo: d\n"), S("To: d\n") },
    { S("bcc: x\nBCC: y\nSubject: Bcc: z\n"), S("Subject: Bcc: z\n") },
    { S("To: d\nBcc: last"), S("To: d\n") },
    { S("Bccx: keep\nX-Bcc: keep\n"), S("Bccx: keep\nX-Bcc: keep\n") },
    /* past the header block everything is copied unchanged */
    { S("To: d\n\nBcc: in body\n"), S("To: d\n\nBcc: in body\n") },
    { S("Bcc: a\nnot header\nBcc: b\n"), S("not header\nBcc: b\n") },
    { S("Bcc: a\0b\nX: \0\n"), S("X: \0\n") },
    { S(""), S("") },
};

static void test_strip_bcc(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof strip_cases / sizeof strip_cases[0]; i++) {
        const struct strip_case *c = &strip_cases[i];
        struct buf b;
        buf_init(&b);
        buf_adds(&b, "kept:");
        hdr_strip_bcc(c->in, c->len, &b);
        assert_int_equal(b.len, 5 + c->wantlen);
        assert_memory_equal(b.s + 5, c->want, c->wantlen);
        buf_free(&b);
    }
}

static void test_get(void **state)
{
    (void)state;
    static const char h[] =
        "Subject:   hello\n"
        "  folded\tworld  \n"
        "X-Empty:\n"
        "X-Dup: first\n"
        "x-dup: second\n"
        "X-Nul: a\0b\n"
        "X-Crlf: one\r\n two\r\n"
        "\n"
        "X-Body: no\n";
    char *v;

    v = hdr_get(h, sizeof h - 1, "subject");
    assert_string_equal(v, "hello  folded\tworld");
    free(v);
    v = hdr_get(h, sizeof h - 1, "X-Empty");
    assert_string_equal(v, "");
    free(v);
    v = hdr_get(h, sizeof h - 1, "X-DUP");
    assert_string_equal(v, "first");
    free(v);
    v = hdr_get(h, sizeof h - 1, "X-Nul");
    assert_string_equal(v, "a b");
    free(v);
    v = hdr_get(h, sizeof h - 1, "X-Crlf");
    assert_string_equal(v, "one two");
    free(v);
    assert_null(hdr_get(h, sizeof h - 1, "X-Body"));
    assert_null(hdr_get(h, sizeof h - 1, "X-Missing"));
    assert_null(hdr_get(h, sizeof h - 1, "Subjec"));
    assert_null(hdr_get(h, 0, "Subject"));
    v = hdr_get("Subject", 7, "Subject"); /* cut before the colon */
    assert_string_equal(v, "");
    free(v);
}

static void test_msgid(void **state)
{
    (void)state;
    struct buf a, b;
    const char *at;

    buf_init(&a);
    buf_init(&b);
    hdr_msgid("Q1234", "mail.example.org", &a);
    hdr_msgid("Q1234", "mail.example.org", &b);
    assert_true(a.s[0] == '<' && a.s[a.len - 1] == '>');
    assert_string_not_equal(a.s, b.s); /* same process, qid, second: random differs */
    at = strchr(a.s, '@');
    assert_non_null(at);
    assert_string_equal(at, "@mail.example.org>");
    assert_non_null(strstr(a.s, ".Q1234@"));
    char pid[32];
    snprintf(pid, sizeof pid, ".%ld.", (long)getpid());
    assert_non_null(strstr(a.s, pid));
    /* only dot-atom text inside: hostile qid / host can't break the field */
    buf_reset(&a);
    hdr_msgid("q\r\n<x>@ y", "h\nost>\"", &a);
    for (size_t i = 0; i < a.len; i++)
        assert_true(a.s[i] > 0x20 && a.s[i] < 0x7f && a.s[i] != '"');
    assert_int_equal(strchr(a.s, '@') - a.s, strrchr(a.s, '@') - a.s);
    assert_string_equal(strchr(a.s, '@'), "@host>");
    assert_null(strchr(a.s + 1, '<'));
    /* no host given: the node name */
    buf_reset(&a);
    hdr_msgid(NULL, NULL, &a);
    char *node = host_nodename();
    assert_non_null(strstr(a.s, node));
    free(node);

    /* unique across processes: a child's id differs from ours */
    int fd[2];
    assert_int_equal(pipe(fd), 0);
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        struct buf c;
        buf_init(&c);
        hdr_msgid("Q1234", "mail.example.org", &c);
        _exit(write_all(fd[1], c.s, c.len + 1) == 0 ? 0 : 1);
    }
    close(fd[1]);
    char got[256] = "";
    assert_true(read_all(fd[0], got, sizeof got - 1) > 0);
    close(fd[0]);
    int st;
    waitpid(child, &st, 0);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    assert_string_not_equal(got, b.s);
    assert_null(strstr(got, pid));
    buf_free(&a);
    buf_free(&b);
}

struct from_case {
    const char *user, *host, *gecos, *want;
};

static const struct from_case from_cases[] = {
    { "alice", "example.org", "Alice Smith,Room 12,555-1234,", "From: Alice Smith <alice@example.org>\n" },
    { "alice", "example.org", NULL, "From: <alice@example.org>\n" },
    { "alice", "example.org", "", "From: <alice@example.org>\n" },
    { "alice", "example.org", ",Room 12", "From: <alice@example.org>\n" },
    { "bob", "x.org", "Robert Q. Public", "From: \"Robert Q. Public\" <bob@x.org>\n" },
    { "bob", "x.org", "Bob \"the builder\" B", "From: \"Bob \\\"the builder\\\" B\" <bob@x.org>\n" },
    { "bob", "x.org", "back\\slash", "From: \"back\\\\slash\" <bob@x.org>\n" },
    { "bob", "x.org", "Evil\r\nBcc: victim@x", "From: \"Evil  Bcc: victim@x\" <bob@x.org>\n" },
    { "bob", "x.org", "a <b@c>", "From: \"a <b@c>\" <bob@x.org>\n" },
    { "bob", "x.org", "  spaced  ", "From: spaced <bob@x.org>\n" },
    { "joe", "x.org", "& Jones", "From: Joe Jones <joe@x.org>\n" },
    { "joe", "x.org", "J\xc3\xb6rg", "From: J\xc3\xb6rg <joe@x.org>\n" },
    { "odd user", "x.org", "Odd", "From: Odd <\"odd user\"@x.org>\n" },
    { "bob", "x.org\n>", "B", "From: B <bob@x.org>\n" },
    { "bob\n", "x.org", NULL, "From: <bob@x.org>\n" },
};

static void test_from_line(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof from_cases / sizeof from_cases[0]; i++) {
        const struct from_case *c = &from_cases[i];
        struct buf b;
        buf_init(&b);
        hdr_from_line(c->user, c->host, c->gecos, &b);
        if (strcmp(b.s, c->want) != 0)
            print_error("from case %zu: got \"%s\"\n", i, b.s);
        assert_string_equal(b.s, c->want);
        buf_free(&b);
    }
}

/* A long GECOS is cut, on a character boundary; the line stays one line. */
static void test_from_line_long(void **state)
{
    (void)state;
    char gecos[1000];
    struct buf b;

    for (size_t i = 0; i + 2 < sizeof gecos; i += 2)
        memcpy(gecos + i, "\xc3\xa9", 2);
    gecos[sizeof gecos - 2] = '\0';
    buf_init(&b);
    hdr_from_line("u", "h", gecos, &b);
    assert_true(b.len < 300);
    assert_non_null(strstr(b.s, "\xc3\xa9 <u@h>\n"));
    assert_ptr_equal(strchr(b.s, '\n'), b.s + b.len - 1);
    buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scan_table),
        cmocka_unit_test(test_scan_bounded),
        cmocka_unit_test(test_scan_huge),
        cmocka_unit_test(test_recipients),
        cmocka_unit_test(test_recipients_report),
        cmocka_unit_test(test_recipients_huge),
        cmocka_unit_test(test_from_addr),
        cmocka_unit_test(test_strip_bcc),
        cmocka_unit_test(test_get),
        cmocka_unit_test(test_msgid),
        cmocka_unit_test(test_from_line),
        cmocka_unit_test(test_from_line_long),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
