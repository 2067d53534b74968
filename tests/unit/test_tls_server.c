/* test_tls_server.c - the TLS server contexts (tls_server.h): loading and its
 * errors, SNI choosing a virtual domain's certificate, resumption by ticket,
 * the ticket key rotation (the master's keys, tls_proxy_rotate: the old key
 * accepted one period more, then not), and keys kept across a reload.  Handshakes run in memory over a socketpair
 * against an OpenSSL client; certificates are made here with OpenSSL. */
#include "compat.h"

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
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
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "conf.h"
#include "tls_proxy.h"
#include "tls_server.h"
#include "util.h"

static char dir[] = "/tmp/test_tls_server.XXXXXX";

/* A self-signed ECDSA certificate for cn, written as dir/name.crt + .key. */
static void make_cert(const char *name, const char *cn)
{
    EVP_PKEY *pk = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    assert_non_null(pk);
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400);
    X509_set_pubkey(x, pk);
    X509_NAME *n = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(x, n);
    assert_true(X509_sign(x, pk, EVP_sha256()) > 0);
    char *p = xasprintf("%s/%s.crt", dir, name);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    PEM_write_X509(f, x);
    fclose(f);
    free(p);
    p = xasprintf("%s/%s.key", dir, name);
    f = fopen(p, "w");
    assert_non_null(f);
    PEM_write_PrivateKey(f, pk, NULL, NULL, 0, NULL, NULL);
    fclose(f);
    free(p);
    X509_free(x);
    EVP_PKEY_free(pk);
}

static int setup(void **state)
{
    (void)state;
    if (!mkdtemp(dir))
        return -1;
    make_cert("default", "mx.test.example");
    make_cert("other", "other.test.example");
    char *d = xasprintf("%s/virtual/one.example", dir);
    char *v = xasprintf("%s/virtual", dir);
    mkdir(v, 0755);
    mkdir(d, 0755);
    make_cert("one", "mail.one.example");
    char *cmd = xasprintf("cp %s/one.crt %s/tls.crt && cp %s/one.key %s/tls.key", dir, d, dir, d);
    int rc = system(cmd);
    free(cmd);
    free(d);
    free(v);
    return rc == 0 ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char *cmd = xasprintf("rm -rf %s", dir);
    int rc = system(cmd);
    free(cmd);
    return rc == 0 ? 0 : -1;
}

static void conf(struct config *c, const char *cert, const char *key)
{
    config_defaults(c);
    free(c->vpath);
    c->vpath = xasprintf("%s/virtual", dir);
    if (cert)
        sl_add_owned(&c->tls_cert, xasprintf("%s/%s", dir, cert));
    if (key)
        sl_add_owned(&c->tls_key, xasprintf("%s/%s", dir, key));
}

struct result {
    int ok, reused;
    char cn[128];
    SSL_SESSION *sess; /* the client's session after the handshake */
};

/* One connection: client (max_ver, offering sess, naming sni) against the
 * server t, driven step by step in memory. */
static struct result connect_once(struct tls_server *t, int max_ver, SSL_SESSION *sess,
                                  const char *sni)
{
    struct result r = { 0 };
    int sv[2];
    char *err = NULL;
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    fcntl(sv[0], F_SETFL, O_NONBLOCK);
    fcntl(sv[1], F_SETFL, O_NONBLOCK);
    SSL *s = tls_server_ssl(t, sv[0], &err);
    assert_non_null(s);
    SSL_CTX *cctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_max_proto_version(cctx, max_ver);
    SSL *c = SSL_new(cctx);
    SSL_set_fd(c, sv[1]);
    SSL_set_connect_state(c);
    if (sess)
        SSL_set_session(c, sess);
    if (sni)
        SSL_set_tlsext_host_name(c, sni);
    int cd = 0, sd = 0;
    for (int i = 0; i < 200 && !(cd && sd); i++) {
        if (!cd)
            cd = SSL_do_handshake(c) == 1;
        if (!sd)
            sd = SSL_do_handshake(s) == 1;
    }
    r.ok = cd && sd;
    if (r.ok) {
        char b[16];
        (void)SSL_read(c, b, sizeof b); /* TLS 1.3: take the ticket in */
        r.reused = SSL_session_reused(c);
        X509 *peer = SSL_get1_peer_certificate(c);
        if (peer) {
            X509_NAME_get_text_by_NID(X509_get_subject_name(peer), NID_commonName, r.cn,
                                      sizeof r.cn);
            X509_free(peer);
        }
        r.sess = SSL_get1_session(c);
        /* closed properly: SSL_free would otherwise mark the session spent */
        SSL_set_shutdown(c, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
    }
    ERR_clear_error();
    SSL_free(c);
    SSL_free(s);
    SSL_CTX_free(cctx);
    close(sv[0]);
    close(sv[1]);
    return r;
}

/* A server as the proxy runs it: contexts, then the master's keys. */
static struct tls_server *keyed(struct config *c, struct tls_ticket_keys *k)
{
    char *err = NULL;
    struct tls_server *t = tls_server_new(c, &err);
    assert_non_null(t);
    if (!k->n)
        assert_int_equal(tls_proxy_rotate(k, time(NULL)), 1);
    tls_server_set_keys(t, k);
    return t;
}

static void test_no_certificate_no_tls(void **state)
{
    (void)state;
    struct config c;
    char *err = (char *)"x";
    conf(&c, NULL, NULL);
    assert_null(tls_server_new(&c, &err));
    assert_null(err);
    config_free(&c);
}

static void expect_error(struct config *c, const char *want)
{
    char *err = NULL;
    assert_null(tls_server_new(c, &err));
    assert_non_null(err);
    if (!strstr(err, want))
        fail_msg("error \"%s\" lacks \"%s\"", err, want);
    free(err);
    config_free(c);
}

static void test_load_errors(void **state)
{
    (void)state;
    struct config c;
    conf(&c, "missing.crt", "default.key");
    expect_error(&c, "missing.crt: No such file or directory");
    conf(&c, "default.crt", "other.key");
    expect_error(&c, "other.key: not a usable private key for the certificate");
    conf(&c, "default.key", "default.key");
    expect_error(&c, "default.key: not a usable PEM certificate");
    conf(&c, "default.crt", NULL);
    expect_error(&c, "1 tls-cert= but 0 tls-key=");
    conf(&c, "default.crt", "default.key");
    free(c.tls_protocols);
    c.tls_protocols = xstrdup("TLSv1.1 TLSv1.3");
    expect_error(&c, "a gap between versions");
    conf(&c, "default.crt", "default.key");
    free(c.tls_protocols);
    c.tls_protocols = xstrdup("SSLv3");
    expect_error(&c, "unknown version \"SSLv3\"");
    conf(&c, "default.crt", "default.key");
    free(c.tls_ciphers);
    c.tls_ciphers = xstrdup("NOTACIPHER");
    expect_error(&c, "tls-ciphers=NOTACIPHER");
}

static void test_sni(void **state)
{
    (void)state;
    struct config c;
    char *err = NULL;
    struct tls_ticket_keys k = { .n = 0 };
    conf(&c, "default.crt", "default.key");
    struct tls_server *t = keyed(&c, &k);
    assert_null(err);
    assert_int_equal(tls_server_domains(t), 1);
    static const struct { const char *sni, *cn; } cases[] = {
        { "one.example", "mail.one.example" },
        { "MAIL.one.EXAMPLE", "mail.one.example" },
        { "a.b.one.example", "mail.one.example" },
        { "none.example", "mx.test.example" },
        { "xone.example", "mx.test.example" },
        { NULL, "mx.test.example" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct result r = connect_once(t, TLS1_3_VERSION, NULL, cases[i].sni);
        assert_true(r.ok);
        assert_string_equal(r.cn, cases[i].cn);
        SSL_SESSION_free(r.sess);
    }
    tls_server_free(t);
    config_free(&c);
}

/* A session of version ver made now, then offered after each step. */
static void rotation(int ver)
{
    struct config c;
    struct tls_ticket_keys k = { .n = 0 }, other = { .n = 0 };
    conf(&c, "default.crt", "default.key");
    struct tls_server *t = keyed(&c, &k);
    time_t now = time(NULL);
    struct result first = connect_once(t, ver, NULL, NULL);
    assert_true(first.ok && !first.reused && first.sess);
    struct result again = connect_once(t, ver, first.sess, NULL);
    assert_true(again.ok && again.reused);
    SSL_SESSION_free(again.sess);
    assert_int_equal(tls_proxy_rotate(&k, now + 60), 0); /* not due yet */
    assert_int_equal(tls_proxy_rotate(&k, now + TLS_TICKET_ROTATE), 1);
    tls_server_set_keys(t, &k);
    /* sealed with the key before the newest: still good */
    again = connect_once(t, ver, first.sess, NULL);
    assert_true(again.ok && again.reused);
    SSL_SESSION_free(again.sess);
    /* a reload (a new proxy) given the same keys opens the same tickets */
    tls_server_free(t);
    t = keyed(&c, &k);
    again = connect_once(t, ver, first.sess, NULL);
    assert_true(again.ok && again.reused);
    SSL_SESSION_free(again.sess);
    /* two rotations on, the first key is gone: a full handshake */
    assert_int_equal(tls_proxy_rotate(&k, now + 2 * TLS_TICKET_ROTATE), 1);
    tls_server_set_keys(t, &k);
    again = connect_once(t, ver, first.sess, NULL);
    assert_true(again.ok && !again.reused);
    SSL_SESSION_free(again.sess);
    SSL_SESSION_free(first.sess);
    /* another server (another master's keys) never opens our tickets */
    struct tls_server *stranger = keyed(&c, &other);
    first = connect_once(t, ver, NULL, NULL);
    again = connect_once(stranger, ver, first.sess, NULL);
    assert_true(again.ok && !again.reused);
    SSL_SESSION_free(again.sess);
    SSL_SESSION_free(first.sess);
    tls_server_free(stranger);
    tls_server_free(t);
    config_free(&c);
}

static void test_rotation_tls12(void **state)
{
    (void)state;
    rotation(TLS1_2_VERSION);
}

static void test_rotation_tls13(void **state)
{
    (void)state;
    rotation(TLS1_3_VERSION);
}

static void test_describe(void **state)
{
    (void)state;
    struct config c;
    char *err = NULL;
    conf(&c, "default.crt", "default.key");
    struct tls_server *t = tls_server_new(&c, &err);
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    SSL *s = tls_server_ssl(t, sv[0], &err);
    assert_non_null(s);
    char *d = tls_describe(s); /* before a handshake: no cipher yet */
    assert_non_null(strstr(d, "with cipher"));
    free(d);
    SSL_free(s);
    close(sv[0]);
    close(sv[1]);
    tls_server_free(t);
    config_free(&c);
    ERR_put_error(ERR_LIB_SSL, 0, SSL_R_UNSUPPORTED_PROTOCOL, __FILE__, __LINE__);
    char *e = tls_errors("fallback");
    assert_string_equal(e, "unsupported protocol");
    free(e);
    e = tls_errors("fallback"); /* the queue was emptied */
    assert_string_equal(e, "fallback");
    free(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_certificate_no_tls),
        cmocka_unit_test(test_load_errors),
        cmocka_unit_test(test_sni),
        cmocka_unit_test(test_rotation_tls12),
        cmocka_unit_test(test_rotation_tls13),
        cmocka_unit_test(test_describe),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
