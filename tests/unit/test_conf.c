/* test_conf.c - postoffice.cf parsing: types, units, root-only options, files. */
#include "compat.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "conf.h"

static const struct config_ctx root = {1, 0}, user = {0, 0};

static void test_time_units(void **st)
{
    (void)st;
    static const struct { const char *in; long def; long want; int ok; } t[] = {
        {"300", 1, 300, 0}, {"30m", 1, 1800, 0}, {"5h", 1, 18000, 0},
        {"3d", 1, 259200, 0}, {"2w", 1, 1209600, 0}, {"5", 60, 300, 0},
        {"1H", 1, 3600, 0}, {"x", 1, 0, -1}, {"", 1, 0, -1}, {"-5", 1, 0, -1},
        {"10q", 1, 0, -1}, {"99999999999999", 1, 0, -1},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        long got = 0;
        int rc = config_parse_time(t[i].in, t[i].def, &got);
        assert_int_equal(rc, t[i].ok);
        if (rc == 0)
            assert_int_equal(got, t[i].want);
    }
}

static void test_size_units(void **st)
{
    (void)st;
    long long v;
    assert_int_equal(config_parse_size("10k", &v), 0);
    assert_int_equal(v, 10000);
    assert_int_equal(config_parse_size("2m", &v), 0);
    assert_int_equal(v, 2000000);
    assert_int_equal(config_parse_size("0", &v), 0);
    assert_int_equal(v, 0);
    assert_int_equal(config_parse_size("2.5m", &v), -1);
}

static void test_set_values(void **st)
{
    (void)st;
    struct config c;
    config_defaults(&c);
    assert_int_equal(c.escape_from, 1);
    assert_int_equal(c.qreturn, 3 * 86400);
    assert_int_equal(config_set(&c, "audit", "t", &user), 0);
    assert_int_equal(c.audit, 1);
    assert_int_equal(config_set(&c, "audit=0", "t", &user), 0);
    assert_int_equal(c.audit, 0);
    assert_int_equal(config_set(&c, "timeout=5m", "t", &user), 0);
    assert_int_equal(c.timeout, 300);
    assert_int_equal(config_set(&c, "size=10m", "t", &user), 0);
    assert_true(c.size == 10000000);
    assert_int_equal(config_set(&c, "load=2.5", "t", &user), 0);
    assert_true(c.load > 2.4 && c.load < 2.6);
    assert_int_equal(config_set(&c, "msp", "t", &user), 0);
    assert_int_equal(c.msp, 587);
    assert_int_equal(config_set(&c, "queuedir=/tmp/q", "t", &user), 0);
    assert_string_equal(c.queuedir, "/tmp/q");
    assert_int_equal(config_set(&c, "self=mail.example.org.", "t", &user), 0);
    assert_string_equal(c.hostname, "mail.example.org");
    config_free(&c);
}

/* smtps= (bare: 465) and the TLS options: pairs by position, defaults. */
static void test_tls_options(void **st)
{
    (void)st;
    struct config c;
    config_defaults(&c);
    assert_int_equal(c.smtps, 0);
    assert_string_equal(c.tls_protocols, "TLSv1.2,TLSv1.3");
    assert_int_equal(c.tls_handshake_timeout, 60);
    assert_int_equal(config_set(&c, "smtps", "t", &user), 0);
    assert_int_equal(c.smtps, 465);
    assert_int_equal(config_set(&c, "smtps=1", "t", &user), 0);
    assert_int_equal(c.smtps, 465);
    assert_int_equal(config_set(&c, "smtps=2465", "t", &user), 0);
    assert_int_equal(c.smtps, 2465);
    assert_int_equal(config_set(&c, "msp", "t", &user), 0);
    assert_int_equal(c.msp, 587); /* msp keeps its own default */
    assert_int_equal(config_set(&c, "tls-cert=/a/rsa.pem", "t", &user), 0);
    assert_int_equal(config_set(&c, "tls-cert=/a/ec.pem", "t", &user), 0);
    assert_int_equal(config_set(&c, "tls-key=/a/rsa.key, /a/ec.key", "t", &user), 0);
    assert_int_equal(c.tls_cert.n, 2);
    assert_string_equal(c.tls_key.v[1], "/a/ec.key");
    assert_int_equal(config_set(&c, "tls-handshake-timeout=2m", "t", &user), 0);
    assert_int_equal(c.tls_handshake_timeout, 120);
    assert_int_equal(config_set(&c, "tls-handshake-timeout=soon", "t", &user), EX_CONFIG);
    assert_int_equal(config_set(&c, "vhostdir=/srv/virtual", "t", &user), 0);
    assert_string_equal(c.vpath, "/srv/virtual");
    config_free(&c);
}

static void test_bad_values(void **st)
{
    (void)st;
    struct config c;
    config_defaults(&c);
    assert_int_equal(config_set(&c, "timeout=soon", "t", &user), EX_CONFIG);
    assert_int_equal(config_set(&c, "audit=maybe", "t", &user), EX_CONFIG);
    assert_int_equal(config_set(&c, "queuedir=relative", "t", &user), EX_CONFIG);
    assert_int_equal(config_set(&c, "forbidden=shout", "t", &root), EX_CONFIG);
    assert_int_equal(config_set(&c, "line-length=10", "t", &user), EX_CONFIG);
    /* the name goes into greetings and Received: fields (found by fuzz_conf) */
    assert_int_equal(config_set(&c, "hostname=a\r\nX-Forged: 1", "t", &user), EX_CONFIG);
    assert_int_equal(config_set(&c, "self=two words", "t", &user), EX_CONFIG);
    assert_int_equal(config_set(&c, "hostname=a\x01b", "t", &user), EX_CONFIG);
    /* unknown options only warn */
    assert_int_equal(config_set(&c, "no-such-option=1", "t", &user), 0);
    config_free(&c);
}

static void test_root_only(void **st)
{
    (void)st;
    struct config c;
    config_defaults(&c);
    const char *ro[] = {"relay-host=smarthost", "forward-all", "trusted=10.0.0.0/8",
                        "forbidden=accept", "blacklist=accept"};
    for (size_t i = 0; i < sizeof ro / sizeof ro[0]; i++) {
        assert_int_equal(config_set(&c, ro[i], "-o", &user), EX_NOPERM);
        assert_int_equal(config_set(&c, ro[i], "-o", &root), 0);
    }
    assert_string_equal(c.relay_host, "smarthost");
    assert_int_equal(c.forbidden.what, ACT_ACCEPT);
    config_free(&c);
}

static void test_actions(void **st)
{
    (void)st;
    struct config c;
    config_defaults(&c);
    assert_int_equal(config_set(&c, "forbidden=bounce:go away", "t", &root), 0);
    assert_int_equal(c.forbidden.what, ACT_BOUNCE);
    assert_string_equal(c.forbidden.text, "go away");
    assert_int_equal(config_set(&c, "forbidden=folder:~/spam", "t", &root), 0);
    assert_int_equal(c.forbidden.what, ACT_FOLDER);
    assert_string_equal(c.forbidden.folder, "~/spam");
    assert_int_equal(config_set(&c, "forbidden=folder:junk", "t", &root), 0);
    assert_int_equal(config_set(&c, "forbidden=folder:/etc/x", "t", &root), EX_CONFIG);
    /* known options whose feature is not built yet are refused, by name */
    assert_int_equal(config_set(&c, "greylist", "t", &root), 0); /* built: greylist.h */
    /* virtual domains: vhostdir= (virtual= is its old name), vspool=, vuser= */
    assert_string_equal(c.vpath, PATH_VIRTUAL);
    assert_string_equal(c.vuser, PATH_VUSER);
    assert_int_equal(config_set(&c, "vhostdir=/srv/virtual", "t", &root), 0);
    assert_string_equal(c.vpath, "/srv/virtual");
    assert_int_equal(config_set(&c, "virtual=/srv/v2", "t", &root), 0);
    assert_string_equal(c.vpath, "/srv/v2");
    assert_int_equal(config_set(&c, "vhostdir=relative", "t", &root), EX_CONFIG);
    assert_int_equal(config_set(&c, "vspool=/srv/vspool", "t", &root), 0);
    assert_string_equal(c.vspool, "/srv/vspool");
    assert_int_equal(config_set(&c, "vuser=vmail", "t", &root), 0);
    assert_string_equal(c.vuser, "vmail");
    /* filter= in the original's and sendmail's forms; a bad one is refused */
    assert_int_equal(config_set(&c, "filter=/run/milter.sock", "t", &root), 0);
    assert_int_equal(config_set(&c, "filter=inet:8891@127.0.0.1, local:/x.sock", "t", &root), 0);
    assert_int_equal(c.filter.n, 3);
    assert_int_equal(config_set(&c, "filter=inet:0@127.0.0.1", "t", &root), EX_CONFIG);
    assert_int_equal(config_set(&c, "filter-fail=accept", "t", &root), 0);
    assert_string_equal(c.filter_fail, "accept");
    assert_int_equal(config_set(&c, "filter-fail=maybe", "t", &root), EX_CONFIG);
    /* anyone: it changes only what happens to the setter's own mail */
    assert_int_equal(config_set(&c, "filter=/tmp/mine.sock", "t", &user), 0);
    config_free(&c);
}

static void test_file(void **st)
{
    (void)st;
    char path[] = "/tmp/po-conf-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char *text = "# comment\n  timeout=30   # trailing comment\n"
                       "trusted-users=alice, bob\nlisten=127.0.0.1:2525\n\nhops=7\n";
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    struct config c;
    config_defaults(&c);
    assert_int_equal(config_load(&c, path, 1, &user), 0);
    assert_int_equal(c.timeout, 30);
    assert_int_equal(c.hops, 7);
    assert_int_equal(c.trusted_users.n, 2);
    assert_string_equal(c.trusted_users.v[1], "bob");
    assert_int_equal(c.listen.n, 1);
    assert_string_equal(c.listen.v[0], "127.0.0.1:2525");
    /* a file in /tmp is not a secure path (world-writable parent) */
    struct config_ctx sec = {1, 1};
    assert_int_equal(config_load(&c, path, 1, &sec), EX_OSFILE);
    unlink(path);
    assert_int_equal(config_load(&c, path, 1, &user), EX_NOINPUT);
    assert_int_equal(config_load(&c, path, 0, &user), 0);
    config_free(&c);
}

/* The default file, root's and on a secure path, may set root-only options
 * for every caller (sendmail run by a user must see relay-host=); a -C file
 * of a user may not. */
static void test_root_file_sets_root_options_for_users(void **st)
{
    (void)st;
    if (getuid() != 0)
        skip();
    char dir[] = "/run/po-conf-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char *path = xasprintf("%s/postoffice.cf", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("relay-host=[203.0.113.25]:587\ntrusted=203.0.113.0/24\n", f);
    fclose(f);
    chmod(path, 0644);
    struct config_ctx user_default = {0, 1}, user_c = {0, 0};
    struct config c;
    config_defaults(&c);
    assert_int_equal(config_load(&c, path, 1, &user_default), 0);
    assert_string_equal(c.relay_host, "[203.0.113.25]:587");
    assert_int_equal(c.trusted.n, 1);
    config_free(&c);
    config_defaults(&c);
    assert_int_equal(config_load(&c, path, 1, &user_c), EX_NOPERM);
    config_free(&c);
    unlink(path);
    rmdir(dir);
    free(path);
}

static void test_secure_path(void **st)
{
    (void)st;
    char *why = NULL;
    assert_int_equal(config_path_secure("relative/x", &why), -1);
    free(why);
    why = NULL;
    if (getuid() == 0) {
        /* /etc/hostname: root-owned file in root-owned dirs */
        assert_int_equal(config_path_secure("/etc/hostname", &why), 0);
    }
    assert_int_equal(config_path_secure("/tmp", &why), -1);
    assert_non_null(why);
    free(why);
}

static void test_dump(void **st)
{
    (void)st;
    struct config c;
    config_defaults(&c);
    struct buf b;
    buf_init(&b);
    config_dump(&c, &b);
    assert_non_null(strstr(b.s, "qreturn=259200\n"));
    assert_non_null(strstr(b.s, "escape-from=1\n"));
    assert_non_null(strstr(b.s, "forbidden=bounce\n"));
    buf_free(&b);
    config_free(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_time_units), cmocka_unit_test(test_size_units),
        cmocka_unit_test(test_set_values), cmocka_unit_test(test_bad_values),
        cmocka_unit_test(test_root_only),  cmocka_unit_test(test_actions),
        cmocka_unit_test(test_file),       cmocka_unit_test(test_secure_path),
        cmocka_unit_test(test_root_file_sets_root_options_for_users),
        cmocka_unit_test(test_dump),       cmocka_unit_test(test_tls_options),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
