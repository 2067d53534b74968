/* test_mx.c - routing pieces with injected data: literals, relay-host syntax,
 * self detection, pruning MX hosts at or below our own preference. */
#include "compat.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "mx.h"
#include "relay_map.h"
#include "util.h"

static void test_literals(void **st)
{
    (void)st;
    struct sockaddr_storage ss;
    assert_int_equal(mx_parse_literal("[203.0.113.1]", &ss), 0);
    assert_int_equal(ss.ss_family, AF_INET);
    assert_int_equal(mx_parse_literal("[IPv6:2001:db8::1]", &ss), 0);
    assert_int_equal(ss.ss_family, AF_INET6);
    assert_int_equal(mx_parse_literal("[ipv6:::1]", &ss), 0);
    assert_int_equal(mx_parse_literal("[2001:db8::1]", &ss), 0);
    const char *bad[] = {"203.0.113.1", "[203.0.113.256]", "[IPv6:203.0.113.1]", "[]", "[x]",
                         "[203.0.113.1", "[1.2.3.4]x"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_int_equal(mx_parse_literal(bad[i], &ss), -1);
}

static void test_relay_spec(void **st)
{
    (void)st;
    static const struct { const char *in; const char *host; int port; } ok[] = {
        {"smart.example", "smart.example", 25},
        {"smart.example:587", "smart.example", 587},
        {"[203.0.113.7]", "[203.0.113.7]", 25},
        {"[203.0.113.7]:2525", "[203.0.113.7]", 2525},
        {"[IPv6:2001:db8::7]:26", "[IPv6:2001:db8::7]", 26},
    };
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
        char *h;
        int port;
        int no_mx;
        assert_int_equal(relay_nexthop_parse(ok[i].in, &h, &port, &no_mx), 0);
        assert_int_equal(no_mx, 0);
        assert_string_equal(h, ok[i].host);
        assert_int_equal(port, ok[i].port);
        free(h);
    }
    const char *bad[] = {"", "smart.example:", "smart.example:0", "smart.example:65536",
                         "smart.example:25x", "[203.0.113.7]25", "[203.0.113.7", "bad host",
                         "a..b", "[]:25", "[a..b]"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char *h = NULL;
        int port;
        int no_mx;
        assert_int_equal(relay_nexthop_parse(bad[i], &h, &port, &no_mx), -1);
        assert_null(h);
    }
}

static struct sockaddr_storage v4(const char *a)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    ss.ss_family = AF_INET;
    inet_pton(AF_INET, a, &((struct sockaddr_in *)&ss)->sin_addr);
    return ss;
}

static struct sockaddr_storage v6(const char *a)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    ss.ss_family = AF_INET6;
    inet_pton(AF_INET6, a, &((struct sockaddr_in6 *)&ss)->sin6_addr);
    return ss;
}

static void test_self_addresses(void **st)
{
    (void)st;
    struct sockaddr_storage ours[2] = {v4("198.51.100.5"), v6("2001:db8::5")};
    struct sockaddr_storage t;
    t = v4("198.51.100.5");
    assert_true(mx_addr_is_self((struct sockaddr *)&t, ours, 2));
    t = v4("198.51.100.6");
    assert_false(mx_addr_is_self((struct sockaddr *)&t, ours, 2));
    t = v4("127.0.0.53");
    assert_true(mx_addr_is_self((struct sockaddr *)&t, ours, 2)); /* all of 127/8 */
    t = v4("0.0.0.0");
    assert_true(mx_addr_is_self((struct sockaddr *)&t, ours, 2));
    t = v6("::1");
    assert_true(mx_addr_is_self((struct sockaddr *)&t, ours, 2));
    t = v6("2001:db8::5");
    assert_true(mx_addr_is_self((struct sockaddr *)&t, ours, 2));
    t = v6("::ffff:198.51.100.5");
    assert_true(mx_addr_is_self((struct sockaddr *)&t, ours, 2)); /* v4-mapped */
    t = v6("2001:db8::6");
    assert_false(mx_addr_is_self((struct sockaddr *)&t, ours, 2));
}

static struct mx_host *hosts(const int *pref, const int *self, size_t n)
{
    struct mx_host *h = xcalloc(n, sizeof *h);
    for (size_t i = 0; i < n; i++) {
        h[i].name = xasprintf("mx%zu", i);
        h[i].pref = pref[i];
        h[i].self = self[i];
    }
    return h;
}

static void free_hosts(struct mx_host *h, size_t n)
{
    for (size_t i = 0; i < n; i++)
        mx_host_free(&h[i]);
    free(h);
}

static void test_prune_self(void **st)
{
    (void)st;
    int had;
    /* we are the 20: the 10s stay, 20 (us and our peer) and 30 go */
    int p1[] = {10, 10, 20, 20, 30}, s1[] = {0, 0, 0, 1, 0};
    struct mx_host *h = hosts(p1, s1, 5);
    size_t n = mx_prune_self(h, 5, &had);
    assert_true(had);
    assert_int_equal(n, 2);
    assert_string_equal(h[0].name, "mx0");
    assert_string_equal(h[1].name, "mx1");
    free_hosts(h, n);

    /* we are the best MX: nothing left (the caller reports a loop, 5.4.6) */
    int p2[] = {5, 10}, s2[] = {1, 0};
    h = hosts(p2, s2, 2);
    n = mx_prune_self(h, 2, &had);
    assert_true(had);
    assert_int_equal(n, 0);
    free_hosts(h, n);

    /* not an MX ourselves: untouched */
    int p3[] = {10, 20}, s3[] = {0, 0};
    h = hosts(p3, s3, 2);
    n = mx_prune_self(h, 2, &had);
    assert_false(had);
    assert_int_equal(n, 2);
    free_hosts(h, n);

    /* we appear twice: the better preference counts */
    int p4[] = {10, 20, 30, 40}, s4[] = {0, 0, 1, 0};
    int p5[] = {10, 20, 30, 40}, s5[] = {0, 1, 1, 0};
    h = hosts(p4, s4, 4);
    n = mx_prune_self(h, 4, &had);
    assert_int_equal(n, 2);
    free_hosts(h, n);
    h = hosts(p5, s5, 4);
    n = mx_prune_self(h, 4, &had);
    assert_int_equal(n, 1);
    free_hosts(h, n);
}

static void test_our_addrs(void **st)
{
    (void)st;
    struct sockaddr_storage *a;
    size_t n;
    assert_int_equal(mx_our_addrs(&a, &n), 0);
    assert_true(n >= 1); /* at least loopback */
    int lo = 0;
    for (size_t i = 0; i < n; i++)
        lo |= mx_addr_is_self((struct sockaddr *)&a[i], a, n);
    assert_true(lo);
    free(a);
}

/* The kept list is used as it is while fresh (a made-up address of ours
 * routes as a loop) and listed again once stale. */
static void test_ours_kept(void **st)
{
    (void)st;
    struct mx_ours o = {0};
    assert_int_equal(mx_ours_get(&o, 1000), 0);
    struct sockaddr_storage *first = o.a;
    assert_non_null(first);
    assert_int_equal(mx_ours_get(&o, 1000 + MX_OURS_MAX_AGE_MS - 1), 0);
    assert_ptr_equal(o.a, first); /* not listed again */
    /* pretend 203.0.113.7 is on an interface */
    struct sockaddr_in *s4 = (struct sockaddr_in *)&o.a[0];
    memset(&o.a[0], 0, sizeof o.a[0]);
    s4->sin_family = AF_INET;
    inet_pton(AF_INET, "203.0.113.7", &s4->sin_addr);
    o.at_ms = now_ms();
    struct config c;
    memset(&c, 0, sizeof c);
    struct mx_route r;
    char *why = NULL;
    assert_int_equal(mx_route_ours(NULL, &c, "[203.0.113.7]", &o, &r, &why), MX_PERMFAIL);
    assert_non_null(why);
    assert_true(strncmp(why, "5.4.6", 5) == 0);
    free(why);
    why = NULL;
    /* without the kept list the address is not ours */
    assert_int_equal(mx_route(NULL, &c, "[203.0.113.7]", &r, &why), MX_OK);
    mx_route_free(&r);
    /* stale: listed again, the made-up address is gone */
    assert_int_equal(mx_ours_get(&o, o.at_ms + MX_OURS_MAX_AGE_MS), 0);
    struct sockaddr_in probe = {.sin_family = AF_INET};
    inet_pton(AF_INET, "203.0.113.7", &probe.sin_addr);
    assert_false(mx_addr_is_self((struct sockaddr *)&probe, o.a, o.n));
    mx_ours_free(&o);
    assert_null(o.a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_literals),       cmocka_unit_test(test_relay_spec),
        cmocka_unit_test(test_self_addresses), cmocka_unit_test(test_prune_self),
        cmocka_unit_test(test_our_addrs), cmocka_unit_test(test_ours_kept),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
