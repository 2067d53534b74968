/* pwhash.c - a password against a stored hash (pwhash.h). */
#include "compat.h"

#include <crypt.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "apr1.h"
#include "pwhash.h"
#include "util.h"

static const char *const prefixes[] = {
    "$1$", "$2a$", "$2b$", "$2y$", "$5$", "$6$", "$y$", "$gy$", "$7$", "$sha1$",
};

static int des_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '.' || c == '/';
}

/* Traditional DES crypt: exactly 13 characters of ./0-9A-Za-z.  (A
 * 13-character plaintext password of those characters looks the same: it
 * then simply never verifies.) */
static int is_des(const char *h)
{
    if (strlen(h) != 13)
        return 0;
    for (; *h; h++)
        if (!des_char(*h))
            return 0;
    return 1;
}

int pwhash_supported(const char *hash, const char **why)
{
    const char *w = "plaintext or unknown hash format";
    if (!hash || !*hash || hash[0] == '!' || hash[0] == '*')
        w = "locked or empty";
    else if (!strncmp(hash, "{SHA}", 5))
        w = "{SHA} (unsalted SHA-1) is not accepted";
    else if (!strncmp(hash, APR1_MAGIC, strlen(APR1_MAGIC)) || is_des(hash))
        return 1;
    else
        for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++)
            if (!strncmp(hash, prefixes[i], strlen(prefixes[i])))
                return 1;
    if (why)
        *why = w;
    return 0;
}

/* Equal lengths and bytes, in time independent of where they differ. */
static int same(const char *a, const char *b)
{
    size_t n = strlen(a);
    return n == strlen(b) && CRYPTO_memcmp(a, b, n) == 0;
}

enum pwhash_result pwhash_check(const char *pw, const char *hash, const char **why)
{
    if (!pwhash_supported(hash, why))
        return PWHASH_BADHASH;
    int ok = 0;
    if (!strncmp(hash, APR1_MAGIC, strlen(APR1_MAGIC))) {
        char *h = apr1_crypt(pw, hash);
        ok = h && same(h, hash);
        if (!h && why)
            *why = "apr1 hash cannot be computed (no MD5 in OpenSSL)";
        if (h) {
            OPENSSL_cleanse(h, strlen(h));
            free(h);
        }
        return !h ? PWHASH_BADHASH : ok ? PWHASH_MATCH : PWHASH_NOMATCH;
    }
    struct crypt_data *cd = xcalloc(1, sizeof *cd);
    /* crypt_rn: NULL (never a "*0" token) when the setting is malformed */
    const char *h = crypt_rn(pw, hash, cd, (int)sizeof *cd);
    int bad = !h || h[0] == '*';
    ok = !bad && same(h, hash);
    OPENSSL_cleanse(cd, sizeof *cd);
    free(cd);
    if (bad && why)
        *why = "malformed hash";
    return bad ? PWHASH_BADHASH : ok ? PWHASH_MATCH : PWHASH_NOMATCH;
}
