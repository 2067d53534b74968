/* smtp_conn.c - one connection to an SMTP server: connect, greeting, EHLO
 * (HELO if refused), commands (pipelined groups), replies, QUIT.
 * Runs unprivileged (see smtp_conn.h). */
#include "compat.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "smtp_conn.h"
#include "util.h"

long smtp_tmo(const struct smtp_conn *k, long rfc)
{
    long t = k->c->timeout;
    return t > 0 && t < 300 && t < rfc ? t : rfc;
}

void smtp_conn_fail(struct smtp_conn *k, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *m = xvasprintf(fmt, ap);
    va_end(ap);
    free(k->err);
    k->err = m;
    if (k->fd >= 0) {
        close(k->fd);
        k->fd = -1;
    }
    if (k->verbose)
        fprintf(stderr, "%s: %s\n", k->addr, m);
}

int smtp_send_bytes(struct smtp_conn *k, const char *p, size_t n, long secs)
{
    long long deadline = now_ms() + secs * 1000;
    while (n) {
        ssize_t w = send(k->fd, p, n, MSG_NOSIGNAL);
        if (w > 0) {
            p += w;
            n -= (size_t)w;
            continue;
        }
        if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
            smtp_conn_fail(k, "4.4.2 %s: write error: %s", k->relay, strerror(errno));
            return -1;
        }
        struct pollfd pfd = {k->fd, POLLOUT, 0};
        int left = ms_left(deadline);
        if (left == 0 || (poll(&pfd, 1, left) == 0 && ms_left(deadline) == 0)) {
            smtp_conn_fail(k, "4.4.2 %s: timed out sending to the server", k->relay);
            return -1;
        }
    }
    return 0;
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
        struct pollfd pfd = {k->fd, POLLIN, 0};
        int left = ms_left(deadline);
        int pr = left ? poll(&pfd, 1, left) : 0;
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr <= 0) {
            smtp_conn_fail(k, "4.4.2 %s: timed out waiting for the server's reply", k->relay);
            return -1;
        }
        char tmp[4096];
        ssize_t r = recv(k->fd, tmp, sizeof tmp, 0);
        if (r < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (r <= 0) {
            smtp_conn_fail(k, "4.4.2 %s: lost connection%s%s", k->relay, r < 0 ? ": " : "",
                      r < 0 ? strerror(errno) : " while waiting for a reply");
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
        return -1;
    }
    long long deadline = now_ms() + secs * 1000;
    struct pollfd pfd = {k->fd, POLLOUT, 0};
    int pr;
    while ((pr = poll(&pfd, 1, ms_left(deadline))) < 0 && errno == EINTR)
        ;
    if (pr <= 0) {
        smtp_conn_fail(k, "4.4.1 %s: connect timed out after %lds", k->relay, secs);
        return -1;
    }
    int err = 0;
    socklen_t el = sizeof err;
    if (getsockopt(k->fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0)
        err = errno;
    if (err) {
        smtp_conn_fail(k, "4.4.1 %s: connect: %s", k->relay, strerror(err));
        return -1;
    }
    return 0;
}

static void parse_ehlo(struct smtp_conn *k, const struct smtp_reply *r)
{
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
        else if (strncasecmp(l, "SIZE", 4) == 0 && (l[4] == '\0' || l[4] == ' ')) {
            unsigned long v;
            k->ext_size = 1;
            if (l[4] == ' ' && parse_ulong(l + 5, &v) == 0)
                k->size_limit = (long long)v;
        }
    }
}

/* Greeting and EHLO (HELO if EHLO is refused).  0 or -1 (k->err). */
static int conn_hello(struct smtp_conn *k)
{
    struct smtp_reply r;
    smtp_reply_init(&r);
    int ok = -1;
    char *cmd = NULL;
    if (smtp_read_reply(k, &r, smtp_tmo(k, SMTP_TMO_GREETING)) < 0)
        goto out;
    if (r.code / 100 != 2) {
        char *st = smtp_reply_status(&r);
        smtp_conn_fail(k, "4.4.1 %s: greeting: %s", k->relay, st);
        free(st);
        goto out;
    }
    cmd = xasprintf("EHLO %s", k->c->hostname);
    if (smtp_send_cmd(k, cmd, smtp_tmo(k, SMTP_TMO_MAIL)) < 0 || smtp_read_reply(k, &r, smtp_tmo(k, SMTP_TMO_MAIL)) < 0)
        goto out;
    if (r.code / 100 == 2) {
        parse_ehlo(k, &r);
        ok = 0;
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

void smtp_conn_quit(struct smtp_conn *k)
{
    if (k->fd < 0)
        return;
    struct smtp_reply r;
    smtp_reply_init(&r);
    if (smtp_send_cmd(k, "QUIT", SMTP_TMO_QUIT) == 0)
        smtp_read_reply(k, &r, SMTP_TMO_QUIT); /* the answer changes nothing */
    smtp_reply_free(&r);
    if (k->fd >= 0) {
        close(k->fd);
        k->fd = -1;
    }
    if (k->verbose)
        fprintf(stderr, "%s CLOSE\n", k->addr);
}

void smtp_conn_free(struct smtp_conn *k)
{
    if (k->fd >= 0)
        close(k->fd);
    free(k->host);
    free(k->relay);
    free(k->err);
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
    if (tcp_connect(k, &k->ss) < 0)
        return -1;
    return conn_hello(k);
}
