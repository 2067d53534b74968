/* sasl.c - base64, PLAIN, LOGIN and xtext for SMTP AUTH (sasl.h).
 * Runs in the session child (user=); parses untrusted input, strictly. */
#include "compat.h"

#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>

#include "sasl.h"

static const char b64chars[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static int fail(const char **why, const char *text)
{
    if (why)
        *why = text;
    return -1;
}

enum sasl_mech sasl_mech_parse(const char *name)
{
    if (!strcasecmp(name, "PLAIN"))
        return SASL_PLAIN;
    if (!strcasecmp(name, "LOGIN"))
        return SASL_LOGIN;
    return SASL_NONE;
}

static int b64val(unsigned char c)
{
    const char *p = c ? strchr(b64chars, c) : NULL;
    return p ? (int)(p - b64chars) : -1;
}

int sasl_b64_decode(const char *in, size_t len, struct buf *out, const char **why)
{
    if (len == 1 && in[0] == '=')
        return 0; /* RFC 4954 4: the empty response */
    if (len % 4 != 0)
        return fail(why, "base64 text length is not a multiple of 4");
    size_t start = out->len;
    for (size_t i = 0; i < len; i += 4) {
        int v[4], pad = 0;
        for (int k = 0; k < 4; k++) {
            unsigned char c = (unsigned char)in[i + (size_t)k];
            if (c == '=' && i + 4 == len && k >= 2) {
                v[k] = 0;
                pad++;
            } else if (pad || (v[k] = b64val(c)) < 0) {
                /* a character after padding, or one outside the alphabet */
                buf_truncate(out, start);
                return fail(why, "invalid base64 text");
            }
        }
        unsigned long w = ((unsigned long)v[0] << 18) | ((unsigned long)v[1] << 12) |
                          ((unsigned long)v[2] << 6) | (unsigned long)v[3];
        /* the bits a padded group leaves unused must be zero (RFC 4648 3.5) */
        if ((pad == 1 && (w & 0xff)) || (pad == 2 && (w & 0xffff))) {
            buf_truncate(out, start);
            return fail(why, "invalid base64 text");
        }
        char b[3] = { (char)(w >> 16), (char)(w >> 8), (char)w };
        buf_add(out, b, (size_t)(3 - pad));
    }
    return 0;
}

void sasl_b64_encode(const void *p, size_t n, struct buf *out)
{
    const unsigned char *s = p;
    for (size_t i = 0; i < n; i += 3) {
        unsigned long w = (unsigned long)s[i] << 16;
        if (i + 1 < n)
            w |= (unsigned long)s[i + 1] << 8;
        if (i + 2 < n)
            w |= s[i + 2];
        buf_addc(out, b64chars[(w >> 18) & 63]);
        buf_addc(out, b64chars[(w >> 12) & 63]);
        buf_addc(out, i + 1 < n ? b64chars[(w >> 6) & 63] : '=');
        buf_addc(out, i + 2 < n ? b64chars[w & 63] : '=');
    }
}

static int has_ctl(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return 1;
    return 0;
}

int sasl_login_field(const char *msg, size_t len, int is_user, const char **why)
{
    if (memchr(msg, '\0', len))
        return fail(why, "a NUL byte in the response");
    if (len > SASL_FIELD_MAX)
        return fail(why, is_user ? "user name too long" : "password too long");
    if (is_user && (len == 0 || has_ctl(msg, len)))
        return fail(why, len ? "control character in the user name" : "empty user name");
    return 0;
}

int sasl_plain_parse(const char *msg, size_t len, char **authzid, char **user, char **pass,
                     const char **why)
{
    const char *n1 = memchr(msg, '\0', len);
    const char *n2 = n1 ? memchr(n1 + 1, '\0', len - (size_t)(n1 + 1 - msg)) : NULL;
    if (!n1 || !n2 || memchr(n2 + 1, '\0', len - (size_t)(n2 + 1 - msg)))
        return fail(why, "PLAIN needs authzid NUL user NUL password");
    size_t zl = (size_t)(n1 - msg), ul = (size_t)(n2 - n1 - 1);
    size_t pl = len - (size_t)(n2 + 1 - msg);
    if (zl > SASL_FIELD_MAX || has_ctl(msg, zl))
        return fail(why, "invalid authorization identity");
    if (sasl_login_field(n1 + 1, ul, 1, why) < 0 || sasl_login_field(n2 + 1, pl, 0, why) < 0)
        return -1;
    *authzid = xstrndup(msg, zl);
    *user = xstrndup(n1 + 1, ul);
    *pass = xstrndup(n2 + 1, pl);
    return 0;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1; /* RFC 3461: upper case only */
}

int sasl_xtext_decode(const char *in, struct buf *out)
{
    buf_reset(out);
    for (const char *p = in; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '+') {
            int h = p[1] ? hexval(p[1]) : -1, l = h >= 0 && p[2] ? hexval(p[2]) : -1;
            if (h < 0 || l < 0)
                return -1;
            buf_addc(out, h * 16 + l);
            p += 2;
        } else if (c < 0x21 || c > 0x7e || c == '=') {
            return -1;
        } else {
            buf_addc(out, c);
        }
    }
    return 0;
}

void sasl_wipe(char *secret)
{
    if (secret) {
        OPENSSL_cleanse(secret, strlen(secret));
        free(secret);
    }
}

void sasl_wipe_buf(struct buf *b)
{
    if (b->s)
        OPENSSL_cleanse(b->s, b->cap ? b->cap : b->len);
    buf_free(b);
}
