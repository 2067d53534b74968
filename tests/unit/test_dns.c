/* test_dns.c - host name validation and the MX sort/shuffle (injected randomness). */
#include "compat.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "dns.h"
#include "util.h"

static void test_valid_names(void **st)
{
    (void)st;
    const char *good[] = {"a", "mx.example.com", "mx.example.com.", "a-b.c", "1.2.3.4",
                          "xn--bcher-kva.example", "A.B"};
    const char *bad[] = {"", ".", "a..b", "-a.b", "a-.b", "a_b.c", "a b", "a\nb", "mx.\xc3\xa9",
                         "a.b..", ".a", "a\x01"};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++)
        assert_true(dns_valid_name(good[i]));
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_false(dns_valid_name(bad[i]));
    char lab[70];
    memset(lab, 'a', 63);
    lab[63] = '\0';
    assert_true(dns_valid_name(lab));
    lab[63] = 'a';
    lab[64] = '\0';
    assert_false(dns_valid_name(lab)); /* 64-char label */
    struct buf b;
    buf_init(&b);
    while (b.len < 260)
        buf_adds(&b, "abcd.");
    buf_adds(&b, "ab");
    assert_false(dns_valid_name(b.s)); /* over 253 */
    buf_truncate(&b, 253);
    b.s[252] = 'x';
    assert_true(dns_valid_name(b.s));
    buf_free(&b);
}

/* a scripted "random" source */
struct seq {
    const uint32_t *v;
    size_t n, i;
};
static uint32_t seq_next(void *arg)
{
    struct seq *s = arg;
    return s->v[s->i++ % s->n];
}

static struct dns_mx *mk(const int *prefs, size_t n)
{
    struct dns_mx *mx = calloc(n, sizeof *mx);
    for (size_t i = 0; i < n; i++) {
        char name[32];
        snprintf(name, sizeof name, "h%zu", i);
        mx[i].host = strdup(name);
        mx[i].pref = prefs[i];
    }
    return mx;
}

static void test_sort_by_pref(void **st)
{
    (void)st;
    int prefs[] = {30, 10, 20, 5};
    struct dns_mx *mx = mk(prefs, 4);
    uint32_t zero = 0;
    struct seq s = {&zero, 1, 0};
    dns_sort_mx(mx, 4, seq_next, &s);
    assert_int_equal(mx[0].pref, 5);
    assert_string_equal(mx[0].host, "h3");
    assert_int_equal(mx[1].pref, 10);
    assert_int_equal(mx[2].pref, 20);
    assert_int_equal(mx[3].pref, 30);
    dns_free_mx(mx, 4);
}

/* An empty MX answer: (NULL, 0) must not reach qsort (undefined behaviour,
 * which the UBSan build of tests/sanitize.sh reports), and draws nothing. */
static void test_sort_empty(void **st)
{
    (void)st;
    struct seq s = {NULL, 0, 0};
    dns_sort_mx(NULL, 0, seq_next, &s);
    assert_int_equal(s.i, 0);
    int prefs[] = {7};
    struct dns_mx *mx = mk(prefs, 1);
    dns_sort_mx(mx, 1, seq_next, &s);
    assert_int_equal(s.i, 0);
    assert_int_equal(mx[0].pref, 7);
    dns_free_mx(mx, 1);
}

static void test_shuffle_equal_only(void **st)
{
    (void)st;
    /* three hosts at 10, one at 5, one at 20: the 10s are permuted among
     * themselves, the others never move */
    int prefs[] = {10, 10, 20, 10, 5};
    int seen[3] = {0, 0, 0};
    for (uint32_t r = 0; r < 6; r++) {
        struct dns_mx *mx = mk(prefs, 5);
        uint32_t vals[2] = {r % 3, r / 3};
        struct seq s = {vals, 2, 0};
        dns_sort_mx(mx, 5, seq_next, &s);
        assert_string_equal(mx[0].host, "h4");
        assert_string_equal(mx[4].host, "h2");
        for (int i = 1; i <= 3; i++)
            assert_int_equal(mx[i].pref, 10);
        /* which of h0, h1, h3 came first */
        seen[mx[1].host[1] == '0' ? 0 : mx[1].host[1] == '1' ? 1 : 2]++;
        dns_free_mx(mx, 5);
    }
    /* every host got to be first: a real permutation, not a fixed order */
    assert_true(seen[0] && seen[1] && seen[2]);
}

static void test_shuffle_rejects_bias(void **st)
{
    (void)st;
    /* values above the largest multiple of n are redrawn (no modulo bias) */
    int prefs[] = {1, 1, 1};
    struct dns_mx *mx = mk(prefs, 3);
    uint32_t vals[] = {UINT32_MAX, 0, UINT32_MAX, 0};
    struct seq s = {vals, 4, 0};
    dns_sort_mx(mx, 3, seq_next, &s);
    assert_int_equal(s.i, 3); /* n=3: UINT32_MAX redrawn; n=2: no bias possible */
    dns_free_mx(mx, 3);
}

static void test_real_random(void **st)
{
    (void)st;
    int prefs[] = {1, 1, 1, 1, 1, 1, 1, 1};
    int moved = 0;
    for (int t = 0; t < 20 && !moved; t++) {
        struct dns_mx *mx = mk(prefs, 8);
        dns_sort_mx(mx, 8, NULL, NULL);
        for (int i = 0; i < 8; i++)
            moved |= mx[i].host[1] != '0' + i;
        dns_free_mx(mx, 8);
    }
    assert_true(moved);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_names),
        cmocka_unit_test(test_sort_by_pref),
        cmocka_unit_test(test_sort_empty),
        cmocka_unit_test(test_shuffle_equal_only),
        cmocka_unit_test(test_shuffle_rejects_bias),
        cmocka_unit_test(test_real_random),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
