/* test_message_out.c - the line transformations and the streaming writer. */
#include "compat.h"

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "message_out.h"
#include "data_fixture.h"
#include "util.h"

#define ESC MO_ESCAPE_FROM

struct line_case {
    const char *in;
    size_t inlen; /* 0 = strlen */
    int flags;
    const char *out;
};

static const struct line_case line_cases[] = {
    {"From bob Mon", 0, ESC, ">From bob Mon\n"},
    {"From ", 0, ESC, ">From \n"},
    {"From", 0, ESC, "From\n"},
    {"Fro", 0, ESC, "Fro\n"},
    {"", 0, ESC, "\n"},
    {"from x", 0, ESC, "from x\n"},
    {" From x", 0, ESC, " From x\n"},
    {">From x", 0, ESC, ">From x\n"}, /* mboxo: no re-quoting */
    {"FromX", 0, ESC, "FromX\n"},
    {"From x", 0, 0, "From x\n"},
    {"a\rb", 0, 0, "a\rb\n"},                   /* mbox: CR is just a byte */
    {"x\0y", 3, 0, "x\0y\n"},
    {".", 0, MO_SMTP, "..\r\n"},
    {".x", 0, MO_SMTP, "..x\r\n"},
    {"x.", 0, MO_SMTP, "x.\r\n"},
    {"", 0, MO_SMTP, "\r\n"},
    {"abc\r", 0, MO_SMTP, "abc\r\n"},           /* CRLF in the data: one line end */
    {"a\rb", 0, MO_SMTP, "a\r\nb\r\n"},         /* lone CR: a line end */
    {"a\r.", 0, MO_SMTP, "a\r\n..\r\n"},        /* ... and the next line is stuffed */
    {"a\r\r", 0, MO_SMTP, "a\r\n\r\n"},
    {"\r", 0, MO_SMTP, "\r\n"},
    {"From x", 0, MO_SMTP, "From x\r\n"},
    {".From x", 0, MO_SMTP | ESC, "..From x\r\n"},
};

static void test_lines(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof line_cases / sizeof line_cases[0]; i++) {
        const struct line_case *t = &line_cases[i];
        size_t n = t->inlen ? t->inlen : strlen(t->in);
        size_t outlen = t->inlen ? t->inlen + 1 : strlen(t->out); /* the NUL case */
        struct buf b;
        buf_init(&b);
        msgout_line(t->in, n, t->flags, 1, &b);
        if (b.len != outlen || memcmp(b.s, t->out, outlen) != 0)
            fail_msg("case %zu: \"%s\" flags %d gave \"%s\", want \"%s\"", i, t->in,
                     t->flags, b.s, t->out);
        buf_free(&b);
    }
}

/* ---- the streaming writer, through real files ---- */


/* Run msgout_write on data, return the output (malloc'd, *len). */
static char *run(const char *data, size_t dlen, int flags, const char *sender,
                 const char *prepend, size_t *len)
{
    /* framed as in a queue file: only off..off+len is the message */
    struct buf framed;
    buf_init(&framed);
    buf_adds(&framed, "HEAD\n");
    buf_add(&framed, data, dlen);
    buf_adds(&framed, "R0 P 0 tail@x\n.\n");
    int in = fixture_data_file(framed.s, framed.len);
    buf_free(&framed);
    struct msgdata d = {in, 5, (long long)dlen};
    int out = fixture_data_file("", 0);
    struct msgout mo = {.flags = flags, .sender = sender, .prepend = prepend};
    struct buf b;

    assert_int_equal(msgout_write(&d, out, &mo), 0);
    off_t size = lseek(out, 0, SEEK_END);
    buf_init(&b);
    char *p = xmalloc((size_t)size + 1);
    assert_int_equal(pread(out, p, (size_t)size, 0), size);
    p[size] = '\0';
    *len = (size_t)size;
    close(in);
    close(out);
    buf_free(&b);
    return p;
}

struct write_case {
    const char *name;
    const char *data;
    int flags;
    const char *prepend;
    const char *out;
};

static const struct write_case write_cases[] = {
    {"mbox body", "Subject: x\n\nFrom me\nbody", ESC | MO_BLANK_END, "Return-Path: <a@b>\n",
     "Return-Path: <a@b>\nSubject: x\n\n>From me\nbody\n\n"},
    {"no escape", "Subject: x\n\nFrom me\n", MO_BLANK_END, NULL,
     "Subject: x\n\nFrom me\n\n"},
    {"headerless", "hello\nworld\n", 0, "Return-Path: <>\n", "Return-Path: <>\n\nhello\nworld\n"},
    {"headerless From_ first", "From evil Mon\n\nx\n", ESC, NULL, "\n>From evil Mon\n\nx\n"},
    {"continuation first", " folded\n", 0, NULL, "\n folded\n"},
    {"empty header block", "\nbody\n", 0, "R: 1\n", "R: 1\n\nbody\n"},
    {"empty message", "", MO_BLANK_END, "R: 1\n", "R: 1\n\n"},
    {"smtp", "Subject: x\n\n.\n..\nlast", MO_SMTP, NULL,
     "Subject: x\r\n\r\n..\r\n...\r\nlast\r\n"},
    {"smtp prepend", "S: x\n\nb\n", MO_SMTP, "R: 1\n", "R: 1\r\nS: x\r\n\r\nb\r\n"},
    {"smtp crlf data", "S: x\r\n\r\n.\r\nb\rc\r", MO_SMTP, NULL,
     "S: x\r\n\r\n..\r\nb\r\nc\r\n"},
    {"headers only", "A: 1\nB: 2\n\nbody\n", MO_HDRS_ONLY, NULL, "A: 1\nB: 2\n"},
    {"headers only smtp", "A: 1\r\n\r\nbody\n", MO_HDRS_ONLY | MO_SMTP, NULL, "A: 1\r\n"},
    {"headers only, no body", "A: 1\n", MO_HDRS_ONLY, NULL, "A: 1\n"},
};

static void test_write_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof write_cases / sizeof write_cases[0]; i++) {
        const struct write_case *t = &write_cases[i];
        size_t len;
        char *got = run(t->data, strlen(t->data), t->flags, "a@b", t->prepend, &len);
        if (len != strlen(t->out) || memcmp(got, t->out, len) != 0)
            fail_msg("case %s: got \"%s\", want \"%s\"", t->name, got, t->out);
        free(got);
    }
}

static void test_from_line(void **state)
{
    (void)state;
    setenv("TZ", "UTC", 1);
    tzset();
    char *a = msgout_from_line("", 0);
    assert_string_equal(a, "From MAILER-DAEMON Thu Jan  1 00:00:00 1970\n");
    free(a);
    a = msgout_from_line("\"john doe\"@x\n", 1700000000);
    assert_string_equal(a, "From \"john_doe\"@x_ Tue Nov 14 22:13:20 2023\n");
    free(a);
}

static void test_write_from_line(void **state)
{
    (void)state;
    size_t len;
    char *got = run("S: 1\n\nb\n", 8, MO_FROM_LINE | MO_BLANK_END, "", NULL, &len);
    assert_true(strncmp(got, "From MAILER-DAEMON ", 19) == 0);
    char *nl = strchr(got, '\n');
    assert_non_null(nl);
    assert_string_equal(nl + 1, "S: 1\n\nb\n\n");
    free(got);
}

/* Lines longer than the read chunk, and a "From " or CRLF cut by a chunk
 * boundary, are handled like any other. */
static void test_long_lines(void **state)
{
    (void)state;
    const size_t chunk = 65536, big = 3 * chunk + 17;
    struct buf d, want;
    buf_init(&d);
    buf_init(&want);
    buf_adds(&d, "S: x\n\n");
    while (d.len < chunk - 3)
        buf_addc(&d, 'y');
    buf_adds(&d, "\nFrom z\n"); /* "From " straddles offset 65536 */
    for (size_t i = 0; i < big; i++)
        buf_addc(&d, (char)('a' + i % 26));
    buf_adds(&d, "\nend");
    buf_add(&want, d.s, d.len);
    char *at = strstr(want.s, "\nFrom z");
    size_t off = (size_t)(at - want.s) + 1;
    buf_truncate(&want, off);
    buf_adds(&want, ">");
    buf_add(&want, d.s + off, d.len - off);
    buf_adds(&want, "\n");
    size_t len;
    char *got = run(d.s, d.len, ESC, "a", NULL, &len);
    assert_int_equal(len, want.len);
    assert_memory_equal(got, want.s, len);
    free(got);

    /* SMTP: CR as the last byte of one chunk, LF the first of the next */
    buf_reset(&d);
    buf_adds(&d, "S: x\n\n");
    while (d.len < chunk - 1)
        buf_addc(&d, 'q');
    buf_adds(&d, "\r\n.\n");
    got = run(d.s, d.len, MO_SMTP, "a", NULL, &len);
    assert_int_equal(len, d.len + 4); /* CRs after "S: x", the blank line and ".", one stuffed dot */
    assert_memory_equal(got + len - 7, "q\r\n..\r\n", 7);
    free(got);
    buf_free(&d);
    buf_free(&want);
}

/* SMTP never sends a NUL: a queued message holding one (local submission)
 * goes out without it, and "LF NUL ." stays a stuffed line, not an end mark. */
static void test_smtp_no_nul(void **state)
{
    (void)state;
    static const char data[] = "S: x\n\nfirst\n\0.\nMAIL FROM:<e@x>\na\r\0\nb\0\0c\n\0";
    static const char want[] = "S: x\r\n\r\nfirst\r\n..\r\nMAIL FROM:<e@x>\r\na\r\nbc\r\n";
    size_t len;
    char *got = run(data, sizeof data - 1, MO_SMTP, "a", NULL, &len);
    assert_int_equal(len, sizeof want - 1);
    assert_memory_equal(got, want, len);
    assert_null(memchr(got, '\0', len));
    free(got);

    struct buf b;
    buf_init(&b);
    msgout_line("\0.x\0", 4, MO_SMTP, 1, &b);
    assert_int_equal(b.len, 5);
    assert_memory_equal(b.s, "..x\r\n", 5);
    buf_reset(&b);
    msgout_line("\0.x", 3, 0, 1, &b); /* mailboxes get the bytes as they are */
    assert_int_equal(b.len, 4);
    assert_memory_equal(b.s, "\0.x\n", 4);
    buf_free(&b);
}

static void test_write_error(void **state)
{
    (void)state;
    int in = fixture_data_file("S: 1\n\nb\n", 8);
    struct msgdata d = {in, 0, 8};
    int out = open("/dev/full", O_WRONLY);
    if (out < 0)
        skip();
    struct msgout mo = {.flags = 0, .sender = "", .prepend = NULL};
    errno = 0;
    assert_int_equal(msgout_write(&d, out, &mo), -1);
    assert_int_equal(errno, ENOSPC);
    close(in);
    close(out);
    /* a read error: data fd not readable */
    in = open("/dev/null", O_WRONLY);
    out = fixture_data_file("", 0);
    d.fd = in;
    assert_int_equal(msgout_write(&d, out, &mo), -1);
    close(in);
    /* a file shorter than the length it is said to have (truncated queue file) */
    in = fixture_data_file("S: 1\n\nb\n", 8);
    d = (struct msgdata){in, 0, 100};
    errno = 0;
    assert_int_equal(msgout_write(&d, out, &mo), -1);
    assert_int_equal(errno, EIO);
    close(in);
    close(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lines),
        cmocka_unit_test(test_write_table),
        cmocka_unit_test(test_from_line),
        cmocka_unit_test(test_write_from_line),
        cmocka_unit_test(test_long_lines),
        cmocka_unit_test(test_smtp_no_nul),
        cmocka_unit_test(test_write_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
