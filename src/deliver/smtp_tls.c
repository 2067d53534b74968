/* smtp_tls.c - the SMTP client's TLS: policy, handshake, I/O, what to log
 * (see smtp_tls.h).  Runs unprivileged, in the remote-delivery process. */
#include "compat.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "mx.h"
#include "relay_map.h"
#include "smtp_tls.h"
#include "util.h"

/* One context per CA file (NULL: the system store), made at first use. */
struct tls_ctx {
    char *ca;
    SSL_CTX *x;
    char *err; /* why it could not be made (once) */
};

/* A next hop's newest session, for resumption (name: sess_key). */
struct tls_sess {
    char *name;
    SSL_SESSION *s;
};

struct smtp_tls {
    const struct config *c;
    struct tls_ctx *ctx;
    size_t nctx;
    struct tls_sess sess[SMTP_TLS_SESSIONS]; /* oldest first */
    size_t nsess;
};

struct smtp_tls_conn {
    SSL *ssl;
    char *info;
    char *sess_name; /* the next hop's name its sessions are kept under */
};

void smtp_tls_dest_policy(const struct relay_dest *d, struct smtp_tls_policy *p)
{
    memset(p, 0, sizeof *p);
    p->level = d->tls == RELAY_TLS_NONE  ? SMTP_TLS_NONE
               : d->tls == RELAY_TLS_MAY ? SMTP_TLS_MAY
                                         : SMTP_TLS_REQUIRE;
    p->implicit = d->implicit && d->tls != RELAY_TLS_NONE;
    p->relay = d->host != NULL;
    if (d->host)
        p->name = xstrdup(d->host); /* a [name] without brackets, a literal with */
    p->ca = d->ca ? xstrdup(d->ca) : NULL;
    p->ca_opt = d->ca_opt ? d->ca_opt : "ca";
    if (d->origin)
        p->origin = xstrdup(d->line ? d->origin : "relay-tls");
}

int smtp_tls_relay_policy(const struct config *c, struct smtp_tls_policy *p, char **why)
{
    struct config only = *c; /* relay-host= alone, whatever relay-map= says */
    only.relay_map = NULL;
    struct relay_dest d;
    memset(p, 0, sizeof *p);
    if (relay_dest_get(&only, NULL, &d, why) < 0)
        return -1;
    smtp_tls_dest_policy(&d, p);
    relay_dest_free(&d);
    return 0;
}

void smtp_tls_mx_policy(struct smtp_tls_policy *p)
{
    memset(p, 0, sizeof *p);
    p->level = SMTP_TLS_MAY;
}

void smtp_tls_policy_free(struct smtp_tls_policy *p)
{
    free(p->name);
    free(p->ca);
    free(p->origin);
    p->name = p->ca = p->origin = NULL;
}

/* The first OpenSSL error as text (the queue is emptied), or dflt. */
static char *ssl_err_text(const char *dflt)
{
    unsigned long e = ERR_get_error();
    ERR_clear_error();
    if (!e)
        return xstrdup(dflt);
    char b[256];
    ERR_error_string_n(e, b, sizeof b);
    return xstrdup(b);
}

/* The new-session callback: keep a next hop's newest session under its
 * name (the SSL's app data; none for MX hosts). */
static int keep_session(SSL *ssl, SSL_SESSION *sess)
{
    struct smtp_tls *t = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));
    const char *name = SSL_get_app_data(ssl);
    if (!t || !name || !SSL_SESSION_is_resumable(sess))
        return 0;
    size_t i = 0;
    while (i < t->nsess && strcmp(t->sess[i].name, name) != 0)
        i++;
    if (i == t->nsess && t->nsess == SMTP_TLS_SESSIONS) { /* forget the oldest */
        free(t->sess[0].name);
        SSL_SESSION_free(t->sess[0].s);
        memmove(t->sess, t->sess + 1, (t->nsess - 1) * sizeof *t->sess);
        i = --t->nsess;
    }
    if (i == t->nsess) {
        t->sess[i].name = xstrdup(name);
        t->nsess++;
    } else {
        SSL_SESSION_free(t->sess[i].s);
    }
    t->sess[i].s = sess;
    return 1; /* we keep the reference */
}

/* The key a next hop's sessions are kept under: its name, and the level and
 * CA it was verified with, so a session made under a weaker policy (or
 * another CA) is never resumed, unverified, under a stricter one. */
static char *sess_key(const struct smtp_tls_policy *p)
{
    return xasprintf("%d %s %s", p->level, p->ca ? p->ca : "-", p->name);
}

static SSL_SESSION *find_session(const struct smtp_tls *t, const char *name)
{
    for (size_t i = 0; name && i < t->nsess; i++)
        if (strcmp(t->sess[i].name, name) == 0)
            return t->sess[i].s;
    return NULL;
}

static SSL_CTX *new_ctx(void)
{
    SSL_CTX *x = SSL_CTX_new(TLS_client_method());
    if (!x)
        return NULL;
    SSL_CTX_set_min_proto_version(x, TLS1_2_VERSION);
    SSL_CTX_set_mode(x, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set_verify(x, SSL_VERIFY_NONE, NULL); /* per connection: smtp_tls_start */
    return x;
}

/* A new context verifying against ca (NULL: the system store).  NULL with
 * *err when it cannot be made. */
static SSL_CTX *make_ctx(struct smtp_tls *t, const char *ca, const char *ca_opt, char **err)
{
    SSL_CTX *x = new_ctx();
    if (x && ca && access(ca, R_OK) < 0) { /* OpenSSL's text for this is obscure */
        *err = xasprintf("%s=%s cannot be read by user=%s: %s", ca_opt, ca, t->c->user,
                         strerror(errno));
    } else if (x && (ca ? SSL_CTX_load_verify_locations(x, ca, NULL)
                        : SSL_CTX_set_default_verify_paths(x)) != 1) {
        char *e = ssl_err_text("no certificate in it");
        *err = ca ? xasprintf("%s=%s cannot be used: %s", ca_opt, ca, e)
                  : xasprintf("the system's CA store cannot be loaded: %s", e);
        free(e);
    } else if (!x) {
        *err = ssl_err_text("cannot make a TLS context");
    } else {
        SSL_CTX_set_app_data(x, t);
        SSL_CTX_set_session_cache_mode(x, SSL_SESS_CACHE_CLIENT |
                                              SSL_SESS_CACHE_NO_INTERNAL_STORE);
        SSL_CTX_sess_set_new_cb(x, keep_session);
        return x;
    }
    SSL_CTX_free(x);
    return NULL;
}

/* The context for p's CA, made at first use.  NULL with *why when it cannot
 * be (remembered: the next connection gets the same answer at once). */
static SSL_CTX *ctx_for(struct smtp_tls *t, const struct smtp_tls_policy *p, char **why)
{
    size_t i = 0;
    while (i < t->nctx && !(p->ca ? t->ctx[i].ca && strcmp(t->ctx[i].ca, p->ca) == 0
                                  : !t->ctx[i].ca))
        i++;
    if (i == t->nctx) {
        t->ctx = xreallocarray(t->ctx, t->nctx + 1, sizeof *t->ctx);
        struct tls_ctx *n = &t->ctx[t->nctx++];
        n->ca = p->ca ? xstrdup(p->ca) : NULL;
        n->err = NULL;
        n->x = make_ctx(t, p->ca, p->ca_opt ? p->ca_opt : "ca", &n->err);
    }
    if (!t->ctx[i].x)
        *why = xstrdup(t->ctx[i].err);
    return t->ctx[i].x;
}

struct smtp_tls *smtp_tls_new(const struct config *c)
{
    struct smtp_tls *t = xcalloc(1, sizeof *t);
    t->c = c;
    return t;
}

void smtp_tls_free(struct smtp_tls *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->nctx; i++) {
        SSL_CTX_free(t->ctx[i].x);
        free(t->ctx[i].ca);
        free(t->ctx[i].err);
    }
    free(t->ctx);
    for (size_t i = 0; i < t->nsess; i++) {
        free(t->sess[i].name);
        SSL_SESSION_free(t->sess[i].s);
    }
    free(t);
}

/* "[203.0.113.5]" / "[IPv6:2001:db8::1]" -> the address text (malloc'd), or
 * NULL for a name. */
static char *literal_addr(const char *host)
{
    if (host[0] != '[')
        return NULL;
    const char *a = host + 1;
    if (strncasecmp(a, "IPv6:", 5) == 0)
        a += 5;
    size_t n = strcspn(a, "]");
    return xstrndup(a, n);
}

/* Name (or address) to check and SNI.  0, or -1 (out of memory in OpenSSL). */
static int set_peer(SSL *ssl, const char *name)
{
    char *ip = literal_addr(name);
    int ok;
    if (ip) {
        ok = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), ip) == 1;
        free(ip);
        return ok ? 0 : -1;
    }
    SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    ok = SSL_set1_host(ssl, name) == 1 && SSL_set_tlsext_host_name(ssl, name) == 1;
    return ok ? 0 : -1;
}

/* Wait for fd as OpenSSL asked (err: SSL_ERROR_WANT_READ/WRITE) until the
 * deadline.  0, or -1 on timeout. */
static int wait_io(int fd, int err, long long deadline)
{
    struct pollfd pfd = {fd, err == SSL_ERROR_WANT_WRITE ? POLLOUT : POLLIN, 0};
    for (;;) {
        int left = ms_left(deadline);
        if (left == 0)
            return -1;
        int r = poll(&pfd, 1, left);
        if (r > 0)
            return 0;
        if (r < 0 && errno != EINTR)
            return -1;
    }
}

static void make_info(struct smtp_tls_conn *s)
{
    long vr = SSL_get_verify_result(s->ssl);
    X509 *peer = SSL_get0_peer_certificate(s->ssl);
    const char *why = !peer ? "no certificate" : X509_verify_cert_error_string(vr);
    s->info = xasprintf("%s cipher %s, certificate %s%s%s", SSL_get_version(s->ssl),
                        SSL_get_cipher_name(s->ssl),
                        peer && vr == X509_V_OK ? "verified" : "not verified: ",
                        peer && vr == X509_V_OK ? "" : why,
                        SSL_session_reused(s->ssl) ? ", resumed" : "");
}

/* Why the handshake failed, for the status: the certificate's problem when
 * verification failed, else OpenSSL's error. */
static char *fail_text(SSL *ssl, int err)
{
    long vr = SSL_get_verify_result(ssl);
    if (SSL_get_verify_mode(ssl) & SSL_VERIFY_PEER && vr != X509_V_OK) {
        ERR_clear_error();
        return xasprintf("certificate verification failed: %s",
                         X509_verify_cert_error_string(vr));
    }
    char *e = ssl_err_text(err == SSL_ERROR_SYSCALL || err == SSL_ERROR_ZERO_RETURN
                               ? "the server closed the connection" : "protocol error");
    char *m = xasprintf("handshake failed: %s", e);
    free(e);
    return m;
}

struct smtp_tls_conn *smtp_tls_start(struct smtp_tls *t, int fd, const struct smtp_tls_policy *p,
                                     const char *host, long secs, char **why)
{
    SSL_CTX *x = ctx_for(t, p, why);
    if (!x)
        return NULL;
    ERR_clear_error();
    SSL *ssl = SSL_new(x);
    const char *name = p->relay && p->name ? p->name : host;
    if (!ssl || SSL_set_fd(ssl, fd) != 1 || set_peer(ssl, name) < 0) {
        *why = ssl_err_text("cannot set up TLS");
        SSL_free(ssl);
        return NULL;
    }
    if (p->level == SMTP_TLS_REQUIRE)
        SSL_set_verify(ssl, SSL_VERIFY_PEER, NULL);
    /* sessions are kept per next hop; the name outlives this batch's policy
     * (a TLS 1.3 ticket may come with a later read of a cached connection) */
    char *sess_name = p->relay && p->name ? sess_key(p) : NULL;
    SSL_set_app_data(ssl, sess_name);
    SSL_SESSION *old = find_session(t, sess_name);
    if (old)
        SSL_set_session(ssl, old);
    long long deadline = now_ms() + secs * 1000;
    for (;;) {
        int r = SSL_connect(ssl);
        if (r == 1)
            break;
        int err = SSL_get_error(ssl, r);
        if ((err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) &&
            wait_io(fd, err, deadline) == 0)
            continue;
        *why = err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE
                   ? xasprintf("handshake timed out after %lds", secs)
                   : fail_text(ssl, err);
        SSL_free(ssl);
        free(sess_name);
        return NULL;
    }
    struct smtp_tls_conn *s = xcalloc(1, sizeof *s);
    s->ssl = ssl;
    s->sess_name = sess_name;
    make_info(s);
    return s;
}

/* -1 with errno for an SSL_read/SSL_write result r that is not data. */
static ssize_t io_result(struct smtp_tls_conn *s, int r, int *want_write)
{
    int err = SSL_get_error(s->ssl, r);
    *want_write = err == SSL_ERROR_WANT_WRITE;
    if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
        errno = EAGAIN;
        return -1;
    }
    if (err == SSL_ERROR_ZERO_RETURN)
        return 0;
    ERR_clear_error();
    errno = EIO;
    return -1;
}

ssize_t smtp_tls_read(struct smtp_tls_conn *s, void *p, size_t n, int *want_write)
{
    size_t got = 0;
    ERR_clear_error();
    int r = SSL_read_ex(s->ssl, p, n, &got);
    if (r == 1)
        return (ssize_t)got;
    return io_result(s, r, want_write);
}

ssize_t smtp_tls_write(struct smtp_tls_conn *s, const void *p, size_t n, int *want_write)
{
    size_t put = 0;
    ERR_clear_error();
    int r = SSL_write_ex(s->ssl, p, n, &put);
    if (r == 1)
        return (ssize_t)put;
    ssize_t v = io_result(s, r, want_write);
    if (v == 0) { /* the peer's close_notify while writing */
        errno = EPIPE;
        return -1;
    }
    return v;
}

const char *smtp_tls_info(const struct smtp_tls_conn *s)
{
    return s->info;
}

void smtp_tls_end(struct smtp_tls_conn *s)
{
    if (!s)
        return;
    SSL_shutdown(s->ssl); /* one try: the socket is non-blocking, we close next */
    ERR_clear_error();
    SSL_free(s->ssl);
    free(s->info);
    free(s->sess_name);
    free(s);
}
