/* test_policy.c - relay decisions, recipient checks (the open-relay cases),
 * sender checks without DNS, trusted= networks, checkhelo, minfree. */
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

#include "policy.h"

struct fix {
    struct config c;
    struct client cl;
    struct buf why;
    char aliases[64];
};

static void set(struct config *c, const char *s)
{
    struct config_ctx ctx = { 1, 0 };
    assert_int_equal(config_set(c, s, "test", &ctx), 0);
}

static int setup(void **state)
{
    struct fix *f = calloc(1, sizeof *f);
    config_defaults(&f->c);
    set(&f->c, "hostname=mx.test.example");
    snprintf(f->aliases, sizeof f->aliases, "/tmp/test_policy.%ld", (long)getpid());
    FILE *a = fopen(f->aliases, "w");
    fputs("postmaster: root\nstaff: nobody\n", a);
    fclose(a);
    char *s = xasprintf("aliases=%s", f->aliases);
    set(&f->c, s);
    free(s);
    set(&f->c, "queuedir=/tmp");
    net_parse("203.0.113.5", &f->cl.addr);
    str_copy(f->cl.ip, "203.0.113.5", sizeof f->cl.ip);
    buf_init(&f->why);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fix *f = *state;
    unlink(f->aliases);
    config_free(&f->c);
    buf_free(&f->why);
    free(f);
    return 0;
}

static int rcpt(struct fix *f, const char *a)
{
    return policy_rcpt(&f->c, &f->cl, a, &f->why);
}

static void test_rcpt_local(void **state)
{
    struct fix *f = *state;
    assert_int_equal(rcpt(f, "nobody@mx.test.example"), 0);
    assert_int_equal(rcpt(f, "postmaster@mx.test.example"), 0);
    assert_int_equal(rcpt(f, "staff"), 0);
    assert_int_equal(rcpt(f, "nobody@[127.0.0.1]"), 0);
    assert_int_equal(rcpt(f, "nosuchuser9@mx.test.example"), 550);
    assert_true(!strncmp(f->why.s, "5.1.1 ", 6));
}

static void test_rcpt_open_relay(void **state)
{
    struct fix *f = *state;
    static const char *const bad[] = {
        "victim@victim.example", "victim%victim.example@mx.test.example",
        "victim.example!victim@mx.test.example", "victim.example!victim",
        "\"victim@victim.example\"@mx.test.example", "victim@[203.0.113.99]",
        "victim@mx.test.example.victim.example",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int code = rcpt(f, bad[i]);
        assert_true(code >= 500 && code < 600);
        assert_true(!strncmp(f->why.s, "5.", 2));
    }
    assert_int_equal(rcpt(f, "victim@victim.example"), 554);
    assert_true(!strncmp(f->why.s, "5.7.1 ", 6));
    /* a client that may relay may send anywhere, but never via a local part */
    f->cl.relay_ok = 1;
    assert_int_equal(rcpt(f, "victim@victim.example"), 0);
    assert_int_equal(rcpt(f, "victim%victim.example@mx.test.example"), 550);
}

static void test_mail(void **state)
{
    struct fix *f = *state;
    assert_int_equal(policy_mail(&f->c, NULL, &f->cl, "", &f->why), 0);
    set(&f->c, "nodaemon");
    assert_int_equal(policy_mail(&f->c, NULL, &f->cl, "", &f->why), 550);
    /* our own domain from an outsider */
    assert_int_equal(policy_mail(&f->c, NULL, &f->cl, "nobody@mx.test.example", &f->why), 550);
    assert_int_equal(policy_mail(&f->c, NULL, &f->cl, "nobody", &f->why), 550);
    /* no resolver: a temporary failure, never a silent pass */
    assert_int_equal(policy_mail(&f->c, NULL, &f->cl, "a@example.org", &f->why), 451);
    assert_int_equal(policy_mail(&f->c, NULL, &f->cl, "a@[203.0.113.1]", &f->why), 0);
    f->cl.relay_ok = 1;
    assert_int_equal(policy_mail(&f->c, NULL, &f->cl, "a@example.org", &f->why), 0);
    set(&f->c, "verify-from=0");
    f->cl.relay_ok = 0;
    assert_int_equal(policy_mail(&f->c, NULL, &f->cl, "nobody@mx.test.example", &f->why), 0);
}

static void test_trusted_and_relay(void **state)
{
    struct fix *f = *state;
    set(&f->c, "trusted=203.0.113.0/28,[198.51.100.1]");
    policy_relay(&f->c, NULL, &f->cl);
    assert_int_equal(f->cl.trusted, 1);
    assert_int_equal(f->cl.relay_ok, 1);
    net_parse("198.51.100.1", &f->cl.addr);
    assert_int_equal(policy_trusted(&f->c, NULL, &f->cl), 1);
    net_parse("203.0.113.99", &f->cl.addr);
    policy_relay(&f->c, NULL, &f->cl);
    assert_int_equal(f->cl.relay_ok, 0);
    net_parse("127.0.0.1", &f->cl.addr);
    policy_relay(&f->c, NULL, &f->cl);
    assert_int_equal(f->cl.relay_ok, 1);
    net_parse("203.0.113.99", &f->cl.addr);
    set(&f->c, "relay");
    policy_relay(&f->c, NULL, &f->cl);
    assert_int_equal(f->cl.relay_ok, 1);
}

static void test_checkhelo(void **state)
{
    struct fix *f = *state;
    assert_int_equal(policy_helo(&f->c, NULL, &f->cl, "mx.test.example", &f->why), 0);
    set(&f->c, "checkhelo");
    assert_int_equal(policy_helo(&f->c, NULL, &f->cl, "mx.test.example", &f->why), 554);
    assert_int_equal(policy_helo(&f->c, NULL, &f->cl, "MX.Test.Example.", &f->why), 554);
    assert_int_equal(policy_helo(&f->c, NULL, &f->cl, "[127.0.0.1]", &f->why), 554);
    assert_int_equal(policy_helo(&f->c, NULL, &f->cl, "client.example", &f->why), 0);
    f->cl.relay_ok = 1;
    assert_int_equal(policy_helo(&f->c, NULL, &f->cl, "mx.test.example", &f->why), 0);
}

static void test_minfree(void **state)
{
    struct fix *f = *state;
    set(&f->c, "minfree=0");
    assert_int_equal(policy_minfree(&f->c, &f->why), 0);
    set(&f->c, "minfree=999999999g");
    assert_int_equal(policy_minfree(&f->c, &f->why), 452);
    assert_true(!strncmp(f->why.s, "4.3.1 ", 6));
}

/* Without a resolver the server cannot tell whether it is an MX host of a
 * foreign domain: a client that may not relay is told to try again (never a
 * pass); our own domains and relaying clients need no DNS. */
static void test_rcpt_dns_without_resolver(void **state)
{
    struct fix *f = *state;
    assert_int_equal(policy_rcpt_dns(&f->c, NULL, &f->cl, "x@backup.example", &f->why), 451);
    assert_true(!strncmp(f->why.s, "4.4.3 ", 6));
    assert_int_equal(policy_rcpt_dns(&f->c, NULL, &f->cl, "nobody@mx.test.example", &f->why), 0);
    assert_int_equal(policy_rcpt_dns(&f->c, NULL, &f->cl, "nosuchuser9@mx.test.example",
                                     &f->why), 550);
    f->cl.relay_ok = 1;
    assert_int_equal(policy_rcpt_dns(&f->c, NULL, &f->cl, "x@backup.example", &f->why), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_rcpt_local, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rcpt_open_relay, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mail, setup, teardown),
        cmocka_unit_test_setup_teardown(test_trusted_and_relay, setup, teardown),
        cmocka_unit_test_setup_teardown(test_checkhelo, setup, teardown),
        cmocka_unit_test_setup_teardown(test_minfree, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rcpt_dns_without_resolver, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
