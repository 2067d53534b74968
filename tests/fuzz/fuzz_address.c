/* fuzz_address.c - address.h: RFC 5321 paths, bare mailboxes, RFC 5322 lists.
 * Invariants: results are canonical (no control byte, lower-case domain without
 * a trailing dot, valid domain), and canonical forms parse back to themselves
 * as a bare mailbox and as a <path>; addr_split/addr_domain agree with them. */
#include "compat.h"

#include <ctype.h>

#include "address.h"
#include "fuzz.h"
#include "util.h"

static void check_canonical(const char *a)
{
    size_t n = strlen(a);
    FUZZ_CHECK(!fuzz_has_ctl(a, n, 0), "canonical address holds a control byte");
    FUZZ_CHECK(n <= ADDR_MAX, "canonical address longer than ADDR_MAX");
    if (n == 0)
        return; /* <> */
    const char *d = addr_domain(a);
    if (d) {
        FUZZ_CHECK(*d && d[strlen(d) - 1] != '.', "domain empty or with a trailing dot");
        FUZZ_CHECK(addr_valid_domain(d), "returned domain is not valid");
        for (const char *p = d; *d != '[' && *p; p++) /* a literal keeps "IPv6:" */
            FUZZ_CHECK(!isupper((unsigned char)*p), "domain name not lower-cased");
    }
    char *local, *dom;
    addr_split(a, &local, &dom);
    FUZZ_CHECK(local != NULL, "addr_split gave no local part");
    FUZZ_CHECK((d == NULL) == (dom == NULL), "addr_split and addr_domain disagree");
    struct buf j;
    buf_init(&j);
    buf_adds(&j, local);
    if (dom) {
        buf_addc(&j, '@');
        buf_adds(&j, dom);
        FUZZ_CHECK(strcmp(dom, d) == 0, "addr_split domain differs from addr_domain");
    }
    FUZZ_CHECK(strcmp(j.s, a) == 0, "local@domain from addr_split is not the address");
    buf_free(&j);
    free(local);
    free(dom);

    /* canonical text is a fixed point of both parsers */
    char *b = NULL;
    const char *why = NULL, *rest = NULL;
    FUZZ_CHECK(addr_parse_mailbox(a, &b, &why) == 0, "canonical address refused by addr_parse_mailbox");
    FUZZ_CHECK(strcmp(a, b) == 0, "addr_parse_mailbox(canonical) changed it");
    free(b);
    struct buf p;
    buf_init(&p);
    buf_addf(&p, "<%s> X=1", a);
    FUZZ_CHECK(addr_parse_path(p.s, 0, &b, &rest, &why) == 0, "<canonical> refused by addr_parse_path");
    FUZZ_CHECK(strcmp(a, b) == 0, "addr_parse_path(<canonical>) changed it");
    FUZZ_CHECK(strcmp(rest, "X=1") == 0, "addr_parse_path lost the parameters after the path");
    free(b);
    buf_free(&p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = fuzz_str(data, size);
    char *a = NULL;
    const char *rest = NULL, *why = NULL;

    if (addr_parse_path(s, 1, &a, &rest, &why) == 0) {
        check_canonical(a);
        FUZZ_CHECK(rest >= s && rest <= s + strlen(s), "rest points outside the input");
        free(a);
    } else {
        FUZZ_CHECK(a == NULL && why != NULL, "failed addr_parse_path without a reason");
    }
    a = NULL;
    why = NULL;
    if (addr_parse_mailbox(s, &a, &why) == 0) {
        FUZZ_CHECK(*a != '\0', "addr_parse_mailbox returned <>");
        check_canonical(a);
        free(a);
    } else {
        FUZZ_CHECK(a == NULL && why != NULL, "failed addr_parse_mailbox without a reason");
    }
    struct strlist l;
    sl_init(&l);
    int n = addr_parse_list(s, &l);
    FUZZ_CHECK(n >= 0 && (size_t)n == l.n, "addr_parse_list count differs from the list");
    for (size_t i = 0; i < l.n; i++) {
        FUZZ_CHECK(*l.v[i] != '\0', "addr_parse_list returned <>");
        check_canonical(l.v[i]);
    }
    sl_free(&l);

    char lit[64];
    int fam = addr_literal(s, lit, sizeof lit);
    FUZZ_CHECK(fam == 0 || fam == 4 || fam == 6, "addr_literal returned another family");
    if (addr_valid_domain(s))
        FUZZ_CHECK(!fuzz_has_ctl(s, strlen(s), 0), "a domain with a control byte is valid");
    free(s);
    return 0;
}
