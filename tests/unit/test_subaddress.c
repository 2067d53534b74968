/* test_subaddress.c - user+tag splitting and the delimiter's values
 * (subaddress.h), and recipient-delimiter= through the configuration. */
#include "compat.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "conf.h"
#include "subaddress.h"

/* The user part of local with delim, or NULL when it does not split. */
static void split(const char *delim, const char *local, const char *user, const char *tag)
{
    char *u;
    const char *t;
    int rc = subaddr_split(delim, local, &u, &t);
    if (!user) {
        assert_int_equal(rc, 0);
        assert_null(u);
        assert_null(t);
        return;
    }
    assert_int_equal(rc, 1);
    assert_string_equal(u, user);
    assert_string_equal(t, tag);
    free(u);
}

static void test_split(void **state)
{
    (void)state;
    split("+", "bob+tag", "bob", "tag");
    split("+", "bob+", "bob", "");
    split("+", "bob+a+b", "bob", "a+b"); /* the first delimiter */
    split("+", "bob", NULL, NULL);
    split("+", "+tag", NULL, NULL);       /* no user part */
    split("+", "bob-tag", NULL, NULL);
    split("-", "bob-tag", "bob", "tag");
    split("", "bob+tag", NULL, NULL);     /* off */
    split(NULL, "bob+tag", NULL, NULL);
    split("+", "Bob+Tag", "Bob", "Tag");  /* case kept */
}

static void test_never_split(void **state)
{
    (void)state;
    split("-", "postmaster", NULL, NULL);
    split("+", "Postmaster", NULL, NULL);
    split("-", "mailer-daemon", NULL, NULL);
    split("-", "MAILER-DAEMON", NULL, NULL);
    split("-", "owner-list", NULL, NULL);
    split("-", "list-request", NULL, NULL);
    split("-", "LIST-REQUEST", NULL, NULL);
    split("-", "-request", NULL, NULL);
    /* only "-" keeps the list conventions */
    split("+", "owner+list", "owner", "list");
    split("-", "list-requests", "list", "requests");
    split("-", "bob-owner", "bob", "owner");
}

static void test_delims(void **state)
{
    (void)state;
    const char *good[] = {"", "+", "-", "=", "_", "#", "~", ".", "&"};
    const char *bad[] = {"@", "%", "!", "/", "|", "*", " ", "a", "1", "++", "+-", "\"",
                         "\\", ",", ":", "\t"};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++)
        assert_true(subaddr_delim_ok(good[i]));
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_false(subaddr_delim_ok(bad[i]));
    assert_false(subaddr_delim_ok(NULL));
}

static void test_config(void **state)
{
    (void)state;
    struct config c;
    struct config_ctx ctx = {1, 0};
    config_defaults(&c);
    assert_string_equal(c.recipient_delimiter, "+");
    assert_int_equal(c.qualify_headers, 1);
    assert_int_equal(config_set(&c, "recipient-delimiter=-", "test", &ctx), 0);
    assert_string_equal(c.recipient_delimiter, "-");
    assert_int_equal(config_set(&c, "recipient-delimiter=", "test", &ctx), 0);
    assert_string_equal(c.recipient_delimiter, "");
    assert_int_not_equal(config_set(&c, "recipient-delimiter=@", "test", &ctx), 0);
    assert_int_not_equal(config_set(&c, "recipient-delimiter=+-", "test", &ctx), 0);
    assert_int_equal(config_set(&c, "qualify-headers=0", "test", &ctx), 0);
    assert_int_equal(c.qualify_headers, 0);
    config_free(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_split),
        cmocka_unit_test(test_never_split),
        cmocka_unit_test(test_delims),
        cmocka_unit_test(test_config),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
