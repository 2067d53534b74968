/* test_smtp_dead.c - remembered dead addresses: found while fresh, by
 * address and port, forgotten after SMTP_DEAD_MS, bounded. */
#include "compat.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "smtp_dead.h"

static struct sockaddr_storage v4(const char *a, int port)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    struct sockaddr_in *s = (struct sockaddr_in *)&ss;
    s->sin_family = AF_INET;
    s->sin_port = htons((uint16_t)port);
    inet_pton(AF_INET, a, &s->sin_addr);
    return ss;
}

static void test_remember_and_forget(void **st)
{
    (void)st;
    struct smtp_dead d = {0};
    struct sockaddr_storage a = v4("203.0.113.1", 25), b = v4("203.0.113.1", 2525),
                            c = v4("203.0.113.2", 25);
    assert_null(smtp_dead_find(&d, &a, 1000));
    smtp_dead_note(&d, &a, "4.4.1 x: connect: Connection refused", 1000);
    assert_string_equal(smtp_dead_find(&d, &a, 1000 + SMTP_DEAD_MS - 1),
                        "4.4.1 x: connect: Connection refused");
    assert_null(smtp_dead_find(&d, &b, 1001)); /* another port */
    assert_null(smtp_dead_find(&d, &c, 1001)); /* another address */
    /* a later failure renews it with the newer reason */
    smtp_dead_note(&d, &a, "4.4.1 x: connect timed out after 1s", 5000);
    assert_int_equal(d.n, 1);
    assert_string_equal(smtp_dead_find(&d, &a, 5000 + SMTP_DEAD_MS - 1),
                        "4.4.1 x: connect timed out after 1s");
    /* stale: tried again */
    assert_null(smtp_dead_find(&d, &a, 5000 + SMTP_DEAD_MS));
    assert_int_equal(d.n, 0);
    smtp_dead_free(&d);
}

static void test_bounded(void **st)
{
    (void)st;
    struct smtp_dead d = {0};
    char addr[32];
    for (int i = 0; i < SMTP_DEAD_MAX + 10; i++) {
        snprintf(addr, sizeof addr, "198.51.%d.%d", 100 + i / 250, i % 250 + 1);
        struct sockaddr_storage s = v4(addr, 25);
        smtp_dead_note(&d, &s, "4.4.1 refused", 1000 + i);
    }
    assert_int_equal(d.n, SMTP_DEAD_MAX);
    struct sockaddr_storage oldest = v4("198.51.100.1", 25);
    assert_null(smtp_dead_find(&d, &oldest, 2000)); /* the first to expire went */
    snprintf(addr, sizeof addr, "198.51.%d.%d", 100 + (SMTP_DEAD_MAX + 9) / 250,
             (SMTP_DEAD_MAX + 9) % 250 + 1);
    struct sockaddr_storage newest = v4(addr, 25);
    assert_non_null(smtp_dead_find(&d, &newest, 2000));
    smtp_dead_free(&d);
    assert_int_equal(d.n, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_remember_and_forget),
        cmocka_unit_test(test_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
