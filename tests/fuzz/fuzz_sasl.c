/* fuzz_sasl.c - sasl.h: base64, PLAIN, LOGIN fields, xtext.
 * Invariants: decoded base64 re-encodes to the input (the decoder is strict:
 * one spelling per byte string) and encoded bytes decode back; a failed
 * decode appends nothing; PLAIN fields are within SASL_FIELD_MAX, hold no
 * NUL, the user no control byte, and joined with NULs give the message back;
 * xtext decodes only from printable ASCII and each "+XX" is one byte. */
#include "compat.h"

#include "fuzz.h"
#include "sasl.h"
#include "util.h"

static void check_b64(const char *s, size_t n)
{
    struct buf out, enc;
    buf_init(&out);
    buf_init(&enc);
    buf_adds(&out, "x");
    if (sasl_b64_decode(s, n, &out, NULL) == 0) {
        if (!(n == 1 && s[0] == '=')) {
            sasl_b64_encode(out.s + 1, out.len - 1, &enc);
            FUZZ_CHECK(enc.len == n && memcmp(enc.s, s, n) == 0,
                       "decoded base64 does not encode back to the input");
        }
    } else {
        FUZZ_CHECK(out.len == 1 && out.s[0] == 'x', "a failed decode appended bytes");
    }
    /* the raw input encoded decodes back to itself */
    buf_reset(&enc);
    sasl_b64_encode(s, n, &enc);
    buf_reset(&out);
    FUZZ_CHECK(sasl_b64_decode(enc.s, enc.len, &out, NULL) == 0 && out.len == n &&
                   memcmp(out.s, s, n) == 0, "encode then decode changed the bytes");
    buf_free(&out);
    buf_free(&enc);
}

static void check_plain(const char *s, size_t n)
{
    char *z, *u, *p;
    if (sasl_plain_parse(s, n, &z, &u, &p, NULL) < 0)
        return;
    size_t zl = strlen(z), ul = strlen(u), pl = strlen(p);
    FUZZ_CHECK(zl <= SASL_FIELD_MAX && ul <= SASL_FIELD_MAX && pl <= SASL_FIELD_MAX,
               "a PLAIN field over SASL_FIELD_MAX");
    FUZZ_CHECK(ul > 0 && !fuzz_has_ctl(u, ul, 0) && !fuzz_has_ctl(z, zl, 0),
               "PLAIN user name empty or with a control byte");
    FUZZ_CHECK(zl + ul + pl + 2 == n && memcmp(s, z, zl) == 0 && s[zl] == '\0' &&
                   memcmp(s + zl + 1, u, ul) == 0 && s[zl + 1 + ul] == '\0' &&
                   memcmp(s + zl + ul + 2, p, pl) == 0,
               "PLAIN fields are not the message");
    FUZZ_CHECK(sasl_login_field(u, ul, 1, NULL) == 0 && sasl_login_field(p, pl, 0, NULL) == 0,
               "PLAIN fields that LOGIN would refuse");
    free(z);
    free(u);
    free(p);
}

static void check_xtext(const char *s)
{
    struct buf out;
    buf_init(&out);
    if (sasl_xtext_decode(s, &out) == 0) {
        size_t plus = 0, n = strlen(s);
        for (size_t i = 0; i < n; i++) {
            FUZZ_CHECK(s[i] > 0x20 && s[i] < 0x7f && s[i] != '=', "xtext took a bad byte");
            plus += s[i] == '+';
        }
        FUZZ_CHECK(out.len == n - 2 * plus, "xtext length is not one byte per +XX");
    }
    buf_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p = (const char *)data;
    check_b64(p, size);
    check_plain(p, size);
    if (size <= SASL_LINE_MAX)
        (void)sasl_login_field(p, size, size & 1, NULL);
    char *s = fuzz_str(data, size);
    check_xtext(s);
    (void)sasl_mech_parse(s);
    free(s);
    return 0;
}
