/* test_relay_map.c - relay-map= (relay_map.h): the file format and its
 * errors, next hops, which entry a domain gets, the destination with the
 * global options as the default, the file re-read when it changes and
 * refused when its path is not secure, and the routing decision it makes. */
#include "compat.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "conf.h"
#include "relay_map.h"
#include "route.h"
#include "util.h"

static int parse(const char *text, struct relay_map *m, char **why)
{
    return relay_map_parse(text, strlen(text), m, why);
}

static void test_parse_fields(void **st)
{
    (void)st;
    struct relay_map m;
    char *why = NULL;
    const char *text = "# per-destination relays\n"
                       "\n"
                       "a.example   [mx.a.example]:2525\n"
                       "  B.Example.  [relay.b.example]:587  tls=require ca=/etc/ca.pem "
                       "auth=/etc/po/b.auth\r\n"
                       ".sub.example relay.sub.example tls=none\n"
                       "direct.example - tls=verify\n"
                       "lit.example [203.0.113.7]:465\n"
                       "*\t[smarthost.example]\ttls=smtps\n";
    if (parse(text, &m, &why) != 0)
        fail_msg("%s", why);
    assert_int_equal(m.n, 6);
    const struct relay_entry *e = &m.v[0];
    assert_string_equal(e->pattern, "a.example");
    assert_string_equal(e->host, "mx.a.example");
    assert_int_equal(e->port, 2525);
    assert_int_equal(e->no_mx, 1);
    assert_int_equal(e->tls, RELAY_TLS_DEFAULT);
    assert_null(e->ca);
    assert_null(e->auth);
    assert_int_equal(e->line, 3);
    e = &m.v[1];
    assert_string_equal(e->pattern, "b.example"); /* lower case, no trailing dot */
    assert_int_equal(e->tls, RELAY_TLS_REQUIRE);
    assert_string_equal(e->ca, "/etc/ca.pem");
    assert_string_equal(e->auth, "/etc/po/b.auth");
    e = &m.v[2];
    assert_string_equal(e->pattern, ".sub.example");
    assert_string_equal(e->host, "relay.sub.example");
    assert_int_equal(e->no_mx, 0); /* no brackets: its MX is looked up */
    assert_int_equal(e->port, 25);
    assert_int_equal(e->tls, RELAY_TLS_NONE);
    e = &m.v[3];
    assert_null(e->host); /* "-": the domain's own MX hosts */
    assert_int_equal(e->tls, RELAY_TLS_REQUIRE); /* verify is require */
    e = &m.v[4];
    assert_string_equal(e->host, "[203.0.113.7]");
    assert_int_equal(e->no_mx, 0);
    assert_int_equal(e->port, 465);
    e = &m.v[5];
    assert_string_equal(e->pattern, "*");
    assert_int_equal(e->tls, RELAY_TLS_SMTPS);
    relay_map_free(&m);
    assert_int_equal(parse("", &m, &why), 0);
    assert_int_equal(m.n, 0);
}

/* Each bad line makes the whole map unusable, naming the line. */
static void bad(const char *text, const char *expect)
{
    struct relay_map m;
    char *why = NULL;
    assert_int_equal(parse(text, &m, &why), -1);
    assert_non_null(why);
    if (!strstr(why, expect))
        fail_msg("\"%s\": got \"%s\", wanted \"%s\"", text, why, expect);
    assert_int_equal(m.n, 0);
    assert_null(m.v);
    free(why);
}

static void test_parse_errors(void **st)
{
    (void)st;
    bad("a.example\n", "line 1: a pattern and a next hop are needed");
    bad("ok.example [h.example]\nbad_domain! [h.example]\n", "line 2: the pattern");
    bad("a.example.. [h.example]\n", "line 1: the pattern");
    bad("a.example [h.example]:0\n", "line 1: the next hop");
    bad("a.example [h.example]:70000\n", "the next hop");
    bad("a.example [h.example\n", "the next hop");
    bad("a.example []:25\n", "the next hop");
    bad("a.example h.example:x\n", "the next hop");
    bad("a.example [h.example] tls=sometimes\n", "tls= wants none, may, require");
    bad("a.example [h.example] tls=may tls=none\n", "once");
    bad("a.example [h.example] ca=relative.pem\n", "ca= wants an absolute file name");
    bad("a.example [h.example] auth=/a auth=/b\n", "auth= wants");
    bad("a.example [h.example] password=x\n", "unknown option password");
    bad("a.example - tls=smtps\n", "tls=smtps needs a next hop");
    bad("a.example [h.example]:465 tls=none\n", "port 465");
    bad("a.example [h.example]\n# x\nA.EXAMPLE. [other.example]\n",
        "line 3: a.example is already on line 1");
    bad("a.example [h.example]\x01\n", "line 1 has control characters");
    char *big = xmalloc(RELAY_MAP_LINE_MAX + 40);
    memset(big, 'a', RELAY_MAP_LINE_MAX + 20);
    big[RELAY_MAP_LINE_MAX + 20] = '\0';
    bad(big, "line 1 is longer than");
    free(big);
}

static void hop(const char *spec, int ok, const char *host, int port, int no_mx)
{
    char *h = NULL;
    int p = -1, n = -1;
    assert_int_equal(relay_nexthop_parse(spec, &h, &p, &n), ok ? 0 : -1);
    if (!ok) {
        assert_null(h);
        return;
    }
    assert_string_equal(h, host);
    assert_int_equal(p, port);
    assert_int_equal(n, no_mx);
    free(h);
}

static void test_nexthop(void **st)
{
    (void)st;
    hop("relay.example", 1, "relay.example", 25, 0);
    hop("relay.example:587", 1, "relay.example", 587, 0);
    hop("[relay.example]", 1, "relay.example", 25, 1);
    hop("[relay.example]:465", 1, "relay.example", 465, 1);
    hop("[198.51.100.5]:587", 1, "[198.51.100.5]", 587, 0);
    hop("[IPv6:2001:db8::5]", 1, "[IPv6:2001:db8::5]", 25, 0);
    hop("", 0, NULL, 0, 0);
    hop("[relay.example]x", 0, NULL, 0, 0);
    hop("relay example", 0, NULL, 0, 0);
    hop("[bad name]:25", 0, NULL, 0, 0);
}

static void test_find(void **st)
{
    (void)st;
    struct relay_map m;
    char *why = NULL;
    assert_int_equal(parse("example.com [exact.example]\n"
                           ".example.com [sub.example]\n"
                           ".deep.example.com [deep.example]\n"
                           "* [default.example]\n",
                           &m, &why), 0);
    assert_string_equal(relay_map_find(&m, "example.com")->host, "exact.example");
    assert_string_equal(relay_map_find(&m, "EXAMPLE.com.")->host, "exact.example");
    assert_string_equal(relay_map_find(&m, "a.example.com")->host, "sub.example");
    assert_string_equal(relay_map_find(&m, "a.b.example.com")->host, "sub.example");
    /* the nearest parent wins, whatever the order of the lines */
    assert_string_equal(relay_map_find(&m, "x.deep.example.com")->host, "deep.example");
    assert_string_equal(relay_map_find(&m, "deep.example.com")->host, "sub.example");
    assert_string_equal(relay_map_find(&m, "notexample.com")->host, "default.example");
    assert_string_equal(relay_map_find(&m, "other.org")->host, "default.example");
    assert_string_equal(relay_map_find(&m, "[203.0.113.9]")->host, "default.example");
    relay_map_free(&m);
    assert_int_equal(parse(".example.com [sub.example]\n", &m, &why), 0);
    assert_null(relay_map_find(&m, "example.com")); /* .parent: subdomains only */
    assert_null(relay_map_find(&m, "other.org"));
    assert_null(relay_map_find(&m, NULL));
    relay_map_free(&m);
}

/* ---- the file: a secure path, re-read on change ---- */

static char dir[] = "/run/po-relaymap-XXXXXX";
static char *mapfile;

static void put_map(const char *text, mode_t mode)
{
    char *tmp = xasprintf("%s.new", mapfile);
    FILE *f = fopen(tmp, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    assert_int_equal(chmod(tmp, mode), 0);
    assert_int_equal(rename(tmp, mapfile), 0); /* a new inode: seen at once */
    free(tmp);
}

static int file_setup(void **st)
{
    (void)st;
    if (geteuid() != 0)
        return 0;
    if (!mkdtemp(dir))
        return -1;
    chmod(dir, 0755);
    mapfile = xasprintf("%s/relay-map", dir);
    return 0;
}

static int file_teardown(void **st)
{
    (void)st;
    if (mapfile) {
        unlink(mapfile);
        rmdir(dir);
        free(mapfile);
    }
    relay_map_flush();
    return 0;
}

static const struct config_ctx root = {.privileged = 1};

static void conf_with_map(struct config *c)
{
    config_defaults(c);
    assert_int_equal(config_set(c, "self=example.org", "t", &root), 0);
    char *set = xasprintf("relay-map=%s", mapfile);
    assert_int_equal(config_set(c, set, "t", &root), 0);
    free(set);
}

static void test_dest_and_defaults(void **st)
{
    (void)st;
    if (geteuid() != 0)
        skip();
    struct config c;
    conf_with_map(&c);
    assert_int_equal(config_set(&c, "relay-host=[global.example]:2525", "t", &root), 0);
    assert_int_equal(config_set(&c, "relay-auth=/etc/po/global.auth", "t", &root), 0);
    assert_int_equal(config_set(&c, "relay-tls-ca=/etc/po/global.pem", "t", &root), 0);
    put_map("b.example [relay.b.example]:587 auth=/etc/po/b.auth ca=/etc/po/b.pem\n"
            "c.example [relay.c.example]:465\n"
            "d.example - tls=require\n", 0644);
    struct relay_dest d;
    char *why = NULL;
    assert_int_equal(relay_dest_get(&c, "b.example", &d, &why), 0);
    assert_string_equal(d.host, "relay.b.example");
    assert_int_equal(d.port, 587);
    assert_int_equal(d.tls, RELAY_TLS_REQUIRE); /* auth= without tls=: require */
    assert_int_equal(d.implicit, 0);
    assert_string_equal(d.ca, "/etc/po/b.pem");
    assert_string_equal(d.auth, "/etc/po/b.auth");
    assert_int_equal(d.line, 1);
    char *origin = xasprintf("relay-map %s:1", mapfile);
    assert_string_equal(d.origin, origin);
    free(origin);
    relay_dest_free(&d);
    assert_int_equal(relay_dest_get(&c, "c.example", &d, &why), 0);
    assert_int_equal(d.tls, RELAY_TLS_MAY); /* no auth=: may, and never relay-auth= */
    assert_int_equal(d.implicit, 1);        /* port 465 */
    assert_null(d.ca);                      /* the system store, not relay-tls-ca= */
    assert_null(d.auth);
    relay_dest_free(&d);
    assert_int_equal(relay_dest_get(&c, "d.example", &d, &why), 0);
    assert_null(d.host);
    assert_int_equal(d.tls, RELAY_TLS_REQUIRE);
    relay_dest_free(&d);
    /* no entry: the global options */
    assert_int_equal(relay_dest_get(&c, "other.example", &d, &why), 0);
    assert_string_equal(d.host, "global.example");
    assert_int_equal(d.no_mx, 1);
    assert_int_equal(d.port, 2525);
    assert_int_equal(d.tls, RELAY_TLS_REQUIRE);
    assert_string_equal(d.auth, "/etc/po/global.auth");
    assert_string_equal(d.ca, "/etc/po/global.pem");
    assert_string_equal(d.origin, "relay-host");
    assert_int_equal(d.line, 0);
    relay_dest_free(&d);
    /* the routing decision */
    assert_int_equal(route_recipient(&c, "b.example", NULL, NULL), ROUTE_RELAY);
    assert_int_equal(route_recipient(&c, "d.example", NULL, NULL), ROUTE_MX);
    assert_int_equal(route_recipient(&c, "other.example", NULL, NULL), ROUTE_RELAY);
    assert_int_equal(route_recipient(&c, "example.org", NULL, NULL), ROUTE_LOCAL);
    config_free(&c);
}

static void test_reread_and_refusals(void **st)
{
    (void)st;
    if (geteuid() != 0)
        skip();
    struct config c;
    conf_with_map(&c);
    put_map("a.example [one.example]\n", 0644);
    const char *err = NULL;
    const struct relay_map *m = relay_map_current(&c, &err);
    assert_non_null(m);
    assert_string_equal(relay_map_find(m, "a.example")->host, "one.example");
    put_map("a.example [two.example]\n", 0644);
    m = relay_map_current(&c, &err);
    assert_non_null(m);
    assert_string_equal(relay_map_find(m, "a.example")->host, "two.example");
    /* no map entry and no relay-host: the MX hosts; with no relay-host, the
     * MX question is asked */
    assert_int_equal(route_recipient(&c, "b.example", NULL, NULL), ROUTE_MX);
    /* a bad line: nothing of the map is used, every remote route waits */
    put_map("a.example [two.example]\nb.example [x.example] tls=perhaps\n", 0644);
    assert_null(relay_map_current(&c, &err));
    assert_non_null(strstr(err, "4.3.5 relay-map="));
    assert_non_null(strstr(err, "line 2: tls="));
    struct relay_dest d;
    char *why = NULL;
    assert_int_equal(relay_dest_get(&c, "a.example", &d, &why), -1);
    assert_non_null(strstr(why, "line 2"));
    free(why);
    assert_int_equal(route_recipient(&c, "b.example", NULL, NULL), ROUTE_RELAY);
    /* writable by others: refused */
    put_map("a.example [two.example]\n", 0666);
    assert_null(relay_map_current(&c, &err));
    assert_non_null(strstr(err, "writable"));
    put_map("a.example [two.example]\n", 0644);
    assert_non_null(relay_map_current(&c, &err));
    unlink(mapfile);
    assert_null(relay_map_current(&c, &err));
    assert_non_null(strstr(err, "No such file"));
    config_free(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_fields),
        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_nexthop),
        cmocka_unit_test(test_find),
        cmocka_unit_test(test_dest_and_defaults),
        cmocka_unit_test(test_reread_and_refusals),
    };
    return cmocka_run_group_tests(tests, file_setup, file_teardown);
}
