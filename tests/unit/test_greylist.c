/* test_greylist.c - greylist.h and greylist_db.h: who is exempt, the keys,
 * the multipliers of delay=, the value format, and the verdicts against a
 * database in a temporary directory. */
#include "compat.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "dns.h"
#include "greylist.h"
#include "greylist_db.h"

struct fix {
    struct config c;
    struct client cl;
    struct grey_txn g;
    struct buf why;
    char dir[64];
    char *db;
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
    set(&f->c, "greylist");
    set(&f->c, "delay=100");
    str_copy(f->dir, "/tmp/test_greylist.XXXXXX", sizeof f->dir);
    assert_non_null(mkdtemp(f->dir));
    f->db = xasprintf("%s/smtpauth", f->dir);
    char *s = xasprintf("greylist-db=%s", f->db);
    set(&f->c, s);
    free(s);
    char *err = NULL;
    assert_int_equal(grey_db_prepare(f->db, getuid(), getgid(), &err), 0);
    str_copy(f->cl.ip, "203.0.113.5", sizeof f->cl.ip);
    f->cl.ptr = "mx.client.example";
    f->cl.ptr_status = DNS_OK;
    buf_init(&f->why);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fix *f = *state;
    char *file = grey_db_file(f->db);
    unlink(file);
    free(file);
    rmdir(f->dir);
    free(f->db);
    grey_reset(&f->g);
    config_free(&f->c);
    buf_free(&f->why);
    free(f);
    return 0;
}

static void test_exempt(void **state)
{
    struct fix *f = *state;
    grey_mail(&f->g, &f->c, &f->cl, 0, NULL, "bob@example.org");
    assert_string_equal(f->g.key, "bob@[203.0.113.5]");
    assert_string_equal(f->g.full, "bob@example.org");
    grey_mail(&f->g, &f->c, &f->cl, 1, NULL, "bob@example.org"); /* submission port */
    assert_null(f->g.key);
    grey_mail(&f->g, &f->c, &f->cl, 0, "bob", "bob@example.org"); /* AUTH */
    assert_null(f->g.key);
    assert_int_equal(grey_rcpt(&f->g, &f->c, &f->why), 0);
    f->cl.relay_ok = 1;
    grey_mail(&f->g, &f->c, &f->cl, 0, NULL, "bob@example.org");
    assert_null(f->g.key);
    f->cl.relay_ok = 0;
    f->cl.trusted = 1;
    grey_mail(&f->g, &f->c, &f->cl, 0, NULL, "bob@example.org");
    assert_null(f->g.key);
    f->cl.trusted = 0;
    set(&f->c, "greylist=0");
    grey_mail(&f->g, &f->c, &f->cl, 0, NULL, "bob@example.org");
    assert_null(f->g.key);
}

static void test_keys_and_waits(void **state)
{
    struct fix *f = *state;
    grey_mail(&f->g, &f->c, &f->cl, 0, NULL, "");
    assert_string_equal(f->g.key, "<>@[203.0.113.5]");
    assert_null(f->g.full);
    assert_int_equal(f->g.wait, 400);
    f->cl.ptr = NULL;
    f->cl.ptr_status = DNS_NXDOMAIN;
    assert_int_equal(grey_multiplier(&f->cl, ""), 5);
    assert_int_equal(grey_multiplier(&f->cl, "a@b.example"), 2);
    f->cl.ptr_status = DNS_TEMPFAIL; /* no answer is no proof */
    assert_int_equal(grey_multiplier(&f->cl, "a@b.example"), 1);
    set(&f->c, "greylist-from");
    grey_mail(&f->g, &f->c, &f->cl, 0, NULL, "\"odd user\"@example.org");
    assert_string_equal(f->g.key, "\"odd user\"@example.org");
    assert_null(f->g.full);
}

static void test_values(void **state)
{
    (void)state;
    struct grey_rec r;
    assert_int_equal(grey_rec_parse("1700000000 1690000000", 22, &r), 0);
    assert_int_equal(r.allowed, 1700000000);
    assert_int_equal(r.last, 1690000000);
    assert_false(r.forbidden);
    assert_int_equal(grey_rec_parse("* 1690000000", 13, &r), 0);
    assert_true(r.forbidden);
    assert_int_equal(grey_rec_parse("1700000000", 10, &r), 0); /* no last seen */
    assert_int_equal(r.last, 0);
    assert_int_equal(grey_rec_parse("17x 1", 6, &r), -1);
    assert_int_equal(grey_rec_parse("", 1, &r), -1);
    assert_int_equal(grey_rec_parse("1 2 3", 6, &r), -1);
    assert_int_equal(grey_rec_parse("-5 2", 5, &r), -1);
}

static void test_verdicts(void **state)
{
    struct fix *f = *state;
    grey_mail(&f->g, &f->c, &f->cl, 0, NULL, "bob@example.org");
    assert_int_equal(grey_rcpt(&f->g, &f->c, &f->why), 451);
    assert_non_null(strstr(f->why.s, "4.7.1 greylisted"));
    assert_non_null(strstr(f->why.s, "in 100 seconds"));
    /* the second recipient of the transaction: the same verdict, no lookup */
    assert_int_equal(grey_rcpt(&f->g, &f->c, &f->why), 451);
    struct grey_db db;
    char *err = NULL;
    struct grey_rec r;
    assert_int_equal(grey_db_open(&db, f->db, 1, 100, &err), 0);
    assert_int_equal(grey_rec_get(db.db, "bob@[203.0.113.5]", &r), 1);
    assert_int_equal(r.allowed - r.last, 100);
    r.allowed = time(NULL) - 1; /* as authexpire -a does */
    assert_int_equal(grey_rec_put(db.db, "bob@[203.0.113.5]", &r), 0);
    /* a lock held elsewhere: the session waits, then lets mail through */
    struct grey_db other;
    assert_int_equal(grey_db_open(&other, f->db, 1, 50, &err), -1);
    assert_non_null(strstr(err, "still locked"));
    free(err);
    grey_mail(&f->g, &f->c, &f->cl, 0, NULL, "carol@example.org");
    assert_int_equal(grey_rcpt(&f->g, &f->c, &f->why), 0); /* fail open */
    grey_db_close(&db);
    grey_mail(&f->g, &f->c, &f->cl, 0, NULL, "bob@example.org");
    assert_int_equal(grey_rcpt(&f->g, &f->c, &f->why), 0);
    /* a forbidden whole address wins over the automatic entry */
    assert_int_equal(grey_db_open(&db, f->db, 1, 100, &err), 0);
    r = (struct grey_rec){ .forbidden = 1, .last = time(NULL) };
    assert_int_equal(grey_rec_put(db.db, "bob@example.org", &r), 0);
    grey_db_close(&db);
    grey_mail(&f->g, &f->c, &f->cl, 0, NULL, "bob@example.org");
    assert_int_equal(grey_rcpt(&f->g, &f->c, &f->why), 451);
    assert_non_null(strstr(f->why.s, "try again later"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_exempt, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keys_and_waits, setup, teardown),
        cmocka_unit_test(test_values),
        cmocka_unit_test_setup_teardown(test_verdicts, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
