/* test_address.c - address.c: paths, mailboxes, lists, hostile input. */
#include "compat.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "address.h"

#define R_CTRL "address has a control character"
#define R_UTF8 "address is not valid UTF-8"
#define R_EMPTY "address is empty"
#define R_NULL "the null address <> is not allowed here"
#define R_NOGT "missing > at the end of the address"
#define R_ANGLE "unbalanced < > in address"
#define R_QUOTE "unbalanced quotes in address"
#define R_BRACKET "unbalanced [ ] in address literal"
#define R_LOCAL_EMPTY "local part is empty"
#define R_LOCAL_CHAR "local part has a character that must be quoted"
#define R_LOCAL_AT "address has an unquoted @ in its local part"
#define R_LOCAL_LONG "local part is too long (max 64 characters)"
#define R_LOCAL_USER "local user name may not start with |, /, : or -"
#define R_LOCAL_DOT "local part may not start or end with a dot or hold two in a row " \
                    "(quote it: \"a..b\"@example.com)"
#define R_LOCAL_MIX "local part mixes quoted and unquoted text (quote all of it)"
#define R_ESCAPE "a backslash in a quoted local part may only escape printable ASCII"
#define R_COMMENT "comments ( ) are not allowed in an SMTP address"
#define R_DOMAIN_DOT "domain name may not end with a dot"
#define R_LONG "address is too long (max 254 characters)"
#define R_TARGET "an address may not start with | or / (programs and files are named " \
                 "only in aliases and .forward files)"
#define R_DOMAIN_MISSING "domain name is missing after @"
#define R_DOMAIN "domain name is not valid"
#define R_DOMAIN_LONG "domain name is too long (max 255 characters)"
#define R_LITERAL "address literal is not valid"
#define R_ROUTE "source route is not valid"
#define R_JUNK "junk after the address"

/* One path case: input, allow_null, then either the canonical address and the
 * rest, or (want == NULL) the reason. */
struct path_case {
    const char *in;
    int allow_null;
    const char *want;
    const char *rest_or_why;
};

static const struct path_case path_cases[] = {
    { "<user@example.com>", 0, "user@example.com", "" },
    { "  <user@example.com> SIZE=100 BODY=8BITMIME", 0, "user@example.com",
      "SIZE=100 BODY=8BITMIME" },
    { "<User.Name@EXAMPLE.Com>", 0, "User.Name@example.com", "" },
    { "<b@Sub.Example.ORG>", 0, "b@sub.example.org", "" },
    { "<>", 1, "", "" },
    { "<> SIZE=10", 1, "", "SIZE=10" },
    { "<>", 0, NULL, R_NULL },
    { "<postmaster>", 0, "postmaster", "" },
    { "<Postmaster>", 0, "Postmaster", "" },
    /* bare addresses, tolerated for compatibility */
    { "user@example.com", 0, "user@example.com", "" },
    { " user@Example.com SIZE=5", 0, "user@example.com", "SIZE=5" },
    { "bob", 0, "bob", "" },
    /* source routes accepted and dropped */
    { "<@a:b@c>", 0, "b@c", "" },
    { "<@a.example,@b.example:u@c.example>", 0, "u@c.example", "" },
    { "<@[10.0.0.1]:u@c>", 0, "u@c", "" },
    { "<@a,b:c@d>", 0, NULL, R_ROUTE },
    { "<@a>", 0, NULL, R_LOCAL_EMPTY },
    { "<@>", 0, NULL, R_LOCAL_EMPTY },
    { "<@bad_dom:u@c>", 0, NULL, R_ROUTE },
    { "@a:b@c", 0, NULL, R_LOCAL_EMPTY },
    /* RFC 5321 4.1.2 Local-part = Dot-string / Quoted-string, nothing else;
     * nothing is repaired into another local part */
    { "<a.b.c@d>", 0, "a.b.c@d", "" },
    { "<!#$%&'*+-/=?^_`{|}~@d>", 0, "!#$%&'*+-/=?^_`{|}~@d", "" },
    { "<.test@d>", 0, NULL, R_LOCAL_DOT },
    { "<test.@d>", 0, NULL, R_LOCAL_DOT },
    { "<test..x@d>", 0, NULL, R_LOCAL_DOT },
    { "<.@d>", 0, NULL, R_LOCAL_DOT },
    { "<a.>", 0, NULL, R_LOCAL_DOT },
    { "test.@d", 0, NULL, R_LOCAL_DOT },
    { "<\"test\"test@d>", 0, NULL, R_LOCAL_MIX },
    { "<test\"text\"@d>", 0, NULL, R_LOCAL_MIX },
    { "<\"a\"\"b\"@d>", 0, NULL, R_LOCAL_MIX },
    { "<\"a\".b@d>", 0, NULL, R_LOCAL_MIX },
    { "<a.\"b\"@d>", 0, NULL, R_LOCAL_MIX },
    { "<\"a\".\"b\"@c>", 0, NULL, R_LOCAL_MIX },
    { "<\"a\"\xc3\xa9@d>", 0, NULL, R_LOCAL_MIX },
    /* quoted local parts: the same local part, written with the least quoting
     * (RFC 5321 4.1.2: all quoted forms are equivalent) */
    { "<\"john smith\"@d>", 0, "\"john smith\"@d", "" },
    { "<\"john\\ smith\"@d>", 0, "\"john smith\"@d", "" },
    { "<\"joe\"@d>", 0, "joe@d", "" },
    { "<\"joe.smith\"@d>", 0, "joe.smith@d", "" },
    { "<\".test\"@d>", 0, "\".test\"@d", "" },
    { "<\"test.\"@d>", 0, "\"test.\"@d", "" },
    { "<\"a..b\"@d>", 0, "\"a..b\"@d", "" },
    { "<\" \"@d>", 0, "\" \"@d", "" },
    { "<\"a(b)\"@d>", 0, "\"a(b)\"@d", "" },
    { "<\"\xc3\xa9\"@d>", 0, "\xc3\xa9@d", "" },
    { "<\"a \xc3\xa9\"@d>", 0, "\"a \xc3\xa9\"@d", "" },
    { "<\"a\\\xc3\xa9\"@d>", 0, NULL, R_ESCAPE },
    /* comments belong to message headers, not to the envelope */
    { "<(c)x@d>", 0, NULL, R_COMMENT },
    { "<x(c)@d>", 0, NULL, R_LOCAL_CHAR },
    { "<x@d(c)>", 0, NULL, R_COMMENT },
    { "<x@(c)d>", 0, NULL, R_DOMAIN_MISSING },
    /* Domain: no trailing dot */
    { "<x@d.>", 0, NULL, R_DOMAIN_DOT },
    { "x@d.example.", 0, NULL, R_DOMAIN_DOT },
    { "<@a.example.:u@d>", 0, NULL, R_ROUTE },
    /* quoted local parts: kept quoted only when needed */
    { "<\"a b\"@x>", 0, "\"a b\"@x", "" },
    { "<\"abc\"@x>", 0, "abc@x", "" },
    { "<\"a@b\"@c>", 0, "\"a@b\"@c", "" },
    { "<\"a\\\"b\"@c>", 0, "\"a\\\"b\"@c", "" },
    { "<\"a\\\\b\"@c>", 0, "\"a\\\\b\"@c", "" },
    { "<\"\\a\"@c>", 0, "a@c", "" },
    { "<\".a\"@c>", 0, "\".a\"@c", "" },
    { "<\";cmd;\"@x>", 0, "\";cmd;\"@x", "" },
    { "<\"unterminated@x>", 0, NULL, R_QUOTE },
    { "<\"\"@x>", 0, NULL, R_LOCAL_EMPTY },
    /* open-relay tricks: the domain is what follows the last unquoted @ */
    { "<a%b@c>", 0, "a%b@c", "" },
    { "<a!b@c>", 0, "a!b@c", "" },
    { "<a%b@C.EXAMPLE>", 0, "a%b@c.example", "" },
    { "<a@b@c>", 0, NULL, R_LOCAL_AT },
    { "a@b@c", 0, NULL, R_LOCAL_AT },
    /* address literals */
    { "<u@[203.0.113.1]>", 0, "u@[203.0.113.1]", "" },
    { "<u@[IPv6:2001:DB8:0:0::1]>", 0, "u@[IPv6:2001:db8::1]", "" },
    { "<u@[ipv6:::1]>", 0, "u@[IPv6:::1]", "" },
    { "<u@[1.2.3]>", 0, NULL, R_LITERAL },
    { "<u@[1.2.3.256]>", 0, NULL, R_LITERAL },
    { "<u@[IPv6:1.2.3.4]>", 0, NULL, R_LITERAL },
    { "<u@[tag:stuff]>", 0, NULL, R_LITERAL },
    { "<x@[IPv6:2001:db8::1]>", 0, "x@[IPv6:2001:db8::1]", "" },
    { "<x@[IPv6:::ffff:203.0.113.1]>", 0, "x@[IPv6:::ffff:203.0.113.1]", "" },
    { "<x@[300.1.1.1]>", 0, NULL, R_LITERAL },
    { "<x@[203.0.113.1.]>", 0, NULL, R_LITERAL },
    { "<x@[2001:db8::1]>", 0, NULL, R_LITERAL },
    { "<x@[IPv6:2001:db8::g]>", 0, NULL, R_LITERAL },
    { "<x@[IPv6:2001:db8::1%eth0]>", 0, NULL, R_LITERAL },
    { "<x@[]>", 0, NULL, R_LITERAL },
    { "<x@[ 203.0.113.1]>", 0, NULL, R_LITERAL },
    { "<u@[1.2.3.4>", 0, NULL, R_BRACKET },
    { "<u@[1.2.3.4]x>", 0, NULL, R_DOMAIN },
    /* shell metacharacters are data; canonical form, never unquoted specials */
    { "<`id`@x>", 0, "`id`@x", "" },
    { "<|cmd@x>", 0, NULL, R_TARGET },
    { "</tmp/a@x>", 0, NULL, R_TARGET },
    { "<\"/tmp/a\"@x>", 0, NULL, R_TARGET },
    { "<\"|cmd\"@x>", 0, NULL, R_TARGET },
    { "<\" |cmd\"@x>", 0, "\" |cmd\"@x", "" },
    { "<a|cmd@x>", 0, "a|cmd@x", "" },
    { "<-oQ/tmp@x>", 0, "-oQ/tmp@x", "" },
    { "<$(id)@x>", 0, NULL, R_LOCAL_CHAR },
    { "<;sleep 1;>", 0, NULL, R_LOCAL_CHAR },
    { "<a;b@x>", 0, NULL, R_LOCAL_CHAR },
    { "<a b@x>", 0, NULL, R_LOCAL_CHAR },
    { "<a\\b@x>", 0, NULL, R_LOCAL_CHAR },
    { "<\"a b\"@x>", 0, "\"a b\"@x", "" },
    /* domainless local names that look like programs, files or options */
    { "<|cmd>", 0, NULL, R_LOCAL_USER },
    { "</etc/passwd>", 0, NULL, R_LOCAL_USER },
    { "<-oQ>", 0, NULL, R_LOCAL_USER },
    { "-oQ", 0, NULL, R_LOCAL_USER },
    { "<\":include:/x\">", 0, NULL, R_LOCAL_USER },
    { "<\"|cmd\">", 0, NULL, R_LOCAL_USER },
    /* control characters anywhere */
    { "<a\nb@x>", 0, NULL, R_CTRL },
    { "<a@x>\r\nRCPT TO:<b@y>", 0, NULL, R_CTRL },
    { "<\"a\rb\"@x>", 0, NULL, R_CTRL },
    { "<a@x\x01>", 0, NULL, R_CTRL },
    { "<a\x7f@x>", 0, NULL, R_CTRL },
    { "<\"a\tb\"@x>", 0, NULL, R_CTRL },
    { "<\"a\\\x01\"@x>", 0, NULL, R_CTRL },
    /* structure */
    { "", 0, NULL, R_EMPTY },
    { "   ", 0, NULL, R_EMPTY },
    { "<", 0, NULL, R_NOGT },
    { "<a@b", 0, NULL, R_NOGT },
    { "a@b>", 0, NULL, R_ANGLE },
    { "<<a@b>>", 0, NULL, R_ANGLE },
    { "<a@b> junk", 0, "a@b", "junk" },
    { "<a@b junk>", 0, NULL, R_JUNK },
    { "<@>", 1, NULL, R_LOCAL_EMPTY },
    { "<@b>", 0, NULL, R_LOCAL_EMPTY },
    { "@b", 0, NULL, R_LOCAL_EMPTY },
    { "<a@>", 0, NULL, R_DOMAIN_MISSING },
    { "a@", 0, NULL, R_DOMAIN_MISSING },
    /* domains */
    { "<a@-b.c>", 0, NULL, R_DOMAIN },
    { "<a@b-.c>", 0, NULL, R_DOMAIN },
    { "<a@b..c>", 0, NULL, R_DOMAIN },
    { "<a@.b>", 0, NULL, R_DOMAIN },
    { "<a@.>", 0, NULL, R_DOMAIN },
    { "<a@b..>", 0, NULL, R_DOMAIN },
    { "<a@b_c.d>", 0, NULL, R_DOMAIN },
    { "<a@b$c>", 0, NULL, R_DOMAIN },
    { "<a@x-1.B-2.c>", 0, "a@x-1.b-2.c", "" },
    /* SMTPUTF8 */
    { "<j\xc3\xb6rg@b\xc3\xbc" "cher.example>", 0, "j\xc3\xb6rg@b\xc3\xbc" "cher.example", "" },
    { "<\xe7\x94\xa8\xe6\x88\xb7@\xe4\xbe\x8b\xe5\xad\x90.\xe5\x85\xac\xe5\x8f\xb8>", 0,
      "\xe7\x94\xa8\xe6\x88\xb7@\xe4\xbe\x8b\xe5\xad\x90.\xe5\x85\xac\xe5\x8f\xb8", "" },
    { "<a\xff@x>", 0, NULL, R_UTF8 },
    { "<a@x\xc3>", 0, NULL, R_UTF8 },
    { "<a\xc0\xaf@x>", 0, NULL, R_UTF8 },          /* overlong '/' */
    { "<a\xed\xa0\x80@x>", 0, NULL, R_UTF8 },      /* surrogate */
    { "<a\xf4\x90\x80\x80@x>", 0, NULL, R_UTF8 },  /* past U+10FFFF */
    { "<a\xc2\x85@x>", 0, NULL, R_UTF8 },          /* C1 control NEL */
};

static void test_parse_path_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof path_cases / sizeof path_cases[0]; i++) {
        const struct path_case *c = &path_cases[i];
        char *addr = (char *)1;
        const char *rest = NULL, *why = (const char *)1;
        int r = addr_parse_path(c->in, c->allow_null, &addr, &rest, &why);
        if (c->want) {
            if (r != 0)
                print_error("case %zu \"%s\": unexpected failure: %s\n", i, c->in, why);
            assert_int_equal(r, 0);
            assert_null(why);
            assert_string_equal(addr, c->want);
            assert_string_equal(rest, c->rest_or_why);
            free(addr);
        } else {
            if (r == 0)
                print_error("case %zu \"%s\": accepted as \"%s\"\n", i, c->in, addr);
            assert_int_equal(r, -1);
            assert_null(addr);
            if (strcmp(why, c->rest_or_why) != 0)
                print_error("case %zu \"%s\"\n", i, c->in);
            assert_string_equal(why, c->rest_or_why);
        }
    }
}

/* Length limits (RFC 5321 4.5.3.1): 64 octets of local part as sent, 255 of
 * domain, 256 of path with its brackets (254 of address): exactly at the
 * limit passes, one more fails with the reason. */
static void test_lengths(void **state)
{
    (void)state;
    char local[70], label[64], dom[300], in[700];
    char *addr;
    const char *why;

    memset(local, 'l', 64);
    local[64] = '\0';
    snprintf(in, sizeof in, "%s@x", local);
    assert_int_equal(addr_parse_mailbox(in, &addr, &why), 0);
    assert_string_equal(addr, in);
    free(addr);
    snprintf(in, sizeof in, "%sl@x", local);
    assert_int_equal(addr_parse_mailbox(in, &addr, &why), -1);
    assert_string_equal(why, R_LOCAL_LONG);
    /* 63 chars + the two quotes needed for the space = 65: too long */
    snprintf(in, sizeof in, "\"%.62s \"@x", local);
    assert_int_equal(addr_parse_mailbox(in, &addr, &why), -1);
    assert_string_equal(why, R_LOCAL_LONG);
    /* the limit is on the local part as sent: 33 needless escapes are 68 */
    snprintf(in, sizeof in, "\"%s\"@x",
             "\\a\\a\\a\\a\\a\\a\\a\\a\\a\\a\\a\\a\\a\\a\\a\\a\\a\\a\\a\\a\\a\\a\\a\\a\\a\\a\\a\\a\\a\\a\\a\\a\\a");
    assert_int_equal(addr_parse_mailbox(in, &addr, &why), -1);
    assert_string_equal(why, R_LOCAL_LONG);

    memset(label, 'd', 63);
    label[63] = '\0';
    snprintf(in, sizeof in, "a@%s.com", label);
    assert_int_equal(addr_parse_mailbox(in, &addr, &why), 0);
    free(addr);
    snprintf(in, sizeof in, "a@%sd.com", label);
    assert_int_equal(addr_parse_mailbox(in, &addr, &why), -1);
    assert_string_equal(why, R_DOMAIN);

    /* 64 + "@" + 189 = 254: the longest address */
    snprintf(dom, sizeof dom, "%s.%s.%.61s", label, label, label);
    assert_int_equal(strlen(dom), 189);
    snprintf(in, sizeof in, "<%s@%s>", local, dom);
    assert_int_equal(strlen(in), 256);
    assert_int_equal(addr_parse_mailbox(in, &addr, &why), 0);
    assert_int_equal(strlen(addr), ADDR_MAX);
    assert_int_equal(ADDR_MAX, 254);
    free(addr);
    snprintf(in, sizeof in, "<%s@d.%s>", local, dom);
    assert_int_equal(addr_parse_mailbox(in, &addr, &why), -1);
    assert_string_equal(why, R_LONG);

    /* 4 labels of 63 + 3 dots = 255: a valid domain, too long for an address */
    snprintf(dom, sizeof dom, "%s.%s.%s.%s", label, label, label, label);
    assert_int_equal(strlen(dom), 255);
    assert_int_equal(addr_valid_domain(dom), 1);
    snprintf(in, sizeof in, "a@%s", dom);
    assert_int_equal(addr_parse_mailbox(in, &addr, &why), -1);
    assert_string_equal(why, R_LONG);
    snprintf(in, sizeof in, "a@x%s", dom);
    assert_int_equal(addr_parse_mailbox(in, &addr, &why), -1);
    assert_string_equal(why, R_DOMAIN_LONG);
    snprintf(in, sizeof in, "x%s", dom);
    assert_int_equal(addr_valid_domain(in), 0);
}

/* A megabyte of local part or domain: bounded work, the right reason. */
static void test_huge(void **state)
{
    (void)state;
    size_t n = 1 << 20;
    char *s = malloc(n + 16);
    char *addr;
    const char *why, *rest;

    assert_non_null(s);
    s[0] = '<';
    memset(s + 1, 'a', n);
    memcpy(s + 1 + n, "@x>", 4);
    assert_int_equal(addr_parse_path(s, 0, &addr, &rest, &why), -1);
    assert_string_equal(why, R_LOCAL_LONG);
    memcpy(s + 1, "a@", 2);
    assert_int_equal(addr_parse_path(s, 0, &addr, &rest, &why), -1);
    assert_string_equal(why, R_DOMAIN_LONG);
    memset(s, '"', n);
    s[n] = '\0';
    assert_int_equal(addr_parse_path(s, 0, &addr, &rest, &why), -1);
    memset(s, '<', n);
    assert_int_equal(addr_parse_path(s, 0, &addr, &rest, &why), -1);
    memset(s, '@', n);
    assert_int_equal(addr_parse_path(s, 0, &addr, &rest, &why), -1);
    free(s);
}

/* NUL ends a C string: what follows it is never seen (the SMTP layer rejects
 * command lines with NUL before they get here). */
static void test_nul(void **state)
{
    (void)state;
    static const char in[] = "<a@b>\0<evil@x>";
    char *addr;
    const char *rest, *why;

    assert_int_equal(addr_parse_path(in, 0, &addr, &rest, &why), 0);
    assert_string_equal(addr, "a@b");
    assert_string_equal(rest, "");
    free(addr);
    assert_int_equal(addr_parse_mailbox("\0a@b", &addr, &why), -1);
    assert_string_equal(why, R_EMPTY);
}

struct mbox_case {
    const char *in, *want, *why;
};

static const struct mbox_case mbox_cases[] = {
    { "user@example.com", "user@example.com", NULL },
    { "  user@Example.COM  ", "user@example.com", NULL },
    { "<user@example.com>", "user@example.com", NULL },
    { "root", "root", NULL },
    { "a%b@c", "a%b@c", NULL },
    { "\"a@b\"@c", "\"a@b\"@c", NULL },
    { "a@b c@d", NULL, R_JUNK },
    { "<a@b> SIZE=1", NULL, R_JUNK },
    { "", NULL, R_EMPTY },
    { "<>", NULL, R_NULL },
    { "@", NULL, R_LOCAL_EMPTY },
    { "a@b\n", NULL, R_CTRL },
    { "|/bin/sh", NULL, R_LOCAL_USER },
    { "/tmp/file", NULL, R_LOCAL_USER },
    { "-t", NULL, R_LOCAL_USER },
};

static void test_parse_mailbox_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof mbox_cases / sizeof mbox_cases[0]; i++) {
        const struct mbox_case *c = &mbox_cases[i];
        char *addr;
        const char *why;
        int r = addr_parse_mailbox(c->in, &addr, &why);
        if (c->want) {
            assert_int_equal(r, 0);
            assert_string_equal(addr, c->want);
            free(addr);
        } else {
            assert_int_equal(r, -1);
            assert_null(addr);
            assert_string_equal(why, c->why);
        }
    }
}

/* The relay decision uses addr_domain on the canonical form: it must be the
 * real domain however the address was written. */
static void test_relay_domain(void **state)
{
    (void)state;
    static const struct {
        const char *in, *domain;
    } cases[] = {
        { "<a%b@c>", "c" },
        { "<a!b@c>", "c" },
        { "<@a:b@c>", "c" },
        { "<@relay.example,@x.example:b@c>", "c" },
        { "<\"a@b\"@c>", "c" },
        { "<\"a@b\\\"@x\"@c>", "c" },
        { "<B@C.EXAMPLE>", "c.example" },
        { "<b@C>", "c" },
        { "<b@[203.0.113.7]>", "[203.0.113.7]" },
        { "<b@[IPv6:::1]>", "[IPv6:::1]" },
        { "<postmaster>", NULL },
        { "<\"a@b\">", NULL },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *addr, *l, *d;
        const char *rest, *why;
        assert_int_equal(addr_parse_path(cases[i].in, 0, &addr, &rest, &why), 0);
        const char *dom = addr_domain(addr);
        addr_split(addr, &l, &d);
        if (cases[i].domain) {
            assert_non_null(dom);
            assert_string_equal(dom, cases[i].domain);
            assert_string_equal(d, cases[i].domain);
            assert_int_equal(strlen(l) + 1 + strlen(d), strlen(addr));
        } else {
            assert_null(dom);
            assert_null(d);
            assert_string_equal(l, addr);
        }
        free(l);
        free(d);
        free(addr);
    }
}

static void test_split(void **state)
{
    (void)state;
    char *l, *d;

    addr_split("\"a b\"@x.org", &l, &d);
    assert_string_equal(l, "\"a b\"");
    assert_string_equal(d, "x.org");
    free(l);
    free(d);
    addr_split("bob", &l, &d);
    assert_string_equal(l, "bob");
    assert_null(d);
    free(l);
    addr_split("", &l, &d);
    assert_string_equal(l, "");
    assert_null(d);
    free(l);
    addr_split(NULL, &l, &d);
    assert_null(l);
    assert_null(d);
    assert_null(addr_domain(NULL));
    assert_null(addr_domain(""));
    assert_string_equal(addr_domain("a@b"), "b");
    /* not canonical, but still the last unquoted @ */
    assert_string_equal(addr_domain("a@b@c"), "c");
    assert_null(addr_domain("\"x"));
    assert_null(addr_domain("\"a\\"));
    assert_string_equal(addr_domain("\"a\\\"@b\"@c"), "c");
}

static void test_valid_domain(void **state)
{
    (void)state;
    static const struct {
        const char *d;
        int ok;
    } cases[] = {
        { "example.com", 1 }, { "EXAMPLE.COM", 1 }, { "example.com.", 1 }, { "localhost", 1 },
        { "a-b.c", 1 }, { "1.2.3.4", 1 }, { "xn--bcher-kva.example", 1 },
        { "b\xc3\xbc" "cher.example", 1 }, { "[127.0.0.1]", 1 }, { "[IPv6:::1]", 1 },
        { "[IPv6:fe80::1%eth0]", 0 }, { "", 0 }, { ".", 0 }, { "a..b", 0 }, { "-a.b", 0 },
        { "a-.b", 0 }, { "a_b.c", 0 }, { "a b", 0 }, { "a\nb", 0 }, { "a.b\r", 0 },
        { "[1.2.3.4", 0 }, { "1.2.3.4]", 0 }, { "[]", 0 }, { "[::1]", 0 }, { "a\xff.b", 0 },
        { "a@b", 0 }, { "example.com..", 0 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        if (addr_valid_domain(cases[i].d) != cases[i].ok)
            print_error("domain case %zu \"%s\"\n", i, cases[i].d);
        assert_int_equal(addr_valid_domain(cases[i].d), cases[i].ok);
    }
    assert_int_equal(addr_valid_domain(NULL), 0);
}

static void test_literal(void **state)
{
    (void)state;
    char out[64], tiny[4];

    assert_int_equal(addr_literal("[203.0.113.1]", out, sizeof out), 4);
    assert_string_equal(out, "203.0.113.1");
    assert_int_equal(addr_literal("[IPv6:2001:db8::1]", out, sizeof out), 6);
    assert_string_equal(out, "2001:db8::1");
    assert_int_equal(addr_literal("[ipv6:0:0:0:0:0:0:0:1]", out, sizeof out), 6);
    assert_string_equal(out, "::1");
    assert_int_equal(addr_literal("example.com", out, sizeof out), 0);
    assert_int_equal(addr_literal("[example.com]", out, sizeof out), 0);
    assert_int_equal(addr_literal("[1.2.3.4", out, sizeof out), 0);
    assert_int_equal(addr_literal("[]", out, sizeof out), 0);
    assert_int_equal(addr_literal("", out, sizeof out), 0);
    assert_int_equal(addr_literal(NULL, out, sizeof out), 0);
    assert_int_equal(addr_literal("[203.0.113.1]", tiny, sizeof tiny), 0);
    char big[200];
    memset(big, '1', sizeof big);
    big[0] = '[';
    big[sizeof big - 2] = ']';
    big[sizeof big - 1] = '\0';
    assert_int_equal(addr_literal(big, out, sizeof out), 0);
}

static void test_needs_quotes(void **state)
{
    (void)state;
    static const struct {
        const char *l;
        int q;
    } cases[] = {
        { "abc", 0 }, { "a.b.c", 0 }, { "a+tag", 0 }, { "!#$%&'*+-/=?^_`{|}~", 0 },
        { "j\xc3\xb6rg", 0 }, { "", 1 }, { ".a", 1 }, { "a.", 1 }, { "a..b", 1 },
        { "a b", 1 }, { "a@b", 1 }, { "a\"b", 1 }, { "a\\b", 1 }, { "a(b)", 1 },
        { "a,b", 1 }, { "a:b", 1 }, { "a;b", 1 }, { "<a>", 1 }, { "[a]", 1 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        assert_int_equal(addr_needs_quotes(cases[i].l), cases[i].q);
}

/* Every canonical address parses again to itself. */
static void test_canonical_roundtrip(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof path_cases / sizeof path_cases[0]; i++) {
        const struct path_case *c = &path_cases[i];
        if (!c->want || !*c->want)
            continue;
        char *again;
        const char *why;
        assert_int_equal(addr_parse_mailbox(c->want, &again, &why), 0);
        assert_string_equal(again, c->want);
        free(again);
    }
}

struct list_case {
    const char *value;
    const char *want[5];
};

static const struct list_case list_cases[] = {
    { "a@b", { "a@b" } },
    { "a@b, c@d", { "a@b", "c@d" } },
    { "John Doe <John.Doe@Example.COM>", { "John.Doe@example.com" } },
    { "\"Doe, John\" <jd@x>, other@y", { "jd@x", "other@y" } },
    { "\"Doe, John\" <jd@x> (work, main), other@y", { "jd@x", "other@y" } },
    { "jd@x (John (the (nested)) Doe), z@y", { "jd@x", "z@y" } },
    { "(comment) jd @ x . org", { "jd@x.org" } },
    { "friends: a@b, \"C\" <c@d>;, e@f", { "a@b", "c@d", "e@f" } },
    { "undisclosed-recipients:;", { NULL } },
    { "Name <@relay.example,@r2:u@dest.example>", { "u@dest.example" } },
    { "\"a b\"@x, \"a@b\"@c", { "\"a b\"@x", "\"a@b\"@c" } },
    { "a%b@c, a!b@c, b@c.", { "a%b@c", "a!b@c" } },
    /* the envelope's rules: no repairs into another local part */
    { "\"test\"test@d, ok@y", { "ok@y" } },
    { ".a@d, a.@d, a..b@d, ok@y", { "ok@y" } },
    { "Joe <\"joe\"@d>, \"john smith\"@d", { "joe@d", "\"john smith\"@d" } },
    { "\"a\".\"b\"@c, ok@y", { "ok@y" } },
    { "bob", { "bob" } },
    { ",,, a@b ,,", { "a@b" } },
    { "John Doe jd@x, ok@y", { "ok@y" } },
    { "<a@b> <c@d>, ok@y", { "ok@y" } },
    { "<a@b, ok@y", { NULL } },
    { "a@b>, ok@y", { "ok@y" } },
    { "\"unterminated <a@b>, c@d", { NULL } },
    { "(unterminated comment a@b, c@d", { NULL } },
    { "bad;sh@x, `id`@x, ok@y", { "`id`@x", "ok@y" } },
    { "<|cmd>, </etc/passwd>, <-oQ>, ok@y", { "ok@y" } },
    { "<>, ok@y", { "ok@y" } },
    { "a@[203.0.113.1], b@[IPv6:::1]", { "a@[203.0.113.1]", "b@[IPv6:::1]" } },
    { "a@b@c, d@e", { "d@e" } },
    { "a@\xff, \xe9t\xe9 <ok@y>", { "ok@y" } },
    { "a\x01@b, c@d", { "c@d" } },
    { "", { NULL } },
    { "   ", { NULL } },
};

static void test_parse_list_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof list_cases / sizeof list_cases[0]; i++) {
        const struct list_case *c = &list_cases[i];
        struct strlist l;
        size_t n = 0;
        sl_init(&l);
        while (n < 5 && c->want[n])
            n++;
        int r = addr_parse_list(c->value, &l);
        if ((size_t)r != n || l.n != n) {
            print_error("list case %zu \"%s\": got %d:\n", i, c->value, r);
            for (size_t k = 0; k < l.n; k++)
                print_error("  %s\n", l.v[k]);
        }
        assert_int_equal(r, n);
        assert_int_equal(l.n, n);
        for (size_t k = 0; k < n; k++)
            assert_string_equal(l.v[k], c->want[k]);
        sl_free(&l);
    }
}

static void test_parse_list_appends(void **state)
{
    (void)state;
    struct strlist l;
    sl_init(&l);
    sl_add(&l, "first@x");
    assert_int_equal(addr_parse_list("a@b", &l), 1);
    assert_int_equal(l.n, 2);
    assert_string_equal(l.v[0], "first@x");
    assert_string_equal(l.v[1], "a@b");
    assert_int_equal(addr_parse_list(NULL, &l), 0);
    sl_free(&l);
}

/* Entries that are not addresses are reported, as written, with the reason;
 * empty entries, comments and empty groups are not entries. */
static void test_parse_list_report(void **state)
{
    (void)state;
    struct strlist l, bad;
    sl_init(&l);
    sl_init(&bad);
    int r = addr_parse_list_report("ok@y, \"test\"test@d,, John Doe, Ann <a..b@x> (c), "
                                   "g: m@n, x@y.;, undisclosed-recipients:;, (only), <>",
                                   &l, &bad);
    assert_int_equal(r, 2);
    assert_string_equal(l.v[0], "ok@y");
    assert_string_equal(l.v[1], "m@n");
    assert_int_equal(bad.n, 5);
    assert_string_equal(bad.v[0], "\"test\"test@d: " R_LOCAL_MIX);
    assert_string_equal(bad.v[1], "John Doe: not an address (a name without <address>)");
    assert_string_equal(bad.v[2], "Ann <a..b@x> (c): " R_LOCAL_DOT);
    assert_string_equal(bad.v[3], "x@y.: " R_DOMAIN_DOT);
    assert_string_equal(bad.v[4], "<>: " R_NULL);
    sl_free(&l);
    sl_free(&bad);
    sl_init(&l);
    sl_init(&bad);
    assert_int_equal(addr_parse_list_report("a\x01@b", &l, &bad), 0);
    assert_int_equal(bad.n, 1);
    assert_string_equal(bad.v[0], "a\\x01@b: " R_CTRL);
    sl_free(&l);
    sl_free(&bad);
}

/* A megabyte list of addresses and of junk: linear, no crash. */
static void test_parse_list_huge(void **state)
{
    (void)state;
    size_t n = 1 << 20;
    char *s = malloc(n + 1);
    struct strlist l;

    assert_non_null(s);
    for (size_t i = 0; i < n; i++)
        s[i] = "ab@c.de, "[i % 9];
    s[n] = '\0';
    sl_init(&l);
    int r = addr_parse_list(s, &l);
    assert_true(r > 100000);
    assert_int_equal(l.n, (size_t)r);
    assert_string_equal(l.v[0], "ab@c.de");
    sl_free(&l);
    static const char junk[] = "(<\"[:;,@.\\>]";
    for (size_t i = 0; i < n; i++)
        s[i] = junk[(i * 7 + i / 13) % (sizeof junk - 1)];
    sl_init(&l);
    addr_parse_list(s, &l);
    sl_free(&l);
    memset(s, '(', n);
    sl_init(&l);
    assert_int_equal(addr_parse_list(s, &l), 0);
    sl_free(&l);
    free(s);
}

/* Invariants on pseudo-random strings over the characters that matter
 * (fixed seed, so a failure is reproducible): whatever is accepted is
 * canonical (parses again to itself), has no control character, fits the
 * limits, and addr_domain finds a valid domain in it. */
static void check_accepted(const char *in, const char *addr)
{
    char *again;
    const char *why;

    assert_true(strlen(addr) <= ADDR_MAX);
    for (const unsigned char *p = (const unsigned char *)addr; *p; p++)
        assert_true(*p >= 0x20 && *p != 0x7f);
    if (addr_parse_mailbox(addr, &again, &why) != 0)
        print_error("\"%s\" -> \"%s\" does not parse again: %s\n", in, addr, why);
    assert_string_equal(again, addr);
    free(again);
    const char *dom = addr_domain(addr);
    if (dom)
        assert_int_equal(addr_valid_domain(dom), 1);
}

static void test_random_invariants(void **state)
{
    (void)state;
    /* pieces rather than bytes, so that many inputs come close to addresses */
    static const char *const piece[] = {
        "a", "Bob", "x9", "-", ".", ".", "@", "@", "@ex.COM", "ex.org.", "<", ">", "<a@b>",
        "\"", "\"q s\"", "\\", "[", "]", "[1.2.3.4]", "[IPv6:::1]", "IPv6:", "(", ")", ",",
        ":", ";", " ", "\t", "%", "!", "`", "|", "$", "\xc3\xa9", "\xff", "\r", "\n", "\x01",
        "@r:", "<@r,@s:", "g: ", "Name ",
    };
    const size_t npieces = sizeof piece / sizeof piece[0];
    uint32_t seed = 12345;
    struct buf in;

    buf_init(&in);
    for (int iter = 0; iter < 30000; iter++) {
        buf_reset(&in);
        seed = seed * 1103515245u + 12345u;
        size_t n = 1 + (seed >> 16) % 8;
        for (size_t i = 0; i < n; i++) {
            seed = seed * 1103515245u + 12345u;
            buf_adds(&in, piece[(seed >> 16) % npieces]);
        }
        char *addr;
        const char *rest, *why;
        if (addr_parse_path(in.s, 1, &addr, &rest, &why) == 0) {
            if (*addr)
                check_accepted(in.s, addr);
            assert_true(rest >= in.s && rest <= in.s + in.len);
            free(addr);
        } else {
            assert_non_null(why);
            assert_null(addr);
        }
        struct strlist l;
        sl_init(&l);
        addr_parse_list(in.s, &l);
        for (size_t k = 0; k < l.n; k++)
            check_accepted(in.s, l.v[k]);
        sl_free(&l);
    }
    buf_free(&in);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_path_table),
        cmocka_unit_test(test_lengths),
        cmocka_unit_test(test_huge),
        cmocka_unit_test(test_nul),
        cmocka_unit_test(test_parse_mailbox_table),
        cmocka_unit_test(test_relay_domain),
        cmocka_unit_test(test_split),
        cmocka_unit_test(test_valid_domain),
        cmocka_unit_test(test_literal),
        cmocka_unit_test(test_needs_quotes),
        cmocka_unit_test(test_canonical_roundtrip),
        cmocka_unit_test(test_parse_list_table),
        cmocka_unit_test(test_parse_list_appends),
        cmocka_unit_test(test_parse_list_report),
        cmocka_unit_test(test_parse_list_huge),
        cmocka_unit_test(test_random_invariants),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
