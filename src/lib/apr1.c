/* apr1.c - Apache MD5 crypt ("$apr1$", apr1.h) with OpenSSL EVP MD5. */
#include "compat.h"

#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "apr1.h"
#include "util.h"

#define SALT_MAX 8

static const char itoa64[] =
    "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

static void to64(struct buf *out, unsigned long v, int n)
{
    while (n-- > 0) {
        buf_addc(out, itoa64[v & 0x3f]);
        v >>= 6;
    }
}

/* One MD5 over the parts (p, n) pairs; NULL p ends the list. */
static int md5_parts(unsigned char out[16], const void *p1, size_t n1, const void *p2,
                     size_t n2, const void *p3, size_t n3, const void *p4, size_t n4)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned int len = 0;
    int ok = ctx && EVP_DigestInit_ex(ctx, EVP_md5(), NULL) == 1 &&
             EVP_DigestUpdate(ctx, p1, n1) == 1 && EVP_DigestUpdate(ctx, p2, n2) == 1 &&
             EVP_DigestUpdate(ctx, p3, n3) == 1 && EVP_DigestUpdate(ctx, p4, n4) == 1 &&
             EVP_DigestFinal_ex(ctx, out, &len) == 1 && len == 16;
    EVP_MD_CTX_free(ctx);
    return ok ? 0 : -1;
}

/* The first digest: pw, magic, salt, then the "alternate" digest and the
 * length-driven bytes of md5crypt. */
static int apr1_initial(unsigned char fin[16], const char *pw, size_t pl, const char *salt,
                        size_t sl)
{
    unsigned char alt[16];
    if (md5_parts(alt, pw, pl, salt, sl, pw, pl, "", 0) < 0)
        return -1;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned int len = 0;
    int ok = ctx && EVP_DigestInit_ex(ctx, EVP_md5(), NULL) == 1 &&
             EVP_DigestUpdate(ctx, pw, pl) == 1 &&
             EVP_DigestUpdate(ctx, APR1_MAGIC, strlen(APR1_MAGIC)) == 1 &&
             EVP_DigestUpdate(ctx, salt, sl) == 1;
    for (size_t n = pl; ok && n > 0; n -= n > 16 ? 16 : n)
        ok = EVP_DigestUpdate(ctx, alt, n > 16 ? 16 : n) == 1;
    for (size_t i = pl; ok && i; i >>= 1)
        ok = EVP_DigestUpdate(ctx, (i & 1) ? "" : pw, 1) == 1;
    ok = ok && EVP_DigestFinal_ex(ctx, fin, &len) == 1 && len == 16;
    EVP_MD_CTX_free(ctx);
    OPENSSL_cleanse(alt, sizeof alt);
    return ok ? 0 : -1;
}

char *apr1_crypt(const char *pw, const char *setting)
{
    size_t ml = strlen(APR1_MAGIC);
    if (strncmp(setting, APR1_MAGIC, ml) != 0)
        return NULL;
    const char *salt = setting + ml;
    size_t sl = strcspn(salt, "$");
    if (sl > SALT_MAX)
        sl = SALT_MAX;
    size_t pl = strlen(pw);
    unsigned char fin[16];
    if (apr1_initial(fin, pw, pl, salt, sl) < 0)
        return NULL;
    /* 1000 rounds, "to slow things down" in the words of the original */
    for (int i = 0; i < 1000; i++) {
        const void *a = (i & 1) ? (const void *)pw : fin;
        size_t an = (i & 1) ? pl : 16;
        const void *d = (i & 1) ? (const void *)fin : pw;
        size_t dn = (i & 1) ? 16 : pl;
        unsigned char next[16];
        if (md5_parts(next, a, an, salt, (i % 3) ? sl : 0, pw, (i % 7) ? pl : 0, d, dn) < 0)
            return NULL;
        memcpy(fin, next, sizeof fin);
    }
    struct buf out;
    buf_init(&out);
    buf_adds(&out, APR1_MAGIC);
    buf_add(&out, salt, sl);
    buf_addc(&out, '$');
    static const int idx[5][3] = { {0, 6, 12}, {1, 7, 13}, {2, 8, 14}, {3, 9, 15}, {4, 10, 5} };
    for (int g = 0; g < 5; g++)
        to64(&out, ((unsigned long)fin[idx[g][0]] << 16) |
                        ((unsigned long)fin[idx[g][1]] << 8) | fin[idx[g][2]], 4);
    to64(&out, fin[11], 2);
    OPENSSL_cleanse(fin, sizeof fin);
    return buf_steal(&out);
}
