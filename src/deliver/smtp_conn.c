/* smtp_conn.c - one connection to an SMTP server: connect, greeting, EHLO
 * (HELO if refused), commands (pipelined groups), replies, QUIT.
 * Runs unprivileged (see smtp_conn.h). */
#include "compat.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "smtp_conn.h"
#include "smtp_tls.h"
#include "util.h"

long smtp_tmo(const struct smtp_conn *k, long rfc)
{
    long t = k->c->timeout;
    return t > 0 && t < 300 && t < rfc ? t : rfc;
}

/* Close the socket (and its TLS, close_notify sent without waiting). */
static void conn_close(struct smtp_conn *k)
{
    smtp_tls_end(k->tls);
    k->tls = NULL;
    if (k->fd >= 0) {
        close(k->fd);
        k->fd = -1;
    }
}

void smtp_conn_fail(struct smtp_conn *k, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *m = xvasprintf(fmt, ap);
    va_end(ap);
    free(k->err);
    k->err = m;
    conn_close(k);
    if (k->verbose)
        fprintf(stderr, "%s: %s\n", k->addr, m);
}

/* Wait until fd is ready for events or the deadline passes.  0 when ready
 * (or in error: the next read or write says which), -1 on timeout. */
static int wait_fd(int fd, short events, long long deadline)
{
    struct pollfd pfd = {fd, events, 0};
    for (;;) {
        int left = ms_left(deadline);
        int r = left ? poll(&pfd, 1, left) : 0;
        if (r > 0)
            return 0;
        if (r == 0 || errno != EINTR)
            return -1;
    }
}

/* One write through TLS or to the socket: bytes written, or -1 with errno
 * (EAGAIN: wait for POLLOUT, or POLLIN when *in for TLS). */
static ssize_t conn_write(struct smtp_conn *k, const char *p, size_t n, int *in)
{
    int ww = 1;
    *in = 0;
    if (!k->tls)
        return send(k->fd, p, n, MSG_NOSIGNAL);
    ssize_t w = smtp_tls_write(k->tls, p, n, &ww);
    *in = !ww;
    return w;
}

int smtp_body_sink(void *arg, const char *p, size_t n)
{
    struct smtp_conn *k = arg;
    if (smtp_send_bytes(k, p, n, smtp_tmo(k, SMTP_TMO_BLOCK)) < 0) {
        errno = EPIPE;
        return -1;
    }
    return 0;
}

int smtp_send_bytes(struct smtp_conn *k, const char *p, size_t n, long secs)
{
    long long deadline = now_ms() + secs * 1000;
    while (n) {
        int in;
        ssize_t w = conn_write(k, p, n, &in);
        if (w > 0) {
            p += w;
            n -= (size_t)w;
            continue;
        }
        if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
            smtp_conn_fail(k, "4.4.2 %s: write error: %s", k->relay,
                           k->tls && errno == EIO ? "TLS error" : strerror(errno));
            return -1;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (wait_fd(k->fd, in ? POLLIN : POLLOUT, deadline) < 0) {
            smtp_conn_fail(k, "4.4.2 %s: timed out sending to the server", k->relay);
            return -1;
        }
    }
    return 0;
}

/* Read what the server sent, waiting until the deadline: > 0 bytes, 0 when
 * it closed, -1 with errno (ETIMEDOUT, EIO for a TLS error, or recv's). */
static ssize_t conn_read(struct smtp_conn *k, char *p, size_t n, long long deadline)
{
    for (;;) {
        int ww = 0;
        ssize_t r = k->tls ? smtp_tls_read(k->tls, p, n, &ww) : recv(k->fd, p, n, 0);
        if (r >= 0)
            return r;
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            return -1;
        if (wait_fd(k->fd, ww ? POLLOUT : POLLIN, deadline) < 0) {
            errno = ETIMEDOUT;
            return -1;
        }
    }
}

int smtp_send_secret(struct smtp_conn *k, const char *cmd, const char *shown, long secs)
{
    if (k->verbose)
        fprintf(stderr, "%s << %s\n", k->addr, shown);
    struct buf b;
    buf_init(&b);
    buf_addf(&b, "%s\r\n", cmd);
    int r = smtp_send_bytes(k, b.s, b.len, secs);
    explicit_bzero(b.s, b.len);
    buf_free(&b);
    return r;
}

int smtp_send_cmd(struct smtp_conn *k, const char *cmd, long secs)
{
    if (k->verbose)
        fprintf(stderr, "%s << %s\n", k->addr, cmd);
    if (k->corked) { /* one write for the whole group (RFC 2920) */
        buf_addf(&k->out, "%s\r\n", cmd);
        return 0;
    }
    struct buf b;
    buf_init(&b);
    buf_addf(&b, "%s\r\n", cmd);
    int r = smtp_send_bytes(k, b.s, b.len, secs);
    buf_free(&b);
    return r;
}

/* Send the pipelined group collected since smtp_cork(). */
void smtp_cork(struct smtp_conn *k)
{
    buf_reset(&k->out);
    k->corked = 1;
}

int smtp_uncork(struct smtp_conn *k, long secs)
{
    k->corked = 0;
    int r = k->out.len ? smtp_send_bytes(k, k->out.s, k->out.len, secs) : 0;
    buf_reset(&k->out);
    return r;
}

/* One line (without CRLF) into line; -1 on timeout, EOF or an overlong line
 * (longer than SMTPC_LINE_MAX however it arrived: in one read or in many). */
static int read_line(struct smtp_conn *k, struct buf *line, long long deadline)
{
    for (;;) {
        char *nl = memchr(k->in.s, '\n', k->in.len);
        if (nl && nl - k->in.s > SMTPC_LINE_MAX + 1)
            nl = NULL; /* too long: refused below */
        if (nl) {
            size_t n = (size_t)(nl - k->in.s);
            buf_reset(line);
            buf_add(line, k->in.s, n && nl[-1] == '\r' ? n - 1 : n);
            memmove(k->in.s, nl + 1, k->in.len - n - 1);
            buf_truncate(&k->in, k->in.len - n - 1);
            return 0;
        }
        if (k->in.len > SMTPC_LINE_MAX + 1) { /* + the CR of a CRLF not complete yet */
            smtp_conn_fail(k, "4.4.2 %s: reply line longer than %d bytes", k->relay, SMTPC_LINE_MAX);
            return -1;
        }
        char tmp[4096];
        ssize_t r = conn_read(k, tmp, sizeof tmp, deadline);
        if (r < 0 && errno == ETIMEDOUT) {
            smtp_conn_fail(k, "4.4.2 %s: timed out waiting for the server's reply", k->relay);
            return -1;
        }
        if (r <= 0) {
            smtp_conn_fail(k, "4.4.2 %s: lost connection%s%s", k->relay, r < 0 ? ": " : "",
                           r == 0 ? " while waiting for a reply"
                           : k->tls && errno == EIO ? "TLS error" : strerror(errno));
            return -1;
        }
        buf_add(&k->in, tmp, (size_t)r);
    }
}

/* A whole reply.  0, or -1 (connection gone, k->err set). */
int smtp_read_reply(struct smtp_conn *k, struct smtp_reply *r, long secs)
{
    long long deadline = now_ms() + secs * 1000;
    struct buf line;
    buf_init(&line);
    smtp_reply_free(r);
    int st;
    do {
        if (read_line(k, &line, deadline) < 0) {
            buf_free(&line);
            return -1;
        }
        const char *why;
        st = smtp_reply_line(r, line.s, line.len, &why);
        if (k->verbose) {
            char *t = str_sanitize(line.s, line.len);
            fprintf(stderr, "%s >> %s\n", k->addr, t);
            free(t);
        }
        if (st < 0) {
            smtp_conn_fail(k, "4.4.2 %s: protocol error: %s", k->relay, why);
            buf_free(&line);
            return -1;
        }
    } while (st > 0);
    buf_free(&line);
    return 0;
}

static void addr_text(const struct sockaddr_storage *ss, char *out, size_t sz, int *port)
{
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;
        inet_ntop(AF_INET, &s4->sin_addr, out, (socklen_t)sz);
        *port = ntohs(s4->sin_port);
    } else {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;
        inet_ntop(AF_INET6, &s6->sin6_addr, out, (socklen_t)sz);
        *port = ntohs(s6->sin6_port);
    }
}

/* Non-blocking connect bounded by connect-timeout=.  0 or -1 (k->err). */
static int tcp_connect(struct smtp_conn *k, const struct sockaddr_storage *ss)
{
    socklen_t sl = ss->ss_family == AF_INET ? sizeof(struct sockaddr_in)
                                            : sizeof(struct sockaddr_in6);
    long secs = k->c->connect_timeout > 0 ? k->c->connect_timeout : 30;
    k->fd = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (k->fd < 0) {
        smtp_conn_fail(k, "4.4.1 %s: socket: %s", k->relay, strerror(errno));
        return -1;
    }
    if (k->verbose)
        fprintf(stderr, "%s OPEN (%s)\n", k->addr, k->relay);
    int one = 1; /* commands are small and answered: Nagle would only add delay */
    setsockopt(k->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(k->fd, (const struct sockaddr *)ss, sl) == 0)
        return 0;
    if (errno != EINPROGRESS) {
        smtp_conn_fail(k, "4.4.1 %s: connect: %s", k->relay, strerror(errno));
        k->connect_failed = 1;
        return -1;
    }
    long long deadline = now_ms() + secs * 1000;
    struct pollfd pfd = {k->fd, POLLOUT, 0};
    int pr;
    while ((pr = poll(&pfd, 1, ms_left(deadline))) < 0 && errno == EINTR)
        ;
    if (pr <= 0) {
        smtp_conn_fail(k, "4.4.1 %s: connect timed out after %lds", k->relay, secs);
        k->connect_failed = 1;
        return -1;
    }
    int err = 0;
    socklen_t el = sizeof err;
    if (getsockopt(k->fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0)
        err = errno;
    if (err) {
        smtp_conn_fail(k, "4.4.1 %s: connect: %s", k->relay, strerror(err));
        k->connect_failed = 1;
        return -1;
    }
    return 0;
}

/* AUTH's mechanisms ("AUTH PLAIN LOGIN", or the old "AUTH=PLAIN LOGIN"). */
static void parse_auth(struct smtp_conn *k, const char *mechs)
{
    k->ext_auth = 1;
    char *copy = xstrdup(mechs);
    for (char *save = NULL, *w = strtok_r(copy, " ", &save); w; w = strtok_r(NULL, " ", &save)) {
        k->auth_plain |= strcasecmp(w, "PLAIN") == 0;
        k->auth_login |= strcasecmp(w, "LOGIN") == 0;
    }
    free(copy);
}

/* The extensions of an EHLO reply; what an earlier EHLO said is forgotten
 * (after STARTTLS, RFC 3207 4.2). */
static void parse_ehlo(struct smtp_conn *k, const struct smtp_reply *r)
{
    k->ext_pipelining = k->ext_8bitmime = k->ext_smtputf8 = k->ext_dsn = k->ext_size = 0;
    k->ext_starttls = k->ext_auth = k->auth_plain = k->auth_login = 0;
    k->size_limit = 0;
    for (size_t i = 1; i < r->lines.n; i++) {
        const char *l = r->lines.v[i];
        if (strcasecmp(l, "PIPELINING") == 0)
            k->ext_pipelining = 1;
        else if (strcasecmp(l, "8BITMIME") == 0)
            k->ext_8bitmime = 1;
        else if (strcasecmp(l, "SMTPUTF8") == 0)
            k->ext_smtputf8 = 1;
        else if (strcasecmp(l, "DSN") == 0)
            k->ext_dsn = 1;
        else if (strcasecmp(l, "STARTTLS") == 0)
            k->ext_starttls = 1;
        else if (strncasecmp(l, "AUTH", 4) == 0 && (l[4] == ' ' || l[4] == '='))
            parse_auth(k, l + 5);
        else if (strncasecmp(l, "SIZE", 4) == 0 && (l[4] == '\0' || l[4] == ' ')) {
            unsigned long v;
            k->ext_size = 1;
            if (l[4] == ' ' && parse_ulong(l + 5, &v) == 0)
                k->size_limit = (long long)v;
        }
    }
}

int smtp_conn_greeting(struct smtp_conn *k)
{
    struct smtp_reply r;
    smtp_reply_init(&r);
    int ok = -1;
    if (smtp_read_reply(k, &r, smtp_tmo(k, SMTP_TMO_GREETING)) < 0)
        goto out;
    if (r.code / 100 != 2) {
        char *st = smtp_reply_status(&r);
        smtp_conn_fail(k, "4.4.1 %s: greeting: %s", k->relay, st);
        free(st);
        goto out;
    }
    ok = 0;
out:
    smtp_reply_free(&r);
    return ok;
}

/* EHLO (HELO if EHLO is refused and helo_ok).  0 or -1 (k->err). */
static int conn_hello(struct smtp_conn *k, int helo_ok)
{
    struct smtp_reply r;
    smtp_reply_init(&r);
    int ok = -1;
    char *cmd = xasprintf("EHLO %s", k->c->hostname);
    if (smtp_send_cmd(k, cmd, smtp_tmo(k, SMTP_TMO_MAIL)) < 0 || smtp_read_reply(k, &r, smtp_tmo(k, SMTP_TMO_MAIL)) < 0)
        goto out;
    if (r.code / 100 == 2) {
        parse_ehlo(k, &r);
        ok = 0;
        goto out;
    }
    if (!helo_ok) {
        char *st = smtp_reply_status(&r);
        smtp_conn_fail(k, "4.4.1 %s: EHLO refused after STARTTLS: %s", k->relay, st);
        free(st);
        goto out;
    }
    free(cmd);
    cmd = xasprintf("HELO %s", k->c->hostname);
    if (smtp_send_cmd(k, cmd, smtp_tmo(k, SMTP_TMO_MAIL)) < 0 || smtp_read_reply(k, &r, smtp_tmo(k, SMTP_TMO_MAIL)) < 0)
        goto out;
    if (r.code / 100 == 2) {
        ok = 0;
        goto out;
    }
    char *st = smtp_reply_status(&r);
    smtp_conn_fail(k, "4.4.1 %s: HELO refused: %s", k->relay, st);
    free(st);
out:
    free(cmd);
    smtp_reply_free(&r);
    return ok;
}

/* The handshake on the open socket, logged.  0, or -1 with the connection
 * closed and k->err "4.7.5 ..." (why in *why too when asked). */
static int conn_handshake(struct smtp_conn *k, const struct smtp_tls_policy *p)
{
    char *why = NULL;
    k->tls = smtp_tls_start(k->tlsctx, k->fd, p, k->host, smtp_tmo(k, SMTP_TMO_TLS), &why);
    if (!k->tls) {
        int req = p->level == SMTP_TLS_REQUIRE && p->origin;
        smtp_conn_fail(k, "4.7.5 %s: TLS %s%s%s%s", k->relay, why,
                       req ? " (TLS required by " : "", req ? p->origin : "", req ? ")" : "");
        free(why);
        return -1;
    }
    log_info("%s: TLS %s", k->relay, smtp_tls_info(k->tls));
    if (k->verbose)
        fprintf(stderr, "%s TLS %s\n", k->addr, smtp_tls_info(k->tls));
    return 0;
}

/* QUIT, then k->err from fmt (the connection is of no use to us). */
static void quit_fail(struct smtp_conn *k, const char *fmt, ...) PO_PRINTF(2, 3);
static void quit_fail(struct smtp_conn *k, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *m = xvasprintf(fmt, ap);
    va_end(ap);
    smtp_conn_quit(k);
    smtp_conn_fail(k, "%s", m);
    free(m);
}

/* STARTTLS and EHLO again.  0 (TLS on; or off, when the server refused it and
 * TLS may be skipped), 1 (an opportunistic handshake failed: the connection
 * is closed, try once more in plaintext), -1 (failed, k->err). */
static int conn_starttls(struct smtp_conn *k, const struct smtp_tls_policy *p)
{
    int req = p->level == SMTP_TLS_REQUIRE;
    if (!k->ext_starttls) {
        if (!req)
            return 0;
        quit_fail(k, "4.7.4 %s: TLS is required (%s), but the server does not "
                  "offer STARTTLS; nothing was sent in plaintext", k->relay,
                  p->origin ? p->origin : "relay-tls");
        return -1;
    }
    struct smtp_reply r;
    smtp_reply_init(&r);
    if (smtp_send_cmd(k, "STARTTLS", smtp_tmo(k, SMTP_TMO_MAIL)) < 0 ||
        smtp_read_reply(k, &r, smtp_tmo(k, SMTP_TMO_MAIL)) < 0) {
        smtp_reply_free(&r);
        return -1;
    }
    int code = r.code;
    char *st = smtp_reply_status(&r);
    smtp_reply_free(&r);
    if (code != 220) {
        if (req) /* else go on in plaintext: the session is as before (RFC 3207 4) */
            quit_fail(k, "4.7.4 %s: TLS is required (%s), but STARTTLS was refused: %s",
                      k->relay, p->origin ? p->origin : "relay-tls", st);
        free(st);
        return req ? -1 : 0;
    }
    free(st);
    buf_reset(&k->in); /* anything sent before the handshake is not to be believed */
    if (conn_handshake(k, p) < 0)
        return req ? -1 : 1;
    return conn_hello(k, 0);
}

/* One connection attempt: TLS as the policy says, unless plain.  0, -1, or
 * 1 (retry in plaintext), as conn_starttls. */
static int open_once(struct smtp_conn *k, int plain)
{
    const struct smtp_tls_policy *p = k->tlsctx && !plain ? k->policy : NULL;
    if (p && p->level == SMTP_TLS_NONE) /* tls=none in relay-map= */
        p = NULL;
    if (tcp_connect(k, &k->ss) < 0)
        return -1;
    if (p && p->implicit && conn_handshake(k, p) < 0)
        return -1;
    if (smtp_conn_greeting(k) < 0 || conn_hello(k, 1) < 0)
        return -1; /* after HELO no STARTTLS: conn_starttls decides */
    return p && !p->implicit ? conn_starttls(k, p) : 0;
}

/* QUIT through TLS may meet a peer that has gone: no SIGPIPE for that. */
void smtp_conn_quit(struct smtp_conn *k)
{
    if (k->fd < 0)
        return;
    struct sigaction ign, old;
    memset(&ign, 0, sizeof ign);
    ign.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &ign, &old);
    struct smtp_reply r;
    smtp_reply_init(&r);
    if (smtp_send_cmd(k, "QUIT", SMTP_TMO_QUIT) == 0)
        smtp_read_reply(k, &r, SMTP_TMO_QUIT); /* the answer changes nothing */
    smtp_reply_free(&r);
    conn_close(k);
    sigaction(SIGPIPE, &old, NULL);
    if (k->verbose)
        fprintf(stderr, "%s CLOSE\n", k->addr);
}

void smtp_conn_free(struct smtp_conn *k)
{
    struct sigaction ign, old;
    memset(&ign, 0, sizeof ign);
    ign.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &ign, &old); /* close_notify to a peer that has gone */
    conn_close(k);
    sigaction(SIGPIPE, &old, NULL);
    free(k->host);
    free(k->relay);
    free(k->err);
    free(k->pkey);
    buf_free(&k->in);
    buf_free(&k->out);
    free(k);
}

struct smtp_conn *smtp_conn_new(const struct config *c, int verbose,
                                const struct sockaddr_storage *ss)
{
    struct smtp_conn *k = xcalloc(1, sizeof *k);
    k->fd = -1;
    k->c = c;
    k->verbose = verbose;
    k->ss = *ss;
    buf_init(&k->in);
    buf_init(&k->out);
    return k;
}

void smtp_conn_name(struct smtp_conn *k, const char *host)
{
    int port;
    free(k->host);
    free(k->relay);
    k->host = xstrdup(host);
    addr_text(&k->ss, k->addr, sizeof k->addr, &port);
    k->relay = host[0] == '[' ? xasprintf("%s:%d", host, port)
                              : xasprintf("%s[%s]:%d", host, k->addr, port);
}

int smtp_conn_open(struct smtp_conn *k)
{
    int r = open_once(k, 0);
    if (r == 1) { /* Postfix's way: a broken TLS setup must not stop all mail */
        log_notice("%s; trying once more without TLS (opportunistic TLS)", k->err);
        buf_reset(&k->in);
        r = open_once(k, 1);
    }
    if (r >= 0) { /* open: no earlier attempt's error stays behind */
        free(k->err);
        k->err = NULL;
    }
    return r < 0 ? -1 : 0;
}

void smtp_conn_extensions(struct smtp_conn *k, const struct smtp_reply *r)
{
    parse_ehlo(k, r);
}
