/* smtpc.c - the SMTP client (RFC 5321 with PIPELINING, SIZE, 8BITMIME,
 * SMTPUTF8): connection, reply parsing, transaction, message body.
 * Runs unprivileged (the queue runner forks and drops before calling it). */
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
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "msgout.h"
#include "mx.h"
#include "smtpc.h"
#include "util.h"

/* RFC 5321 4.5.3.2 client timeouts, in seconds */
#define TMO_GREETING 300
#define TMO_MAIL 300
#define TMO_RCPT 300
#define TMO_DATA 120
#define TMO_BLOCK 180
#define TMO_DOT 600
#define TMO_QUIT 10

/* ---- reply parser ---- */

void smtp_reply_init(struct smtp_reply *r)
{
    r->code = 0;
    r->done = 0;
    sl_init(&r->lines);
}

void smtp_reply_free(struct smtp_reply *r)
{
    sl_free(&r->lines);
    smtp_reply_init(r);
}

int smtp_reply_line(struct smtp_reply *r, const char *line, size_t len, const char **why)
{
    if (r->done) {
        *why = "reply already complete";
        return -1;
    }
    if (len < 3 || line[0] < '2' || line[0] > '5' || line[1] < '0' || line[1] > '5' ||
        line[2] < '0' || line[2] > '9') {
        *why = "reply line does not start with a valid 3-digit code";
        return -1;
    }
    int code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
    if (r->code && code != r->code) {
        *why = "reply code changes inside a multi-line reply";
        return -1;
    }
    if (len > 3 && line[3] != ' ' && line[3] != '-') {
        *why = "reply code not followed by a space or '-'";
        return -1;
    }
    if (r->lines.n >= SMTPC_LINES_MAX) {
        *why = "too many lines in one reply";
        return -1;
    }
    r->code = code;
    sl_add_owned(&r->lines, len > 4 ? str_sanitize(line + 4, len - 4) : xstrdup(""));
    if (len > 3 && line[3] == '-')
        return 1;
    r->done = 1;
    return 0;
}

/* Does s start with an enhanced status code "C.D{1,3}.D{1,3}" of class cls
 * followed by a space or the end?  Returns its length or 0. */
static size_t enh_len(const char *s, int cls)
{
    size_t i = 0;
    if (s[0] != cls || s[1] != '.')
        return 0;
    i = 2;
    for (int part = 0; part < 2; part++) {
        size_t st = i;
        while (s[i] >= '0' && s[i] <= '9' && i - st < 4)
            i++;
        if (i == st || i - st > 3)
            return 0;
        if (part == 0) {
            if (s[i] != '.')
                return 0;
            i++;
        }
    }
    return s[i] == ' ' || s[i] == '\0' ? i : 0;
}

char *smtp_reply_status(const struct smtp_reply *r)
{
    struct buf b;
    buf_init(&b);
    int cls = '0' + r->code / 100;
    const char *first = r->lines.n ? r->lines.v[0] : "";
    size_t el = enh_len(first, cls);
    if (el)
        buf_add(&b, first, el);
    else
        buf_addf(&b, "%c.0.0", cls);
    buf_addf(&b, " %d", r->code);
    for (size_t i = 0; i < r->lines.n; i++) {
        const char *t = r->lines.v[i];
        size_t tl = enh_len(t, cls);
        t += tl;
        while (*t == ' ')
            t++;
        if (!*t)
            continue;
        buf_adds(&b, i && b.len ? "; " : " ");
        buf_adds(&b, t);
        if (b.len > SMTPC_TEXT_MAX) {
            buf_truncate(&b, SMTPC_TEXT_MAX);
            buf_adds(&b, "...");
            break;
        }
    }
    char *st = buf_steal(&b);
    buf_free(&b); /* buf_steal leaves an empty buffer behind */
    return st;
}

/* ---- connection ---- */

struct conn {
    int fd;
    const struct config *c;
    int verbose;
    char *host;     /* name for Remote-MTA (owned) */
    struct sockaddr_storage ss; /* the peer, for reuse from the cache */
    char *relay;    /* host[addr]:port */
    char addr[64];  /* address text for the transcript */
    struct buf in;  /* bytes read and not consumed */
    struct buf out; /* pipelined commands not sent yet */
    int corked;     /* collect commands in out (PIPELINING) */
    int body_started; /* the message text of this transaction has started */
    int ext_pipelining, ext_8bitmime, ext_smtputf8, ext_size, ext_dsn;
    long long size_limit; /* from SIZE n, 0 = none declared */
    char *err;      /* why the connection failed: "4.x.x text", malloc'd */
};

static long tmo(const struct conn *k, long rfc)
{
    long t = k->c->timeout;
    return t > 0 && t < 300 && t < rfc ? t : rfc;
}

static void conn_fail(struct conn *k, const char *fmt, ...) PO_PRINTF(2, 3);
static void conn_fail(struct conn *k, const char *fmt, ...)
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

static int send_bytes(struct conn *k, const char *p, size_t n, long secs)
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
            conn_fail(k, "4.4.2 %s: write error: %s", k->relay, strerror(errno));
            return -1;
        }
        struct pollfd pfd = {k->fd, POLLOUT, 0};
        int left = ms_left(deadline);
        if (left == 0 || (poll(&pfd, 1, left) == 0 && ms_left(deadline) == 0)) {
            conn_fail(k, "4.4.2 %s: timed out sending to the server", k->relay);
            return -1;
        }
    }
    return 0;
}

static int send_cmd(struct conn *k, const char *cmd, long secs)
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
    int r = send_bytes(k, b.s, b.len, secs);
    buf_free(&b);
    return r;
}

/* Send the pipelined group collected since cork(). */
static void cork(struct conn *k)
{
    buf_reset(&k->out);
    k->corked = 1;
}

static int uncork(struct conn *k, long secs)
{
    k->corked = 0;
    int r = k->out.len ? send_bytes(k, k->out.s, k->out.len, secs) : 0;
    buf_reset(&k->out);
    return r;
}

/* One line (without CRLF) into line; -1 on timeout, EOF or an overlong line. */
static int read_line(struct conn *k, struct buf *line, long long deadline)
{
    for (;;) {
        char *nl = memchr(k->in.s, '\n', k->in.len);
        if (nl) {
            size_t n = (size_t)(nl - k->in.s);
            buf_reset(line);
            buf_add(line, k->in.s, n && nl[-1] == '\r' ? n - 1 : n);
            memmove(k->in.s, nl + 1, k->in.len - n - 1);
            buf_truncate(&k->in, k->in.len - n - 1);
            return 0;
        }
        if (k->in.len > SMTPC_LINE_MAX) {
            conn_fail(k, "4.4.2 %s: reply line longer than %d bytes", k->relay, SMTPC_LINE_MAX);
            return -1;
        }
        struct pollfd pfd = {k->fd, POLLIN, 0};
        int left = ms_left(deadline);
        int pr = left ? poll(&pfd, 1, left) : 0;
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr <= 0) {
            conn_fail(k, "4.4.2 %s: timed out waiting for the server's reply", k->relay);
            return -1;
        }
        char tmp[4096];
        ssize_t r = recv(k->fd, tmp, sizeof tmp, 0);
        if (r < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (r <= 0) {
            conn_fail(k, "4.4.2 %s: lost connection%s%s", k->relay, r < 0 ? ": " : "",
                      r < 0 ? strerror(errno) : " while waiting for a reply");
            return -1;
        }
        buf_add(&k->in, tmp, (size_t)r);
    }
}

/* A whole reply.  0, or -1 (connection gone, k->err set). */
static int read_reply(struct conn *k, struct smtp_reply *r, long secs)
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
            conn_fail(k, "4.4.2 %s: protocol error: %s", k->relay, why);
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
static int tcp_connect(struct conn *k, const struct sockaddr_storage *ss)
{
    socklen_t sl = ss->ss_family == AF_INET ? sizeof(struct sockaddr_in)
                                            : sizeof(struct sockaddr_in6);
    long secs = k->c->connect_timeout > 0 ? k->c->connect_timeout : 30;
    k->fd = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (k->fd < 0) {
        conn_fail(k, "4.4.1 %s: socket: %s", k->relay, strerror(errno));
        return -1;
    }
    if (k->verbose)
        fprintf(stderr, "%s OPEN (%s)\n", k->addr, k->relay);
    int one = 1; /* commands are small and answered: Nagle would only add delay */
    setsockopt(k->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(k->fd, (const struct sockaddr *)ss, sl) == 0)
        return 0;
    if (errno != EINPROGRESS) {
        conn_fail(k, "4.4.1 %s: connect: %s", k->relay, strerror(errno));
        return -1;
    }
    long long deadline = now_ms() + secs * 1000;
    struct pollfd pfd = {k->fd, POLLOUT, 0};
    int pr;
    while ((pr = poll(&pfd, 1, ms_left(deadline))) < 0 && errno == EINTR)
        ;
    if (pr <= 0) {
        conn_fail(k, "4.4.1 %s: connect timed out after %lds", k->relay, secs);
        return -1;
    }
    int err = 0;
    socklen_t el = sizeof err;
    if (getsockopt(k->fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0)
        err = errno;
    if (err) {
        conn_fail(k, "4.4.1 %s: connect: %s", k->relay, strerror(err));
        return -1;
    }
    return 0;
}

static void parse_ehlo(struct conn *k, const struct smtp_reply *r)
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
static int conn_hello(struct conn *k)
{
    struct smtp_reply r;
    smtp_reply_init(&r);
    int ok = -1;
    char *cmd = NULL;
    if (read_reply(k, &r, tmo(k, TMO_GREETING)) < 0)
        goto out;
    if (r.code / 100 != 2) {
        char *st = smtp_reply_status(&r);
        conn_fail(k, "4.4.1 %s: greeting: %s", k->relay, st);
        free(st);
        goto out;
    }
    cmd = xasprintf("EHLO %s", k->c->hostname);
    if (send_cmd(k, cmd, tmo(k, TMO_MAIL)) < 0 || read_reply(k, &r, tmo(k, TMO_MAIL)) < 0)
        goto out;
    if (r.code / 100 == 2) {
        parse_ehlo(k, &r);
        ok = 0;
        goto out;
    }
    free(cmd);
    cmd = xasprintf("HELO %s", k->c->hostname);
    if (send_cmd(k, cmd, tmo(k, TMO_MAIL)) < 0 || read_reply(k, &r, tmo(k, TMO_MAIL)) < 0)
        goto out;
    if (r.code / 100 == 2) {
        ok = 0;
        goto out;
    }
    char *st = smtp_reply_status(&r);
    conn_fail(k, "4.4.1 %s: HELO refused: %s", k->relay, st);
    free(st);
out:
    free(cmd);
    smtp_reply_free(&r);
    return ok;
}

static void conn_quit(struct conn *k)
{
    if (k->fd < 0)
        return;
    struct smtp_reply r;
    smtp_reply_init(&r);
    if (send_cmd(k, "QUIT", TMO_QUIT) == 0)
        read_reply(k, &r, TMO_QUIT); /* the answer changes nothing */
    smtp_reply_free(&r);
    if (k->fd >= 0) {
        close(k->fd);
        k->fd = -1;
    }
    if (k->verbose)
        fprintf(stderr, "%s CLOSE\n", k->addr);
}

/* ---- the transaction ---- */

struct rstate {
    const char *addr;
    const struct rcpt *r; /* for the DSN parameters */
    int final;    /* a server gave a definitive answer (2xx/4xx/5xx) */
    int accepted; /* RCPT got 2xx in this transaction */
    struct smtpc_result *res;
};

static void set_result(struct rstate *rs, enum smtpc_outcome o, const char *status,
                       const struct conn *k, int final)
{
    free(rs->res->status);
    free(rs->res->mta);
    free(rs->res->relay);
    rs->res->outcome = o;
    rs->res->status = xstrdup(status);
    rs->res->mta = k && final ? xstrdup(k->host) : NULL;
    rs->res->relay = k ? xstrdup(k->relay) : NULL;
    rs->final = final;
}

static void set_from_reply(struct rstate *rs, const struct smtp_reply *r, const struct conn *k)
{
    char *st = smtp_reply_status(r);
    enum smtpc_outcome o = r->code / 100 == 2 ? SO_SENT
                           : r->code / 100 == 5 ? SO_BOUNCED
                                                : SO_DEFERRED;
    set_result(rs, o, st, k, 1);
    free(st);
}

static int has_8bit(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s >= 0x80)
            return 1;
    return 0;
}

/* RFC 3461 xtext: '+', '=' and anything outside '!'..'~' as "+XX". */
static void xtext(struct buf *b, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p < '!' || *p > '~' || *p == '+' || *p == '=')
            buf_addf(b, "+%02X", *p);
        else
            buf_addc(b, (char)*p);
    }
}

/* NOTIFY= and ORCPT= for a peer that offers DSN (RFC 3461), so that the
 * sender's delivery-status wishes travel on. */
static void dsn_rcpt_params(struct buf *b, const struct rcpt *r)
{
    if (r->notify & DSN_NEVER) {
        buf_adds(b, " NOTIFY=NEVER");
    } else if (r->notify) {
        const char *sep = " NOTIFY=";
        if (r->notify & DSN_SUCCESS) {
            buf_adds(b, sep);
            buf_adds(b, "SUCCESS");
            sep = ",";
        }
        if (r->notify & DSN_FAILURE) {
            buf_adds(b, sep);
            buf_adds(b, "FAILURE");
            sep = ",";
        }
        if (r->notify & DSN_DELAY) {
            buf_adds(b, sep);
            buf_adds(b, "DELAY");
        }
    }
    if (r->orig && *r->orig) {
        buf_adds(b, " ORCPT=rfc822;");
        xtext(b, r->orig);
    }
}

/* Anything that could end or split an SMTP command line. */
static int unsafe_for_cmd(const char *s)
{
    for (; *s; s++)
        if (*s == '\r' || *s == '\n' || *s == '<' || *s == '>' || (unsigned char)*s < 0x20)
            return 1;
    return 0;
}

/* The message text through msgout (CRLF, dot-stuffing, no bare CR or LF),
 * then the final dot.  msgout writes with plain write(2), so the socket is
 * blocking for the duration with SO_SNDTIMEO as the RFC 5321 data-block
 * timeout; SIGPIPE is ignored by smtpc_deliver. */
static int send_body(struct conn *k, const struct envelope *e, const struct msgdata *d)
{
    struct timeval tv = {tmo(k, TMO_BLOCK), 0};
    struct msgout mo = {MO_SMTP, e->sender, NULL};
    if (k->verbose)
        fprintf(stderr, "%s << (message text, then .)\n", k->addr);
    if (set_nonblock(k->fd, 0) < 0 ||
        setsockopt(k->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) < 0) {
        conn_fail(k, "4.4.2 %s: socket setup: %s", k->relay, strerror(errno));
        return -1;
    }
    if (msgout_write(d, k->fd, &mo) < 0) {
        int err = errno;
        if (err == EAGAIN || err == EWOULDBLOCK)
            conn_fail(k, "4.4.2 %s: timed out sending the message", k->relay);
        else
            conn_fail(k, "4.4.2 %s: error sending the message: %s", k->relay, strerror(err));
        return -1;
    }
    if (set_nonblock(k->fd, 1) < 0) {
        conn_fail(k, "4.4.2 %s: socket setup: %s", k->relay, strerror(errno));
        return -1;
    }
    return send_bytes(k, ".\r\n", 3, tmo(k, TMO_BLOCK));
}

/* Give every recipient not finally answered the connection's error; those
 * stay eligible for the next host, unless the message text had started to go
 * to them (RFC 5321 6.1: better late than twice). */
static void conn_lost(struct rstate *rs, size_t n, const struct conn *k)
{
    for (size_t i = 0; i < n; i++)
        if (!rs[i].final || rs[i].accepted) {
            /* once the text went out it may have arrived: no other host now */
            int maybe_sent = rs[i].accepted && k->body_started;
            set_result(&rs[i], SO_DEFERRED, k->err ? k->err : "4.4.2 connection lost", k,
                       maybe_sent);
            rs[i].accepted = 0;
        }
}

/* Refusals decided before talking: SMTPUTF8 needed but not offered (5.6.7),
 * a declared SIZE limit below the message (5.3.4).  Malloc'd status or NULL. */
static char *refuse_early(const struct conn *k, long long size, int need_utf8)
{
    if (need_utf8 && !k->ext_smtputf8)
        return xasprintf("5.6.7 %s does not support SMTPUTF8, which this message needs",
                         k->host);
    if (k->size_limit > 0 && size > k->size_limit)
        return xasprintf("5.3.4 message of %lld bytes exceeds the limit of %lld bytes "
                         "declared by %s", size, k->size_limit, k->host);
    return NULL;
}

static void mail_command(const struct conn *k, const struct envelope *e, long long size,
                         int eightbit, int need_utf8, struct buf *cmd)
{
    buf_reset(cmd);
    buf_addf(cmd, "MAIL FROM:<%s>", e->sender);
    if (k->ext_size)
        buf_addf(cmd, " SIZE=%lld", size);
    if (eightbit && k->ext_8bitmime)
        buf_adds(cmd, " BODY=8BITMIME");
    if (need_utf8)
        buf_adds(cmd, " SMTPUTF8");
    if (k->ext_dsn && (e->flags & ENV_RET_HDRS))
        buf_adds(cmd, " RET=HDRS");
    if (k->ext_dsn && e->envid && *e->envid) {
        buf_adds(cmd, " ENVID=");
        xtext(cmd, e->envid);
    }
}

/* Does recipient i take part in this transaction (RCPT sent)? */
static int in_transaction(const struct rstate *x)
{
    return !x->final && !unsafe_for_cmd(x->addr);
}

/* One RCPT reply for recipient x. */
static void rcpt_result(struct rstate *x, const struct smtp_reply *r, const struct conn *k)
{
    set_from_reply(x, r, k);
    x->accepted = r->code / 100 == 2;
    if (x->accepted)
        x->final = 0; /* accepted is not delivered yet */
}

/* MAIL and every RCPT (and, pipelined, DATA).  mail_code and mail_st get
 * the MAIL reply.  0, or -1 if the connection broke. */
static int envelope_phase(struct conn *k, const char *mailcmd, struct rstate *rs, size_t n,
                          int pipe, int *mail_code, char **mail_st)
{
    struct smtp_reply r;
    struct buf cmd;
    int rc = -1;
    smtp_reply_init(&r);
    buf_init(&cmd);
    for (size_t i = 0; i < n; i++)
        if (!rs[i].final && unsafe_for_cmd(rs[i].addr))
            set_result(&rs[i], SO_BOUNCED, "5.1.3 recipient address unusable in SMTP", k, 1);
    if (pipe)
        cork(k);
    if (send_cmd(k, mailcmd, tmo(k, TMO_MAIL)) < 0)
        goto out;
    if (!pipe) {
        if (read_reply(k, &r, tmo(k, TMO_MAIL)) < 0)
            goto out;
        *mail_code = r.code;
        *mail_st = smtp_reply_status(&r);
        if (r.code / 100 != 2) {
            rc = 0;
            goto out;
        }
    }
    for (size_t i = 0; i < n; i++) {
        if (!in_transaction(&rs[i]))
            continue;
        buf_reset(&cmd);
        buf_addf(&cmd, "RCPT TO:<%s>", rs[i].addr);
        if (k->ext_dsn)
            dsn_rcpt_params(&cmd, rs[i].r);
        if (send_cmd(k, cmd.s, tmo(k, TMO_RCPT)) < 0)
            goto out;
        if (!pipe) {
            if (read_reply(k, &r, tmo(k, TMO_RCPT)) < 0)
                goto out;
            rcpt_result(&rs[i], &r, k);
        }
    }
    if (pipe) { /* DATA ends the group (RFC 2920); then the replies in order */
        if (send_cmd(k, "DATA", tmo(k, TMO_DATA)) < 0 || uncork(k, tmo(k, TMO_DATA)) < 0 ||
            read_reply(k, &r, tmo(k, TMO_MAIL)) < 0)
            goto out;
        *mail_code = r.code;
        *mail_st = smtp_reply_status(&r);
        /* first collect the replies, then apply them (in_transaction changes) */
        struct smtp_reply *rr = xcalloc(n ? n : 1, sizeof *rr);
        int ok = 1;
        for (size_t i = 0; i < n && ok; i++) {
            smtp_reply_init(&rr[i]);
            if (in_transaction(&rs[i]))
                ok = read_reply(k, &rr[i], tmo(k, TMO_RCPT)) == 0;
        }
        for (size_t i = 0; i < n; i++) {
            if (ok && *mail_code / 100 == 2 && rr[i].done)
                rcpt_result(&rs[i], &rr[i], k);
            smtp_reply_free(&rr[i]);
        }
        free(rr);
        if (!ok)
            goto out;
    }
    rc = 0;
out:
    k->corked = 0;
    buf_free(&cmd);
    smtp_reply_free(&r);
    return rc;
}

/* After DATA was sent: its reply, the text, the final reply.  0, or -1 if
 * the connection broke. */
static int data_phase(struct conn *k, const struct envelope *e, const struct msgdata *d,
                      int pipe,
                      struct rstate *rs, size_t n)
{
    struct smtp_reply r;
    int rc = -1;
    size_t accepted = 0;
    smtp_reply_init(&r);
    for (size_t i = 0; i < n; i++)
        accepted += rs[i].accepted;
    if (!pipe && accepted == 0)
        return 0;
    if (!pipe && send_cmd(k, "DATA", tmo(k, TMO_DATA)) < 0)
        goto out;
    if (read_reply(k, &r, tmo(k, TMO_DATA)) < 0)
        goto out;
    if (r.code != 354) { /* RFC 5321 3.3: the DATA failure answers for all accepted */
        for (size_t i = 0; i < n; i++)
            if (rs[i].accepted) {
                set_from_reply(&rs[i], &r, k);
                if (r.code / 100 == 2) /* 2xx to DATA is a protocol error */
                    set_result(&rs[i], SO_DEFERRED, "4.5.0 DATA answered without 354", k, 1);
                rs[i].accepted = 0;
            }
        rc = 0;
        goto out;
    }
    if (accepted == 0) { /* pipelined DATA accepted with no recipient: send nothing */
        if (send_bytes(k, ".\r\n", 3, tmo(k, TMO_BLOCK)) == 0)
            read_reply(k, &r, tmo(k, TMO_DOT));
        rc = 0;
        goto out;
    }
    k->body_started = 1;
    if (send_body(k, e, d) < 0 || read_reply(k, &r, tmo(k, TMO_DOT)) < 0)
        goto out; /* no answer after the dot: deferred (RFC 5321 6.1; may duplicate) */
    for (size_t i = 0; i < n; i++)
        if (rs[i].accepted) {
            set_from_reply(&rs[i], &r, k);
            rs[i].accepted = 0;
        }
    rc = 0;
out:
    smtp_reply_free(&r);
    return rc;
}

/* A refused MAIL answers for every recipient.  Pipelined, DATA was sent too:
 * a careless server may still say 354, and then gets an empty message. */
static void mail_refused(struct conn *k, int pipe, int code, const char *st,
                         struct rstate *rs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!rs[i].final)
            set_result(&rs[i], code / 100 == 5 ? SO_BOUNCED : SO_DEFERRED, st, k, 1);
    struct smtp_reply r;
    smtp_reply_init(&r);
    if (pipe && read_reply(k, &r, tmo(k, TMO_DATA)) == 0 && r.code == 354 &&
        send_bytes(k, ".\r\n", 3, tmo(k, TMO_BLOCK)) == 0)
        read_reply(k, &r, tmo(k, TMO_DOT)); /* an empty message the server must refuse */
    smtp_reply_free(&r);
}

/* MAIL, RCPT..., DATA, message, dot on an open connection for the recipients
 * not finally answered yet.  Returns 0, or -1 if the connection broke (the
 * recipients it leaves open may go to the next host). */
static int transaction(struct conn *k, const struct envelope *e, const struct msgdata *d,
                       long long size,
                       int eightbit, struct rstate *rs, size_t n)
{
    int need_utf8 = (e->flags & ENV_SMTPUTF8) || has_8bit(e->sender);
    for (size_t i = 0; i < n; i++)
        need_utf8 |= !rs[i].final && has_8bit(rs[i].addr);
    char *perm = refuse_early(k, size, need_utf8);
    if (!perm && unsafe_for_cmd(e->sender))
        perm = xstrdup("5.1.7 sender address unusable in SMTP");
    if (perm) {
        for (size_t i = 0; i < n; i++)
            if (!rs[i].final)
                set_result(&rs[i], SO_BOUNCED, perm, k, 1);
        free(perm);
        return 0;
    }
    if (eightbit && !k->ext_8bitmime)
        log_notice("%s: %s does not offer 8BITMIME; sending the 8-bit message as it is",
                   e->qid, k->relay);
    k->body_started = 0;
    int pipe = k->ext_pipelining, mail_code = 0, rc = 0;
    char *mail_st = NULL;
    struct buf cmd;
    buf_init(&cmd);
    mail_command(k, e, size, eightbit, need_utf8, &cmd);
    if (envelope_phase(k, cmd.s, rs, n, pipe, &mail_code, &mail_st) < 0)
        rc = -1;
    else if (mail_code / 100 != 2)
        mail_refused(k, pipe, mail_code, mail_st, rs, n);
    else if (data_phase(k, e, d, pipe, rs, n) < 0)
        rc = -1;
    if (rc < 0)
        conn_lost(rs, n, k);
    free(mail_st);
    buf_free(&cmd);
    return rc;
}

/* ---- the batch ---- */

/* Bytes on the wire: the LF-terminated text plus a CR per line (dot-stuffing
 * adds a little more), for SIZE= and the peer's limit (RFC 1870); and whether
 * the text has 8-bit bytes (then BODY=8BITMIME even if the submitter did not
 * say so). */
static long long wire_size(const struct msgdata *d, int *eightbit)
{
    char buf[16384];
    long long lines = 0;
    long long off = 0;
    unsigned char high = 0;
    while (off < d->len) {
        size_t want = d->len - off > (long long)sizeof buf ? sizeof buf : (size_t)(d->len - off);
        ssize_t r = pread(d->fd, buf, want, (off_t)(d->off + off));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        for (ssize_t i = 0; i < r; i++) {
            lines += buf[i] == '\n';
            high |= (unsigned char)buf[i];
        }
        off += r;
    }
    *eightbit = (high & 0x80) != 0;
    return d->len + lines + 2;
}

static void log_results(const struct envelope *e, struct rstate *rs, size_t n)
{
    long delay = (long)(time(NULL) - e->ctime);
    for (size_t i = 0; i < n; i++) {
        const struct smtpc_result *x = rs[i].res;
        const char *word = x->outcome == SO_SENT ? "sent"
                           : x->outcome == SO_BOUNCED ? "bounced"
                                                      : "deferred";
        char *to = str_sanitize(rs[i].addr, strlen(rs[i].addr));
        const char *sp = strchr(x->status, ' ');
        int dl = sp ? (int)(sp - x->status) : (int)strlen(x->status);
        log_info("%s: to=<%s>, relay=%s, delay=%lds, dsn=%.*s, status=%s (%s)", e->qid, to,
                 x->relay ? x->relay : "none", delay < 0 ? 0 : delay, dl, x->status, word,
                 sp ? sp + 1 : "");
        free(to);
    }
}

static size_t open_count(const struct rstate *rs, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        k += !rs[i].final;
    return k;
}

/* ---- connection cache: reuse across messages of one queue run ---- */

struct smtpc_cache {
    struct conn *v[SMTPC_CACHE_MAX]; /* oldest first */
    size_t n;
};

struct smtpc_cache *smtpc_cache_new(void)
{
    return xcalloc(1, sizeof(struct smtpc_cache));
}

static void conn_free(struct conn *k)
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

void smtpc_cache_close(struct smtpc_cache *cc)
{
    if (!cc)
        return;
    for (size_t i = 0; i < cc->n; i++) {
        conn_quit(cc->v[i]);
        conn_free(cc->v[i]);
    }
    free(cc);
}

static int same_peer(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
    if (a->ss_family != b->ss_family)
        return 0;
    size_t len = a->ss_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
    return memcmp(a, b, len) == 0;
}

static void cache_put(struct smtpc_cache *cc, struct conn *k)
{
    if (cc->n == SMTPC_CACHE_MAX) { /* evict the least recently used */
        conn_quit(cc->v[0]);
        conn_free(cc->v[0]);
        memmove(cc->v, cc->v + 1, (cc->n - 1) * sizeof *cc->v);
        cc->n--;
    }
    cc->v[cc->n++] = k;
}

/* A cached connection to ss that still answers RSET, taken out of the cache. */
static struct conn *cache_take(struct smtpc_cache *cc, const struct sockaddr_storage *ss,
                               int verbose)
{
    for (size_t i = 0; cc && i < cc->n; i++) {
        if (!same_peer(&cc->v[i]->ss, ss))
            continue;
        struct conn *k = cc->v[i];
        memmove(cc->v + i, cc->v + i + 1, (cc->n - i - 1) * sizeof *cc->v);
        cc->n--;
        k->verbose = verbose;
        struct smtp_reply r;
        smtp_reply_init(&r);
        int ok = send_cmd(k, "RSET", tmo(k, TMO_MAIL)) == 0 &&
                 read_reply(k, &r, tmo(k, TMO_MAIL)) == 0 && r.code / 100 == 2;
        smtp_reply_free(&r);
        if (ok)
            return k;
        conn_quit(k);
        conn_free(k);
        return NULL;
    }
    return NULL;
}

/* A connection to address a of host mh, from the cache or new (greeting and
 * EHLO done).  On failure k->fd < 0 and k->err says why. */
static struct conn *smtpc_get_conn(struct smtpc_cache *cc, const struct config *c, int verbose,
                                   const struct mx_host *mh, size_t a)
{
    int port;
    struct conn *k = cache_take(cc, &mh->addrs[a], verbose);
    if (!k) {
        k = xcalloc(1, sizeof *k);
        k->fd = -1;
        k->c = c;
        k->verbose = verbose;
        k->ss = mh->addrs[a];
        buf_init(&k->in);
        buf_init(&k->out);
    }
    free(k->host);
    free(k->relay);
    k->host = xstrdup(mh->name); /* the name this route knows the address by */
    addr_text(&mh->addrs[a], k->addr, sizeof k->addr, &port);
    k->relay = mh->name[0] == '[' ? xasprintf("%s:%d", mh->name, port)
                                  : xasprintf("%s[%s]:%d", mh->name, k->addr, port);
    if (k->fd >= 0) {
        if (verbose)
            fprintf(stderr, "%s REUSE (%s)\n", k->addr, k->relay);
        return k;
    }
    if (tcp_connect(k, &mh->addrs[a]) == 0)
        conn_hello(k);
    return k;
}

size_t smtpc_deliver(const struct config *c, struct dns_ctx *d, struct smtpc_cache *cache,
                     const char *domain, const struct envelope *e,
                     const struct msgdata *data, const size_t *idx, size_t n, int verbose,
                     struct smtpc_result *res)
{
    struct rstate *rs = xcalloc(n ? n : 1, sizeof *rs);
    struct sigaction ign, oldpipe;
    memset(&ign, 0, sizeof ign);
    ign.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &ign, &oldpipe); /* a peer that hangs up is an error, not a signal */
    for (size_t i = 0; i < n; i++) {
        memset(&res[i], 0, sizeof res[i]);
        rs[i].addr = e->rcpts[idx[i]].addr;
        rs[i].r = &e->rcpts[idx[i]];
        rs[i].res = &res[i];
        set_result(&rs[i], SO_DEFERRED, "4.4.1 no mail host could be reached", NULL, 0);
    }
    struct mx_route route;
    char *why = NULL;
    int eightbit;
    long long size = wire_size(data, &eightbit);
    enum mx_status ms = mx_route(d, c, domain, &route, &why);
    if (ms != MX_OK) {
        for (size_t i = 0; i < n; i++)
            set_result(&rs[i], ms == MX_PERMFAIL ? SO_BOUNCED : SO_DEFERRED, why, NULL, 1);
        free(why);
        goto out;
    }
    for (size_t h = 0; h < route.n && open_count(rs, n); h++) {
        const struct mx_host *mh = &route.hosts[h];
        for (size_t a = 0; a < mh->naddrs && open_count(rs, n); a++) {
            struct conn *k = smtpc_get_conn(cache, c, verbose, mh, a);
            if (k->fd < 0) {
                log_info("%s: %s", e->qid, k->err); /* then the next address or MX host */
                for (size_t i = 0; i < n; i++)
                    if (!rs[i].final)
                        set_result(&rs[i], SO_DEFERRED, k->err, k, 0);
                conn_free(k);
                continue;
            }
            transaction(k, e, data, size, eightbit || (e->flags & ENV_8BIT), rs, n);
            if (cache && k->fd >= 0) {
                cache_put(cache, k);
            } else {
                conn_quit(k);
                conn_free(k);
            }
        }
    }
    mx_route_free(&route);
out:
    log_results(e, rs, n);
    size_t deferred = 0;
    for (size_t i = 0; i < n; i++)
        deferred += res[i].outcome == SO_DEFERRED;
    free(rs);
    sigaction(SIGPIPE, &oldpipe, NULL);
    return deferred;
}

void smtpc_results_free(struct smtpc_result *res, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(res[i].status);
        free(res[i].mta);
        free(res[i].relay);
    }
}
