/* milter.c - the mail filter client: sendmail's milter protocol (version 6,
 * with fallback) to the filters of filter= (milter.h).  Runs in the SMTP
 * session child as user=; nothing here runs as root.
 *
 * Wire format: every packet is a 4-byte big-endian length (of what follows),
 * a command or reply letter, and its data.  The constants below are those of
 * sendmail's libmilter/mfdef.h (written out: the client needs no library). */
#include "compat.h"

#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "log.h"
#include "milter.h"
#include "milter_conf.h"

/* commands (MTA -> filter) */
#define C_ABORT 'A'
#define C_BODY 'B'
#define C_CONNECT 'C'
#define C_MACRO 'D'
#define C_EOM 'E'
#define C_HELO 'H'
#define C_HEADER 'L'
#define C_MAIL 'M'
#define C_EOH 'N'
#define C_OPTNEG 'O'
#define C_QUIT 'Q'
#define C_RCPT 'R'
#define C_DATA 'T'

/* replies (filter -> MTA) */
#define R_ADDRCPT '+'
#define R_DELRCPT '-'
#define R_ADDRCPT_PAR '2'
#define R_ACCEPT 'a'
#define R_REPLBODY 'b'
#define R_CONTINUE 'c'
#define R_DISCARD 'd'
#define R_CHGFROM 'e'
#define R_ADDHEADER 'h'
#define R_INSHEADER 'i'
#define R_CHGHEADER 'm'
#define R_PROGRESS 'p'
#define R_QUARANTINE 'q'
#define R_REJECT 'r'
#define R_SKIP 's'
#define R_TEMPFAIL 't'
#define R_REPLYCODE 'y'

/* actions a filter may take (SMFIF_*) */
#define F_ADDHDRS 0x01
#define F_CHGBODY 0x02
#define F_ADDRCPT 0x04
#define F_DELRCPT 0x08
#define F_CHGHDRS 0x10
#define F_QUARANTINE 0x20
#define F_CHGFROM 0x40
#define F_ADDRCPT_PAR 0x80
#define F_SETSYMLIST 0x100
#define F_ALL 0x1ff

/* protocol steps a filter may decline or not answer (SMFIP_*) */
#define P_NOCONNECT 0x01
#define P_NOHELO 0x02
#define P_NOMAIL 0x04
#define P_NORCPT 0x08
#define P_NOBODY 0x10
#define P_NOHDRS 0x20
#define P_NOEOH 0x40
#define P_NR_HDR 0x80
#define P_NOUNKNOWN 0x100
#define P_NODATA 0x200
#define P_SKIP 0x400
#define P_NR_CONN 0x1000
#define P_NR_HELO 0x2000
#define P_NR_MAIL 0x4000
#define P_NR_RCPT 0x8000
#define P_NR_DATA 0x10000
#define P_NR_UNKN 0x20000
#define P_NR_EOH 0x40000
#define P_NR_BODY 0x80000
#define P_HDR_LEADSPC 0x100000
/* everything above: all we offer (not RCPT_REJ: refused recipients are
 * never shown to a filter; not the bigger packet sizes) */
#define P_OFFERED 0x1ff7ff

#define PROTO_VERSION 6
#define PROTO_MIN 2
#define BODY_CHUNK 65535
#define PACKET_MAX (1024 * 1024) /* a filter's packet; libmilter's own limit */
#define HEADERS_MAX (4 * 1024 * 1024)
#define MODS_MAX 10000           /* changes one filter may ask for per message */
#define PROGRESS_STEPS 10        /* a step lasts at most this many filter-timeouts */

enum mf_state { MF_NEW, MF_OPEN, MF_DEAD };

struct mfilter {
    const char *spec;
    struct mconf_addr addr;
    int fd;
    enum mf_state st;
    uint32_t version, actions, pflags;
    int conn_done;   /* accepted the connection: no more events at all */
    int msg_done;    /* accepted this message: no more events for it */
    int in_msg;      /* was told MAIL: owes an abort if the transaction ends early */
};

struct milter_set {
    const struct config *c;
    struct mfilter *f;
    size_t n;
    long timeout_ms;
    int fail_accept;      /* filter-fail=accept */
    int conn_code;        /* a filter refused the connection or HELO: the reply */
    char *conn_text;
    int conn_discard;     /* a filter discards all of this connection's mail */
    int discard;          /* this message is discarded */
    char *qid;
    struct mmods mods;
};

/* One step's packet I/O state. */
struct packet {
    char cmd;
    struct buf data;
};

/* ---- packets ---- */

static void put32(struct buf *b, uint32_t v)
{
    unsigned char x[4] = { (unsigned char)(v >> 24), (unsigned char)(v >> 16),
                           (unsigned char)(v >> 8), (unsigned char)v };
    buf_add(b, x, 4);
}

static uint32_t get32(const char *p)
{
    const unsigned char *u = (const unsigned char *)p;
    return (uint32_t)u[0] << 24 | (uint32_t)u[1] << 16 | (uint32_t)u[2] << 8 | u[3];
}

static int wait_fd(int fd, short ev, long long deadline)
{
    struct pollfd p = { .fd = fd, .events = ev };
    int r;
    while ((r = poll(&p, 1, ms_left(deadline))) < 0 && errno == EINTR)
        ;
    if (r == 0)
        errno = ETIMEDOUT;
    return r > 0 ? 0 : -1;
}

static int send_all(int fd, const char *p, size_t n, long long deadline)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w > 0) {
            p += w;
            n -= (size_t)w;
        } else if (w < 0 && errno != EAGAIN && errno != EINTR) {
            return -1;
        } else if (w < 0 && errno == EAGAIN && wait_fd(fd, POLLOUT, deadline) < 0) {
            return -1;
        }
    }
    return 0;
}

static int recv_all(int fd, char *p, size_t n, long long deadline)
{
    while (n > 0) {
        ssize_t r = read(fd, p, n);
        if (r > 0) {
            p += r;
            n -= (size_t)r;
        } else if (r == 0) {
            errno = ECONNRESET;
            return -1;
        } else if (errno != EAGAIN && errno != EINTR) {
            return -1;
        } else if (errno == EAGAIN && wait_fd(fd, POLLIN, deadline) < 0) {
            return -1;
        }
    }
    return 0;
}

static void add_packet(struct buf *b, char cmd, const void *data, size_t len)
{
    put32(b, (uint32_t)len + 1);
    buf_addc(b, cmd);
    if (len)
        buf_add(b, data, len);
}

static int send_packet(struct mfilter *f, char cmd, const void *data, size_t len,
                       long long deadline)
{
    struct buf b;
    buf_init(&b);
    add_packet(&b, cmd, data, len);
    int r = send_all(f->fd, b.s, b.len, deadline);
    buf_free(&b);
    return r;
}

/* The macros (if any) and the command in one write: two small writes before
 * a reply is awaited would meet Nagle's algorithm and the peer's delayed
 * ACK on TCP (40 ms a step). */
static int send_step(struct mfilter *f, const struct buf *mac, char cmd, const void *data,
                     size_t len, long long deadline)
{
    struct buf b;
    buf_init(&b);
    if (mac && mac->len > 1)
        add_packet(&b, C_MACRO, mac->s, mac->len);
    add_packet(&b, cmd, data, len);
    int r = send_all(f->fd, b.s, b.len, deadline);
    buf_free(&b);
    return r;
}

/* Read one packet.  0, or -1 with errno (EPROTO: a malformed length). */
static int recv_packet(struct mfilter *f, struct packet *pk, long long deadline)
{
    char hdr[5];
    if (recv_all(f->fd, hdr, 5, deadline) < 0)
        return -1;
    uint32_t len = get32(hdr);
    if (len < 1 || len > PACKET_MAX) {
        errno = EPROTO;
        return -1;
    }
    pk->cmd = hdr[4];
    buf_reset(&pk->data);
    char *tmp = xmalloc(len);
    int r = len > 1 ? recv_all(f->fd, tmp, len - 1, deadline) : 0;
    if (r == 0)
        buf_add(&pk->data, tmp, len - 1);
    free(tmp);
    return r;
}

/* ---- failures ---- */

static void filter_close(struct mfilter *f)
{
    if (f->fd >= 0)
        close(f->fd);
    f->fd = -1;
}

/* A filter broke down (what: how).  It is gone for the session; the step
 * gets filter-fail=: 0 (accept) or 451 with *why. */
static int filter_failed(struct milter_set *ms, struct mfilter *f, const char *what,
                         struct buf *why)
{
    log_warn("mail filter %s: %s%s%s; %s", f->spec, what, errno ? ": " : "",
             errno ? strerror(errno) : "",
             ms->fail_accept ? "going on without it (filter-fail=accept)"
                             : "mail is refused for now (filter-fail=tempfail)");
    filter_close(f);
    f->st = MF_DEAD;
    if (ms->fail_accept)
        return 0;
    buf_reset(why);
    buf_adds(why, "4.7.1 a mail filter is not available; try again later");
    return 451;
}

/* A dead filter at a later step: filter-fail= again. */
static int dead_filter(const struct milter_set *ms, struct buf *why)
{
    if (ms->fail_accept)
        return 0;
    buf_reset(why);
    buf_adds(why, "4.7.1 a mail filter is not available; try again later");
    return 451;
}

/* ---- replies ---- */

/* SMFIR_REPLYCODE text "CODE[ -]X.Y.Z text" (lines joined by CR LF): a
 * well-formed 4xx/5xx reply gives its code and text ("X.Y.Z text", an
 * enhanced code added when missing).  0 if malformed. */
static int parse_replycode(const char *t, size_t n, struct buf *why)
{
    if (n < 3 || (t[0] != '4' && t[0] != '5') || t[1] < '0' || t[1] > '9' || t[2] < '0' ||
        t[2] > '9' || (n > 3 && t[3] != ' ' && t[3] != '-'))
        return 0;
    int code = (t[0] - '0') * 100 + (t[1] - '0') * 10 + (t[2] - '0');
    const char *text = n > 3 ? t + 4 : "";
    size_t tn = n > 3 ? n - 4 : 0;
    char *clean = str_sanitize(text, tn);
    /* later lines of a multi-line reply: "\r\n550-5.7.1 more" -> " more" */
    buf_reset(why);
    int has_esc = clean[0] == t[0] && clean[1] == '.';
    if (!has_esc)
        buf_addf(why, "%c.7.1 ", t[0]);
    for (const char *p = clean; *p; p++)
        buf_addc(why, (unsigned char)*p < ' ' ? ' ' : *p);
    if (!clean[0] || (has_esc && !strchr(clean, ' ')))
        buf_adds(why, " refused by a mail filter");
    free(clean);
    return code;
}

enum step { ST_CONN, ST_HELO, ST_MAIL, ST_RCPT, ST_DATA, ST_HDR, ST_EOH, ST_BODY, ST_EOM };

/* The verdict in pk for one step: 0 go on, -2 skip the rest of the body,
 * -3 protocol error, or a reply code with *why. */
static int verdict(struct milter_set *ms, struct mfilter *f, enum step st,
                   const struct packet *pk, struct buf *why)
{
    switch (pk->cmd) {
    case R_CONTINUE:
        return 0;
    case R_ACCEPT:
        if (st <= ST_HELO)
            f->conn_done = 1;
        else if (st != ST_RCPT)
            f->msg_done = 1;
        return 0;
    case R_SKIP:
        return st == ST_BODY && (f->pflags & P_SKIP) ? -2 : -3;
    case R_DISCARD:
        if (st <= ST_HELO)
            ms->conn_discard = 1;
        ms->discard = 1;
        f->msg_done = 1;
        return 0;
    case R_REJECT:
        buf_reset(why);
        buf_adds(why, st == ST_RCPT ? "5.7.1 recipient refused by a mail filter"
                                    : "5.7.1 refused by a mail filter");
        return st == ST_RCPT ? 550 : 554;
    case R_TEMPFAIL:
        buf_reset(why);
        buf_adds(why, "4.7.1 a mail filter asks to try again later");
        return 451;
    case R_REPLYCODE: {
        const char *t = pk->data.s ? pk->data.s : "";
        int code = parse_replycode(t, strnlen(t, pk->data.len), why);
        return code ? code : -3;
    }
    default:
        return -3;
    }
}

/* ---- one step to one filter ---- */

/* A "progress" reply: the wait starts again, but one step never takes
 * more than PROGRESS_STEPS filter-timeouts in all. */
static long long progress(const struct milter_set *ms, long long started)
{
    long long next = now_ms() + ms->timeout_ms, cap = started + PROGRESS_STEPS * ms->timeout_ms;
    return next < cap ? next : cap;
}

static void add_macro(struct buf *b, const char *name, const char *value)
{
    if (!value)
        return;
    buf_adds(b, name);
    buf_addc(b, '\0');
    buf_adds(b, value);
    buf_addc(b, '\0');
}

/* Send macros (if any) and the command; read the reply unless the filter
 * said it gives none (nr).  Returns 0 / code as verdict(), or a
 * filter_failed() result. */
static int step(struct milter_set *ms, struct mfilter *f, enum step st, const struct buf *mac,
                char cmd, const void *data, size_t len, int nr, struct buf *why)
{
    long long started = now_ms(), deadline = started + ms->timeout_ms;
    if (send_step(f, mac, cmd, data, len, deadline) < 0)
        return filter_failed(ms, f, "cannot send to it", why);
    if (nr)
        return 0;
    struct packet pk = { 0 };
    buf_init(&pk.data);
    int v;
    for (;;) {
        if (recv_packet(f, &pk, deadline) < 0) {
            v = filter_failed(ms, f, errno == ETIMEDOUT ? "no answer within filter-timeout="
                                                          : "broke the connection", why);
            break;
        }
        if (pk.cmd == R_PROGRESS) {
            deadline = progress(ms, started);
            continue;
        }
        v = verdict(ms, f, st, &pk, why);
        if (v == -3) {
            errno = 0;
            v = filter_failed(ms, f, "answered out of protocol", why);
        }
        break;
    }
    buf_free(&pk.data);
    return v;
}

/* ---- negotiation and connect ---- */

static int negotiate(struct milter_set *ms, struct mfilter *f, struct buf *why)
{
    long long deadline = now_ms() + ms->timeout_ms;
    struct buf b;
    buf_init(&b);
    put32(&b, PROTO_VERSION);
    put32(&b, F_ALL);
    put32(&b, P_OFFERED);
    int r = send_packet(f, C_OPTNEG, b.s, b.len, deadline);
    buf_free(&b);
    if (r < 0)
        return filter_failed(ms, f, "cannot send to it", why);
    struct packet pk = { 0 };
    buf_init(&pk.data);
    if (recv_packet(f, &pk, deadline) < 0) {
        buf_free(&pk.data);
        return filter_failed(ms, f, "no answer to the negotiation", why);
    }
    if (pk.cmd != C_OPTNEG || pk.data.len < 12) {
        buf_free(&pk.data);
        errno = 0;
        return filter_failed(ms, f, "answered the negotiation out of protocol", why);
    }
    f->version = get32(pk.data.s);
    f->actions = get32(pk.data.s + 4);
    f->pflags = get32(pk.data.s + 8);
    buf_free(&pk.data);
    /* (a symbol list after the 12 bytes only narrows the macros we send:
     * sending more is allowed, so it is not read) */
    errno = 0;
    if (f->version < PROTO_MIN || f->version > PROTO_VERSION)
        return filter_failed(ms, f, "speaks a protocol version we do not", why);
    if ((f->actions & ~(uint32_t)F_ALL) || (f->pflags & ~(uint32_t)P_OFFERED & 0xfffffff))
        return filter_failed(ms, f, "asks for actions or steps we did not offer", why);
    if (f->version < 6) /* the no-reply flags came with version 6 */
        f->pflags &= 0x7ff;
    f->st = MF_OPEN;
    return 0;
}

static int open_filter(struct milter_set *ms, struct mfilter *f, struct buf *why)
{
    f->fd = mconf_connect(&f->addr, ms->timeout_ms);
    if (f->fd < 0)
        return filter_failed(ms, f, "cannot connect", why);
    return negotiate(ms, f, why);
}

struct milter_set *milter_open(const struct config *c)
{
    if (c->filter.n == 0)
        return NULL;
    struct milter_set *ms = xcalloc(1, sizeof *ms);
    ms->c = c;
    ms->timeout_ms = (c->filter_timeout > 0 ? c->filter_timeout : 30) * 1000L;
    ms->fail_accept = c->filter_fail && !strcmp(c->filter_fail, "accept");
    ms->f = xcalloc(c->filter.n, sizeof *ms->f);
    for (size_t i = 0; i < c->filter.n; i++) {
        struct mfilter *f = &ms->f[ms->n];
        const char *why = NULL;
        f->spec = c->filter.v[i];
        f->fd = -1;
        if (mconf_parse(f->spec, &f->addr, &why) < 0) {
            /* config_set checked it: cannot happen with a loaded config */
            log_err("filter=%s: %s", f->spec, why);
            f->st = MF_DEAD;
        }
        ms->n++;
    }
    mmods_init(&ms->mods, c->size > 0 ? c->size : 64LL * 1024 * 1024);
    return ms;
}

/* Should filter f see step st (alive, not done, step not declined)? */
static int wants(const struct mfilter *f, uint32_t no_flag)
{
    return f->st == MF_OPEN && !f->conn_done && !(f->pflags & no_flag);
}

/* The sticky connection verdict (connect/HELO refused): code, saved text. */
static void set_conn_verdict(struct milter_set *ms, int code, const struct buf *why)
{
    ms->conn_code = code;
    free(ms->conn_text);
    ms->conn_text = xstrdup(why->s ? why->s : "");
}

void milter_connect(struct milter_set *ms, const struct milter_client *cl, struct buf *why)
{
    const char *host = ms->c->hostname;
    char port[8];
    snprintf(port, sizeof port, "%d", cl->port);
    const char *ip = cl->ip && cl->ip[0] ? cl->ip : NULL;
    char *name = cl->ptr ? xstrdup(cl->ptr) : ip ? xasprintf("[%s]", ip) : xstrdup("localhost");
    char *us = !ip ? xstrdup("localhost")
               : cl->ptr ? xasprintf("%s [%s]", cl->ptr, ip) : xasprintf("[%s]", ip);
    struct buf mac, data;
    buf_init(&mac);
    buf_init(&data);
    buf_addc(&mac, C_CONNECT);
    add_macro(&mac, "j", host);
    add_macro(&mac, "_", us);
    add_macro(&mac, "{daemon_name}", host);
    add_macro(&mac, "{if_name}", host);
    add_macro(&mac, "{if_addr}", cl->if_addr);
    add_macro(&mac, "{client_addr}", ip ? ip : "127.0.0.1");
    add_macro(&mac, "{client_port}", port);
    add_macro(&mac, "{client_name}", name);
    add_macro(&mac, "{client_ptr}", cl->ptr ? cl->ptr : ip ? "unknown" : "localhost");
    buf_adds(&data, name);
    buf_addc(&data, '\0');
    if (ip) {
        buf_addc(&data, strchr(ip, ':') ? '6' : '4');
        buf_addc(&data, (char)((cl->port >> 8) & 0xff));
        buf_addc(&data, (char)(cl->port & 0xff));
        buf_adds(&data, ip);
        buf_addc(&data, '\0');
    } else {
        buf_addc(&data, 'U'); /* a local submission: no address */
    }
    for (size_t i = 0; i < ms->n && !ms->conn_code; i++) {
        struct mfilter *f = &ms->f[i];
        int code = f->st == MF_NEW ? open_filter(ms, f, why) : 0;
        if (!code && wants(f, P_NOCONNECT))
            code = step(ms, f, ST_CONN, &mac, C_CONNECT, data.s, data.len,
                        (f->pflags & P_NR_CONN) != 0, why);
        if (code)
            set_conn_verdict(ms, code, why);
    }
    free(name);
    free(us);
    buf_free(&mac);
    buf_free(&data);
}

/* "TLS1.3 cipher=NAME ..." -> the version word and the cipher name. */
static void tls_macros(const char *tls_info, struct buf *mac)
{
    if (!tls_info)
        return;
    size_t vn = strcspn(tls_info, " ");
    char *ver = xstrndup(tls_info, vn);
    add_macro(mac, "{tls_version}", ver);
    free(ver);
    const char *c = strstr(tls_info, "cipher=");
    if (c) {
        char *cipher = xstrndup(c + 7, strcspn(c + 7, " "));
        add_macro(mac, "{cipher}", cipher);
        free(cipher);
    }
}

void milter_helo(struct milter_set *ms, const char *helo, const char *tls_info,
                 struct buf *why)
{
    struct buf mac;
    buf_init(&mac);
    buf_addc(&mac, C_HELO);
    tls_macros(tls_info, &mac);
    for (size_t i = 0; i < ms->n && !ms->conn_code; i++) {
        struct mfilter *f = &ms->f[i];
        if (!wants(f, P_NOHELO))
            continue;
        int code = step(ms, f, ST_HELO, &mac, C_HELO, helo, strlen(helo) + 1,
                        (f->pflags & P_NR_HELO) != 0, why);
        if (code)
            set_conn_verdict(ms, code, why);
    }
    buf_free(&mac);
}

/* A step of the transaction to every filter still in it, in order; the
 * first refusal ends it.  no/nr: the filter's decline and no-reply flags. */
static int txn_step(struct milter_set *ms, enum step st, const struct buf *mac, char cmd,
                    const struct buf *data, uint32_t no, uint32_t nr, struct buf *why)
{
    for (size_t i = 0; i < ms->n && !ms->discard; i++) {
        struct mfilter *f = &ms->f[i];
        if (f->st == MF_DEAD) {
            int code = f->in_msg || st == ST_MAIL ? dead_filter(ms, why) : 0;
            if (code)
                return code;
            continue;
        }
        if (!wants(f, 0) || f->msg_done || (st > ST_MAIL && !f->in_msg))
            continue;
        if (st == ST_MAIL)
            f->in_msg = 1;
        if (f->pflags & no)
            continue;
        if (st == ST_DATA && f->version < 4)
            continue; /* no DATA step before version 4 */
        int code = step(ms, f, st, mac, cmd, data ? data->s : NULL, data ? data->len : 0,
                        (f->pflags & nr) != 0, why);
        if (code)
            return code;
    }
    return 0;
}

int milter_mail(struct milter_set *ms, const char *sender, const char *args,
                const char *auth_user, struct buf *why)
{
    milter_end_message(ms);
    ms->discard = ms->conn_discard;
    if (ms->conn_code) {
        buf_reset(why);
        buf_adds(why, ms->conn_text);
        return ms->conn_code;
    }
    struct buf mac, data;
    buf_init(&mac);
    buf_init(&data);
    buf_addc(&mac, C_MAIL);
    char *bracketed = xasprintf("<%s>", sender);
    add_macro(&mac, "{mail_addr}", sender);
    add_macro(&mac, "{mail_mailer}", sender[0] && !strchr(sender, '@') ? "local" : "esmtp");
    add_macro(&mac, "{auth_authen}", auth_user);
    buf_adds(&data, bracketed);
    buf_addc(&data, '\0');
    struct strlist p;
    sl_init(&p);
    sl_split(&p, args ? args : "", " ");
    for (size_t i = 0; i < p.n; i++) {
        buf_adds(&data, p.v[i]);
        buf_addc(&data, '\0');
    }
    sl_free(&p);
    int code = txn_step(ms, ST_MAIL, &mac, C_MAIL, &data, P_NOMAIL, P_NR_MAIL, why);
    free(bracketed);
    buf_free(&mac);
    buf_free(&data);
    if (code)
        milter_end_message(ms);
    return code;
}

int milter_rcpt(struct milter_set *ms, const char *rcpt, int local, struct buf *why)
{
    struct buf mac, data;
    buf_init(&mac);
    buf_init(&data);
    buf_addc(&mac, C_RCPT);
    add_macro(&mac, "{rcpt_addr}", rcpt);
    add_macro(&mac, "{rcpt_mailer}", local ? "local" : "esmtp");
    buf_addf(&data, "<%s>", rcpt);
    buf_addc(&data, '\0');
    int code = txn_step(ms, ST_RCPT, &mac, C_RCPT, &data, P_NORCPT, P_NR_RCPT, why);
    buf_free(&mac);
    buf_free(&data);
    return code;
}

int milter_data(struct milter_set *ms, const char *qid, struct buf *why)
{
    free(ms->qid);
    ms->qid = xstrdup(qid);
    struct buf mac;
    buf_init(&mac);
    buf_addc(&mac, C_DATA);
    add_macro(&mac, "i", qid);
    int code = txn_step(ms, ST_DATA, &mac, C_DATA, NULL, P_NODATA, P_NR_DATA, why);
    buf_free(&mac);
    return code;
}

/* ---- the message ---- */

/* Headers, end of headers, body (CR LF line ends, in chunks) to one filter. */
static int send_content(struct milter_set *ms, struct mfilter *f, const struct mhdrs *h,
                        mmods_read_fn rd, void *arg, long long size, struct buf *why)
{
    struct buf d, mac;
    buf_init(&d);
    buf_init(&mac);
    buf_addc(&mac, C_EOH);
    add_macro(&mac, "i", ms->qid);
    int code = 0;
    for (size_t i = 0; i < h->n && !code && !(f->pflags & P_NOHDRS) && !f->msg_done; i++) {
        const char *v = h->v[i].value;
        if (!(f->pflags & P_HDR_LEADSPC))
            while (*v == ' ' || *v == '\t')
                v++;
        buf_reset(&d);
        buf_adds(&d, h->v[i].name);
        buf_addc(&d, '\0');
        buf_adds(&d, v);
        buf_addc(&d, '\0');
        code = step(ms, f, ST_HDR, NULL, C_HEADER, d.s, d.len, (f->pflags & P_NR_HDR) != 0, why);
    }
    if (!code && !(f->pflags & P_NOEOH) && !f->msg_done && f->st == MF_OPEN)
        code = step(ms, f, ST_EOH, &mac, C_EOH, NULL, 0, (f->pflags & P_NR_EOH) != 0, why);
    char *in = xmalloc(BODY_CHUNK / 2);
    long long off = h->body_off;
    int cr = 0;
    while (!code && off < size && !(f->pflags & P_NOBODY) && !f->msg_done &&
           f->st == MF_OPEN) {
        ssize_t r = rd(arg, in, BODY_CHUNK / 2, off);
        if (r <= 0) {
            code = filter_failed(ms, f, "cannot read the stored message", why);
            break;
        }
        off += r;
        buf_reset(&d);
        for (ssize_t k = 0; k < r; k++) { /* LF -> CR LF: at most double */
            if (in[k] == '\n' && !cr)
                buf_addc(&d, '\r');
            cr = in[k] == '\r';
            buf_addc(&d, in[k]);
        }
        code = step(ms, f, ST_BODY, NULL, C_BODY, d.s, d.len, (f->pflags & P_NR_BODY) != 0, why);
        if (code == -2)
            code = 0, off = size; /* SMFIR_SKIP: no more body */
    }
    free(in);
    buf_free(&d);
    buf_free(&mac);
    return code;
}

/* A modification packet at the end of message: recorded in ms->mods if the
 * filter asked for the right at negotiation and it is well-formed.  0, or
 * -1 (out of protocol). */
static int modification(struct milter_set *ms, struct mfilter *f, const struct packet *pk)
{
    const char *p = pk->data.s ? pk->data.s : "";
    size_t n = pk->data.len;
    struct mmods *m = &ms->mods;
    size_t l1 = strnlen(p, n);
    const char *second = l1 < n ? p + l1 + 1 : NULL;
    switch (pk->cmd) {
    case R_ADDHEADER:
        return (f->actions & F_ADDHDRS) && second && strnlen(second, n - l1 - 1) < n - l1 - 1
                   ? mmods_add_header(m, MM_ADDHDR, 0, p, second) : -1;
    case R_INSHEADER:
    case R_CHGHEADER: {
        if (n < 6 || !(f->actions & (pk->cmd == R_INSHEADER ? F_ADDHDRS : F_CHGHDRS)))
            return -1;
        long idx = (long)get32(p);
        const char *name = p + 4;
        size_t nl = strnlen(name, n - 4);
        if (4 + nl + 1 >= n || strnlen(name + nl + 1, n - 4 - nl - 1) >= n - 4 - nl - 1)
            return -1;
        return mmods_add_header(m, pk->cmd == R_INSHEADER ? MM_INSHDR : MM_CHGHDR, idx, name,
                                name + nl + 1);
    }
    case R_ADDRCPT:
    case R_ADDRCPT_PAR:
        if (!(f->actions & (F_ADDRCPT | F_ADDRCPT_PAR)) || l1 >= n)
            return -1;
        return mmods_add_addr(m, MM_ADDRCPT, p);
    case R_DELRCPT:
        return (f->actions & F_DELRCPT) && l1 < n ? mmods_add_addr(m, MM_DELRCPT, p) : -1;
    case R_CHGFROM:
        return (f->actions & F_CHGFROM) && l1 < n ? mmods_add_addr(m, MM_CHGFROM, p) : -1;
    case R_QUARANTINE:
        if (!(f->actions & F_QUARANTINE) || l1 >= n)
            return -1;
        mmods_set_quarantine(m, p);
        return 0;
    default:
        return -1;
    }
}

/* End of message to one filter: modifications until the final verdict. */
static int eom(struct milter_set *ms, struct mfilter *f, struct buf *why)
{
    long long started = now_ms(), deadline = started + ms->timeout_ms;
    struct buf mac;
    buf_init(&mac);
    buf_addc(&mac, C_EOM);
    add_macro(&mac, "i", ms->qid);
    int r = send_step(f, &mac, C_EOM, NULL, 0, deadline);
    buf_free(&mac);
    if (r < 0)
        return filter_failed(ms, f, "cannot send to it", why);
    struct packet pk = { 0 };
    buf_init(&pk.data);
    int code = 0, body_started = 0, changes = 0;
    for (;;) {
        if (recv_packet(f, &pk, deadline) < 0) {
            code = filter_failed(ms, f, errno == ETIMEDOUT ? "no answer within filter-timeout="
                                                             : "broke the connection", why);
            break;
        }
        if (pk.cmd == R_PROGRESS) {
            deadline = progress(ms, started);
            continue;
        }
        if (++changes > MODS_MAX) {
            code = -3;
        } else if (pk.cmd == R_REPLBODY) {
            if (!(f->actions & F_CHGBODY)) {
                code = -3;
            } else {
                if (!body_started++)
                    mmods_body_start(&ms->mods);
                if (mmods_body_add(&ms->mods, pk.data.s ? pk.data.s : "", pk.data.len) < 0) {
                    buf_reset(why);
                    buf_adds(why, "5.3.4 a mail filter made the message too big");
                    code = 552;
                    break;
                }
                continue;
            }
        } else if (pk.cmd && strchr("+-2ehimq", pk.cmd)) {
            if (modification(ms, f, &pk) == 0)
                continue;
            code = -3;
        } else {
            code = verdict(ms, f, ST_EOM, &pk, why);
        }
        if (code == -3 || code == -2) {
            errno = 0;
            code = filter_failed(ms, f, "answered the end of message out of protocol", why);
        }
        break;
    }
    buf_free(&pk.data);
    f->in_msg = 0;
    return code;
}

int milter_message(struct milter_set *ms, mmods_read_fn rd, void *arg, long long size,
                   struct buf *why)
{
    struct mhdrs h;
    if (mmods_read_headers(rd, arg, size, HEADERS_MAX, &h) < 0) {
        buf_reset(why);
        buf_addf(why, "4.3.0 cannot read the stored message: %s", strerror(errno));
        return 451;
    }
    int code = 0;
    for (size_t i = 0; i < ms->n && !code && !ms->discard; i++) {
        struct mfilter *f = &ms->f[i];
        if (f->st == MF_DEAD) {
            code = f->in_msg ? dead_filter(ms, why) : 0;
            continue;
        }
        if (!wants(f, 0) || f->msg_done || !f->in_msg)
            continue;
        code = send_content(ms, f, &h, rd, arg, size, why);
        if (!code && f->st == MF_OPEN && !f->msg_done)
            code = eom(ms, f, why);
    }
    mmods_free_headers(&h);
    return code;
}

struct mmods *milter_mods(struct milter_set *ms)
{
    return &ms->mods;
}

int milter_discarded(const struct milter_set *ms)
{
    return ms->discard;
}

void milter_end_message(struct milter_set *ms)
{
    long long deadline = now_ms() + ms->timeout_ms;
    for (size_t i = 0; i < ms->n; i++) {
        struct mfilter *f = &ms->f[i];
        if (f->st == MF_OPEN && f->in_msg && send_packet(f, C_ABORT, NULL, 0, deadline) < 0) {
            filter_close(f);
            f->st = MF_DEAD;
        }
        f->in_msg = 0;
        f->msg_done = 0;
    }
    mmods_reset(&ms->mods);
    ms->discard = ms->conn_discard;
}

void milter_close(struct milter_set *ms)
{
    if (!ms)
        return;
    long long deadline = now_ms() + 1000;
    for (size_t i = 0; i < ms->n; i++) {
        struct mfilter *f = &ms->f[i];
        if (f->st == MF_OPEN)
            (void)send_packet(f, C_QUIT, NULL, 0, deadline);
        filter_close(f);
        mconf_free(&f->addr);
    }
    free(ms->f);
    free(ms->conn_text);
    free(ms->qid);
    mmods_free(&ms->mods);
    free(ms);
}
