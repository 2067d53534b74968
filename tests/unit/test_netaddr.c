/* test_netaddr.c - address parsing and CIDR matching used by trusted=. */
#include "compat.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <cmocka.h>

#include "netaddr.h"

static int in(const char *addr, const char *cidr)
{
    struct netaddr a, n;
    int p;
    assert_int_equal(net_parse(addr, &a), 0);
    assert_int_equal(net_parse_cidr(cidr, &n, &p), 0);
    return net_in_cidr(&a, &n, p);
}

static void test_parse(void **state)
{
    (void)state;
    struct netaddr a;
    char s[64];
    assert_int_equal(net_parse("203.0.113.1", &a), 0);
    assert_int_equal(a.family, AF_INET);
    assert_int_equal(net_parse("[203.0.113.1]", &a), 0);
    net_format(&a, s, sizeof s);
    assert_string_equal(s, "203.0.113.1");
    assert_int_equal(net_parse("[IPv6:2001:db8::1]", &a), 0);
    assert_int_equal(a.family, AF_INET6);
    net_format(&a, s, sizeof s);
    assert_string_equal(s, "2001:db8::1");
    /* v4-mapped is IPv4 */
    assert_int_equal(net_parse("::ffff:10.1.2.3", &a), 0);
    assert_int_equal(a.family, AF_INET);
    assert_int_equal(net_parse("example.com", &a), -1);
    assert_int_equal(net_parse("[1.2.3.4", &a), -1);
    assert_int_equal(net_parse("1.2.3.4.5", &a), -1);
    assert_int_equal(net_parse("", &a), -1);
}

static void test_cidr(void **state)
{
    (void)state;
    assert_true(in("10.1.2.3", "10.0.0.0/8"));
    assert_false(in("11.1.2.3", "10.0.0.0/8"));
    assert_true(in("203.0.113.130", "203.0.113.128/25"));
    assert_false(in("203.0.113.127", "203.0.113.128/25"));
    assert_true(in("203.0.113.9", "[203.0.113.9]"));
    assert_false(in("203.0.113.10", "203.0.113.9"));
    assert_true(in("1.2.3.4", "0.0.0.0/0"));
    assert_true(in("2001:db8::5", "2001:db8::/32"));
    assert_false(in("2001:db9::5", "2001:db8::/32"));
    assert_false(in("10.0.0.1", "::/0")); /* families never mix */
    assert_true(in("::ffff:10.0.0.1", "10.0.0.0/8"));
    struct netaddr n;
    int p;
    assert_int_equal(net_parse_cidr("10.0.0.0/33", &n, &p), -1);
    assert_int_equal(net_parse_cidr("10.0.0.0/x", &n, &p), -1);
    assert_int_equal(net_parse_cidr("10.0.0.0/", &n, &p), -1);
    assert_int_equal(net_parse_cidr("::/129", &n, &p), -1);
}

static void test_loopback(void **state)
{
    (void)state;
    struct netaddr a;
    net_parse("127.0.0.2", &a);
    assert_true(net_is_loopback(&a));
    net_parse("::1", &a);
    assert_true(net_is_loopback(&a));
    net_parse("128.0.0.1", &a);
    assert_false(net_is_loopback(&a));
    net_parse("127.0.0.1", &a);
    assert_int_equal(net_is_local_interface(&a), 1);
    net_parse("203.0.113.254", &a); /* TEST-NET-3: never ours */
    assert_int_equal(net_is_local_interface(&a), 0);
}

static void test_sockaddr(void **state)
{
    (void)state;
    struct sockaddr_in6 s6;
    memset(&s6, 0, sizeof s6);
    s6.sin6_family = AF_INET6;
    inet_pton(AF_INET6, "::ffff:127.0.0.1", &s6.sin6_addr);
    struct netaddr a;
    assert_int_equal(net_from_sockaddr((struct sockaddr *)&s6, &a), 0);
    assert_int_equal(a.family, AF_INET);
    assert_true(net_is_loopback(&a));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_cidr),
        cmocka_unit_test(test_loopback),
        cmocka_unit_test(test_sockaddr),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
