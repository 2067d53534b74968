/* test_header_qualify.c - "@domain" for unqualified addresses in the address
 * fields of a header block (header_qualify.h): what changes, and the many
 * things that must not. */
#include "compat.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "header_qualify.h"
#include "util.h"

#define DOM "mx.test.example"

/* The whole header block in, the expected block and count out. */
static void check(const char *in, const char *want, size_t count)
{
    struct buf b;
    buf_init(&b);
    size_t n = hq_headers(in, strlen(in), DOM, &b);
    buf_addc(&b, '\0');
    if (strcmp(b.s, want) != 0)
        print_error("in:   %s\nwant: %s\ngot:  %s\n", in, want, b.s);
    assert_string_equal(b.s, want);
    assert_int_equal(n, count);
    buf_free(&b);
}

/* The same field unchanged. */
static void same(const char *in)
{
    check(in, in, 0);
}

static void test_simple(void **state)
{
    (void)state;
    check("To: bob\n", "To: bob@" DOM "\n", 1);
    check("To: Bob Smith <bob>\n", "To: Bob Smith <bob@" DOM ">\n", 1);
    check("To: bob, alice\n", "To: bob@" DOM ", alice@" DOM "\n", 2);
    check("Cc: bob,alice@x.example,carol\n",
          "Cc: bob@" DOM ",alice@x.example,carol@" DOM "\n", 2);
    check("From: root\nSubject: to bob\n", "From: root@" DOM "\nSubject: to bob\n", 1);
}

static void test_every_field(void **state)
{
    (void)state;
    const char *fields[] = {"From", "Sender", "Reply-To", "To", "Cc", "Bcc",
                            "Resent-From", "Resent-Sender", "Resent-To", "Resent-Cc",
                            "Resent-Bcc", "TO", "reply-to", "RESENT-cc"};
    for (size_t i = 0; i < sizeof fields / sizeof *fields; i++) {
        char in[128], want[128];
        snprintf(in, sizeof in, "%s: bob\n", fields[i]);
        snprintf(want, sizeof want, "%s: bob@" DOM "\n", fields[i]);
        check(in, want, 1);
    }
    /* not address fields, or not ours to touch */
    same("Subject: bob\n");
    same("X-To: bob\n");
    same("Resent-Reply-To: bob\n");
    same("In-Reply-To: <bob>\n");
    same("Message-ID: <bob>\n");
    same("Tox: bob\n");
    same("Return-Path: <bob>\n");
}

static void test_untouched(void **state)
{
    (void)state;
    same("To: bob@x.example\n");
    same("To: Bob <bob@x.example>\n");
    same("To: <>\n");
    same("To: \"bob smith\"\n");            /* quoted local part */
    same("To: \"bob\"@x.example\n");
    same("To: Bob <\"bob smith\">\n");
    same("To: undisclosed-recipients:;\n"); /* empty group */
    same("To: undisclosed-recipients: ;\n");
    same("To: bob smith\n");                /* two words, no address */
    same("To:\n");
    same("To: \n");
    same("To: ,\n");
    same("To: bob@\n");
    same("To: [bob]\n");
}

static void test_comments_and_quotes(void **state)
{
    (void)state;
    check("To: bob (Bob Smith)\n", "To: bob@" DOM " (Bob Smith)\n", 1);
    check("To: (the boss) bob\n", "To: (the boss) bob@" DOM "\n", 1);
    check("To: \"Smith, Bob\" <bob>\n", "To: \"Smith, Bob\" <bob@" DOM ">\n", 1);
    check("To: \"a <b> c\" <bob>\n", "To: \"a <b> c\" <bob@" DOM ">\n", 1);
    /* a comment holding an address-like word is a comment */
    check("To: bob (cc: alice, carol)\n", "To: bob@" DOM " (cc: alice, carol)\n", 1);
    check("To: bob (a (nested) comment), carol\n",
          "To: bob@" DOM " (a (nested) comment), carol@" DOM "\n", 2);
    check("To: bob (a \\) quoted paren)\n", "To: bob@" DOM " (a \\) quoted paren)\n", 1);
    check("To: \"Bob \\\"B\\\" Smith\" <bob>\n",
          "To: \"Bob \\\"B\\\" Smith\" <bob@" DOM ">\n", 1);
    check("To: Bob<bob>(x)\n", "To: Bob<bob@" DOM ">(x)\n", 1);
    check("To: <bob >\n", "To: <bob@" DOM " >\n", 1);
}

static void test_groups(void **state)
{
    (void)state;
    check("To: friends: bob, alice@x.example;\n",
          "To: friends: bob@" DOM ", alice@x.example;\n", 1);
    check("To: a: bob;, carol\n", "To: a: bob@" DOM ";, carol@" DOM "\n", 2);
    check("To: \"My Group\": Bob <bob>; , b:;\n",
          "To: \"My Group\": Bob <bob@" DOM ">; , b:;\n", 1);
    same("To: friends: bob\n");   /* no ';' */
    same("To: : bob;\n");         /* no group name */
}

static void test_folded(void **state)
{
    (void)state;
    check("To: bob,\n alice,\n\tcarol\n",
          "To: bob@" DOM ",\n alice@" DOM ",\n\tcarol@" DOM "\n", 3);
    check("To: Bob\n Smith <bob>\n", "To: Bob\n Smith <bob@" DOM ">\n", 1);
    check("To: \"Bob\n Smith\" <bob>\n", "To: \"Bob\n Smith\" <bob@" DOM ">\n", 1);
    check("To: bob\r\n alice@x.example\r\n", "To: bob\r\n alice@x.example\r\n", 0);
    check("To: bob,\r\n alice\r\n", "To: bob@" DOM ",\r\n alice@" DOM "\r\n", 2);
    check("To: bob\nX: y\nCc: carol\n", "To: bob@" DOM "\nX: y\nCc: carol@" DOM "\n", 2);
}

static void test_obsolete(void **state)
{
    (void)state;
    check("To: <@a.example,@b.example:bob>\n",
          "To: <@a.example,@b.example:bob@" DOM ">\n", 1);
    same("To: <@a.example:bob@c.example>\n");
    check("To: bob . smith\n", "To: bob . smith@" DOM "\n", 1);
    check("To: bob.smith, , carol\n", "To: bob.smith@" DOM ", , carol@" DOM "\n", 2);
    check("To: John Q. Public <jqp>\n", "To: John Q. Public <jqp@" DOM ">\n", 1);
    check("To: =?utf-8?q?J=C3=B6rg?= <joerg>\n",
          "To: =?utf-8?q?J=C3=B6rg?= <joerg@" DOM ">\n", 1);
    check("To: J\xc3\xb6rg <j\xc3\xb6rg>\n", "To: J\xc3\xb6rg <j\xc3\xb6rg@" DOM ">\n", 1);
    same("To: bob.\n");
    same("To: .bob\n");
}

static void test_not_a_list(void **state)
{
    (void)state;
    /* anything that does not parse leaves the whole field as it is */
    same("To: bob, \"alice\n");
    same("To: bob, (alice\n");
    same("To: bob, <alice\n");
    same("To: bob, alice>x\n");
    same("To: bob, <alice> carol\n");
    same("To: bob, <<alice>>\n");
    same("To: bob, a)b\n");
    same("To: bob\\x\n");
    same("To: bob\x01, carol\n");
    same("To: bob\r, carol\n");
    same("To: bob, [alice\n");
    same("To: a: b: c;;\n");
    same("To: bob;, carol\n");
    /* the other fields still go through */
    check("To: bob, \"alice\nCc: carol\n", "To: bob, \"alice\nCc: carol@" DOM "\n", 1);
}

static void test_bounded(void **state)
{
    (void)state;
    /* comments nested past the limit: the field is left */
    struct buf in;
    buf_init(&in);
    buf_adds(&in, "To: bob ");
    for (int i = 0; i < HQ_COMMENT_DEPTH_MAX + 1; i++)
        buf_addc(&in, '(');
    for (int i = 0; i < HQ_COMMENT_DEPTH_MAX + 1; i++)
        buf_addc(&in, ')');
    buf_adds(&in, "\n");
    same(in.s);
    buf_free(&in);
    /* HQ_ADDRS_MAX qualified, one more leaves the field */
    struct buf ok, over;
    buf_init(&ok);
    buf_init(&over);
    buf_adds(&ok, "To: a");
    for (int i = 1; i < HQ_ADDRS_MAX; i++)
        buf_adds(&ok, ",a");
    buf_addf(&over, "%s,a\n", ok.s);
    buf_adds(&ok, "\n");
    struct buf out;
    buf_init(&out);
    assert_int_equal(hq_headers(ok.s, ok.len, DOM, &out), HQ_ADDRS_MAX);
    buf_free(&out);
    buf_init(&out);
    assert_int_equal(hq_headers(over.s, over.len, DOM, &out), 0);
    assert_int_equal(out.len, over.len);
    assert_memory_equal(out.s, over.s, over.len);
    buf_free(&out);
    buf_free(&ok);
    buf_free(&over);
    /* a long deeply quoted field is linear work and comes back whole */
    struct buf big;
    buf_init(&big);
    buf_adds(&big, "To: \"");
    for (int i = 0; i < 200000; i++)
        buf_adds(&big, "\\\"");
    buf_adds(&big, "\" <bob>\n");
    buf_init(&out);
    assert_int_equal(hq_headers(big.s, big.len, DOM, &out), 1);
    assert_int_equal(out.len, big.len + strlen("@" DOM));
    buf_free(&out);
    buf_free(&big);
}

static void test_field_names(void **state)
{
    (void)state;
    assert_true(hq_field("to", 2));
    assert_true(hq_field("Resent-Bcc", 10));
    assert_false(hq_field("Resent-", 7));
    assert_false(hq_field("Resent-Reply-To", 15));
    assert_false(hq_field("t", 1));
    assert_false(hq_field("To ", 3));
    /* no header line in the block at all */
    same("");
    same("not a field\n");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_simple),
        cmocka_unit_test(test_every_field),
        cmocka_unit_test(test_untouched),
        cmocka_unit_test(test_comments_and_quotes),
        cmocka_unit_test(test_groups),
        cmocka_unit_test(test_folded),
        cmocka_unit_test(test_obsolete),
        cmocka_unit_test(test_not_a_list),
        cmocka_unit_test(test_bounded),
        cmocka_unit_test(test_field_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
