/* apr1.h - Apache's MD5 password hash "$apr1$SALT$HASH" (htpasswd -m, the
 * default of htpasswd), which libxcrypt does not provide.  The published
 * algorithm (Apache's apr_md5.c, a variant of Poul-Henning Kamp's md5crypt
 * with another magic string), computed with OpenSSL's EVP MD5.
 *
 * Pure computation, no I/O; used by pwhash.h in the AUTH helper's checker
 * (root).  Fails (NULL) only when the setting does not start with "$apr1$"
 * or OpenSSL cannot run MD5 (a FIPS-only configuration). */
#ifndef PO_APR1_H
#define PO_APR1_H

#define APR1_MAGIC "$apr1$"

/* The hash of password pw with the salt of setting ("$apr1$SALT" or a whole
 * "$apr1$SALT$HASH"; the salt is what follows the magic up to the next '$',
 * at most 8 characters, as Apache takes it): "$apr1$SALT$HASH", malloc'd, or
 * NULL. */
char *apr1_crypt(const char *pw, const char *setting);

#endif
