/* test_mailbox_spec.c - mailbox= parsing and template expansion
 * (mailbox_spec.h): each kind, the refusals, and expansions that would leave
 * the directory a template names. */
#include "compat.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mailbox_spec.h"

static struct mailbox_spec parse_ok(const char *v)
{
    struct mailbox_spec s;
    char *why = NULL;
    assert_int_equal(mailbox_spec_parse(v, &s, &why), 0);
    assert_null(why);
    return s;
}

static void test_kinds(void **state)
{
    (void)state;
    struct mailbox_spec s = parse_ok(NULL);
    assert_int_equal(s.kind, MB_SPOOL);
    s = parse_ok("");
    assert_int_equal(s.kind, MB_SPOOL);
    s = parse_ok("/var/mail/%u");
    assert_int_equal(s.kind, MB_MBOX);
    assert_string_equal(s.template, "/var/mail/%u");
    mailbox_spec_free(&s);
    s = parse_ok("~/Maildir/");
    assert_int_equal(s.kind, MB_MAILDIR);
    mailbox_spec_free(&s);
    s = parse_ok("lmtp:unix:/run/dovecot/lmtp");
    assert_int_equal(s.kind, MB_LMTP);
    assert_string_equal(s.lmtp_unix, "/run/dovecot/lmtp");
    assert_null(s.lmtp_host);
    mailbox_spec_free(&s);
    s = parse_ok("lmtp:[2001:db8::1]:24");
    assert_string_equal(s.lmtp_host, "2001:db8::1");
    assert_string_equal(s.lmtp_port, "24");
    mailbox_spec_free(&s);
    s = parse_ok("lmtp:mail.example:2424");
    assert_string_equal(s.lmtp_host, "mail.example");
    assert_string_equal(s.lmtp_port, "2424");
    mailbox_spec_free(&s);
}

static void test_refused(void **state)
{
    (void)state;
    const char *bad[] = {"Maildir/", "mbox", "~user/Maildir/", "/var/mail/%x",
                         "/var/mail/%", "lmtp:unix:relative", "lmtp:host",
                         "lmtp:[::1]", "lmtp:[::1]:0", "lmtp:host:99999",
                         "lmtp:host:2x", "lmtp:a:b:24", "lmtp:[]:24"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct mailbox_spec s;
        char *why = NULL;
        assert_int_equal(mailbox_spec_parse(bad[i], &s, &why), -1);
        assert_non_null(why);
        assert_non_null(strstr(why, bad[i]));
        free(why);
    }
}

static void expect(const char *t, const char *u, const char *d, const char *h, const char *want)
{
    char *why = NULL;
    char *p = mailbox_spec_expand(t, u, d, h, &why);
    if (want) {
        assert_non_null(p);
        assert_string_equal(p, want);
        assert_null(why);
    } else {
        assert_null(p);
        assert_non_null(why);
        free(why);
    }
    free(p);
}

static void test_expand(void **state)
{
    (void)state;
    expect("~/Maildir/", "bob", "example.org", "/home/bob", "/home/bob/Maildir/");
    expect("/var/mail/%u/", "bob", "example.org", NULL, "/var/mail/bob/");
    expect("/srv/%d/%u", "bob", "example.org", NULL, "/srv/example.org/bob");
    expect("%h/mail/inbox", "bob", "x", "/home/bob", "/home/bob/mail/inbox");
    expect("/srv/100%%/%u", "bob", "x", NULL, "/srv/100%/bob");
    /* no home, a relative home, names that would climb out */
    expect("~/Maildir/", "bob", "x", NULL, NULL);
    expect("%h/Maildir/", "bob", "x", "relative", NULL);
    expect("/var/mail/%u", "..", "x", NULL, NULL);
    expect("/var/mail/%u", "a/b", "x", NULL, NULL);
    expect("/srv/%d/%u", "bob", ".", NULL, NULL);
    expect("/srv/%d/%u", "bob", NULL, NULL, NULL);
    expect("/srv/%d/%u", "", "x", NULL, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kinds),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_expand),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
