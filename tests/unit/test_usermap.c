/* test_usermap.c - usermap= pattern matching and the targets that need no
 * file (usermap.h).  Uses the "nobody" account (present on every system) as
 * the account '~' matches, and root, which '~' never matches. */
#include "compat.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "conf.h"
#include "usermap.h"

static int setup(void **state)
{
    struct config *c = calloc(1, sizeof *c);
    config_defaults(c);
    *state = c;
    return 0;
}

static int teardown(void **state)
{
    config_free(*state);
    free(*state);
    return 0;
}

static void add(struct config *c, const char *v)
{
    struct config_ctx ctx = {1, 0};
    char s[512];
    snprintf(s, sizeof s, "usermap=%s", v);
    assert_int_equal(config_set(c, s, "test", &ctx), 0);
}

/* The user '~' matched ("" for none), or NULL when nothing matched. */
static char *who(struct config *c, const char *local, const char **entry)
{
    struct usermap_hit h;
    int r = usermap_match(c, local, &h);
    assert_true(r >= 0);
    if (r == 0)
        return NULL;
    char *u = strdup(h.user ? h.user : "");
    if (entry)
        *entry = h.entry;
    usermap_hit_free(&h);
    return u;
}

static void expect(struct config *c, const char *local, const char *want)
{
    char *u = who(c, local, NULL);
    if (!want) {
        if (u)
            fail_msg("%s matched (%s)", local, u);
        return;
    }
    if (!u)
        fail_msg("%s did not match", local);
    assert_string_equal(u, want);
    free(u);
}

static void test_patterns(void **state)
{
    struct config *c = *state;
    add(c, "*-~:~");
    expect(c, "shop-nobody", "nobody");
    expect(c, "SHOP-NOBODY", "nobody");      /* without regard to case */
    expect(c, "a-b-nobody", "nobody");       /* '*' takes "a-b" */
    expect(c, "-nobody", "nobody");          /* '*' may be empty */
    expect(c, "shop-root", NULL);            /* never root */
    expect(c, "shop-no-such-account-x", NULL);
    expect(c, "nobody", NULL);               /* the '-' is required */
    expect(c, "shop-nobody-x", NULL);
}

static void test_first_match_wins(void **state)
{
    struct config *c = *state;
    const char *entry = NULL;
    add(c, "list-*:postmaster");
    add(c, "~-*:~");
    add(c, "*:catchall");
    char *u = who(c, "list-x", &entry);
    assert_string_equal(u, "");
    assert_string_equal(entry, "list-*:postmaster");
    free(u);
    u = who(c, "nobody-shop", &entry);
    assert_string_equal(u, "nobody");
    assert_string_equal(entry, "~-*:~");
    free(u);
    u = who(c, "anything", &entry);
    assert_string_equal(entry, "*:catchall");
    free(u);
}

static void test_targets(void **state)
{
    struct config *c = *state;
    add(c, "*-~:~/.no-such-file-here,~");
    add(c, "x*:first,second");
    struct usermap_hit h;
    struct strlist e;
    const char *owner = (const char *)1;
    char *why = NULL;
    sl_init(&e);
    assert_int_equal(usermap_match(c, "shop-nobody", &h), 1);
    /* the personal file is absent (nobody's home): the next target */
    assert_int_equal(usermap_resolve(&h, "shop-nobody", &e, &owner, &why), 1);
    assert_int_equal(e.n, 1);
    assert_string_equal(e.v[0], "nobody");
    assert_null(owner);
    usermap_hit_free(&h);
    sl_free(&e);
    sl_init(&e);
    assert_int_equal(usermap_match(c, "xyz", &h), 1);
    assert_int_equal(usermap_resolve(&h, "xyz", &e, &owner, &why), 1);
    assert_int_equal(e.n, 1);
    assert_string_equal(e.v[0], "first");  /* a literal always gives a result */
    usermap_hit_free(&h);
    sl_free(&e);
}

static void test_bounded(void **state)
{
    struct config *c = *state;
    add(c, "*a*a*a*a*a*a*a*a*a*a*b:x");
    char s[200];
    memset(s, 'a', sizeof s - 1);
    s[sizeof s - 1] = '\0';
    expect(c, s, NULL); /* gives up after its step budget, does not hang */
    char longname[USERMAP_NAME_MAX + 10];
    memset(longname, 'x', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    add(c, "*:y");
    expect(c, longname, NULL); /* longer than USERMAP_NAME_MAX: never matched */
}

static void test_bad_values(void **state)
{
    struct config *c = *state;
    struct config_ctx ctx = {1, 0};
    static const char *bad[] = {"usermap=nopattern", "usermap=:x", "usermap=~-~:x",
                                "usermap=*-x:~", "usermap=*:~/.alias", "usermap=a:",
                                "usermap=~:~/"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        if (config_set(c, bad[i], "test", &ctx) == 0)
            fail_msg("accepted %s", bad[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_patterns, setup, teardown),
        cmocka_unit_test_setup_teardown(test_first_match_wins, setup, teardown),
        cmocka_unit_test_setup_teardown(test_targets, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bounded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_values, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
