/* tls_server.c - the SMTP server's TLS contexts (tls_server.h).
 *
 * ROOT: tls_server_new runs in the TLS proxy before it drops to user=: it
 * reads certificate and key files and parses no network input (OpenSSL
 * parses the PEM files the administrator named).  The callbacks (SNI,
 * tickets), tls_server_ssl, tls_describe and tls_errors run in the proxy as
 * user=. */
#include "compat.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "log.h"
#include "tls_server.h"
#include "util.h"

#define TICKET_NAME TLS_TICKET_NAME
#define DOMAINS_MAX 65536 /* virtual domains with their own certificate */
#define SID_CTX "postoffice"

struct tls_domain {
    char *name; /* lower case */
    SSL_CTX *ctx;
};

struct tls_server {
    SSL_CTX *ctx;              /* the default: tls-cert=/tls-key= */
    struct tls_domain *dom;    /* sorted by name */
    size_t ndom;
    struct tls_ticket_keys keys; /* the master's (tls_proxy_rotate) */
};

/* ---- errors ---- */

char *tls_errors(const char *fallback)
{
    struct buf b;
    unsigned long e;
    buf_init(&b);
    while ((e = ERR_get_error()) != 0) {
        char one[256];
        ERR_error_string_n(e, one, sizeof one);
        /* "error:0A000086:SSL routines::certificate verify failed": the
         * text after the last colon is what a reader needs */
        const char *why = strrchr(one, ':');
        why = why && why[1] ? why + 1 : one;
        if (b.len)
            buf_adds(&b, "; ");
        buf_adds(&b, why);
    }
    if (!b.len)
        buf_adds(&b, fallback ? fallback : "unknown TLS error");
    return b.s;
}

static int fail(char **err, const char *fmt, ...) PO_PRINTF(2, 3);
static int fail(char **err, const char *fmt, ...)
{
    struct buf b;
    va_list ap;
    buf_init(&b);
    va_start(ap, fmt);
    buf_vaddf(&b, fmt, ap);
    va_end(ap);
    free(*err);
    *err = b.s;
    return -1;
}

/* ---- settings ---- */

/* tls-protocols=: versions, comma- or space-separated; the lowest and the
 * highest given bound what is offered (a gap cannot be expressed to OpenSSL,
 * so it is refused rather than silently filled). */
static int parse_protocols(const char *v, int *min, int *max, char **err)
{
    static const struct { const char *name; int ver; } known[] = {
        { "TLSv1", TLS1_VERSION }, { "TLSv1.0", TLS1_VERSION }, { "TLSv1.1", TLS1_1_VERSION },
        { "TLSv1.2", TLS1_2_VERSION }, { "TLSv1.3", TLS1_3_VERSION },
    };
    struct strlist l;
    int seen = 0; /* bit per version: 0x301..0x304 -> 1..8 */
    sl_init(&l);
    sl_split(&l, v, ", \t");
    *min = *max = 0;
    for (size_t i = 0; i < l.n; i++) {
        int ver = 0;
        for (size_t k = 0; k < sizeof known / sizeof known[0]; k++)
            if (!strcasecmp(l.v[i], known[k].name))
                ver = known[k].ver;
        if (!ver) {
            fail(err, "tls-protocols=%s: unknown version \"%s\" (use TLSv1, TLSv1.1, TLSv1.2, "
                      "TLSv1.3)", v, l.v[i]);
            sl_free(&l);
            return -1;
        }
        seen |= 1 << (ver - TLS1_VERSION);
        if (!*min || ver < *min)
            *min = ver;
        if (ver > *max)
            *max = ver;
    }
    sl_free(&l);
    if (!*min)
        return fail(err, "tls-protocols= is empty: name at least one version, e.g. TLSv1.2,TLSv1.3");
    for (int ver = *min; ver <= *max; ver++)
        if (!(seen & (1 << (ver - TLS1_VERSION))))
            return fail(err, "tls-protocols=%s: a gap between versions is not possible; list "
                             "every version from the lowest to the highest", v);
    return 0;
}

/* ---- ticket keys ---- */

void tls_server_set_keys(struct tls_server *t, const struct tls_ticket_keys *k)
{
    t->keys = *k;
}

static int mac_key(EVP_MAC_CTX *hctx, const struct tls_ticket_key *k)
{
    char digest[] = "SHA256";
    OSSL_PARAM p[] = {
        OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, (void *)k->hmac, sizeof k->hmac),
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
        OSSL_PARAM_construct_end(),
    };
    return EVP_MAC_CTX_set_params(hctx, p) == 1 ? 0 : -1;
}

/* OpenSSL's ticket callback: seal with k[0]; open with whichever key the
 * ticket names while it is young enough.  Returns 1 (ok), 2 (ok, but issue a
 * fresh ticket: it was sealed with the older key), 0 (unknown or expired
 * key: a full handshake), -1 (error). */
static int ticket_cb(SSL *ssl, unsigned char name[TICKET_NAME], unsigned char *iv,
                     EVP_CIPHER_CTX *cctx, EVP_MAC_CTX *hctx, int enc)
{
    const struct tls_server *t = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));
    const struct tls_ticket_keys *ks = t ? &t->keys : NULL;
    if (!ks || !ks->n)
        return enc ? -1 : 0;
    if (enc) {
        const struct tls_ticket_key *k = &ks->k[0];
        if (RAND_bytes(iv, EVP_CIPHER_get_iv_length(EVP_aes_256_cbc())) != 1)
            return -1;
        memcpy(name, k->name, TICKET_NAME);
        if (EVP_EncryptInit_ex(cctx, EVP_aes_256_cbc(), NULL, k->aes, iv) != 1 || mac_key(hctx, k))
            return -1;
        return 1;
    }
    time_t now = time(NULL);
    for (int i = 0; i < ks->n; i++) {
        const struct tls_ticket_key *k = &ks->k[i];
        if (memcmp(name, k->name, TICKET_NAME) != 0)
            continue;
        if (now - k->made >= 2 * TLS_TICKET_ROTATE)
            return 0;
        if (mac_key(hctx, k) || EVP_DecryptInit_ex(cctx, EVP_aes_256_cbc(), NULL, k->aes, iv) != 1)
            return -1;
        return i == 0 ? 1 : 2;
    }
    return 0;
}

/* ---- contexts ---- */

static int domain_cmp(const void *a, const void *b)
{
    return strcmp(((const struct tls_domain *)a)->name, ((const struct tls_domain *)b)->name);
}

static SSL_CTX *domain_ctx(const struct tls_server *t, const char *name)
{
    struct tls_domain key = { .name = (char *)name };
    const struct tls_domain *d = bsearch(&key, t->dom, t->ndom, sizeof *t->dom, domain_cmp);
    return d ? d->ctx : NULL;
}

/* The client's server name picks a domain's certificate: the name itself,
 * else the nearest parent domain (mail.one.example -> one.example). */
static int sni_cb(SSL *ssl, int *alert, void *arg)
{
    const struct tls_server *t = arg;
    const char *sn = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    (void)alert;
    if (!sn || !t->ndom || strlen(sn) > 255)
        return SSL_TLSEXT_ERR_NOACK;
    char *name = xstrdup(sn);
    for (char *p = name; *p; p++)
        *p = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
    SSL_CTX *ctx = NULL;
    for (const char *p = name; p && *p && !ctx; p = strchr(p, '.'), p = p ? p + 1 : NULL)
        ctx = domain_ctx(t, p);
    free(name);
    if (!ctx)
        return SSL_TLSEXT_ERR_NOACK;
    SSL_set_SSL_CTX(ssl, ctx);
    return SSL_TLSEXT_ERR_OK;
}

/* A context with our protocol, cipher and session settings, no certificate. */
static SSL_CTX *ctx_new(struct tls_server *t, const struct config *c, char **err)
{
    int min, max;
    if (parse_protocols(c->tls_protocols ? c->tls_protocols : "TLSv1.2,TLSv1.3", &min, &max,
                        err) < 0)
        return NULL;
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) {
        char *why = tls_errors(NULL);
        fail(err, "TLS: cannot make a context: %s", why);
        free(why);
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, min);
    SSL_CTX_set_max_proto_version(ctx, max);
    /* SMTP needs no renegotiation or compression (CRIME); a client's early
     * EOF is just a closed connection: the data's end mark says whether a
     * message was complete */
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                                 SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_IGNORE_UNEXPECTED_EOF);
    /* an idle session gives its 34 KiB of record buffers back */
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set_dh_auto(ctx, 1);
    /* no session cache: resumption is by tickets alone, sealed with the
     * master's keys, so it survives a new proxy (SIGHUP) */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_session_id_context(ctx, (const unsigned char *)SID_CTX, sizeof SID_CTX - 1);
    SSL_CTX_set_timeout(ctx, TLS_TICKET_ROTATE);
    SSL_CTX_set_num_tickets(ctx, 1);
    SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, ticket_cb);
    SSL_CTX_set_app_data(ctx, t);
    if (c->tls_ciphers && *c->tls_ciphers && SSL_CTX_set_cipher_list(ctx, c->tls_ciphers) != 1) {
        ERR_clear_error();
        fail(err, "tls-ciphers=%s: no cipher OpenSSL knows", c->tls_ciphers);
    } else if (c->tls_ciphersuites && *c->tls_ciphersuites &&
               SSL_CTX_set_ciphersuites(ctx, c->tls_ciphersuites) != 1) {
        ERR_clear_error();
        fail(err, "tls-ciphersuites=%s: not a list of TLS 1.3 suites OpenSSL knows "
                  "(e.g. TLS_AES_128_GCM_SHA256)", c->tls_ciphersuites);
    } else {
        return ctx;
    }
    SSL_CTX_free(ctx);
    return NULL;
}

/* Can we read path?  A clear errno message beats OpenSSL's for that. */
static int readable(const char *what, const char *path, char **err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return fail(err, "%s%s: %s", what, path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) == 0 && !S_ISREG(st.st_mode)) {
        close(fd);
        return fail(err, "%s%s: not a regular file", what, path);
    }
    close(fd);
    return 0;
}

/* Add one certificate (chain) and its key to ctx. */
static int load_pair(SSL_CTX *ctx, const char *cw, const char *cert, const char *kw,
                     const char *key, char **err)
{
    if (readable(cw, cert, err) < 0 || readable(kw, key, err) < 0)
        return -1;
    char *why = NULL;
    int rc = 0;
    if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
        why = tls_errors(NULL);
        rc = fail(err, "%s%s: not a usable PEM certificate: %s", cw, cert, why);
    } else if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
        why = tls_errors(NULL);
        rc = fail(err, "%s%s: not a usable private key for the certificate %s: %s", kw, key,
                  cert, why);
    } else if (SSL_CTX_check_private_key(ctx) != 1) {
        why = tls_errors(NULL);
        rc = fail(err, "%s%s: not the private key of the certificate %s: %s", kw, key, cert,
                  why);
    }
    free(why);
    struct stat st;
    if (!rc && stat(key, &st) == 0 && (st.st_mode & S_IROTH))
        log_warn("TLS: the key %s is readable by everyone: chmod 600 it (only root needs it)",
                 key);
    return rc;
}

static int load_default(struct tls_server *t, const struct config *c, char **err)
{
    if (c->tls_cert.n != c->tls_key.n)
        return fail(err, "%zu tls-cert= but %zu tls-key= given: name one key file per "
                         "certificate, in the same order", c->tls_cert.n, c->tls_key.n);
    if (!(t->ctx = ctx_new(t, c, err)))
        return -1;
    for (size_t i = 0; i < c->tls_cert.n; i++)
        if (load_pair(t->ctx, "tls-cert=", c->tls_cert.v[i], "tls-key=", c->tls_key.v[i],
                      err) < 0)
            return -1;
    SSL_CTX_set_tlsext_servername_callback(t->ctx, sni_cb);
    SSL_CTX_set_tlsext_servername_arg(t->ctx, t);
    return 0;
}

/* VHOSTDIR/DOMAIN/tls.crt (+ tls.key): a domain's own certificate. */
static int load_domain(struct tls_server *t, const struct config *c, const char *name,
                       char **err)
{
    char *cert = xasprintf("%s/%s/tls.crt", c->vpath, name);
    char *key = xasprintf("%s/%s/tls.key", c->vpath, name);
    struct stat st;
    int rc = 0;
    if (stat(cert, &st) == 0 && S_ISREG(st.st_mode)) {
        SSL_CTX *ctx = NULL;
        if (t->ndom >= DOMAINS_MAX)
            rc = fail(err, "%s: more than %d domains with their own certificate", c->vpath,
                      DOMAINS_MAX);
        else if (!(ctx = ctx_new(t, c, err)) || load_pair(ctx, "", cert, "", key, err) < 0)
            rc = -1;
        if (rc == 0) {
            t->dom = xreallocarray(t->dom, t->ndom + 1, sizeof *t->dom);
            t->dom[t->ndom].name = xstrdup(name);
            for (char *p = t->dom[t->ndom].name; *p; p++)
                *p = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
            t->dom[t->ndom++].ctx = ctx;
        } else {
            SSL_CTX_free(ctx);
        }
    }
    free(cert);
    free(key);
    return rc;
}

static int load_domains(struct tls_server *t, const struct config *c, char **err)
{
    if (!c->vpath)
        return 0;
    DIR *d = opendir(c->vpath);
    if (!d)
        return 0; /* no virtual domains */
    struct dirent *de;
    int rc = 0;
    while (rc == 0 && (de = readdir(d)) != NULL)
        if (de->d_name[0] != '.')
            rc = load_domain(t, c, de->d_name, err);
    closedir(d);
    if (t->ndom)
        qsort(t->dom, t->ndom, sizeof *t->dom, domain_cmp);
    return rc;
}

struct tls_server *tls_server_new(const struct config *c, char **err)
{
    *err = NULL;
    if (c->tls_cert.n == 0 && c->tls_key.n == 0)
        return NULL;
    struct tls_server *t = xcalloc(1, sizeof *t);
    if (load_default(t, c, err) < 0 || load_domains(t, c, err) < 0) {
        tls_server_free(t);
        return NULL;
    }
    return t;
}

size_t tls_server_domains(const struct tls_server *t)
{
    return t ? t->ndom : 0;
}

void tls_server_free(struct tls_server *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->ndom; i++) {
        SSL_CTX_free(t->dom[i].ctx);
        free(t->dom[i].name);
    }
    free(t->dom);
    SSL_CTX_free(t->ctx);
    OPENSSL_cleanse(&t->keys, sizeof t->keys);
    free(t);
}

/* ---- per connection, in the proxy ---- */

SSL *tls_server_ssl(struct tls_server *t, int fd, char **err)
{
    SSL *ssl = SSL_new(t->ctx);
    *err = NULL;
    if (!ssl || SSL_set_fd(ssl, fd) != 1) {
        *err = tls_errors("cannot make a TLS connection object");
        SSL_free(ssl);
        return NULL;
    }
    SSL_set_accept_state(ssl);
    return ssl;
}

char *tls_describe(const SSL *ssl)
{
    const SSL_CIPHER *ci = SSL_get_current_cipher(ssl);
    int alg = 0, bits = ci ? SSL_CIPHER_get_bits(ci, &alg) : 0;
    return xasprintf("%s with cipher %s (%d/%d bits)", SSL_get_version(ssl),
                     ci ? SSL_CIPHER_get_name(ci) : "unknown", bits, alg);
}
