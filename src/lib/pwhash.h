/* pwhash.h - checking a password against a stored hash: the formats Apache's
 * htpasswd and libxcrypt write.
 *
 * Taken: traditional DES crypt (13 characters), "$1$" (MD5), "$apr1$" (Apache
 * MD5, apr1.h), "$2a$"/"$2b$"/"$2y$" (bcrypt), "$5$" (SHA-256), "$6$"
 * (SHA-512), "$y$" (yescrypt), "$gy$", "$7$" (scrypt) and "$sha1$"; all but
 * apr1 through libxcrypt's crypt_rn.  Refused as not a hash: plaintext
 * (htpasswd -p), "{SHA}" (htpasswd -s: unsalted SHA-1), empty fields, locked
 * entries ("!" or "*" first) and anything else.  The comparison takes the
 * same time wherever the first difference is (CRYPTO_memcmp).
 *
 * Pure computation; called by the AUTH helper's checker (auth_check.h, root). */
#ifndef PO_PWHASH_H
#define PO_PWHASH_H

enum pwhash_result {
    PWHASH_MATCH = 1,   /* the password is right */
    PWHASH_NOMATCH = 0, /* a supported hash that the password does not give */
    PWHASH_BADHASH = -1 /* not a hash we take (*why says which kind) */
};

/* Does password pw give the stored hash?  why (may be NULL) gets a static
 * text for PWHASH_BADHASH: "plaintext or unknown hash format", "{SHA}
 * (unsalted SHA-1) is not accepted", "locked or empty", "malformed hash"
 * (a known prefix that libxcrypt refuses). */
enum pwhash_result pwhash_check(const char *pw, const char *hash, const char **why);

/* Is hash a format pwhash_check takes?  1 or 0 (why as above). */
int pwhash_supported(const char *hash, const char **why);

#endif
