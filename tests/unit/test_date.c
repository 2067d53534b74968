/* test_date.c - the one date formatter (date.h): RFC 5322 and asctime
 * layouts, numeric zones, a time localtime_r cannot convert. */
#include "compat.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "date.h"
#include "util.h"

struct date_case {
    const char *tz;
    time_t t;
    const char *want;
};

static const struct date_case date_cases[] = {
    { "UTC0", 0, "Thu, 1 Jan 1970 00:00:00 +0000" },
    { "UTC0", 1795303259, "Sat, 21 Nov 2026 23:20:59 +0000" },
    { "<+0530>-5:30", 1795303259, "Sun, 22 Nov 2026 04:50:59 +0530" },
    { "<-0330>3:30", 1795303259, "Sat, 21 Nov 2026 19:50:59 -0330" },
    { "<-10>10", 951868800, "Tue, 29 Feb 2000 14:00:00 -1000" },
    { "EST5EDT,M3.2.0,M11.1.0", 1782000000, "Sat, 20 Jun 2026 20:00:00 -0400" },
};

/* Zones given as POSIX TZ strings: no dependence on the installed tzdata. */
static void test_date(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof date_cases / sizeof date_cases[0]; i++) {
        const struct date_case *c = &date_cases[i];
        struct buf b;
        setenv("TZ", c->tz, 1);
        tzset();
        buf_init(&b);
        date_rfc5322(c->t, &b);
        if (strcmp(b.s, c->want) != 0)
            print_error("date case %zu: got \"%s\"\n", i, b.s);
        assert_string_equal(b.s, c->want);
        buf_free(&b);
    }
    setenv("TZ", "UTC0", 1);
    tzset();
}

static void test_asctime(void **state)
{
    (void)state;
    struct buf b;
    setenv("TZ", "<+0530>-5:30", 1);
    tzset();
    buf_init(&b);
    assert_int_equal(date_asctime(1795303259, &b), 0);
    assert_string_equal(b.s, "Sun Nov 22 04:50:59 2026");
    buf_reset(&b);
    assert_int_equal(date_asctime(0, &b), 0);
    assert_string_equal(b.s, "Thu Jan  1 05:30:00 1970"); /* day space-padded */
    buf_free(&b);
    setenv("TZ", "UTC0", 1);
    tzset();
}

/* Beyond what struct tm can hold: the epoch in UTC, and -1, never garbage. */
static void test_unconvertible(void **state)
{
    (void)state;
    time_t huge = (time_t)(sizeof(time_t) > 4 ? INT64_MAX : INT32_MAX);
    struct tm tm;
    if (localtime_r(&huge, &tm))
        skip(); /* this time_t fits the calendar: nothing to test */
    struct buf b;
    buf_init(&b);
    assert_int_equal(date_rfc5322(huge, &b), -1);
    assert_string_equal(b.s, "Thu, 1 Jan 1970 00:00:00 +0000");
    buf_reset(&b);
    assert_int_equal(date_asctime(huge, &b), -1);
    assert_string_equal(b.s, "Thu Jan  1 00:00:00 1970");
    buf_free(&b);
}

int main(void)
{
    setenv("TZ", "UTC0", 1);
    tzset();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_date),
        cmocka_unit_test(test_asctime),
        cmocka_unit_test(test_unconvertible),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
