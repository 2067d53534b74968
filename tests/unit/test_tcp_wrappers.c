/* test_tcp_wrappers.c - wrap_table_has_rules: when may the libwrap check be skipped?
 * Only when every line is blank or a first-column comment; anything else,
 * or anything unusual, goes to libwrap. */
#include "compat.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "tcp_wrappers.h"

/* Write n bytes of text to a temporary file and ask. */
static int rules_in(const char *text, size_t n)
{
    char path[] = "/tmp/po-test-wrap-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, n), (ssize_t)n);
    close(fd);
    int r = wrap_table_has_rules(path);
    unlink(path);
    return r;
}

#define RULES(lit) rules_in(lit, sizeof lit - 1)

static void test_no_rules(void **state)
{
    (void)state;
    assert_int_equal(RULES(""), 0);
    assert_int_equal(RULES("\n\n"), 0);
    assert_int_equal(RULES("# /etc/hosts.deny: list of hosts\n#\n\n# ALL: ALL\n"), 0);
    assert_int_equal(RULES(" \t\r\n# comment\r\n"), 0);
    assert_int_equal(wrap_table_has_rules("/nonexistent/po-test/hosts.deny"), 0);
}

static void test_rules(void **state)
{
    (void)state;
    assert_int_equal(RULES("smtp: 127.0.0.1\n"), 1);
    assert_int_equal(RULES("# comment\n\nALL: ALL\n# more\n"), 1);
    /* libwrap's own reading of these may differ between versions: ask it */
    assert_int_equal(RULES("  # indented comment\n"), 1);
    assert_int_equal(RULES("# comment\nsmtp: ALL"), 1);  /* no final LF */
    assert_int_equal(RULES("# comment\n   "), 1);
    assert_int_equal(rules_in("#a\0b\n", 5), 1);          /* NUL */
    /* a rule far into the file, across read boundaries */
    char big[3000];
    memset(big, '\n', sizeof big);
    big[0] = '#';
    memcpy(big + 2000, "ALL:ALL\n", 8);
    assert_int_equal(rules_in(big, sizeof big), 1);
    big[2000] = '#';
    assert_int_equal(rules_in(big, sizeof big), 0);
}

/* A comment longer than libwrap's line buffer is split by it: libwrap decides. */
static void test_long_comment(void **state)
{
    (void)state;
    char line[1200];
    memset(line, 'x', sizeof line);
    line[0] = '#';
    line[sizeof line - 1] = '\n';
    assert_int_equal(rules_in(line, sizeof line), 1);
    line[900] = '\n';
    assert_int_equal(rules_in(line, 901), 0);
}

/* Not a regular file (a directory here): libwrap decides. */
static void test_not_regular(void **state)
{
    (void)state;
    char dir[] = "/tmp/po-test-wrapd-XXXXXX";
    assert_non_null(mkdtemp(dir));
    assert_int_equal(wrap_table_has_rules(dir), 1);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_rules),
        cmocka_unit_test(test_rules),
        cmocka_unit_test(test_long_comment),
        cmocka_unit_test(test_not_regular),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
