/* test_logfmt.c - the event line format (logfmt.h): values written as
 * tokens, quoted text or <addresses>, escapes, the value limit, and the parser
 * reading back what the writer wrote, refusing what it would not write. */
#include "compat.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "log.h"
#include "logfmt.h"
#include "util.h"

static void test_token_quoted_addr(void **state)
{
    (void)state;
    struct logfmt l;
    lf_begin(&l, "1abcDEF", "delivery");
    lf_addr(&l, "to", "bob@example.org");
    lf_str(&l, "relay", "mx.example.org[198.51.100.7]:25");
    lf_num(&l, "delay", 12);
    lf_str(&l, "reason", "250 2.0.0 ok, queued");
    lf_addr(&l, "from", "");
    lf_str(&l, "skipped", NULL);
    assert_string_equal(lf_line(&l),
                        "1abcDEF: delivery to=<bob@example.org>, "
                        "relay=mx.example.org[198.51.100.7]:25, delay=12, "
                        "reason=\"250 2.0.0 ok, queued\", from=<>");
    lf_free(&l);
}

static void test_escapes(void **state)
{
    (void)state;
    struct logfmt l;
    lf_begin(&l, NULL, "reject");
    lf_addr(&l, "to", "\"a>b\\c\"@x\r\n");
    lf_str(&l, "helo", "say \"hi\"\\");
    lf_str(&l, "user", "ev\xC3\xA9l");
    lf_str(&l, "empty", "");
    lf_str(&l, "eq", "a=b");
    assert_string_equal(lf_line(&l),
                        "reject to=<\"a\\>b\\\\c\"@x\\x0D\\x0A>, helo=\"say \\\"hi\\\"\\\\\", "
                        "user=\"ev\\xC3\\xA9l\", empty=\"\", eq=\"a=b\"");
    struct lf_rec r;
    assert_int_equal(lf_parse(lf_line(&l), &r), 0);
    assert_string_equal(r.qid, "");
    assert_string_equal(r.event, "reject");
    assert_int_equal(r.n, 5);
    assert_string_equal(lf_get(&r, "to"), "\"a>b\\c\"@x\r\n");
    assert_true(r.f[0].addr);
    assert_string_equal(lf_get(&r, "helo"), "say \"hi\"\\");
    assert_string_equal(lf_get(&r, "user"), "ev\xC3\xA9l");
    assert_string_equal(lf_get(&r, "empty"), "");
    assert_string_equal(lf_get(&r, "eq"), "a=b");
    assert_null(lf_get(&r, "nothere"));
    lf_rec_free(&r);
    lf_free(&l);
}

static void test_reply_and_client(void **state)
{
    (void)state;
    struct logfmt l;
    lf_begin(&l, "Q1", "reject");
    lf_client(&l, NULL, "203.0.113.9");
    lf_client(&l, "mail.example", "2001:db8::1");
    lf_client(&l, NULL, "");
    lf_reply(&l, 550, "5.1.1 <x@y>: no such user");
    lf_reply(&l, 421, "closing");
    assert_string_equal(lf_line(&l),
                        "Q1: reject client=unknown[203.0.113.9], "
                        "client=mail.example[2001:db8::1], client=local, code=550, "
                        "dsn=5.1.1, reason=\"<x@y>: no such user\", code=421, reason=closing");
    lf_free(&l);
}

static void test_value_limit(void **state)
{
    (void)state;
    /* a value over the limit is cut, marked, and still parses */
    char *big = xmalloc(LF_VALUE_MAX + 100);
    memset(big, 'x', LF_VALUE_MAX + 99);
    big[LF_VALUE_MAX + 99] = '\0';
    struct logfmt l;
    lf_begin(&l, "Q", "delivery");
    lf_str(&l, "reason", big);
    struct lf_rec r;
    assert_int_equal(lf_parse(lf_line(&l), &r), 0);
    assert_int_equal(strlen(lf_get(&r, "reason")), LF_VALUE_MAX + 3);
    assert_string_equal(lf_get(&r, "reason") + LF_VALUE_MAX, "...");
    lf_rec_free(&r);
    lf_free(&l);
    free(big);
}

/* Run lf_log_delivery with the log on stderr, redirected to a file: the line. */
static char *logged_delivery(const struct lf_delivery *d)
{
    char path[] = "/tmp/test_logfmt.XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    fflush(stderr);
    int saved = dup(2);
    dup2(fd, 2);
    log_open_deferred("test", 1);
    lf_log_delivery(d);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    struct buf b;
    buf_init(&b);
    assert_int_equal(read_file(path, &b, 65536), 0);
    close(fd);
    unlink(path);
    log_set_stderr(0);
    return buf_steal(&b);
}

static void test_delivery_line(void **state)
{
    (void)state;
    struct lf_delivery d = { .qid = "Q7", .to = "\\bob", .orig_to = "bob@here.example",
                             .relay = "local", .word = "sent", .status = "delivered to mbox",
                             .delay = 3 };
    char *line = logged_delivery(&d);
    assert_string_equal(line, "test: Q7: delivery to=<\\\\bob>, orig_to=<bob@here.example>, "
                              "relay=local, delay=3, dsn=2.0.0, status=sent, "
                              "reason=\"delivered to mbox\"\n");
    free(line);
    struct lf_delivery e = { .qid = "Q8", .to = "a@b.example", .orig_to = "a@b.example",
                             .relay = NULL, .word = "deferred",
                             .status = "4.4.1 connection refused", .delay = -5 };
    line = logged_delivery(&e);
    assert_string_equal(line, "test: Q8: delivery to=<a@b.example>, relay=none, delay=0, "
                              "dsn=4.4.1, status=deferred, reason=\"connection refused\"\n");
    free(line);
    e.word = "expired";
    e.status = "gave up";
    line = logged_delivery(&e);
    assert_non_null(strstr(line, "dsn=5.0.0, status=expired, reason=\"gave up\""));
    free(line);
}

static void test_msgid(void **state)
{
    (void)state;
    struct logfmt l;
    lf_begin(&l, "Q", "queued");
    lf_msgid(&l, "<1.2@host>");
    lf_msgid(&l, "no brackets here");
    lf_msgid(&l, NULL);
    assert_string_equal(lf_line(&l), "Q: queued msgid=<1.2@host>, msgid=\"no brackets here\"");
    lf_free(&l);
}

static void test_parse_events(void **state)
{
    (void)state;
    struct lf_rec r;
    assert_int_equal(lf_parse("ABC123: removed", &r), 0);
    assert_string_equal(r.qid, "ABC123");
    assert_string_equal(r.event, "removed");
    assert_int_equal(r.n, 0);
    lf_rec_free(&r);
    assert_int_equal(lf_parse("disconnect client=local, ehlo=1, rcpt=1/2, commands=3/4", &r),
                     0);
    assert_string_equal(lf_get(&r, "rcpt"), "1/2");
    assert_string_equal(lf_get(&r, "commands"), "3/4");
    lf_rec_free(&r);
}

static void test_parse_refuses(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "connect from localhost[127.0.0.1]",         /* Postfix's: no key=value */
        "ABC: to=<a@b>, status=sent",                /* no event word */
        "ABC: frobnicated x=1",                      /* an unknown event */
        "queued from=<a@b",                          /* unterminated address */
        "queued reason=\"abc",                       /* unterminated text */
        "queued reason=\"a\\qb\"",                   /* unknown escape */
        "queued size=1,nrcpt=2",                     /* separator without space */
        "queued size=1, ",                           /* trailing separator */
        "queued size=",                              /* empty token */
        "queued Size=1",                             /* upper-case key */
        "queued size=1 2",                           /* space in a token */
        "queued from=<a@b>x",                        /* junk after a value */
        "ABC:  removed",                             /* two spaces */
        "removed\tx",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct lf_rec r;
        if (lf_parse(bad[i], &r) == 0)
            fail_msg("parsed: %s", bad[i]);
        assert_null(r.mem);
    }
}

static void test_parse_field_limit(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b);
    buf_adds(&b, "queued a=1");
    for (int i = 1; i < LF_FIELDS_MAX; i++)
        buf_adds(&b, ", a=1");
    struct lf_rec r;
    assert_int_equal(lf_parse(b.s, &r), 0);
    assert_int_equal(r.n, LF_FIELDS_MAX);
    lf_rec_free(&r);
    buf_adds(&b, ", a=1");
    assert_int_equal(lf_parse(b.s, &r), -1);
    buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_token_quoted_addr),
        cmocka_unit_test(test_escapes),
        cmocka_unit_test(test_reply_and_client),
        cmocka_unit_test(test_value_limit),
        cmocka_unit_test(test_delivery_line),
        cmocka_unit_test(test_msgid),
        cmocka_unit_test(test_parse_events),
        cmocka_unit_test(test_parse_refuses),
        cmocka_unit_test(test_parse_field_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
