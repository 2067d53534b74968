/* test_aliases.c - aliases(5) parsing, the list splitter, gdbm build/lookup. */
#include "compat.h"

#include <errno.h>
#include <fcntl.h>
#include <gdbm.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "aliases.h"
#include "util.h"

/* ---- helpers ---- */

struct seen {
    struct strlist names;
    struct strlist values;
    int lines[64];
};

static int collect(void *arg, const char *name, const char *value, int line)
{
    struct seen *s = arg;
    if (s->names.n < 64)
        s->lines[s->names.n] = line;
    sl_add(&s->names, name);
    sl_add(&s->values, value);
    return 0;
}

static int parse(const char *text, struct seen *s, struct strlist *errs)
{
    sl_init(&s->names);
    sl_init(&s->values);
    sl_init(errs);
    return aliases_parse(text, strlen(text), "t.aliases", collect, s, errs);
}

static void seen_free(struct seen *s, struct strlist *errs)
{
    sl_free(&s->names);
    sl_free(&s->values);
    sl_free(errs);
}

static char *make_dir(void)
{
    char *d = xstrdup("/tmp/po-aliases-XXXXXX");
    assert_non_null(mkdtemp(d));
    return d;
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
}

static void remove_dir(char *dir)
{
    char *cmd = xasprintf("rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
    free(cmd);
    free(dir);
}

/* ---- parsing ---- */

static void test_parse_simple(void **state)
{
    (void)state;
    struct seen s;
    struct strlist errs;
    int n = parse("# comment\n"
                  "Postmaster: root\n"
                  "\n"
                  "list:  a, b,\n"
                  "\tc,\n"
                  "  # a comment inside an entry\n"
                  "  d\n"
                  "prog: \"|/usr/bin/prog -x 'a b'\"\r\n"
                  "last:z",
                  &s, &errs);
    assert_int_equal(n, 4);
    assert_int_equal(errs.n, 0);
    assert_string_equal(s.names.v[0], "postmaster");
    assert_string_equal(s.values.v[0], "root");
    assert_int_equal(s.lines[0], 2);
    assert_string_equal(s.names.v[1], "list");
    assert_int_equal(s.lines[1], 4);
    assert_string_equal(s.names.v[2], "prog");
    assert_string_equal(s.values.v[2], "\"|/usr/bin/prog -x 'a b'\"");
    assert_string_equal(s.names.v[3], "last");
    assert_string_equal(s.values.v[3], "z");

    struct strlist l;
    sl_init(&l);
    assert_int_equal(aliases_split_list(s.values.v[1], &l), 4);
    assert_string_equal(l.v[0], "a");
    assert_string_equal(l.v[3], "d");
    sl_free(&l);
    seen_free(&s, &errs);
}

static void test_parse_errors(void **state)
{
    (void)state;
    struct seen s;
    struct strlist errs;
    int n = parse("  orphan continuation\n"
                  "no colon here\n"
                  ": empty name\n"
                  "two words: x\n"
                  "ok: y\n"
                  "empty:\n"
                  "a@b: z\n",
                  &s, &errs);
    assert_int_equal(n, 1);
    assert_string_equal(s.names.v[0], "ok");
    assert_int_equal(errs.n, 6);
    assert_non_null(strstr(errs.v[0], "t.aliases:1: continuation"));
    assert_non_null(strstr(errs.v[1], "t.aliases:2: missing ':'"));
    assert_non_null(strstr(errs.v[2], "t.aliases:3: empty alias name"));
    assert_non_null(strstr(errs.v[3], "t.aliases:4: "));
    assert_non_null(strstr(errs.v[4], "t.aliases:6: alias empty has no targets"));
    assert_non_null(strstr(errs.v[5], "t.aliases:7: "));
    seen_free(&s, &errs);
}

/* Each bad name is refused with its real reason; a UTF-8 name is a name
 * (SMTPUTF8 mail reaches it), invalid UTF-8 is not. */
static void test_name_reasons(void **state)
{
    (void)state;
    struct seen s;
    struct strlist errs;
    int n = parse("j\xc3\xb6s\xc3\xa9: pouser1\n"
                  "bad\xff: x\n"
                  "over\xc0\xaflong: x\n"
                  "a\"b: x\n"
                  "a,b: x\n"
                  "a@b: x\n"
                  "a\x01" "b: x\n"
                  "a\tb: x\n"
                  "Caf\xc3\xa9: y\n",
                  &s, &errs);
    assert_int_equal(n, 2);
    assert_string_equal(s.names.v[0], "j\xc3\xb6s\xc3\xa9");
    assert_string_equal(s.names.v[1], "caf\xc3\xa9"); /* ASCII letters lowered only */
    assert_int_equal(errs.n, 7);
    assert_non_null(strstr(errs.v[0], ":2: alias name 'bad\\xFF' is not valid UTF-8"));
    assert_non_null(strstr(errs.v[1], ":3: alias name 'over\\xC0\\xAFlong' is not valid UTF-8"));
    assert_non_null(strstr(errs.v[2], ":4: alias name 'a\"b' contains a quote"));
    assert_non_null(strstr(errs.v[3], ":5: alias name 'a,b' contains a comma"));
    assert_non_null(strstr(errs.v[4], ":6: alias name 'a@b' contains '@'"));
    assert_non_null(strstr(errs.v[5], ":7: alias name 'a\\x01b' contains a control character"));
    assert_non_null(strstr(errs.v[6], ":8: alias name 'a\\x09b' contains a blank"));
    seen_free(&s, &errs);
}

static void test_parse_nul_and_long(void **state)
{
    (void)state;
    struct seen s;
    struct strlist errs;
    const char text[] = "a: x\nb\0: y\nc: z\n";
    sl_init(&s.names);
    sl_init(&s.values);
    sl_init(&errs);
    assert_int_equal(aliases_parse(text, sizeof text - 1, "f", collect, &s, &errs), 2);
    assert_int_equal(errs.n, 1);
    assert_non_null(strstr(errs.v[0], "f:2: NUL byte"));
    seen_free(&s, &errs);

    /* an entry over the limit is refused with its line, the next one survives */
    struct buf big;
    buf_init(&big);
    buf_adds(&big, "x: a\nbig: first\n");
    for (int i = 0; i < 5000; i++)
        buf_adds(&big, "  someone.with.a.long.name,\n");
    buf_adds(&big, "after: ok\n");
    sl_init(&s.names);
    sl_init(&s.values);
    assert_int_equal(aliases_parse(big.s, big.len, "f", collect, &s, &errs), 2);
    assert_int_equal(errs.n, 1);
    assert_non_null(strstr(errs.v[0], "f:2: alias big is longer than 65536"));
    assert_string_equal(s.names.v[1], "after");
    seen_free(&s, &errs);
    buf_free(&big);
}

static int stop_after_one(void *arg, const char *name, const char *value, int line)
{
    (void)name;
    (void)value;
    (void)line;
    ++*(int *)arg;
    return 1;
}

static void test_parse_stop(void **state)
{
    (void)state;
    int calls = 0;
    const char *t = "a: 1\nb: 2\nc: 3\n";
    assert_int_equal(aliases_parse(t, strlen(t), "f", stop_after_one, &calls, NULL), 1);
    assert_int_equal(calls, 1);
}

/* ---- the list splitter ---- */

static void test_split(void **state)
{
    (void)state;
    struct strlist l;
    sl_init(&l);
    int n = aliases_split_list(" a , b c,,\"|prog \\\"x\\\", y\" , \\user,"
                               "/var/log/x, :include:/etc/list ,  ,\"\"",
                               &l);
    assert_int_equal(n, 6);
    assert_string_equal(l.v[0], "a");
    assert_string_equal(l.v[1], "bc"); /* whitespace outside quotes is ignored */
    assert_string_equal(l.v[2], "|prog \"x\", y");
    assert_string_equal(l.v[3], "\\user");
    assert_string_equal(l.v[4], "/var/log/x");
    assert_string_equal(l.v[5], ":include:/etc/list");
    sl_free(&l);

    sl_init(&l);
    n = aliases_split_list("# a .forward comment, with commas\n"
                           "  joe, \\a\\,b\n"
                           "\t# indented comment\n"
                           "\"unterminated, quote\nnext",
                           &l);
    assert_int_equal(n, 4);
    assert_string_equal(l.v[0], "joe");
    assert_string_equal(l.v[1], "\\a,b");
    assert_string_equal(l.v[2], "unterminated, quote");
    assert_string_equal(l.v[3], "next");
    sl_free(&l);
}

/* ---- database ---- */

static void test_build_and_lookup(void **state)
{
    (void)state;
    char *dir = make_dir();
    char *path = xasprintf("%s/aliases", dir);
    char *db = xasprintf("%s.db", path);
    write_text(path, "# test\n"
                     "Postmaster: root\n"
                     "list: a,\n"
                     "  b\n"
                     "postmaster: duplicate\n"
                     "broken line\n");
    long count = -1, longest = -1;
    char *err = NULL;
    struct strlist warn;
    sl_init(&warn);
    assert_int_equal(aliases_build_warn(path, &count, &longest, &warn, &err), 0);
    assert_null(err);
    assert_int_equal(count, 2);
    assert_int_equal(longest, (long)strlen("a,\n  b"));
    assert_int_equal(warn.n, 2);
    assert_non_null(strstr(warn.v[0], ":5: duplicate alias postmaster"));
    assert_non_null(strstr(warn.v[1], ":6: missing ':'"));
    sl_free(&warn);

    struct stat st;
    assert_int_equal(stat(db, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0644);

    char *v = NULL;
    assert_int_equal(aliases_lookup(db, "POSTMASTER", &v), 1);
    assert_string_equal(v, "root"); /* first one wins */
    free(v);
    assert_int_equal(aliases_lookup(db, "list", &v), 1);
    assert_string_equal(v, "a,\n  b");
    free(v);
    assert_int_equal(aliases_lookup(db, "nobody-here", &v), 0);
    assert_null(v);
    assert_int_equal(aliases_lookup(db, "", &v), 0);

    /* the text fallback finds the same values */
    assert_int_equal(aliases_lookup_text(path, "PostMaster", &v), 1);
    assert_string_equal(v, "root");
    free(v);
    assert_int_equal(aliases_lookup_text(path, "nobody-here", &v), 0);
    assert_null(v);

    /* no temporary files left behind */
    char *cmd = xasprintf("test $(ls '%s' | wc -l) -eq 2", dir);
    assert_int_equal(system(cmd), 0);
    free(cmd);

    /* a missing database is "not found", not an error */
    char *nodb = xasprintf("%s/none.db", dir);
    assert_int_equal(aliases_lookup(nodb, "postmaster", &v), 0);
    assert_int_equal(aliases_lookup_text(nodb, "postmaster", &v), 0);
    free(nodb);

    /* a failed build leaves the old database alone */
    assert_int_equal(unlink(path), 0);
    assert_int_equal(aliases_build(path, &count, &longest, &err), -1);
    assert_non_null(err);
    assert_non_null(strstr(err, path));
    free(err);
    assert_int_equal(aliases_lookup(db, "postmaster", &v), 1);
    free(v);

    free(db);
    free(path);
    remove_dir(dir);
}

static void test_lookup_original_format(void **state)
{
    (void)state;
    /* the original stored keys and values with their trailing NUL */
    char *dir = make_dir();
    char *db = xasprintf("%s/old.db", dir);
    GDBM_FILE g = gdbm_open(db, 0, GDBM_NEWDB, 0644, NULL);
    assert_non_null(g);
    datum k = {.dptr = "webmaster", .dsize = 10};
    datum d = {.dptr = "alice, bob", .dsize = 11};
    assert_int_equal(gdbm_store(g, k, d, GDBM_INSERT), 0);
    gdbm_close(g);
    char *v = NULL;
    assert_int_equal(aliases_lookup(db, "WebMaster", &v), 1);
    assert_string_equal(v, "alice, bob");
    free(v);
    free(db);
    remove_dir(dir);
}

static void test_build_failures(void **state)
{
    (void)state;
    char *dir = make_dir();
    char *path = xasprintf("%s/aliases", dir);
    long count, longest;
    char *err = NULL;
    struct strlist warn;
    sl_init(&warn);
    /* no text file: -1 (EX_NOINPUT) */
    assert_int_equal(aliases_build_warn(path, &count, &longest, &warn, &err), -1);
    assert_int_equal(errno, ENOENT);
    assert_non_null(strstr(err, "No such file"));
    free(err);
    /* the database path is a directory: -2 (EX_CANTCREAT), nothing left over */
    write_text(path, "a: b\n");
    char *db = xasprintf("%s.db", path);
    char *inside = xasprintf("%s/keep", db);
    assert_int_equal(mkdir(db, 0755), 0);
    write_text(inside, "x");
    assert_int_equal(aliases_build_warn(path, &count, &longest, &warn, &err), -2);
    assert_non_null(strstr(err, "cannot rename"));
    free(err);
    assert_int_equal(aliases_build(path, &count, &longest, &err), -1);
    free(err);
    char *cmd = xasprintf("test $(ls '%s' | wc -l) -eq 2", dir);
    assert_int_equal(system(cmd), 0);
    free(cmd);
    free(inside);
    free(db);
    sl_free(&warn);
    free(path);
    remove_dir(dir);
}

static void set_mtime(const char *path, time_t when)
{
    struct timespec ts[2] = {{.tv_sec = when}, {.tv_sec = when}};
    assert_int_equal(utimensat(AT_FDCWD, path, ts, 0), 0);
}

static void test_stale(void **state)
{
    (void)state;
    char *dir = make_dir();
    char *path = xasprintf("%s/aliases", dir);
    char *db = xasprintf("%s.db", path);
    write_text(path, "a: b\n");
    assert_int_equal(aliases_db_stale(path), 1); /* no database */
    long count, longest;
    char *err = NULL;
    assert_int_equal(aliases_build(path, &count, &longest, &err), 0);
    set_mtime(path, 1000000);
    set_mtime(db, 2000000);
    assert_int_equal(aliases_db_stale(path), 0);
    set_mtime(path, 3000000);
    assert_int_equal(aliases_db_stale(path), 1);
    free(db);
    free(path);
    remove_dir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_simple),
        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_name_reasons),
        cmocka_unit_test(test_parse_nul_and_long),
        cmocka_unit_test(test_parse_stop),
        cmocka_unit_test(test_split),
        cmocka_unit_test(test_build_and_lookup),
        cmocka_unit_test(test_lookup_original_format),
        cmocka_unit_test(test_build_failures),
        cmocka_unit_test(test_stale),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
