/* test_vdomain.c - domains.cf (active, inactive, comments, edits seen without
 * a restart) and the per-domain passwd lookup. */
#include "compat.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "conf.h"
#include "util.h"
#include "vdomain.h"

static char dir[] = "/tmp/po-vdomain-XXXXXX";

static void put(const char *rel, const char *text)
{
    char *p = xasprintf("%s/%s", dir, rel);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    free(p);
}

static void config_for(struct config *c)
{
    config_defaults(c);
    free(c->vpath);
    c->vpath = xstrdup(dir);
}

static void test_active_domains(void **state)
{
    (void)state;
    struct config c;
    config_for(&c);
    put("domains.cf", "# owner:domain:active\n"
                      "alice:One.Example:1:first domain\n"
                      "bob:two.example.:0\n"
                      "#carol:three.example:1\n"
                      "dave:four.example\n"
                      "erin:five.example:2\n");
    assert_true(vdomain_active(&c, "one.example"));
    assert_true(vdomain_active(&c, "ONE.EXAMPLE."));
    assert_false(vdomain_active(&c, "two.example"));   /* inactive */
    assert_false(vdomain_active(&c, "three.example")); /* a comment */
    assert_false(vdomain_active(&c, "four.example"));  /* no active field */
    assert_true(vdomain_active(&c, "five.example"));
    put("domains.cf", "a:six.example .:1\n"); /* blanks before the dot */
    assert_true(vdomain_active(&c, "six.example"));
    put("domains.cf", "# owner:domain:active\n"
                      "alice:One.Example:1:first domain\n"
                      "bob:two.example.:0\n"
                      "#carol:three.example:1\n"
                      "dave:four.example\n"
                      "erin:five.example:2\n");
    /* listed but switched off: only two.example */
    assert_true(vdomain_switched_off(&c, "TWO.example."));
    assert_false(vdomain_switched_off(&c, "one.example"));
    assert_false(vdomain_switched_off(&c, "three.example"));
    assert_false(vdomain_switched_off(&c, "four.example"));
    assert_false(vdomain_switched_off(&c, "nowhere.example"));
    assert_false(vdomain_active(&c, NULL));
    assert_false(vdomain_active(&c, ""));
    char *n = vdomain_name(&c, "One.Example");
    assert_string_equal(n, "one.example");
    free(n);
    config_free(&c);
}

static void test_edit_seen_without_restart(void **state)
{
    (void)state;
    struct config c;
    config_for(&c);
    put("domains.cf", "a:one.example:1\n");
    assert_true(vdomain_active(&c, "one.example"));
    assert_false(vdomain_active(&c, "six.example"));
    /* a rewrite of the same size within the same clock tick must be seen too:
     * the inode changes with a rename */
    put("domains.new", "a:six.example:1\n");
    char *from = xasprintf("%s/domains.new", dir), *to = xasprintf("%s/domains.cf", dir);
    assert_int_equal(rename(from, to), 0);
    assert_true(vdomain_active(&c, "six.example"));
    assert_false(vdomain_active(&c, "one.example"));
    unlink(to);
    assert_false(vdomain_active(&c, "six.example")); /* removed: no domains */
    free(from);
    free(to);
    config_free(&c);
}

static void test_passwd_lookup(void **state)
{
    (void)state;
    struct config c;
    config_for(&c);
    put("domains.cf", "a:one.example:1\n");
    char *d = xasprintf("%s/one.example", dir);
    mkdir(d, 0755);
    free(d);
    put("one.example/passwd", "# comment\njoe:$y$j9T$abc$def\nAnn:$apr1$x$y:1001:8::/x:/bin/false\n");
    char *h = NULL;
    assert_int_equal(vdomain_passwd(&c, "One.Example", "JOE", &h), 1);
    assert_string_equal(h, "$y$j9T$abc$def");
    free(h);
    assert_int_equal(vdomain_passwd(&c, "one.example", "ann", &h), 1);
    assert_string_equal(h, "$apr1$x$y");
    free(h);
    assert_int_equal(vdomain_passwd(&c, "one.example", "jo", &h), 0);
    assert_null(h);
    assert_int_equal(vdomain_passwd(&c, "one.example", "../x", NULL), 0);
    assert_int_equal(vdomain_passwd(&c, "../etc", "joe", NULL), 0);
    assert_int_equal(vdomain_passwd(&c, "two.example", "joe", NULL), 0); /* no file */
    config_free(&c);
}

/* Names that may become a mailbox file VSPOOL/DOMAIN/USER, and the aliases path. */
static void test_user_names_and_paths(void **state)
{
    (void)state;
    struct config c;
    config_for(&c);
    assert_true(vdomain_user_ok("joe"));
    assert_true(vdomain_user_ok("Joe.Smith-1_x+tag"));
    const char *bad[] = {"", ".joe", "..", "a/b", "/etc", "a:b", "a@b", "a b", "a\tb",
                         "caf\xc3\xa9", NULL};
    for (size_t i = 0; bad[i]; i++)
        assert_false(vdomain_user_ok(bad[i]));
    char *longname = xcalloc(1, 300);
    memset(longname, 'a', 256);
    assert_false(vdomain_user_ok(longname));
    longname[255] = '\0';
    assert_true(vdomain_user_ok(longname));
    free(longname);
    char *p = vdomain_aliases_path(&c, "One.Example");
    char *want = xasprintf("%s/one.example/aliases", dir);
    assert_string_equal(p, want);
    free(p);
    free(want);
    assert_null(vdomain_aliases_path(&c, "../etc"));
    assert_null(vdomain_aliases_path(&c, "a/b"));
    assert_null(vdomain_aliases_path(&c, ""));
    config_free(&c);
}

int main(void)
{
    assert_non_null(mkdtemp(dir));
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_active_domains),
        cmocka_unit_test(test_edit_seen_without_restart),
        cmocka_unit_test(test_passwd_lookup),
        cmocka_unit_test(test_user_names_and_paths),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    char *p = xasprintf("%s/one.example/passwd", dir);
    unlink(p);
    free(p);
    p = xasprintf("%s/one.example", dir);
    rmdir(p);
    free(p);
    p = xasprintf("%s/domains.cf", dir);
    unlink(p);
    free(p);
    rmdir(dir);
    return rc;
}
