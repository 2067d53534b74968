/* test_smtp_auth.c - the smarthost client's pieces that need no network: the
 * relay-auth file (relay_auth.h: format, refusals, file modes), the relay's
 * TLS policy (smtp_tls.h: defaults, 465, smtps), and the AUTH dialogue
 * (smtp_auth.h) over a socketpair with the server's replies written ahead:
 * PLAIN preferred, LOGIN otherwise, a refusal deferred with the server's
 * reply, no credentials without TLS. */
#include "compat.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "conf.h"
#include "relay_auth.h"
#include "smtp_auth.h"
#include "smtp_conn.h"
#include "smtp_tls.h"
#include "util.h"

static void parse_ok(const char *text, const char *user, const char *pass)
{
    char *u, *p, *why;
    assert_int_equal(relay_cred_parse(text, strlen(text), &u, &p, &why), 0);
    assert_string_equal(u, user);
    assert_string_equal(p, pass);
    free(u);
    free(p);
}

static void parse_bad(const char *text, const char *reason)
{
    char *u, *p, *why;
    assert_int_equal(relay_cred_parse(text, strlen(text), &u, &p, &why), -1);
    assert_null(u);
    assert_null(p);
    assert_non_null(strstr(why, reason));
    free(why);
}

static void test_parse(void **st)
{
    (void)st;
    parse_ok("me@isp.test:secret\n", "me@isp.test", "secret");
    parse_ok("# my provider\n\nme:pa:ss word\r\n", "me", "pa:ss word");
    parse_ok("me:pw", "me", "pw"); /* no final line end */
    parse_bad("", "no user:password line");
    parse_bad("# only a comment\n", "no user:password line");
    parse_bad("nocolon\n", "line 1 is not user:password");
    parse_bad(":pw\n", "line 1 is not user:password");
    parse_bad("me:\n", "line 1 is not user:password");
    parse_bad("me:pw\nyou:pw2\n", "line 2: a second account");
    parse_bad("me:p\tw\n", "control characters");
    char big[600];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    big[3] = ':';
    parse_bad(big, "longer than 255");
    /* the reason never quotes the line (it may be a password) */
    char *u, *p, *why;
    relay_cred_parse("hunter2\n", 8, &u, &p, &why);
    assert_null(strstr(why, "hunter2"));
    free(why);
}

/* relay_cred_load on a file with mode m owned by the caller. */
static char *load_err(mode_t m)
{
    char path[] = "/tmp/test_relay_auth.XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "me:pw\n", 6), 6);
    fchmod(fd, m);
    close(fd);
    struct config c;
    config_defaults(&c);
    c.relay_host = xstrdup("relay.test:587");
    c.relay_auth = xstrdup(path);
    struct relay_cred cr;
    relay_cred_load(&c, &cr);
    unlink(path);
    char *err = cr.err ? xstrdup(cr.err) : NULL;
    if (!err) {
        assert_string_equal(cr.user, "me");
        assert_string_equal(cr.pass, "pw");
    }
    relay_cred_free(&cr);
    config_free(&c);
    return err;
}

static void test_load_modes(void **st)
{
    (void)st;
    if (geteuid() != 0) {
        skip(); /* the file must be root's: only root can make one */
        return;
    }
    assert_null(load_err(0600));
    assert_null(load_err(0400));
    char *e = load_err(0644);
    assert_non_null(strstr(e, "4.3.5 relay-auth=/tmp/test_relay_auth."));
    assert_non_null(strstr(e, "(mode 0644): chmod 600 it"));
    free(e);
    e = load_err(0640);
    assert_non_null(strstr(e, "mode 0640"));
    free(e);
    e = load_err(0602); /* writable by others is as bad */
    assert_non_null(strstr(e, "mode 0602"));
    free(e);
}

static void policy(const char *host, const char *tls, const char *auth, int level,
                   int implicit, const char *name)
{
    struct config c;
    config_defaults(&c);
    c.relay_host = xstrdup(host);
    c.relay_tls = tls ? xstrdup(tls) : NULL;
    c.relay_auth = auth ? xstrdup(auth) : NULL;
    struct smtp_tls_policy p;
    char *why = NULL;
    assert_int_equal(smtp_tls_relay_policy(&c, &p, &why), 0);
    assert_int_equal(p.level, level);
    assert_int_equal(p.implicit, implicit);
    assert_int_equal(p.relay, 1);
    assert_string_equal(p.name, name);
    smtp_tls_policy_free(&p);
    config_free(&c);
}

static void test_policy(void **st)
{
    (void)st;
    policy("relay.test", NULL, NULL, SMTP_TLS_MAY, 0, "relay.test");
    policy("relay.test:587", NULL, "/f", SMTP_TLS_REQUIRE, 0, "relay.test");
    policy("relay.test:587", "may", "/f", SMTP_TLS_MAY, 0, "relay.test");
    policy("relay.test:587", "require", NULL, SMTP_TLS_REQUIRE, 0, "relay.test");
    policy("relay.test:465", NULL, NULL, SMTP_TLS_MAY, 1, "relay.test");
    policy("relay.test:465", NULL, "/f", SMTP_TLS_REQUIRE, 1, "relay.test");
    policy("relay.test:2465", "smtps", NULL, SMTP_TLS_REQUIRE, 1, "relay.test");
    policy("[203.0.113.5]:587", "require", NULL, SMTP_TLS_REQUIRE, 0, "[203.0.113.5]");
    struct config c;
    config_defaults(&c);
    c.relay_host = xstrdup("bad host:x");
    struct smtp_tls_policy p;
    char *why = NULL;
    assert_int_equal(smtp_tls_relay_policy(&c, &p, &why), -1);
    assert_non_null(strstr(why, "4.4.4 "));
    free(why);
    config_free(&c);
    smtp_tls_mx_policy(&p);
    assert_int_equal(p.level, SMTP_TLS_MAY);
    assert_int_equal(p.relay, 0);
    assert_null(p.name);
}

/* ---- AUTH over a socketpair ---- */

struct fx {
    struct config c;
    struct smtp_conn *k;
    int peer;
    struct relay_cred cr;
};

static int setup(void **st)
{
    struct fx *f = xcalloc(1, sizeof *f);
    signal(SIGPIPE, SIG_IGN);
    config_defaults(&f->c);
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
    s4->sin_family = AF_INET;
    s4->sin_port = htons(587);
    inet_pton(AF_INET, "203.0.113.7", &s4->sin_addr);
    f->k = smtp_conn_new(&f->c, 0, &ss);
    smtp_conn_name(f->k, "relay.test");
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    assert_int_equal(set_nonblock(sv[0], 1), 0);
    f->k->fd = sv[0];
    f->peer = sv[1];
    f->k->ext_auth = 1;
    f->c.relay_auth_plaintext = 1; /* no TLS on a socketpair */
    f->cr.user = xstrdup("me@isp.test");
    f->cr.pass = xstrdup("pa:ss");
    *st = f;
    return 0;
}

static int teardown(void **st)
{
    struct fx *f = *st;
    smtp_conn_free(f->k);
    close(f->peer);
    relay_cred_free(&f->cr);
    config_free(&f->c);
    free(f);
    return 0;
}

static void replies(struct fx *f, const char *text)
{
    assert_int_equal(write(f->peer, text, strlen(text)), (ssize_t)strlen(text));
}

static char *sent(struct fx *f)
{
    struct buf b;
    buf_init(&b);
    char tmp[4096];
    ssize_t r;
    set_nonblock(f->peer, 1);
    while ((r = read(f->peer, tmp, sizeof tmp)) > 0)
        buf_add(&b, tmp, (size_t)r);
    return buf_steal(&b);
}

static void test_plain_preferred(void **st)
{
    struct fx *f = *st;
    f->k->auth_plain = f->k->auth_login = 1;
    replies(f, "235 2.7.0 ok\r\n");
    assert_int_equal(smtp_auth(f->k, &f->cr), 0);
    assert_true(f->k->authed);
    char *s = sent(f);
    char *b = smtp_auth_b64("\0me@isp.test\0pa:ss", 18);
    char *want = xasprintf("AUTH PLAIN %s\r\n", b);
    assert_string_equal(s, want);
    free(want);
    free(b);
    free(s);
}

static void test_login(void **st)
{
    struct fx *f = *st;
    f->k->auth_login = 1;
    replies(f, "334 VXNlcm5hbWU6\r\n334 UGFzc3dvcmQ6\r\n235 2.7.0 ok\r\n");
    assert_int_equal(smtp_auth(f->k, &f->cr), 0);
    char *s = sent(f);
    assert_string_equal(s, "AUTH LOGIN\r\nbWVAaXNwLnRlc3Q=\r\ncGE6c3M=\r\n");
    free(s);
}

static void test_refused(void **st)
{
    struct fx *f = *st;
    f->k->auth_plain = 1;
    replies(f, "535 5.7.8 Username and Password not accepted\r\n221 bye\r\n");
    assert_int_equal(smtp_auth(f->k, &f->cr), -1);
    assert_true(f->k->final);
    assert_true(f->k->fd < 0);
    assert_string_equal(f->k->err, "4.7.8 relay.test[203.0.113.7]:587: AUTH PLAIN refused: "
                                   "535 5.7.8 Username and Password not accepted");
}

static void test_refused_no_enhanced_code(void **st)
{
    struct fx *f = *st;
    f->k->auth_plain = 1;
    replies(f, "535 no\r\n221 bye\r\n");
    assert_int_equal(smtp_auth(f->k, &f->cr), -1);
    assert_string_equal(f->k->err, "4.7.8 relay.test[203.0.113.7]:587: AUTH PLAIN refused: "
                                   "535 5.0.0 no");
}

static void test_no_credentials_without_tls(void **st)
{
    struct fx *f = *st;
    f->c.relay_auth_plaintext = 0;
    f->k->auth_plain = 1;
    replies(f, "221 bye\r\n");
    assert_int_equal(smtp_auth(f->k, &f->cr), -1);
    assert_non_null(strstr(f->k->err, "4.7.0 "));
    assert_non_null(strstr(f->k->err, "without TLS"));
    char *s = sent(f);
    assert_string_equal(s, "QUIT\r\n"); /* nothing else went out */
    free(s);
}

static void test_no_common_mechanism(void **st)
{
    struct fx *f = *st;
    replies(f, "221 bye\r\n"); /* AUTH CRAM-MD5 only: neither flag */
    assert_int_equal(smtp_auth(f->k, &f->cr), -1);
    assert_non_null(strstr(f->k->err, "no mechanism postoffice has"));
}

static void test_server_without_auth(void **st)
{
    struct fx *f = *st;
    f->k->ext_auth = 0;
    assert_int_equal(smtp_auth(f->k, &f->cr), 0);
    assert_false(f->k->authed);
    char *s = sent(f);
    assert_string_equal(s, "");
    free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_load_modes),
        cmocka_unit_test(test_policy),
        cmocka_unit_test_setup_teardown(test_plain_preferred, setup, teardown),
        cmocka_unit_test_setup_teardown(test_login, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused_no_enhanced_code, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_credentials_without_tls, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_common_mechanism, setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_without_auth, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
