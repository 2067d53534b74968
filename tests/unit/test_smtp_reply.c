/* test_smtp_reply.c - the SMTP client's reply parser (hostile replies), status
 * strings.  (The message body is msgout's: tests/unit/test_message_out.c and the
 * e2e tests.) */
#include "compat.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "smtp_reply.h"
#include "util.h"

/* Feed lines; returns the last result. */
static int feed(struct smtp_reply *r, const char *const *lines, size_t n, const char **why)
{
    int st = -1;
    for (size_t i = 0; i < n; i++) {
        st = smtp_reply_line(r, lines[i], strlen(lines[i]), why);
        if (st <= 0)
            break;
    }
    return st;
}

static void test_single_and_multi(void **st)
{
    (void)st;
    struct smtp_reply r;
    const char *why;
    smtp_reply_init(&r);
    const char *one[] = {"250 ok"};
    assert_int_equal(feed(&r, one, 1, &why), 0);
    assert_int_equal(r.code, 250);
    assert_true(r.done);
    smtp_reply_free(&r);

    const char *ehlo[] = {"250-mx.example hello", "250-PIPELINING", "250-SIZE 1000",
                          "250 8BITMIME"};
    assert_int_equal(smtp_reply_line(&r, ehlo[0], strlen(ehlo[0]), &why), 1);
    assert_int_equal(feed(&r, ehlo + 1, 3, &why), 0);
    assert_int_equal(r.lines.n, 4);
    assert_string_equal(r.lines.v[2], "SIZE 1000");
    smtp_reply_free(&r);

    const char *bare[] = {"354"}; /* a code alone is a complete reply */
    assert_int_equal(feed(&r, bare, 1, &why), 0);
    assert_int_equal(r.code, 354);
    smtp_reply_free(&r);
}

static void test_hostile(void **st)
{
    (void)st;
    const char *why;
    struct smtp_reply r;
    smtp_reply_init(&r);
    const char *bad[] = {"", "25", "2x0 ok", "650 ok", "199 ok", "250xok", "abc",
                         "2501 ok", "-250 ok"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        smtp_reply_free(&r);
        why = NULL;
        assert_int_equal(smtp_reply_line(&r, bad[i], strlen(bad[i]), &why), -1);
        assert_non_null(why);
    }
    /* the code changes in the middle of a multi-line reply */
    smtp_reply_free(&r);
    const char *chg[] = {"250-first", "550 second"};
    assert_int_equal(feed(&r, chg, 2, &why), -1);
    /* too many lines */
    smtp_reply_free(&r);
    int res = 1;
    for (int i = 0; i <= SMTPC_LINES_MAX && res == 1; i++)
        res = smtp_reply_line(&r, "250-x", 5, &why);
    assert_int_equal(res, -1);
    /* a line after the reply was complete */
    smtp_reply_free(&r);
    assert_int_equal(smtp_reply_line(&r, "250 a", 5, &why), 0);
    assert_int_equal(smtp_reply_line(&r, "250 b", 5, &why), -1);
    smtp_reply_free(&r);
}

static void test_control_chars_escaped(void **st)
{
    (void)st;
    const char *why;
    struct smtp_reply r;
    smtp_reply_init(&r);
    static const char evil[] = "550 5.1.1 no\0such\rR<forged@x>\x1b[31m\xff user";
    assert_int_equal(smtp_reply_line(&r, evil, sizeof evil - 1, &why), 0);
    char *s = smtp_reply_status(&r);
    for (const char *p = s; *p; p++)
        assert_true(*p >= 0x20 && *p < 0x7f);
    assert_non_null(strstr(s, "\\x00"));
    assert_non_null(strstr(s, "\\x0D"));
    assert_int_equal(strncmp(s, "5.1.1 550 ", 10), 0);
    free(s);
    smtp_reply_free(&r);
}

static void test_status(void **st)
{
    (void)st;
    const char *why;
    struct smtp_reply r;
    smtp_reply_init(&r);
    static const struct { const char *l1, *l2; const char *want; } t[] = {
        {"250 2.0.0 Ok: queued as X", NULL, "2.0.0 250 Ok: queued as X"},
        {"550 No such user", NULL, "5.0.0 550 No such user"},
        {"451 5.1.1 wrong class", NULL, "4.0.0 451 5.1.1 wrong class"},
        {"452-4.2.2 mailbox full", "452 4.2.2 try later", "4.2.2 452 mailbox full; try later"},
        {"554", NULL, "5.0.0 554"},
        {"550 5.7.1234 too long", NULL, "5.0.0 550 5.7.1234 too long"},
    };
    for (size_t i = 0; i < sizeof t / sizeof *t; i++) {
        smtp_reply_free(&r);
        int rc = smtp_reply_line(&r, t[i].l1, strlen(t[i].l1), &why);
        if (t[i].l2)
            rc = smtp_reply_line(&r, t[i].l2, strlen(t[i].l2), &why);
        assert_int_equal(rc, 0);
        char *s = smtp_reply_status(&r);
        assert_string_equal(s, t[i].want);
        free(s);
    }
    /* long text is cut */
    smtp_reply_free(&r);
    struct buf b;
    buf_init(&b);
    buf_adds(&b, "550 ");
    for (int i = 0; i < 300; i++)
        buf_adds(&b, "ab");
    assert_int_equal(smtp_reply_line(&r, b.s, b.len, &why), 0);
    char *s = smtp_reply_status(&r);
    assert_true(strlen(s) <= SMTPC_TEXT_MAX + 3);
    assert_non_null(strstr(s, "..."));
    free(s);
    buf_free(&b);
    smtp_reply_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_single_and_multi), cmocka_unit_test(test_hostile),
        cmocka_unit_test(test_control_chars_escaped), cmocka_unit_test(test_status),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
