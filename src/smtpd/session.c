/* session.c - the SMTP server state machine (RFC 5321, 1870, 2034, 2920, 6152,
 * 6531).  Runs unprivileged: in the daemon's per-connection child after it
 * dropped to user=, or as the invoking user for -bs.
 *
 * Structure: a command table (verb -> handler), a reply helper that always puts
 * an RFC 3463 code after the reply code, and the EHLO keyword list built in one
 * place, so STARTTLS, AUTH and DSN slot in as more table entries and keywords. */
#include "compat.h"

#include <errno.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "address.h"
#include "auth_helper.h"
#include "av_scan.h"
#include "expand.h"
#include "greylist.h"
#include "audit.h"
#include "dns.h"
#include "dnsbl.h"
#include "early_talker.h"
#include "envelope.h"
#include "log.h"
#include "milter.h"
#include "msgid_peek.h"
#include "msg.h"
#include "policy.h"
#include "privs.h"
#include "rcpt_limit.h"
#include "received.h"
#include "route.h"
#include "sasl.h"
#include "session.h"
#include "smtpd_auth.h"
#include "smtpd_io.h"
#include "smtpd_log.h"
#include "spool.h"
#include "tcp_wrappers.h"
#include "tls_proxy.h"
#include "vdomain.h"
#include "verdict.h"

#define HELO_MAX 255
#define BANNER_MAX 4096

enum sstate { S_START, S_GREETED, S_MAIL, S_RCPT };

struct session {
    const struct config *c;
    struct smtpio io;
    struct dns_ctx *dns;
    struct client cl;
    const struct session_conn *conn; /* NULL for -bs */
    long long start_ms;
    enum sstate state;
    int esmtp;
    char *helo;
    char *dead;           /* refused client: only QUIT is served; the reason */
    char *warning;        /* forbidden=accept/folder: why the client is marked */
    char *listed;         /* dnsbl=: why the client is listed; applied at MAIL
                             (forbidden=) unless it authenticated by then */
    char *local_user;     /* -bs: the invoking user */
    int errors;
    int quit;
    int closing;          /* end the session after the current reply */
    int tempfail;         /* the client check itself failed: 421, not 554 */
    int last_code;
    struct envelope env;  /* the transaction (valid in S_MAIL, S_RCPT) */
    long long declared_size;
    struct buf why;
    /* Shared by the TLS, AUTH and antispam features (issue 10/11): */
    int tls_active;       /* the connection is encrypted (STARTTLS done, or smtps) */
    char *tls_info;       /* "TLSv1.3 with cipher NAME (256/256 bits)" (the version
                             first) for Received:, or NULL */
    char *auth_user;      /* the authenticated name after AUTH succeeded, or NULL */
    int auth_fd;          /* the AUTH helper's socket (auth_helper.h), or -1 */
    int auth_failures;    /* failed AUTH attempts (smtpd_auth.h) */
    struct milter_set *milter; /* the mail filters (filter=), or NULL */
    struct grey_txn grey; /* greylist key of the transaction (greylist.h) */
    /* the event log (smtpd_log.h): the command being answered, the counts */
    const char *log_verb;
    const char *log_arg;
    struct slog_counts counts;
    int connect_logged;
};

/* ---- the event log ---- */

static void log_who(const struct session *s, struct slog_who *w)
{
    memset(w, 0, sizeof *w);
    w->ptr = s->cl.ptr;
    w->ip = s->cl.ip;
    w->helo = s->helo;
    w->user = s->auth_user ? s->auth_user : s->local_user;
    w->qid = s->env.qid;
    w->verb = s->log_verb;
    w->arg = s->log_arg;
    w->sender = s->state >= S_MAIL ? s->env.sender : NULL;
    w->nrcpt = s->env.nrcpts;
}

/* The connect line, logged when the session first has more to log or the
 * client first does more than greet: a session child that logged at its
 * start would keep a private copy of libc's syslog page for as long as its
 * client stays idle. */
static void log_connect(struct session *s)
{
    if (s->connect_logged)
        return;
    s->connect_logged = 1;
    struct slog_who w;
    log_who(s, &w);
    w.verb = NULL;
    slog_connect(&w);
}

/* Every refusal gets its one log line here, whichever check made it. */
static void log_refusal(struct session *s, int code, const char *text)
{
    log_connect(s);
    struct slog_who w;
    log_who(s, &w);
    slog_reject(&w, code, text);
}

/* ---- replies ---- */

/* Queue one reply line: "CODE[-| ]X.Y.Z text".  esc_text starts with the
 * enhanced code.  more: another line follows. */
static void reply_line(struct session *s, int code, int more, const char *fmt, va_list ap)
{
    struct buf t;
    buf_init(&t);
    buf_vaddf(&t, fmt, ap);
    /* nothing from the client may break the reply into lines */
    for (size_t i = 0; i < t.len; i++)
        if (t.s[i] == '\r' || t.s[i] == '\n' || t.s[i] == '\0')
            t.s[i] = ' ';
    io_printf(&s->io, "%03d%c%s\r\n", code, more ? '-' : ' ', t.s);
    if (!more && code >= 400)
        log_refusal(s, code, t.s);
    buf_free(&t);
    s->last_code = code;
}

static void reply(struct session *s, int code, const char *fmt, ...) PO_PRINTF(3, 4);
static void reply(struct session *s, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    reply_line(s, code, 0, fmt, ap);
    va_end(ap);
}

static void reply_more(struct session *s, int code, const char *fmt, ...) PO_PRINTF(3, 4);
static void reply_more(struct session *s, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    reply_line(s, code, 1, fmt, ap);
    va_end(ap);
}

/* A reply whose text came from policy ("X.Y.Z text"). */
static void reply_why(struct session *s, int code)
{
    reply(s, code, "%s", s->why.s);
}

/* A syntax or sequence error: counts toward max-errors. */
static void reply_error(struct session *s, int code, const char *fmt, ...) PO_PRINTF(3, 4);
static void reply_error(struct session *s, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    reply_line(s, code, 0, fmt, ap);
    va_end(ap);
    s->errors++;
}

/* ---- transaction ---- */

/* After a message the heap holds the freed data buffers (tens of KiB): hand
 * their pages back, so that a session idling after its mail stays as small
 * as a fresh one.  (glibc; other allocators decide for themselves.) */
static void release_memory(void)
{
#ifdef __GLIBC__
    malloc_trim(0);
#endif
}

static void txn_reset(struct session *s)
{
    env_free(&s->env);
    env_init(&s->env);
    grey_reset(&s->grey);
    s->declared_size = 0;
    if (s->milter)
        milter_end_message(s->milter);
    if (s->state > S_GREETED)
        s->state = S_GREETED;
}

/* ---- TLS (RFC 3207) ---- */

/* STARTTLS is offered on a daemon connection when a certificate is set
 * (the master then gave us the TLS proxy's request socket), until TLS is
 * active. */
static int tls_offered(const struct session *s)
{
    return s->conn && s->conn->tls_req > 0 && !s->tls_active;
}

/* The handshake, by the TLS proxy (tls_proxy.h), after the 220 of STARTTLS
 * or first of all on the smtps port.  0, or -1 after logging why (the
 * session must end: the connection is in an unknown state). */
static int tls_start(struct session *s)
{
    const char *ip = s->cl.ip[0] ? s->cl.ip : "unknown";
    int plain = -1, resumed = 0;
    char *info = NULL;
    int r = io_tls_prepare(&s->io);
    if (r) {
        log_notice("TLS handshake with %s failed: %s", ip,
                   r == IO_TIMEOUT ? "timed out sending the 220 reply" : strerror(errno));
        return -1;
    }
    if (tls_proxy_handoff(s->conn->tls_req, s->conn->fd, ip, s->c->tls_handshake_timeout * 1000,
                          s->io.session_deadline, &plain, &resumed, &info) < 0) {
        log_notice("TLS handshake with %s failed: %s", ip, info);
        free(info);
        s->io.broken = 1;
        return -1;
    }
    io_tls_switch(&s->io, plain);
    s->tls_active = 1;
    free(s->tls_info);
    s->tls_info = info;
    log_info("TLS with %s: %s%s", ip, s->tls_info, resumed ? " (session resumed)" : "");
    return 0;
}

static void cmd_starttls(struct session *s, char *arg)
{
    if (*str_trim(arg)) {
        reply_error(s, 501, "5.5.4 STARTTLS takes no argument");
        return;
    }
    if (s->tls_active) {
        reply_error(s, 503, "5.5.1 TLS is already active");
        return;
    }
    if (!tls_offered(s)) {
        reply_error(s, 502, "5.5.1 STARTTLS is not available on this server");
        return;
    }
    if (s->state > S_GREETED) {
        reply_error(s, 503, "5.5.1 a transaction is in progress; send RSET first");
        return;
    }
    reply(s, 220, "2.0.0 ready to start TLS");
    if (tls_start(s) < 0) {
        s->closing = 1;
        return;
    }
    /* RFC 3207 4.2: forget what the client told us in plaintext */
    txn_reset(s);
    free(s->helo);
    s->helo = NULL;
    if (s->auth_user) { /* (auth-plaintext) and the relaying it allowed */
        free(s->auth_user);
        s->auth_user = NULL;
        policy_relay(s->c, s->dns, &s->cl);
    }
    s->esmtp = 0;
    s->state = S_START;
}

/* AUTH (RFC 4954) only with a helper to ask, and only under TLS unless
 * auth-plaintext allows it (postoffice-smtpd(8)). */
static int auth_offered(const struct session *s)
{
    return s->auth_fd >= 0 && (s->tls_active || s->c->auth_plaintext);
}

/* ---- the EHLO keywords: later extensions add theirs here ---- */

static void ehlo_keywords(struct session *s, struct strlist *kw)
{
    if (s->c->size > 0)
        sl_add_owned(kw, xasprintf("SIZE %lld", s->c->size));
    else
        sl_add(kw, "SIZE");
    sl_add(kw, "8BITMIME");
    sl_add(kw, "PIPELINING");
    sl_add(kw, "ENHANCEDSTATUSCODES");
    sl_add(kw, "SMTPUTF8");
    if (tls_offered(s))
        sl_add(kw, "STARTTLS");
    if (auth_offered(s))
        sl_add(kw, "AUTH " SASL_MECHS);
    sl_add(kw, "HELP");
}

/* ---- commands ---- */

/* Is h an acceptable HELO argument: a domain-ish token or address literal of
 * printable ASCII, no spaces?  (We record it; we do not trust it.) */
static int helo_ok(const char *h)
{
    size_t n = strlen(h);
    if (n == 0 || n > HELO_MAX)
        return 0;
    for (; *h; h++)
        if ((unsigned char)*h <= 0x20 || (unsigned char)*h >= 0x7f)
            return 0;
    return 1;
}

static void cmd_helo_common(struct session *s, char *arg, int esmtp)
{
    char *h = str_trim(arg);
    if (!helo_ok(h)) {
        reply_error(s, 501, "5.5.4 %s needs your host name (one word)", esmtp ? "EHLO" : "HELO");
        return;
    }
    int code = policy_helo(s->c, s->dns, &s->cl, h, &s->why);
    if (code) {
        reply_why(s, code);
        free(s->dead);
        s->dead = xstrdup("you gave this host's own name in HELO/EHLO");
        return;
    }
    txn_reset(s);
    free(s->helo);
    s->helo = xstrdup(h);
    s->esmtp = esmtp;
    s->state = S_GREETED;
    if (s->milter) /* a refusal is answered at MAIL */
        milter_helo(s->milter, h, s->tls_info, &s->why);
    if (!esmtp) {
        reply(s, 250, "%s greets %s", s->c->hostname, h);
        return;
    }
    struct strlist kw;
    sl_init(&kw);
    ehlo_keywords(s, &kw);
    /* RFC 2034: the EHLO greeting line and keyword lines carry no status code */
    io_printf(&s->io, "250-%s greets %s\r\n", s->c->hostname, h);
    for (size_t i = 0; i < kw.n; i++)
        io_printf(&s->io, "250%c%s\r\n", i + 1 < kw.n ? '-' : ' ', kw.v[i]);
    s->last_code = 250;
    sl_free(&kw);
}

static void cmd_helo(struct session *s, char *arg)
{
    cmd_helo_common(s, arg, 0);
}

static void cmd_ehlo(struct session *s, char *arg)
{
    cmd_helo_common(s, arg, 1);
}

/* Skip "FROM:" / "TO:" (case-insensitive, spaces allowed around the colon as
 * many clients send them).  Returns the text after the colon or NULL. */
static char *after_keyword(char *arg, const char *kw)
{
    size_t n = strlen(kw);
    while (*arg == ' ')
        arg++;
    if (strncasecmp(arg, kw, n) != 0)
        return NULL;
    arg += n;
    while (*arg == ' ')
        arg++;
    if (*arg != ':')
        return NULL;
    return arg + 1;
}

/* MAIL parameters (RFC 1870 SIZE, RFC 6152 BODY, RFC 6531 SMTPUTF8).
 * 0 or a reply code (already sent). */
static int mail_params(struct session *s, const char *rest)
{
    struct strlist p;
    sl_init(&p);
    sl_split(&p, rest, " ");
    int code = 0;
    if (p.n && !s->esmtp) {
        reply_error(s, 555, "5.5.4 MAIL parameters need EHLO first");
        sl_free(&p);
        return 555;
    }
    for (size_t i = 0; i < p.n && !code; i++) {
        char *k = p.v[i], *v = strchr(k, '=');
        if (v)
            *v++ = '\0';
        unsigned long sz;
        if (!strcasecmp(k, "SIZE") && v && parse_ulong(v, &sz) == 0) {
            s->declared_size = (long long)sz;
            if (s->c->size > 0 && (long long)sz > s->c->size) {
                reply(s, 552, "5.3.4 message size %lu exceeds the limit of %lld bytes", sz,
                      s->c->size);
                code = 552;
            }
        } else if (!strcasecmp(k, "BODY") && v &&
                   (!strcasecmp(v, "7BIT") || !strcasecmp(v, "8BITMIME"))) {
            if (!strcasecmp(v, "8BITMIME"))
                s->env.flags |= ENV_8BIT;
        } else if (!strcasecmp(k, "SMTPUTF8") && !v) {
            s->env.flags |= ENV_SMTPUTF8;
        } else if (!strcasecmp(k, "AUTH") && v) {
            /* RFC 4954 5: checked, then not kept: we would only pass it on
             * when relaying over AUTH, which our client does not do, and
             * keeping it unused is the same as treating it as AUTH=<> */
            if (sauth_mail_param(v) < 0) {
                reply_error(s, 501, "5.5.4 invalid AUTH= parameter (xtext address or <>)");
                code = 501;
            }
        } else {
            reply_error(s, 555, "5.5.4 unsupported MAIL parameter %s", k);
            code = 555;
        }
    }
    sl_free(&p);
    return code;
}

/* RFC 6531 3.4: a non-ASCII address needs the SMTPUTF8 parameter. */
static int utf8_refused(struct session *s, const char *addr)
{
    if (s->env.flags & ENV_SMTPUTF8)
        return 0;
    for (const unsigned char *p = (const unsigned char *)addr; *p; p++) {
        if (*p >= 0x80) {
            reply(s, 553, "5.6.7 non-ASCII address needs MAIL FROM with SMTPUTF8");
            return 1;
        }
    }
    return 0;
}

/* dnsbl=: a listed client that has not authenticated gets the forbidden=
 * action at its first MAIL (not at the greeting, so that AUTH comes first):
 * refused (only QUIT afterwards), or marked.  1 if refused (reply sent). */
static int listed_refused(struct session *s)
{
    if (!s->listed || s->auth_user)
        return 0;
    char *why = s->listed;
    s->listed = NULL;
    if (verdict_refuses(s->c, VERDICT_FORBIDDEN)) {
        reply(s, 554, "5.7.1 %s", why);
        free(s->dead);
        s->dead = why;
        return 1;
    }
    log_notice("accepting mail from listed client %s: %s", s->cl.ip, why);
    if (!s->warning)
        s->warning = why;
    else
        free(why);
    return 0;
}

static void cmd_mail(struct session *s, char *arg)
{
    if (s->state == S_START) {
        reply_error(s, 503, "5.5.1 send HELO or EHLO first");
        return;
    }
    if (s->state != S_GREETED) {
        reply_error(s, 503, "5.5.1 a transaction is already in progress; send RSET first");
        return;
    }
    if (s->conn && s->conn->submission && !s->auth_user && !s->cl.trusted) {
        /* RFC 6409 4.3: the submission port serves authenticated users */
        reply(s, 530, "5.7.0 authentication required on the submission port");
        return;
    }
    if (listed_refused(s))
        return;
    char *p = after_keyword(arg, "FROM");
    if (!p) {
        reply_error(s, 501, "5.5.2 syntax: MAIL FROM:<address>");
        return;
    }
    char *addr = NULL;
    const char *rest = NULL, *why = NULL;
    if (addr_parse_path(p, 1, &addr, &rest, &why) < 0) {
        reply_error(s, 553, "5.1.7 bad sender address: %s", why);
        return;
    }
    if (mail_params(s, rest) || utf8_refused(s, addr)) {
        free(addr);
        txn_reset(s);
        return;
    }
    if (s->auth_user && s->c->auth_sender_check && !sauth_sender_ok(s->c, s->auth_user, addr)) {
        reply(s, 553, "5.7.1 sender <%s> is not yours: you authenticated as %s", addr,
              s->auth_user);
        free(addr);
        txn_reset(s);
        return;
    }
    int code = 0;
    if ((code = policy_minfree(s->c, &s->why)) ||
        (code = policy_mail(s->c, s->dns, &s->cl, addr, &s->why)) ||
        (s->milter && (code = milter_mail(s->milter, addr, rest, s->auth_user, &s->why)))) {
        reply_why(s, code);
        free(addr);
        txn_reset(s);
        return;
    }
    free(s->env.sender);
    s->env.sender = addr;
    if (!addr[0])
        s->env.flags |= ENV_BOUNCE;
    s->state = S_MAIL;
    grey_mail(&s->grey, s->c, &s->cl, s->conn && s->conn->submission, s->auth_user, addr);
    reply(s, 250, "2.1.0 sender <%s> ok", addr);
}

static int have_rcpt(const struct envelope *e, const char *addr)
{
    for (size_t i = 0; i < e->nrcpts; i++)
        if (!strcmp(e->rcpts[i].addr, addr))
            return 1;
    return 0;
}

/* forbidden=folder: a marked client's mail for a local account goes to that
 * account's folder (verdict.h). */
static char *folder_target(const struct session *s, const char *addr, char **owner)
{
    *owner = NULL;
    return s->warning ? verdict_folder(s->c, VERDICT_FORBIDDEN, addr, owner) : NULL;
}

static void cmd_rcpt(struct session *s, char *arg)
{
    if (s->state < S_MAIL) {
        reply_error(s, 503, "5.5.1 send MAIL FROM first");
        return;
    }
    char *p = after_keyword(arg, "TO");
    if (!p) {
        reply_error(s, 501, "5.5.2 syntax: RCPT TO:<address>");
        return;
    }
    char *addr = NULL;
    const char *rest = NULL, *why = NULL;
    if (addr_parse_path(p, 0, &addr, &rest, &why) < 0) {
        reply_error(s, 553, "5.1.3 bad recipient address: %s", why);
        return;
    }
    while (*rest == ' ')
        rest++;
    if (*rest) {
        reply_error(s, 555, "5.5.4 unsupported RCPT parameter %s", rest);
        free(addr);
        return;
    }
    if (utf8_refused(s, addr)) {
        free(addr);
        return;
    }
    if (s->c->max_rcpts > 0 && (long)s->env.nrcpts >= s->c->max_rcpts) {
        reply(s, 452, "4.5.3 too many recipients (at most %ld per message)", s->c->max_rcpts);
        free(addr);
        return;
    }
    int code = policy_rcpt_dns(s->c, s->dns, &s->cl, addr, &s->why);
    if (!code)
        code = grey_rcpt(&s->grey, s->c, &s->why); /* only valid recipients */
    if (!code) /* after the policy: only valid recipients (rcpt_limit.h) */
        code = rlimit_rcpt(s->c, addr, s->declared_size, &s->why);
    if (!code && s->milter) {
        const char *dom = strrchr(addr, '@');
        code = milter_rcpt(s->milter, addr, !dom || route_is_local_domain(s->c, dom + 1),
                           &s->why);
    }
    if (code) {
        reply_why(s, code);
        free(addr);
        return;
    }
    char *owner = NULL, *folder = folder_target(s, addr, &owner);
    if (folder && !have_rcpt(&s->env, folder))
        env_add_rcpt(&s->env, folder, addr, owner);
    else if (!folder && !have_rcpt(&s->env, addr))
        env_add_rcpt(&s->env, addr, addr, NULL);
    free(folder);
    free(owner);
    s->state = S_RCPT;
    reply(s, 250, "2.1.5 recipient <%s> ok", addr);
    free(addr);
}

/* ---- DATA ---- */

/* minfree= is checked again each time this much more data was stored. */
#define MINFREE_STEP (1024LL * 1024)

struct data_sink {
    struct session *s;
    struct spool_new *sn;  /* NULL once storing stopped (sink_stop) */
    long long size;        /* message bytes received (after unstuffing) */
    long long checked;     /* size at the last minfree check */
    int too_big;
    int no_space;          /* the queue's file system fell below minfree= */
    int write_errno;
    /* header scan: count Received: fields in the header block */
    int in_headers, at_bol, match;
    int received;
    long long hdr_len;     /* our own header lines at the start of the data */
};

static void scan_headers(struct data_sink *d, const char *p, size_t n)
{
    static const char key[] = "received:";
    for (size_t i = 0; i < n && d->in_headers; i++) {
        char ch = p[i];
        if (d->at_bol) {
            if (ch == '\n') {
                d->in_headers = 0; /* the empty line ends the header block */
                break;
            }
            d->at_bol = 0;
            d->match = 0;
        }
        if (ch == '\n') {
            d->at_bol = 1;
            continue;
        }
        if (d->match >= 0 && d->match < 9) {
            if ((ch | 0x20) == key[d->match] || ch == key[d->match]) {
                if (++d->match == 9)
                    d->received++;
            } else {
                d->match = -1;
            }
        }
    }
}

/* Stop storing the message: its partial queue file goes at once, while the
 * rest of the data is still read (within the session's time limits) and
 * discarded, so that the refusal comes after the real end of the data. */
static int sink_stop(struct data_sink *d)
{
    spool_abort(d->sn);
    d->sn = NULL;
    return -1;
}

static int data_sink_fn(void *arg, const char *p, size_t n)
{
    struct data_sink *d = arg;
    d->size += (long long)n;
    if (d->s->c->size > 0 && d->size > d->s->c->size) {
        d->too_big = 1;
        return sink_stop(d);
    }
    if (d->size - d->checked >= MINFREE_STEP) {
        d->checked = d->size;
        if (policy_minfree(d->s->c, &d->s->why)) {
            d->no_space = 1;
            return sink_stop(d);
        }
    }
    scan_headers(d, p, n);
    if (spool_new_write(d->sn, p, n) < 0) {
        d->write_errno = errno ? errno : EIO;
        return -1;
    }
    return 0;
}

/* RFC 3848 / RFC 6531: S for TLS, A for AUTH; the user is not named. */
static const char *protocol_name(const struct session *s)
{
    static const char *const esmtp[] = { "ESMTP", "ESMTPA", "ESMTPS", "ESMTPSA" };
    static const char *const utf8[] = { "UTF8SMTP", "UTF8SMTPA", "UTF8SMTPS", "UTF8SMTPSA" };
    int i = (s->tls_active ? 2 : 0) + (s->auth_user ? 1 : 0);
    if (s->env.flags & ENV_SMTPUTF8)
        return utf8[i];
    return s->esmtp ? esmtp[i] : "SMTP";
}

/* Hand a committed message to delivery: the daemon's master gives it to a
 * delivery worker at once (MSG_QUEUED, listener.h). */
static void notify_delivery(struct session *s, const char *qid)
{
    if (s->conn && s->conn->notify_fd >= 0) {
        struct buf b;
        buf_init(&b);
        msg_put_str(&b, qid);
        /* one short write is atomic on a pipe; if the daemon is busy (the
         * pipe is full) the periodic runner still finds the message */
        if (msg_send(s->conn->notify_fd, MSG_QUEUED, b.s, b.len, -1) < 0)
            log_warn("%s: cannot notify the daemon: %s", qid, strerror(errno));
        buf_free(&b);
    } else {
        (void)spool_trigger(s->c->queuedir);
    }
}

/* Where this session may write messages: the queue itself, or the maildrop
 * for an ordinary user's -bs. */
static char *spool_dir(const struct session *s)
{
    if (s->conn || access(s->c->queuedir, W_OK) == 0)
        return xstrdup(s->c->queuedir);
    return xasprintf("%s/maildrop", s->c->queuedir);
}

static void fill_envelope(struct session *s)
{
    struct envelope *e = &s->env;
    free(e->client_addr);
    free(e->client_name);
    free(e->helo);
    e->client_addr = s->cl.ip[0] ? xstrdup(s->cl.ip) : NULL;
    e->client_name = s->cl.ptr ? xstrdup(s->cl.ptr) : NULL;
    e->helo = s->helo ? str_sanitize(s->helo, strlen(s->helo)) : NULL;
    e->ctime = time(NULL);
    free(e->local_user);
    e->local_user = s->local_user ? xstrdup(s->local_user) : NULL;
}

/* Set s->why to a reply text and return code. */
static int why_set(struct session *s, int code, const char *fmt, ...) PO_PRINTF(3, 4);
static int why_set(struct session *s, int code, const char *fmt, ...)
{
    va_list ap;
    buf_reset(&s->why);
    va_start(ap, fmt);
    buf_vaddf(&s->why, fmt, ap);
    va_end(ap);
    return code;
}

/* Why the message just read cannot be taken: a reply code (text in s->why),
 * or 0.  What the client sent is judged first, then our own limits. */
static int data_refusal(struct session *s, const struct data_sink *d,
                        const struct io_data_result *r)
{
    const char *ip = s->cl.ip[0] ? s->cl.ip : "local";
    if (r->bare_lf || r->bare_cr || r->nul) {
        const char *what = r->bare_lf ? "bare LF" : r->bare_cr ? "bare CR" : "NUL byte";
        if (r->nul && !r->bare_lf && !r->bare_cr)
            return why_set(s, 550, "5.6.0 message refused: it holds a NUL byte, which SMTP "
                                   "does not allow");
        return why_set(s, 550, "5.6.0 message refused: it holds a %s; lines must end with "
                               "CR LF", what);
    }
    if (d->too_big) {
        return why_set(s, 552, "5.3.4 message too big: the limit is %lld bytes", s->c->size);
    }
    if (d->no_space) { /* s->why holds policy_minfree's reply */
        log_warn("%s: refused a message from %s: the queue's file system is below minfree=",
                 s->env.qid, ip);
        return 452;
    }
    if (d->write_errno == ENOSPC || d->write_errno == EDQUOT)
        return why_set(s, 452, "4.3.1 insufficient system storage; try again later");
    if (d->write_errno)
        return why_set(s, 451, "4.3.0 cannot write the message: %s; try again later",
                       strerror(d->write_errno));
    if (s->c->hops > 0 && d->received > s->c->hops)
        return why_set(s, 554, "5.4.6 too many Received: fields (%d, limit %ld); is there a "
                               "mail loop?", d->received, s->c->hops);
    return 0;
}

/* A message flagged at the end of DATA (av= here; a milter's rejection can
 * come the same way): the spam= action (verdict.h), whose header lines go
 * after our trace header.  0 (accept it) or a reply code (text in s->why). */
static int data_flagged(struct session *s, struct data_sink *d, const char *diag)
{
    struct buf hdr;
    buf_init(&hdr);
    int code = verdict_message(s->c, VERDICT_SPAM, diag, &s->env, &hdr, &s->why);
    if (!code && hdr.len && spool_new_insert(d->sn, d->hdr_len, hdr.s, hdr.len) < 0)
        code = why_set(s, 451, "4.3.0 cannot write the queue file: %s; try again later",
                       strerror(errno));
    buf_free(&hdr);
    return code;
}

/* av=: scan the stored message (av_scan.h).  0 or a reply code. */
static int data_verdict(struct session *s, struct data_sink *d)
{
    if (!s->c->av || !d->sn || (s->c->safe && s->auth_user))
        return 0;
    struct buf out;
    buf_init(&out);
    struct msgdata md = spool_new_data(d->sn);
    const char *ip = s->cl.ip[0] ? s->cl.ip : "local";
    int code = 0;
    enum av_result r = av_scan(s->c, &md, s->env.sender, &out);
    if (r == AV_FAILED) {
        log_err("%s: cannot scan the message from %s: %s", s->env.qid, ip, out.s);
        code = why_set(s, 451, "4.3.0 the message cannot be scanned now; try again later");
    } else if (r == AV_FLAGGED) {
        char *diag = verdict_diag(out.len ? out.s : "flagged by the scanner");
        log_notice("%s: av flagged the message from %s: %s", s->env.qid, ip, diag);
        code = data_flagged(s, d, diag);
        free(diag);
    }
    buf_free(&out);
    return code;
}

/* ---- mail filters at the end of the message ---- */

static ssize_t stored_read(void *arg, void *p, size_t n, long long off)
{
    return spool_new_pread(arg, p, n, off);
}

/* A mail filter refused the message at its end (code, text "X.Y.Z text" in
 * s->why, checked by milter.c): the one place that verdict is carried out.
 * A temporary refusal, or spam=bounce (the default): the message goes and
 * the client gets the filter's reply.  spam=accept or spam=folder: the
 * message is kept, marked with the filter's text (verdict.h), as the
 * original did.  Returns 1: answered; 0: commit the (marked) message. */
static int milter_message_refused(struct session *s, struct data_sink *d, int code)
{
    if (code >= 500 && !verdict_refuses(s->c, VERDICT_SPAM)) {
        log_notice("%s: kept although a mail filter refused it (client %s): %d %s",
                   s->env.qid, s->cl.ip[0] ? s->cl.ip : "local", code, s->why.s);
        char *diag = verdict_diag(s->why.s);
        buf_reset(&s->why);
        code = data_flagged(s, d, diag);
        free(diag);
        if (!code)
            return 0;
    }
    spool_abort(d->sn);
    d->sn = NULL;
    reply_why(s, code);
    return 1;
}

/* A message that will not be delivered although the client is told it was
 * taken: a filter discarded it, or removed every recipient. */
static int milter_message_dropped(struct session *s, struct data_sink *d, const char *why)
{
    log_notice("%s: %s; not queued", s->env.qid, why);
    spool_abort(d->sn);
    d->sn = NULL;
    reply(s, 250, "2.0.0 message accepted for delivery");
    return 1;
}

/* The filters' verdict on the stored message, and their changes applied to
 * it and its envelope.  0: commit it; 1: answered already. */
static int data_milter(struct session *s, struct data_sink *d)
{
    if (!s->milter)
        return 0;
    long long size = spool_new_size(d->sn);
    int code = milter_message(s->milter, stored_read, d->sn, size, &s->why);
    if (code)
        return milter_message_refused(s, d, code);
    if (milter_discarded(s->milter))
        return milter_message_dropped(s, d, "discarded by a mail filter");
    struct mmods *m = milter_mods(s->milter);
    char *dir = spool_dir(s);
    int r = mmods_apply(m, stored_read, d->sn, size, dir, &d->sn, &s->env);
    free(dir);
    if (r == 1)
        return milter_message_dropped(s, d, "a mail filter removed every recipient");
    if (r < 0) {
        int e = errno;
        log_err("%s: cannot apply the mail filters' changes: %s", s->env.qid, strerror(e));
        spool_abort(d->sn);
        d->sn = NULL;
        reply(s, 451, "4.3.0 cannot store the filtered message: %s; try again later",
              strerror(e));
        return 1;
    }
    if (m->quarantine)
        log_notice("%s: quarantined by a mail filter: %s", s->env.qid, m->quarantine);
    return 0;
}

/* After the end mark: decide and answer. */
static void data_finish(struct session *s, struct data_sink *d, const struct io_data_result *r)
{
    int code = data_refusal(s, d, r);
    if (!code)
        code = data_verdict(s, d);
    if (code) {
        spool_abort(d->sn); /* nothing of the message stays */
        reply_why(s, code);
        return;
    }
    if (data_milter(s, d))
        return;
    fill_envelope(s);
    char *msgid = msgid_peek(d->sn);
    if (spool_commit(d->sn, &s->env) < 0) {
        int e = errno;
        free(msgid);
        if (e == ENOSPC || e == EDQUOT)
            reply(s, 452, "4.3.1 insufficient system storage; try again later");
        else
            reply(s, 451, "4.3.0 cannot queue the message: %s; try again later", strerror(e));
        log_err("queueing a message from %s failed: %s", s->cl.ip, strerror(e));
        return;
    }
    log_connect(s);
    struct slog_who w;
    log_who(s, &w);
    slog_queued(&w, d->size, msgid, protocol_name(s));
    free(msgid);
    reply(s, 250, "2.0.0 message accepted for delivery, queue id %s", s->env.qid);
    io_flush(&s->io);
    notify_delivery(s, s->env.qid);
}

/* Start the queue file: our trace header first.  NULL after replying. */
static struct spool_new *data_open(struct session *s)
{
    char *dir = spool_dir(s);
    struct spool_new *sn = spool_new(dir);
    free(dir);
    if (!sn) {
        if (errno == ENOSPC || errno == EDQUOT)
            reply(s, 452, "4.3.1 insufficient system storage; try again later");
        else
            reply(s, 451, "4.3.0 cannot create a queue file: %s; try again later",
                  strerror(errno));
        return NULL;
    }
    str_copy(s->env.qid, spool_new_qid(sn), sizeof s->env.qid);
    struct buf hdr;
    buf_init(&hdr);
    struct received_info ri = {
        .helo = s->helo, .ptr = s->cl.ptr, .ip = s->cl.ip, .by = s->c->hostname,
        .with = protocol_name(s), .qid = s->env.qid,
        .for_rcpt = s->env.nrcpts == 1 ? s->env.rcpts[0].addr : NULL, .when = time(NULL),
        .local_user = s->local_user, .tls = s->tls_info,
    };
    received_format(&ri, &hdr);
    if (s->warning) /* forbidden=accept/folder: the mail says why it is suspect */
        verdict_header(s->warning, &hdr);
    int werr = spool_new_write(sn, hdr.s, hdr.len);
    buf_free(&hdr);
    if (werr < 0) {
        int e = errno;
        spool_abort(sn);
        reply(s, 451, "4.3.0 cannot write the queue file: %s; try again later", strerror(e));
        return NULL;
    }
    return sn;
}

static void cmd_data(struct session *s, char *arg)
{
    if (*str_trim(arg)) {
        reply_error(s, 501, "5.5.4 DATA takes no argument");
        return;
    }
    if (s->state < S_MAIL) {
        reply_error(s, 503, "5.5.1 send MAIL FROM first");
        return;
    }
    if (s->state < S_RCPT) {
        reply_error(s, 554, "5.5.1 no valid recipients");
        return;
    }
    int code = policy_minfree(s->c, &s->why);
    if (code) {
        reply_why(s, code);
        return;
    }
    struct data_sink d = { .s = s, .in_headers = 1, .at_bol = 1 };
    if (!(d.sn = data_open(s)))
        return;
    d.hdr_len = spool_new_data(d.sn).len;
    if (s->milter && (code = milter_data(s->milter, s->env.qid, &s->why))) {
        spool_abort(d.sn);
        reply_why(s, code);
        return;
    }

    reply(s, 354, "end data with <CR><LF>.<CR><LF>");
    struct io_data_result r;
    enum io_status st = io_read_data(&s->io, data_sink_fn, &d, &r);
    if (st != IO_OK) {
        spool_abort(d.sn);
        s->closing = 1;
        if (st == IO_TIMEOUT)
            reply(s, 421, "4.4.2 %s timeout while reading the message; closing", s->c->hostname);
        log_notice("%s: connection with %s ended during DATA (%s)", s->env.qid,
                   s->cl.ip[0] ? s->cl.ip : "local", st == IO_EOF ? "EOF" : "timeout/error");
        return;
    }
    data_finish(s, &d, &r);
    txn_reset(s);
    release_memory();
}

/* ---- the small commands ---- */

static void cmd_rset(struct session *s, char *arg)
{
    (void)arg;
    txn_reset(s);
    reply(s, 250, "2.0.0 reset");
}

static void cmd_noop(struct session *s, char *arg)
{
    (void)arg;
    reply(s, 250, "2.0.0 OK");
}

static void cmd_quit(struct session *s, char *arg)
{
    (void)arg;
    reply(s, 221, "2.0.0 %s closing connection", s->c->hostname);
    s->quit = 1;
}

static void cmd_vrfy(struct session *s, char *arg)
{
    (void)arg;
    reply(s, 252, "2.5.2 cannot verify addresses here; send the message and it will be delivered or returned");
}

static void cmd_expn(struct session *s, char *arg)
{
    (void)arg;
    reply(s, 502, "5.5.1 EXPN is not available on this server");
}

/* DEBUG shows the whole configuration: only to a client that could read it
 * anyway or that the administrator trusts (-bs users, loopback and our own
 * addresses, trusted=), never to everybody that relay=1 or localmx lets in. */
static int debug_allowed(const struct session *s)
{
    if (!s->c->debug)
        return 0;
    return s->cl.local || s->cl.trusted || net_is_loopback(&s->cl.addr) ||
           net_is_local_interface(&s->cl.addr) == 1;
}

static void cmd_help(struct session *s, char *arg)
{
    (void)arg;
    reply_more(s, 214, "2.0.0 postoffice %s; commands:", PO_VERSION);
    reply_more(s, 214, "2.0.0   HELO EHLO MAIL RCPT DATA RSET NOOP QUIT VRFY HELP%s",
               debug_allowed(s) ? " DEBUG" : "");
    reply(s, 214, "2.0.0 see RFC 5321, and postoffice-smtpd(8) for this server's limits");
}

static void cmd_debug(struct session *s, char *arg)
{
    (void)arg;
    if (!s->c->debug) {
        reply_error(s, 502, "5.5.1 DEBUG is disabled (set the debug option to enable it)");
        return;
    }
    if (!debug_allowed(s)) {
        /* the same code as when it is off: nothing to learn from the reply */
        reply_error(s, 502, "5.5.1 DEBUG is not available to %s", s->cl.ip);
        return;
    }
    struct buf b;
    buf_init(&b);
    config_dump(s->c, &b);
    buf_addf(&b, "client %s name %s relay-ok %d trusted %d\n", s->cl.ip[0] ? s->cl.ip : "local",
             s->cl.ptr ? s->cl.ptr : "-", s->cl.relay_ok, s->cl.trusted);
    if (s->state >= S_MAIL) {
        buf_addf(&b, "from <%s>\n", s->env.sender);
        for (size_t i = 0; i < s->env.nrcpts; i++)
            buf_addf(&b, "to <%s>\n", s->env.rcpts[i].addr);
    }
    char *line = b.s, *nl;
    while ((nl = strchr(line, '\n'))) {
        *nl = '\0';
        char *clean = str_sanitize(line, strlen(line));
        reply_more(s, 250, "2.0.0 %s", clean);
        free(clean);
        line = nl + 1;
    }
    reply(s, 250, "2.0.0 end of debug output");
    buf_free(&b);
}

static void cmd_auth(struct session *s, char *arg)
{
    if (!auth_offered(s)) {
        if (s->auth_fd >= 0) /* RFC 4954 6 */
            reply_error(s, 538, "5.7.11 AUTH needs an encrypted connection (STARTTLS first)");
        else
            reply_error(s, 502, "5.5.1 AUTH is not available here");
        return;
    }
    if (!s->esmtp || s->state == S_START) {
        reply_error(s, 503, "5.5.1 send EHLO first");
        return;
    }
    if (s->auth_user) {
        reply_error(s, 503, "5.5.1 already authenticated");
        return;
    }
    if (s->state != S_GREETED) {
        reply_error(s, 503, "5.5.1 AUTH is not allowed during a mail transaction");
        return;
    }
    struct sauth a = { .c = s->c, .io = &s->io, .helper_fd = s->auth_fd,
                       .client = s->cl.ip[0] ? s->cl.ip : "local",
                       .client_name = s->cl.ptr,
                       .failures = s->auth_failures };
    int closing = 0;
    s->last_code = sauth_run(&a, arg, &s->auth_user, &closing);
    s->auth_failures = a.failures;
    if (s->auth_user)
        s->cl.relay_ok = 1; /* and greylisting and DNSBLs skip it */
    if (s->auth_user && s->c->safe && s->milter) {
        /* safe: an authenticated user's mail skips the filters and av= */
        milter_close(s->milter);
        s->milter = NULL;
    }
    if (closing)
        s->closing = 1;
}

struct command {
    const char *verb;
    void (*fn)(struct session *, char *);
};

static const struct command commands[] = {
    { "HELO", cmd_helo }, { "EHLO", cmd_ehlo }, { "MAIL", cmd_mail },
    { "RCPT", cmd_rcpt }, { "DATA", cmd_data }, { "RSET", cmd_rset },
    { "NOOP", cmd_noop }, { "QUIT", cmd_quit }, { "VRFY", cmd_vrfy },
    { "EXPN", cmd_expn }, { "HELP", cmd_help }, { "DEBUG", cmd_debug },
    { "STARTTLS", cmd_starttls },
    { "AUTH", cmd_auth },
};

/* Find the command: the whole verb, followed by a space or the end (unlike the
 * original, "HELOX" is not HELO).  *arg is set to the argument text. */
static const struct command *find_command(char *line, char **arg)
{
    size_t n = strcspn(line, " ");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        if (strlen(commands[i].verb) == n && !strncasecmp(line, commands[i].verb, n)) {
            *arg = line + n + (line[n] == ' ');
            return &commands[i];
        }
    }
    return NULL;
}

/* Execute one command line. */
static void dispatch(struct session *s, char *line)
{
    char *arg = NULL;
    const struct command *cmd = find_command(line, &arg);
    const char *verb = cmd ? cmd->verb : "????";
    s->log_verb = cmd ? cmd->verb : NULL;
    s->log_arg = arg;
    if (cmd && cmd->fn != cmd_ehlo && cmd->fn != cmd_helo && cmd->fn != cmd_noop)
        log_connect(s);
    if (!cmd) {
        reply_error(s, 500, "5.5.2 unrecognised command");
    } else if (s->dead && cmd->fn != cmd_quit) {
        reply_error(s, 503, "5.7.1 refused: %s; only QUIT is accepted", s->dead);
    } else {
        cmd->fn(s, arg);
    }
    audit_record(s->c, s->start_ms, s->cl.ip, verb, s->last_code, cmd == NULL ? line : NULL);
    slog_count(&s->counts, s->log_verb, s->last_code);
    s->log_verb = s->log_arg = NULL;
}

/* ---- session start ---- */

/* The 220 greeting, with the banner file's lines joined in. */
static void greet(struct session *s)
{
    struct buf b;
    buf_init(&b);
    if (s->c->banner && read_file(s->c->banner, &b, BANNER_MAX) == 0 && b.len) {
        io_printf(&s->io, "220-%s ESMTP postoffice\r\n", s->c->hostname);
        char *line = b.s, *nl;
        while ((nl = strchr(line, '\n'))) {
            *nl = '\0';
            char *clean = str_sanitize(line, strlen(line));
            io_printf(&s->io, "220-%s\r\n", clean);
            free(clean);
            line = nl + 1;
        }
        if (*line) {
            char *clean = str_sanitize(line, strlen(line));
            io_printf(&s->io, "220-%s\r\n", clean);
            free(clean);
        }
        io_printf(&s->io, "220 %s ready\r\n", s->c->hostname);
    } else {
        io_printf(&s->io, "220 %s ESMTP postoffice ready\r\n", s->c->hostname);
    }
    s->last_code = 220;
    buf_free(&b);
}

/* tcp wrappers and paranoid: refuse (forbidden=bounce) or mark the client;
 * dnsbl=: note the listing for MAIL (listed_refused). */
static void check_client(struct session *s)
{
    if (s->cl.local || s->cl.trusted)
        return;
    const char *why = NULL;
    char *reason = NULL;
    int ok = wrap_check(s->c, s->cl.ip, s->cl.ptr, &why);
    if (ok < 0) {
        /* our fault, not the client's: a temporary refusal, so mail waits */
        log_err("tcp wrappers: %s", why);
        s->tempfail = 1;
        reason = xstrdup("access control cannot be checked on this server now");
    } else if (ok == 0) {
        reason = xasprintf("%s does not accept mail from %s", s->c->hostname, s->cl.ip);
    } else if (s->c->paranoid && s->cl.ptr_status != DNS_OK && !s->cl.relay_ok) {
        reason = xasprintf("%s has no reverse DNS name that resolves back to it", s->cl.ip);
    } else if (!s->cl.relay_ok && !(s->conn && s->conn->submission) && /* users' */
               dnsbl_check(s->c, s->dns, &s->cl.addr, &s->listed)) { /* dynamic IPs are listed */
        log_notice("dnsbl: %s", s->listed);
    }
    if (!reason)
        return;
    if (verdict_refuses(s->c, VERDICT_FORBIDDEN) || ok < 0) {
        if (ok == 0) {
            char *t = verdict_refusal(s->c, VERDICT_FORBIDDEN, reason);
            free(reason);
            reason = t;
        }
        s->dead = reason;
    } else {
        log_notice("accepting mail from forbidden client %s: %s", s->cl.ip, reason);
        s->warning = reason;
    }
}

/* early-talker=: is this session checked (early_talker.h)? */
static int early_checked(const struct session *s)
{
    /* after STARTTLS the client has shown it waits, and what is pending on
     * the socket is TLS records, not commands */
    return s->conn && s->c->early_talker && !s->conn->implicit_tls && !s->tls_active &&
           !s->cl.trusted;
}

/* Refuse a client that did not wait (554 5.5.0), then close. */
static void early_refuse(struct session *s, const char *what)
{
    reply(s, 554, "5.5.0 %s refuses to talk to a client that %s", s->c->hostname, what);
    audit_record(s->c, s->start_ms, s->cl.ip, "CONN", 554, "early talker");
    early_close(&s->io);
    s->closing = 1;
}

static void session_init(struct session *s, const struct config *c)
{
    memset(s, 0, sizeof *s);
    s->c = c;
    s->start_ms = now_ms();
    s->auth_fd = -1;
    env_init(&s->env);
    buf_init(&s->why);
}

static void session_free(struct session *s)
{
    env_free(&s->env);
    grey_reset(&s->grey);
    buf_free(&s->why);
    free(s->helo);
    free(s->dead);
    free(s->warning);
    free(s->listed);
    free(s->local_user);
    free(s->tls_info);
    free(s->auth_user);
    milter_close(s->milter);
    free(s->cl.ptr);
    if (s->dns)
        dns_close(s->dns);
    io_free(&s->io);
}

/* The command loop.  Returns the exit status. */
static int session_loop(struct session *s)
{
    struct buf line;
    buf_init(&line);
    size_t max = s->c->line_max > 0 ? (size_t)s->c->line_max : 512;
    while (!s->quit && !s->closing) {
        int bare_cr = 0;
        enum io_status st = io_getline(&s->io, &line, max, &bare_cr);
        /* the command that finds the limit reached is read first: closing
         * with unread input would make the kernel reset the connection and
         * the client might never see the 421 */
        if (s->c->max_errors > 0 && s->errors >= s->c->max_errors && st != IO_TIMEOUT &&
            st != IO_EOF && st != IO_ERROR) {
            reply(s, 421, "4.7.0 %s too many errors; closing connection", s->c->hostname);
            audit_record(s->c, s->start_ms, s->cl.ip, "QUIT", 421, "errors");
            break;
        }
        if (st == IO_TOOLONG) {
            reply_error(s, 500, "5.5.6 command line too long (the limit is %zu bytes)", max);
            continue;
        }
        if (st == IO_TIMEOUT) {
            reply(s, 421, "4.4.2 %s %s; closing connection", s->c->hostname,
                  s->io.timed_out_session ? "session time limit reached" : "idle timeout");
            audit_record(s->c, s->start_ms, s->cl.ip, "QUIT", 421, "timeout");
            break;
        }
        if (st != IO_OK) {
            audit_record(s->c, s->start_ms, s->cl.ip, "QUIT", 0, "EOF");
            break;
        }
        if (bare_cr || strlen(line.s) != line.len) {
            reply_error(s, 500, "5.5.2 command refused: it holds a %s",
                        strlen(line.s) != line.len ? "NUL byte" : "bare CR");
            continue;
        }
        if (!s->esmtp && early_checked(s) && early_pipelined(&s->io)) {
            early_refuse(s, "sent commands ahead without PIPELINING");
            break;
        }
        dispatch(s, line.s);
    }
    io_flush(&s->io);
    buf_free(&line);
    log_connect(s);
    struct slog_who w;
    log_who(s, &w);
    slog_disconnect(&w, &s->counts);
    return s->quit ? 0 : 1;
}

/* The mail filters get the connection (filter=; local submissions only with
 * filter-local=).  A refusal is answered at MAIL. */
static void session_filters(struct session *s)
{
    if (s->c->filter.n == 0 || (s->cl.local && !s->c->filter_local))
        return;
    s->milter = milter_open(s->c);
    struct milter_client mc = { .ip = s->cl.ip, .ptr = s->cl.ptr };
    char ifa[64] = "";
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    struct netaddr na;
    if (s->conn && getsockname(s->conn->fd, (struct sockaddr *)&ss, &sl) == 0 &&
        net_from_sockaddr((struct sockaddr *)&ss, &na) == 0) {
        net_format(&na, ifa, sizeof ifa);
        mc.if_addr = ifa;
    }
    sl = sizeof ss;
    if (s->conn && getpeername(s->conn->fd, (struct sockaddr *)&ss, &sl) == 0)
        mc.port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                                 : ((struct sockaddr_in *)&ss)->sin_port);
    milter_connect(s->milter, &mc, &s->why);
}

/* Identify a network client, apply the connection policies and greet. */
static void session_open(struct session *s, const struct netaddr *peer, const char *peer_ip)
{
    const struct config *c = s->c;
    if (peer)
        s->cl.addr = *peer;
    else
        net_parse(peer_ip, &s->cl.addr);
    net_format(&s->cl.addr, s->cl.ip, sizeof s->cl.ip);
    if (net_is_loopback(&s->cl.addr)) {
        /* loopback may relay and is not checked: no resolver needed */
        s->cl.ptr = xstrdup("localhost");
        s->cl.ptr_status = DNS_OK;
    } else {
        s->dns = dns_open(c);
        policy_lookup_client(s->dns, &s->cl);
    }
    policy_relay(c, s->dns, &s->cl);
    check_client(s);
    s->log_verb = "CONNECT";
    if (s->dead && s->tempfail) {
        reply(s, 421, "4.3.0 %s %s; try again later", c->hostname, s->dead);
        audit_record(c, s->start_ms, s->cl.ip, "CONN", 421, "tempfail");
        s->closing = 1;
    } else if (s->dead) {
        reply(s, 554, "5.7.1 %s", s->dead);
        audit_record(c, s->start_ms, s->cl.ip, "CONN", 554, "forbidden");
    } else if (early_checked(s) && early_before_greeting(s->conn->fd, c->greet_pause * 1000)) {
        early_refuse(s, "talked before the greeting");
    } else {
        session_filters(s);
        greet(s);
        audit_record(c, s->start_ms, s->cl.ip, "CONN", 220, s->warning ? "forbidden" : "");
    }
    s->log_verb = NULL;
}

int session_run(const struct config *c, const struct session_conn *conn)
{
    struct session s;
    session_init(&s, c);
    s.conn = conn;
    s.auth_fd = conn->auth_fd > 0 ? conn->auth_fd : -1;
    io_init(&s.io, conn->fd, conn->fd, c->timeout * 1000, c->session_timeout * 1000);
    if (conn->implicit_tls) {
        /* smtps: TLS from the first byte, then the greeting */
        net_format(conn->peer, s.cl.ip, sizeof s.cl.ip);
        if (conn->tls_req <= 0 || tls_start(&s) < 0) {
            if (conn->tls_req <= 0)
                log_err("smtps connection from %s without the TLS proxy", s.cl.ip);
            s.io.broken = 1; /* nothing in plaintext on this port */
            session_free(&s);
            return 1;
        }
    }
    session_open(&s, conn->peer, NULL);
    int rc = session_loop(&s);
    session_free(&s);
    return rc;
}

int session_run_stdio_peer(const struct config *c, const char *peer_ip)
{
    struct session s;
    struct netaddr check;
    if (peer_ip && net_parse(peer_ip, &check) < 0) {
        say("-R %s: not a numeric IPv4 or IPv6 address", peer_ip);
        return 64; /* EX_USAGE */
    }
    session_init(&s, c);
    io_init(&s.io, 0, 1, c->timeout * 1000, c->session_timeout * 1000);
    /* AUTH for root's -bs only (inetd, tests with -R): an ordinary user's
     * session has no privileged helper, and may relay anyway */
    struct auth_helper h = { .pid = 0, .fd = -1 };
    if (getuid() == 0 && c->auth_plaintext && auth_helper_start_stdio(&h, c) == 0)
        s.auth_fd = h.fd;
    struct passwd *pw = getpwuid(getuid());
    s.local_user = xstrdup(pw ? pw->pw_name : "nobody");
    if (peer_ip) {
        session_open(&s, NULL, peer_ip);
    } else {
        s.cl.local = 1; /* a local user: may relay, no DNS checks */
        s.cl.relay_ok = 1;
        session_filters(&s);
        greet(&s);
    }
    int rc = session_loop(&s);
    session_free(&s);
    auth_helper_finish(&h);
    return rc;
}

int session_run_stdio(const struct config *c)
{
    return session_run_stdio_peer(c, NULL);
}
