/* test_sasl.c - base64 (RFC 4648 vectors, strictness), PLAIN parsing, LOGIN
 * fields, xtext (sasl.h), malformed input included. */
#include "compat.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sasl.h"
#include "util.h"

static void test_b64_rfc4648_vectors(void **state)
{
    (void)state;
    static const char *const plain[] = { "", "f", "fo", "foo", "foob", "fooba", "foobar" };
    static const char *const enc[] = { "", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=",
                                       "Zm9vYmFy" };
    for (int i = 0; i < 7; i++) {
        struct buf b;
        buf_init(&b);
        sasl_b64_encode(plain[i], strlen(plain[i]), &b);
        assert_string_equal(b.s, enc[i]);
        buf_reset(&b);
        assert_int_equal(sasl_b64_decode(enc[i], strlen(enc[i]), &b, NULL), 0);
        assert_int_equal(b.len, strlen(plain[i]));
        assert_memory_equal(b.s, plain[i], b.len);
        buf_free(&b);
    }
    struct buf b;
    buf_init(&b);
    assert_int_equal(sasl_b64_decode("=", 1, &b, NULL), 0); /* RFC 4954: empty */
    assert_int_equal(b.len, 0);
    assert_string_equal(SASL_LOGIN_USER, "VXNlcm5hbWU6");
    sasl_b64_encode("Password:", 9, &b);
    assert_string_equal(b.s, SASL_LOGIN_PASS);
    buf_free(&b);
}

static void test_b64_malformed(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "Zg", "Zg=", "Zg===", "Z===", "====", "Zm9v YmFy", "Zm9v\nYmFy", "Zm9*", "Zg==Zg==",
        "Zm=v", "Zh==", /* non-zero unused bits */ "Zm9=", "==", "-_-_", "Zm9v\0Zm9",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct buf b;
        buf_init(&b);
        buf_adds(&b, "kept");
        const char *why = NULL;
        size_t n = i == sizeof bad / sizeof bad[0] - 1 ? 8 : strlen(bad[i]);
        assert_int_equal(sasl_b64_decode(bad[i], n, &b, &why), -1);
        assert_non_null(why);
        assert_string_equal(b.s, "kept"); /* nothing appended */
        buf_free(&b);
    }
}

static void test_plain(void **state)
{
    (void)state;
    char *z, *u, *p;
    const char *why = NULL;
    assert_int_equal(sasl_plain_parse("\0joe@one.example\0se\xc3\xa9 cret", 26, &z, &u, &p, &why),
                     0);
    assert_string_equal(z, "");
    assert_string_equal(u, "joe@one.example");
    assert_string_equal(p, "se\xc3\xa9 cret");
    free(z), free(u), free(p);
    assert_int_equal(sasl_plain_parse("joe\0joe\0pw", 10, &z, &u, &p, NULL), 0);
    assert_string_equal(z, "joe");
    free(z), free(u), free(p);
    /* an empty password is a (wrong) password, not a syntax error */
    assert_int_equal(sasl_plain_parse("\0joe\0", 5, &z, &u, &p, NULL), 0);
    assert_string_equal(p, "");
    free(z), free(u), free(p);

    z = u = p = NULL;
    assert_int_equal(sasl_plain_parse("joe", 3, &z, &u, &p, &why), -1);
    assert_int_equal(sasl_plain_parse("\0joe", 4, &z, &u, &p, &why), -1);
    assert_int_equal(sasl_plain_parse("\0\0pw", 4, &z, &u, &p, &why), -1);     /* no user */
    assert_int_equal(sasl_plain_parse("\0joe\0pw\0x", 9, &z, &u, &p, &why), -1); /* 3 NULs */
    assert_int_equal(sasl_plain_parse("\0jo\re\0pw", 8, &z, &u, &p, &why), -1);  /* CR */
    assert_int_equal(sasl_plain_parse("a\nb\0joe\0pw", 10, &z, &u, &p, &why), -1);
    assert_int_equal(sasl_plain_parse("", 0, &z, &u, &p, &why), -1);
    assert_null(z), assert_null(u), assert_null(p);

    /* length limits: SASL_FIELD_MAX taken, one more refused */
    size_t n = SASL_FIELD_MAX;
    char *m = xcalloc(1, n * 2 + 8);
    memset(m + 1, 'u', 3);
    memset(m + 5, 'p', n);
    assert_int_equal(sasl_plain_parse(m, 5 + n, &z, &u, &p, &why), 0);
    assert_int_equal(strlen(p), n);
    free(z), free(u), free(p);
    z = u = p = NULL;
    m[5 + n] = 'p';
    assert_int_equal(sasl_plain_parse(m, 6 + n, &z, &u, &p, &why), -1);
    assert_string_equal(why, "password too long");
    free(m);
}

static void test_login_field_and_mech(void **state)
{
    (void)state;
    const char *why;
    assert_int_equal(sasl_login_field("joe", 3, 1, &why), 0);
    assert_int_equal(sasl_login_field("", 0, 1, &why), -1);
    assert_int_equal(sasl_login_field("", 0, 0, &why), 0);
    assert_int_equal(sasl_login_field("a\0b", 3, 0, &why), -1);
    assert_int_equal(sasl_login_field("a\tb", 3, 1, &why), -1);
    assert_int_equal(sasl_login_field("a\tb", 3, 0, &why), 0);
    assert_int_equal(sasl_mech_parse("plain"), SASL_PLAIN);
    assert_int_equal(sasl_mech_parse("LOGIN"), SASL_LOGIN);
    assert_int_equal(sasl_mech_parse("CRAM-MD5"), SASL_NONE);
    assert_int_equal(sasl_mech_parse(""), SASL_NONE);
    assert_int_equal(sasl_mech_parse("PLAINX"), SASL_NONE);
}

static void test_xtext(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b);
    assert_int_equal(sasl_xtext_decode("joe+40one.example", &b), 0);
    assert_string_equal(b.s, "joe@one.example");
    assert_int_equal(sasl_xtext_decode("<>", &b), 0);
    assert_string_equal(b.s, "<>");
    assert_int_equal(sasl_xtext_decode("+2B+3D", &b), 0);
    assert_string_equal(b.s, "+=");
    assert_int_equal(sasl_xtext_decode("a=b", &b), -1);
    assert_int_equal(sasl_xtext_decode("a+4", &b), -1);
    assert_int_equal(sasl_xtext_decode("a+", &b), -1);
    assert_int_equal(sasl_xtext_decode("a+4g", &b), -1);
    assert_int_equal(sasl_xtext_decode("a+4a", &b), -1); /* lower-case hex */
    assert_int_equal(sasl_xtext_decode("a b", &b), -1);
    assert_int_equal(sasl_xtext_decode("\x80", &b), -1);
    buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_b64_rfc4648_vectors),
        cmocka_unit_test(test_b64_malformed),
        cmocka_unit_test(test_plain),
        cmocka_unit_test(test_login_field_and_mech),
        cmocka_unit_test(test_xtext),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
