/* test_route.c - routing decisions: is a domain ours, which way a recipient
 * goes, the MX answer cache.  The MX question is answered by a scripted
 * lookup function (the seam route_recipient takes), which also counts the
 * questions, so no DNS is involved. */
#include "compat.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "conf.h"
#include "netaddr.h"
#include "route.h"
#include "util.h"

static const struct config_ctx root = {1, 0};

struct script {
    const char *domain; /* the one domain whose MX points here */
    const char *broken; /* the one domain whose lookup fails */
    int asked;
};

static int scripted(void *arg, const char *domain)
{
    struct script *s = arg;
    s->asked++;
    if (s->broken && strcmp(domain, s->broken) == 0)
        return -1;
    return s->domain && strcmp(domain, s->domain) == 0;
}

static void setup_conf(struct config *c)
{
    config_defaults(c);
    assert_int_equal(config_set(c, "self=mail.example.org", "t", &root), 0);
    assert_int_equal(config_set(c, "self=example.org", "t", &root), 0);
}

static void test_local_domain(void **st)
{
    (void)st;
    struct config c;
    setup_conf(&c);
    assert_int_equal(route_is_local_domain(&c, NULL), 1);
    assert_int_equal(route_is_local_domain(&c, ""), 0);
    assert_int_equal(route_is_local_domain(&c, "MAIL.example.org"), 1);
    assert_int_equal(route_is_local_domain(&c, "mail.example.org."), 1);
    assert_int_equal(route_is_local_domain(&c, "Example.ORG"), 1);
    assert_int_equal(route_is_local_domain(&c, "localhost"), 1);
    assert_int_equal(route_is_local_domain(&c, "localhost."), 1);
    assert_int_equal(route_is_local_domain(&c, "sub.example.org"), 0);
    assert_int_equal(route_is_local_domain(&c, "example.org.."), 0);
    assert_int_equal(route_is_local_domain(&c, "other.example"), 0);
    assert_int_equal(route_is_local_domain(&c, "[127.0.0.1]"), 1);
    assert_int_equal(route_is_local_domain(&c, "[203.0.113.55]"), 0);
    assert_int_equal(route_is_local_domain(&c, "[junk]"), 0);
    assert_int_equal(route_is_local_domain(&c, "[127.0.0.1"), 0);
    config_free(&c);
}

/* What the HELO check asks (no DNS here: d is NULL). */
static void test_host_is_us(void **st)
{
    (void)st;
    struct config c;
    setup_conf(&c);
    assert_int_equal(route_host_is_us(&c, NULL, "127.0.0.1"), 1);
    assert_int_equal(route_host_is_us(&c, NULL, "::1"), 1);
    assert_int_equal(route_host_is_us(&c, NULL, "203.0.113.55"), 0);
    assert_int_equal(route_host_is_us(&c, NULL, "mail.example.org"), 1);
    assert_int_equal(route_host_is_us(&c, NULL, "localhost"), 1);
    assert_int_equal(route_host_is_us(&c, NULL, "client.example.net"), 0);
    config_free(&c);
}

static void test_recipient_ways(void **st)
{
    (void)st;
    struct config c;
    setup_conf(&c);
    struct script s = {.domain = "backup.example", .broken = "dnsfail.example"};
    /* ours by name or literal: never asks DNS */
    assert_int_equal(route_recipient(&c, NULL, scripted, &s), ROUTE_LOCAL);
    assert_int_equal(route_recipient(&c, "example.org", scripted, &s), ROUTE_LOCAL);
    assert_int_equal(route_recipient(&c, "[127.0.0.1]", scripted, &s), ROUTE_LOCAL);
    assert_int_equal(s.asked, 0);
    /* a literal of another host goes there without asking */
    assert_int_equal(route_recipient(&c, "[203.0.113.55]", scripted, &s), ROUTE_MX);
    assert_int_equal(s.asked, 0);
    assert_int_equal(route_recipient(&c, "backup.example", scripted, &s), ROUTE_LOCAL_MX);
    assert_int_equal(route_recipient(&c, "far.example", scripted, &s), ROUTE_MX);
    assert_int_equal(route_recipient(&c, "dnsfail.example", scripted, &s), ROUTE_UNSURE);
    assert_int_equal(s.asked, 3);
    /* no lookup function: remote */
    assert_int_equal(route_recipient(&c, "backup.example", NULL, NULL), ROUTE_MX);
    assert_true(route_is_remote(ROUTE_MX));
    assert_true(route_is_remote(ROUTE_RELAY));
    assert_false(route_is_remote(ROUTE_LOCAL));
    assert_false(route_is_remote(ROUTE_LOCAL_MX));
    assert_false(route_is_remote(ROUTE_UNSURE));
    config_free(&c);
}

/* Virtual domains: an active one is local by name (without asking DNS) but
 * no host of ours; one switched off whose MX points here is ROUTE_OFF. */
static void test_virtual_domains(void **st)
{
    (void)st;
    char dir[] = "/tmp/po-route-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char *cf = xasprintf("%s/domains.cf", dir);
    FILE *f = fopen(cf, "w");
    assert_non_null(f);
    fputs("a:one.example:1\nb:off.example:0\nc:backup.example:0\n", f);
    fclose(f);
    struct config c;
    setup_conf(&c);
    char *set = xasprintf("vhostdir=%s", dir);
    assert_int_equal(config_set(&c, set, "t", &root), 0);
    struct script s = {.domain = "off.example"};
    assert_int_equal(route_is_local_domain(&c, "One.Example"), 1);
    assert_int_equal(route_is_our_host(&c, "one.example"), 0);
    assert_int_equal(route_host_is_us(&c, NULL, "one.example"), 0);
    assert_int_equal(route_is_our_host(&c, "mail.example.org"), 1);
    assert_int_equal(route_is_local_domain(&c, "off.example"), 0);
    assert_int_equal(route_recipient(&c, "one.example", scripted, &s), ROUTE_LOCAL);
    assert_int_equal(s.asked, 0);
    assert_int_equal(route_recipient(&c, "off.example", scripted, &s), ROUTE_OFF);
    assert_int_equal(route_recipient(&c, "backup.example", scripted, &s), ROUTE_MX);
    assert_false(route_is_remote(ROUTE_OFF));
    unlink(cf);
    rmdir(dir);
    free(cf);
    free(set);
    config_free(&c);
}

static void test_relay_host(void **st)
{
    (void)st;
    struct config c;
    setup_conf(&c);
    assert_int_equal(config_set(&c, "relay-host=smarthost.example", "t", &root), 0);
    struct script s = {.domain = "backup.example", .broken = "dnsfail.example"};
    /* everything remote goes to the relay host, whatever DNS would say */
    assert_int_equal(route_recipient(&c, "backup.example", scripted, &s), ROUTE_RELAY);
    assert_int_equal(route_recipient(&c, "dnsfail.example", scripted, &s), ROUTE_RELAY);
    assert_int_equal(route_recipient(&c, "[203.0.113.55]", scripted, &s), ROUTE_RELAY);
    assert_int_equal(route_recipient(&c, "example.org", scripted, &s), ROUTE_LOCAL);
    assert_int_equal(s.asked, 0);
    config_free(&c);
}

static void test_cache(void **st)
{
    (void)st;
    struct config c;
    setup_conf(&c);
    struct script s = {.domain = "backup.example", .broken = "dnsfail.example"};
    struct route_cache rc;
    route_cache_init(&rc, scripted, &s);
    for (int k = 0; k < 3; k++) {
        assert_int_equal(route_recipient(&c, "backup.example", route_mx_cached, &rc),
                         ROUTE_LOCAL_MX);
        assert_int_equal(route_recipient(&c, k ? "FAR.example" : "far.example",
                                         route_mx_cached, &rc), ROUTE_MX);
    }
    assert_int_equal(s.asked, 2); /* one question per domain, any case */
    /* a temporary failure is asked again next time */
    assert_int_equal(route_mx_cached(&rc, "dnsfail.example"), -1);
    assert_int_equal(route_mx_cached(&rc, "dnsfail.example"), -1);
    assert_int_equal(s.asked, 4);
    route_cache_free(&rc);
    config_free(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_local_domain),
        cmocka_unit_test(test_host_is_us),
        cmocka_unit_test(test_recipient_ways),
        cmocka_unit_test(test_virtual_domains),
        cmocka_unit_test(test_relay_host),
        cmocka_unit_test(test_cache),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
