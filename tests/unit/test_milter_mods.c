/* test_milter_mods.c - filter= socket specifications (milter_conf.h) and the
 * mail filters' changes applied to a stored message and envelope
 * (milter_mods.h). */
#include "compat.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "milter_conf.h"
#include "milter_mods.h"
#include "spool.h"

static void test_specs(void **st)
{
    (void)st;
    struct mconf_addr a;
    const char *why = NULL;
    assert_int_equal(mconf_parse("/run/f.sock", &a, &why), 0);
    assert_int_equal(a.family, MCONF_UNIX);
    assert_string_equal(a.path, "/run/f.sock");
    mconf_free(&a);
    assert_int_equal(mconf_parse("local:/run/g.sock", &a, &why), 0);
    assert_string_equal(a.path, "/run/g.sock");
    mconf_free(&a);
    assert_int_equal(mconf_parse("inet:8891@127.0.0.1", &a, &why), 0);
    assert_int_equal(a.family, MCONF_INET);
    assert_int_equal(a.port, 8891);
    assert_string_equal(a.host, "127.0.0.1");
    mconf_free(&a);
    assert_int_equal(mconf_parse("inet6:8891@[::1]", &a, &why), 0);
    assert_int_equal(a.family, MCONF_INET6);
    assert_string_equal(a.host, "::1");
    mconf_free(&a);
    assert_int_equal(mconf_parse("milter.example:10025", &a, &why), 0);
    assert_int_equal(a.port, 10025);
    assert_string_equal(a.host, "milter.example");
    mconf_free(&a);
    assert_int_equal(mconf_parse("[2001:db8::5]:25", &a, &why), 0);
    assert_int_equal(a.family, MCONF_INET6);
    mconf_free(&a);
    const char *bad[] = {"unix:relative", "inet:70000@h", "inet:@h", "inet:25@", "host:",
                         "host:0", "justaname", "inet:25@bad host", "", NULL};
    for (int i = 0; bad[i]; i++) {
        why = NULL;
        assert_int_equal(mconf_parse(bad[i], &a, &why), -1);
        assert_non_null(why);
    }
}

static void test_connect_refused(void **st)
{
    (void)st;
    struct mconf_addr a;
    const char *why;
    assert_int_equal(mconf_parse("unix:/nonexistent/po-test.sock", &a, &why), 0);
    assert_int_equal(mconf_connect(&a, 1000), -1);
    assert_int_equal(errno, ENOENT);
    mconf_free(&a);
}

/* ---- applying changes to a real spool message ---- */

static char qdir[] = "/tmp/po-mmods-XXXXXX";

static ssize_t rd(void *arg, void *p, size_t n, long long off)
{
    return spool_new_pread(arg, p, n, off);
}

static struct spool_new *stored(const char *text)
{
    struct spool_new *sn = spool_new(qdir);
    assert_non_null(sn);
    assert_int_equal(spool_new_write(sn, text, strlen(text)), 0);
    return sn;
}

static char *data_of(struct spool_new *sn)
{
    long long n = spool_new_size(sn);
    char *s = calloc(1, (size_t)n + 1);
    assert_int_equal(spool_new_pread(sn, s, (size_t)n, 0), n);
    return s;
}

static const char MSG[] = "Received: from x\n\tby y\nSubject: hi\nX-Del: a\nX-Del: b\n"
                          "\nbody line\n";

static void test_headers(void **st)
{
    (void)st;
    struct mhdrs h;
    struct spool_new *sn = stored(MSG);
    assert_int_equal(mmods_read_headers(rd, sn, spool_new_size(sn), 1 << 20, &h), 0);
    assert_int_equal(h.n, 4);
    assert_string_equal(h.v[0].name, "Received");
    assert_string_equal(h.v[0].value, " from x\n\tby y");
    assert_int_equal(h.body_off, (long long)(strlen(MSG) - strlen("body line\n")));
    mmods_free_headers(&h);

    struct mmods m;
    mmods_init(&m, 0);
    assert_int_equal(mmods_add_header(&m, MM_ADDHDR, 0, "X-Added", "one\r\n two"), 0);
    assert_int_equal(mmods_add_header(&m, MM_INSHDR, 0, "X-First", "1"), 0);
    assert_int_equal(mmods_add_header(&m, MM_CHGHDR, 1, "subject", "changed"), 0);
    assert_int_equal(mmods_add_header(&m, MM_CHGHDR, 2, "X-Del", ""), 0);
    assert_int_equal(mmods_add_header(&m, MM_CHGHDR, 1, "X-New", "made"), 0);
    assert_int_equal(mmods_add_header(&m, MM_ADDHDR, 0, "Bad Name", "x"), -1);
    assert_int_equal(mmods_add_header(&m, MM_ADDHDR, 0, "Bad:Name", "x"), -1);
    assert_int_equal(mmods_add_header(&m, MM_ADDHDR, 0, "X-Fold", "a\nb"), 0);
    assert_true(mmods_any(&m));
    char qid[QID_MAX];
    str_copy(qid, spool_new_qid(sn), sizeof qid);
    assert_int_equal(mmods_apply_data(&m, rd, sn, spool_new_size(sn), qdir, &sn), 0);
    assert_string_equal(spool_new_qid(sn), qid); /* the same queue id */
    char *d = data_of(sn);
    assert_string_equal(d, "X-First: 1\nReceived: from x\n\tby y\nSubject: changed\n"
                           "X-Del: a\nX-Added: one\n two\nX-New: made\nX-Fold: a\n\tb\n"
                           "\nbody line\n");
    free(d);
    mmods_free(&m);

    /* a new body, CR LF -> LF, bounded */
    mmods_init(&m, 20);
    mmods_body_start(&m);
    assert_int_equal(mmods_body_add(&m, "new\r", 4), 0);
    assert_int_equal(mmods_body_add(&m, "\nbody", 5), 0);
    assert_int_equal(mmods_body_add(&m, "0123456789012345", 16), -1);
    assert_int_equal(errno, EFBIG);
    assert_int_equal(mmods_apply_data(&m, rd, sn, spool_new_size(sn), qdir, &sn), 0);
    d = data_of(sn);
    assert_non_null(strstr(d, "\n\nnew\nbody\n"));
    assert_null(strstr(d, "body line"));
    free(d);
    mmods_free(&m);
    spool_abort(sn);
}

static void test_envelope(void **st)
{
    (void)st;
    struct envelope e;
    env_init(&e);
    env_add_rcpt(&e, "a@Example.ORG", "a@Example.ORG", NULL);
    env_add_rcpt(&e, "b@example.org", "b@example.org", NULL);
    struct mmods m;
    mmods_init(&m, 0);
    assert_int_equal(mmods_add_addr(&m, MM_ADDRCPT, "<c@example.org>"), 0);
    assert_int_equal(mmods_add_addr(&m, MM_ADDRCPT, "b@example.org"), 0); /* already there */
    assert_int_equal(mmods_add_addr(&m, MM_DELRCPT, "<a@example.org>"), 0); /* domain: any case */
    assert_int_equal(mmods_add_addr(&m, MM_CHGFROM, "<new@example.net>"), 0);
    assert_int_equal(mmods_add_addr(&m, MM_ADDRCPT, "<bad address>"), -1);
    assert_int_equal(mmods_add_addr(&m, MM_ADDRCPT, "<>"), -1);
    assert_false(mmods_any(&m)); /* envelope only: the data stays */
    assert_int_equal(mmods_apply_envelope(&m, &e), 4);
    assert_int_equal(e.nrcpts, 2);
    assert_string_equal(e.rcpts[0].addr, "b@example.org");
    assert_string_equal(e.rcpts[1].addr, "c@example.org");
    assert_string_equal(e.sender, "new@example.net");
    mmods_set_quarantine(&m, "bad\nthing");
    assert_string_equal(m.quarantine, "bad\\x0Athing");
    mmods_free(&m);
    env_free(&e);
}

static int setup(void **st)
{
    (void)st;
    return mkdtemp(qdir) ? 0 : -1;
}

static int teardown(void **st)
{
    (void)st;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", qdir);
    return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_specs),
        cmocka_unit_test(test_connect_refused),
        cmocka_unit_test(test_headers),
        cmocka_unit_test(test_envelope),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
