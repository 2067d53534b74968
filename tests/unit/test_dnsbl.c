/* test_dnsbl.c - dnsbl= entry syntax (dnsbl_valid) and the names asked
 * (dns_reverse_name: IPv4 octets reversed, IPv6 nibbles). */
#include "compat.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <netinet/in.h>

#include <cmocka.h>

#include "dns.h"
#include "dnsbl.h"
#include "netaddr.h"

static void test_valid(void **state)
{
    (void)state;
    static const char *good[] = {
        "zen.spamhaus.org", "zen.spamhaus.org=127.0.0.[2..11]", "bl.example*2",
        "white.example*-5", "bl.example=127.0.0.2*3", "bl.example=127.0.[0;1].[2..4;9]",
        "bl.example=[1..255].0.0.1",
    };
    static const char *bad[] = {
        "", "bl..example", "bl.example=", "bl.example=127.0.0", "bl.example=1.2.3.4.5",
        "bl.example*", "bl.example*x", "bl.example*99999", "bl.example=127.0.0.[5..2]",
        "bl.example=127.0.0.256", "bl.example=127.0.0.[2", "bl.example=127.0.0.2;3",
        "bl example",
    };
    for (size_t i = 0; i < sizeof good / sizeof *good; i++)
        assert_true(dnsbl_valid(good[i]));
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        if (dnsbl_valid(bad[i]))
            fail_msg("accepted %s", bad[i]);
    }
}

static void check_name(const char *ip, const char *zone, const char *want)
{
    struct netaddr a;
    struct buf b;
    assert_int_equal(net_parse(ip, &a), 0);
    buf_init(&b);
    dns_reverse_name(a.family, a.a, zone, &b);
    assert_string_equal(b.s, want);
    buf_free(&b);
}

static void test_reverse_names(void **state)
{
    (void)state;
    check_name("203.0.113.5", "bl.example", "5.113.0.203.bl.example");
    check_name("203.0.113.5", NULL, "5.113.0.203.in-addr.arpa");
    check_name("2001:db8::42", "bl.example",
               "2.4.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.bl.example");
    /* an IPv4 client seen through an IPv6 socket is asked as IPv4 */
    unsigned char mapped[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 198, 51, 100, 7};
    struct buf b;
    buf_init(&b);
    dns_reverse_name(AF_INET6, mapped, "bl.example", &b);
    assert_string_equal(b.s, "7.100.51.198.bl.example");
    buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid),
        cmocka_unit_test(test_reverse_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
