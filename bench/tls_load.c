/* bench/tls_load.c - SMTP load over STARTTLS: one new connection per message.
 *
 *   cc -O2 -o tls_load bench/tls_load.c -lssl -lcrypto
 *   tls_load -p PORT [-a 127.0.0.1] [-n 2000] [-c 10] [-s 2048] [-r]
 *            [-t rcpt@domain] [-V 1.2|1.3] [-i] [-I SECONDS]
 *
 * -c clients (processes) share -n messages; each message: connect, greeting,
 * EHLO, STARTTLS, handshake, EHLO, MAIL, RCPT, DATA with -s bytes, QUIT.
 * -r: each client offers its previous TLS session (resumption).  -V: the
 * highest TLS version offered (default: the library's, 1.3).  -i: implicit
 * TLS (smtps) instead of STARTTLS.  -I: instead of messages, open -c
 * sessions up to the second EHLO and keep them idle for -I seconds (for a
 * PSS measurement), then QUIT.
 * Prints one line: messages, seconds, messages/s, resumed handshakes, failures.
 * smtp-source (Postfix's load generator) has no TLS, hence this client.  The
 * certificate is not verified: both servers under test use the same one. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

struct conn {
    int fd;
    SSL *ssl;
    char buf[8192];
    size_t len;
};

static const char *addr = "127.0.0.1", *rcpt = "pobench@bench.example";
static int port, size = 2048, resume, implicit, idle_secs;
static long maxver;

static int c_read(struct conn *c, char *p, size_t n)
{
    if (c->ssl)
        return SSL_read(c->ssl, p, (int)n);
    return (int)read(c->fd, p, n);
}

static int c_write(struct conn *c, const char *p, size_t n)
{
    while (n) {
        int w = c->ssl ? SSL_write(c->ssl, p, (int)n) : (int)write(c->fd, p, n);
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* One reply; returns its code, or -1. */
static int reply(struct conn *c)
{
    for (;;) {
        char *nl;
        while ((nl = memchr(c->buf, '\n', c->len))) {
            size_t ln = (size_t)(nl - c->buf) + 1;
            int last = ln >= 4 && c->buf[3] == ' ';
            int code = atoi(c->buf);
            memmove(c->buf, c->buf + ln, c->len - ln);
            c->len -= ln;
            if (last)
                return code;
        }
        if (c->len == sizeof c->buf)
            return -1;
        int r = c_read(c, c->buf + c->len, sizeof c->buf - c->len);
        if (r <= 0)
            return -1;
        c->len += (size_t)r;
    }
}

static int cmd(struct conn *c, const char *line, int want)
{
    if (c_write(c, line, strlen(line)) < 0)
        return -1;
    return reply(c) == want ? 0 : -1;
}

static int dial(void)
{
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((unsigned short)port) };
    inet_pton(AF_INET, addr, &sa.sin_addr);
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Connect and get to the EHLO after TLS.  0 or -1. */
static int open_tls(struct conn *c, SSL_CTX *ctx, SSL_SESSION **sess, int *resumed)
{
    memset(c, 0, sizeof *c);
    if ((c->fd = dial()) < 0)
        return -1;
    if (!implicit && (reply(c) != 220 || cmd(c, "EHLO load.example\r\n", 250) < 0 ||
                      cmd(c, "STARTTLS\r\n", 220) < 0))
        return -1;
    c->ssl = SSL_new(ctx);
    SSL_set_fd(c->ssl, c->fd);
    if (resume && *sess)
        SSL_set_session(c->ssl, *sess);
    if (SSL_connect(c->ssl) != 1)
        return -1;
    *resumed += SSL_session_reused(c->ssl);
    if (implicit && reply(c) != 220)
        return -1;
    return cmd(c, "EHLO load.example\r\n", 250);
}

static void close_conn(struct conn *c, SSL_SESSION **sess)
{
    if (c->ssl) {
        if (resume) {
            SSL_SESSION_free(*sess);
            *sess = SSL_get1_session(c->ssl); /* TLS 1.3: the ticket came with the 250s */
        }
        SSL_shutdown(c->ssl);
        SSL_free(c->ssl);
    }
    if (c->fd >= 0)
        close(c->fd);
}

static int one_message(SSL_CTX *ctx, const char *body, SSL_SESSION **sess, int *resumed)
{
    struct conn c;
    char line[512];
    int rc = open_tls(&c, ctx, sess, resumed);
    snprintf(line, sizeof line, "RCPT TO:<%s>\r\n", rcpt);
    if (rc == 0)
        rc = cmd(&c, "MAIL FROM:<load@client.example>\r\n", 250) || cmd(&c, line, 250) ||
             cmd(&c, "DATA\r\n", 354) || c_write(&c, body, strlen(body)) || reply(&c) != 250 ||
             cmd(&c, "QUIT\r\n", 221);
    close_conn(&c, sess);
    return rc ? -1 : 0;
}

static SSL_CTX *client_ctx(void)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    if (maxver)
        SSL_CTX_set_max_proto_version(ctx, maxver);
    /* the client keeps its session itself (SSL_get1_session) */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    return ctx;
}

/* A client process: n messages, then "ok resumed" on fd. */
static void client(int n, int out)
{
    SSL_CTX *ctx = client_ctx();
    SSL_SESSION *sess = NULL;
    char *body = malloc((size_t)size + 256);
    int len = snprintf(body, 256, "Subject: tls load\r\n\r\n");
    while (len < size) {
        int k = size - len < 72 ? size - len : 72;
        memset(body + len, 'x', (size_t)k);
        len += k;
        memcpy(body + len, "\r\n", 2);
        len += 2;
    }
    memcpy(body + len, ".\r\n", 4);
    int ok = 0, resumed = 0;
    for (int i = 0; i < n; i++)
        ok += one_message(ctx, body, &sess, &resumed) == 0;
    dprintf(out, "%d %d\n", ok, resumed);
    _exit(0);
}

/* A client process holding one idle TLS session for idle_secs. */
static void idler(int out)
{
    SSL_CTX *ctx = client_ctx();
    SSL_SESSION *sess = NULL;
    struct conn c;
    int resumed = 0;
    int ok = open_tls(&c, ctx, &sess, &resumed) == 0;
    dprintf(out, "%d 0\n", ok);
    close(out);
    sleep((unsigned)idle_secs);
    if (ok)
        cmd(&c, "QUIT\r\n", 221);
    _exit(0);
}

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    int n = 2000, clients = 10, o;
    while ((o = getopt(argc, argv, "a:p:n:c:s:rt:V:iI:")) != -1) {
        switch (o) {
        case 'a': addr = optarg; break;
        case 'p': port = atoi(optarg); break;
        case 'n': n = atoi(optarg); break;
        case 'c': clients = atoi(optarg); break;
        case 's': size = atoi(optarg); break;
        case 'r': resume = 1; break;
        case 't': rcpt = optarg; break;
        case 'V': maxver = !strcmp(optarg, "1.2") ? TLS1_2_VERSION : TLS1_3_VERSION; break;
        case 'i': implicit = 1; break;
        case 'I': idle_secs = atoi(optarg); break;
        default:
            fprintf(stderr, "usage: tls_load -p PORT [-a ADDR] [-n MSGS] [-c CLIENTS] [-s BYTES] "
                            "[-r] [-t RCPT] [-V 1.2|1.3] [-i] [-I SECONDS]\n");
            return 64;
        }
    }
    if (!port || clients < 1 || n < clients) {
        fprintf(stderr, "tls_load: -p PORT is needed, and -n at least -c\n");
        return 64;
    }
    int p[2];
    if (pipe(p) < 0)
        return 71;
    double t0 = now();
    for (int i = 0; i < clients; i++) {
        if (fork() == 0) {
            close(p[0]);
            if (idle_secs)
                idler(p[1]);
            client(n / clients + (i < n % clients), p[1]);
        }
    }
    close(p[1]);
    FILE *f = fdopen(p[0], "r");
    int ok = 0, resumed = 0, a, b;
    for (int i = 0; i < clients && fscanf(f, "%d %d", &a, &b) == 2; i++) {
        ok += a;
        resumed += b;
    }
    if (idle_secs) {
        printf("idle sessions=%d\n", ok);
        fflush(stdout);
    }
    while (wait(NULL) > 0)
        ;
    double dt = now() - t0;
    if (!idle_secs)
        printf("messages=%d seconds=%.2f rate=%.1f/s resumed=%d failed=%d\n", ok, dt, ok / dt,
               resumed, n - ok);
    return ok == (idle_secs ? clients : n) ? 0 : 1;
}
