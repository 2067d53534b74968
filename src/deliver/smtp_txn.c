/* smtp_txn.c - one SMTP transaction on an open connection: MAIL, RCPT...,
 * DATA (pipelined when offered), the message text through msgout, the final
 * dot, and a result for each recipient.  Runs unprivileged (see smtp_txn.h). */
#include "compat.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "message_out.h"
#include "smtp_conn.h"
#include "smtp_reply.h"
#include "smtp_txn.h"
#include "util.h"

void smtp_rcpt_set(struct smtp_rcpt *rs, enum smtpc_outcome o, const char *status,
                       const struct smtp_conn *k, int final)
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

static void set_from_reply(struct smtp_rcpt *rs, const struct smtp_reply *r, const struct smtp_conn *k)
{
    char *st = smtp_reply_status(r);
    enum smtpc_outcome o = r->code / 100 == 2 ? SO_SENT
                           : r->code / 100 == 5 ? SO_BOUNCED
                                                : SO_DEFERRED;
    smtp_rcpt_set(rs, o, st, k, 1);
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
 * then the final dot. */
static int send_body(struct smtp_conn *k, const struct envelope *e, const struct msgdata *d)
{
    struct msgout mo = {MO_SMTP, e->sender, NULL};
    if (k->verbose)
        fprintf(stderr, "%s << (message text, then .)\n", k->addr);
    if (msgout_write_to(d, smtp_body_sink, k, &mo) < 0) {
        if (k->fd >= 0) /* a read error of our own, not the connection's */
            smtp_conn_fail(k, "4.3.0 %s: cannot read the message: %s", k->relay,
                           strerror(errno));
        return -1;
    }
    return smtp_send_bytes(k, ".\r\n", 3, smtp_tmo(k, SMTP_TMO_BLOCK));
}

/* Give every recipient not finally answered the connection's error; those
 * stay eligible for the next host, unless the message text had started to go
 * to them (RFC 5321 6.1: better late than twice). */
static void conn_lost(struct smtp_rcpt *rs, size_t n, const struct smtp_conn *k)
{
    for (size_t i = 0; i < n; i++)
        if (!rs[i].final || rs[i].accepted) {
            /* once the text went out it may have arrived: no other host now */
            int maybe_sent = rs[i].accepted && k->body_started;
            smtp_rcpt_set(&rs[i], SO_DEFERRED, k->err ? k->err : "4.4.2 connection lost", k,
                       maybe_sent);
            rs[i].accepted = 0;
        }
}

/* Refusals decided before talking: SMTPUTF8 needed but not offered (5.6.7),
 * a declared SIZE limit below the message (5.3.4).  Malloc'd status or NULL. */
static char *refuse_early(const struct smtp_conn *k, long long size, int need_utf8)
{
    if (need_utf8 && !k->ext_smtputf8)
        return xasprintf("5.6.7 %s does not support SMTPUTF8, which this message needs",
                         k->host);
    if (k->size_limit > 0 && size > k->size_limit)
        return xasprintf("5.3.4 message of %lld bytes exceeds the limit of %lld bytes "
                         "declared by %s", size, k->size_limit, k->host);
    return NULL;
}

static void mail_command(const struct smtp_conn *k, const struct envelope *e, long long size,
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
}

/* Does recipient i take part in this transaction (RCPT sent)? */
static int in_transaction(const struct smtp_rcpt *x)
{
    return !x->final && !unsafe_for_cmd(x->addr);
}

/* One RCPT reply for recipient x. */
static void rcpt_result(struct smtp_rcpt *x, const struct smtp_reply *r, const struct smtp_conn *k)
{
    set_from_reply(x, r, k);
    x->accepted = r->code / 100 == 2;
    if (x->accepted)
        x->final = 0; /* accepted is not delivered yet */
}

/* MAIL and every RCPT (and, pipelined, DATA).  mail_code and mail_st get
 * the MAIL reply.  0, or -1 if the connection broke. */
static int envelope_phase(struct smtp_conn *k, const char *mailcmd, struct smtp_rcpt *rs, size_t n,
                          int pipe, int *mail_code, char **mail_st)
{
    struct smtp_reply r;
    struct buf cmd;
    int rc = -1;
    smtp_reply_init(&r);
    buf_init(&cmd);
    for (size_t i = 0; i < n; i++)
        if (!rs[i].final && unsafe_for_cmd(rs[i].addr))
            smtp_rcpt_set(&rs[i], SO_BOUNCED, "5.1.3 recipient address unusable in SMTP", k, 1);
    if (pipe)
        smtp_cork(k);
    if (smtp_send_cmd(k, mailcmd, smtp_tmo(k, SMTP_TMO_MAIL)) < 0)
        goto out;
    if (!pipe) {
        if (smtp_read_reply(k, &r, smtp_tmo(k, SMTP_TMO_MAIL)) < 0)
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
        if (smtp_send_cmd(k, cmd.s, smtp_tmo(k, SMTP_TMO_RCPT)) < 0)
            goto out;
        if (!pipe) {
            if (smtp_read_reply(k, &r, smtp_tmo(k, SMTP_TMO_RCPT)) < 0)
                goto out;
            rcpt_result(&rs[i], &r, k);
        }
    }
    if (pipe) { /* DATA ends the group (RFC 2920); then the replies in order */
        if (smtp_send_cmd(k, "DATA", smtp_tmo(k, SMTP_TMO_DATA)) < 0 || smtp_uncork(k, smtp_tmo(k, SMTP_TMO_DATA)) < 0 ||
            smtp_read_reply(k, &r, smtp_tmo(k, SMTP_TMO_MAIL)) < 0)
            goto out;
        *mail_code = r.code;
        *mail_st = smtp_reply_status(&r);
        /* first collect the replies, then apply them (in_transaction changes) */
        struct smtp_reply *rr = xcalloc(n ? n : 1, sizeof *rr);
        int ok = 1;
        for (size_t i = 0; i < n && ok; i++) {
            smtp_reply_init(&rr[i]);
            if (in_transaction(&rs[i]))
                ok = smtp_read_reply(k, &rr[i], smtp_tmo(k, SMTP_TMO_RCPT)) == 0;
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
static int data_phase(struct smtp_conn *k, const struct envelope *e, const struct msgdata *d,
                      int pipe,
                      struct smtp_rcpt *rs, size_t n)
{
    struct smtp_reply r;
    int rc = -1;
    size_t accepted = 0;
    smtp_reply_init(&r);
    for (size_t i = 0; i < n; i++)
        accepted += rs[i].accepted;
    if (!pipe && accepted == 0)
        return 0;
    if (!pipe && smtp_send_cmd(k, "DATA", smtp_tmo(k, SMTP_TMO_DATA)) < 0)
        goto out;
    if (smtp_read_reply(k, &r, smtp_tmo(k, SMTP_TMO_DATA)) < 0)
        goto out;
    if (r.code != 354) { /* RFC 5321 3.3: the DATA failure answers for all accepted */
        for (size_t i = 0; i < n; i++)
            if (rs[i].accepted) {
                set_from_reply(&rs[i], &r, k);
                if (r.code / 100 == 2) /* 2xx to DATA is a protocol error */
                    smtp_rcpt_set(&rs[i], SO_DEFERRED, "4.5.0 DATA answered without 354", k, 1);
                rs[i].accepted = 0;
            }
        rc = 0;
        goto out;
    }
    if (accepted == 0) { /* pipelined DATA accepted with no recipient: send nothing */
        if (smtp_send_bytes(k, ".\r\n", 3, smtp_tmo(k, SMTP_TMO_BLOCK)) == 0)
            smtp_read_reply(k, &r, smtp_tmo(k, SMTP_TMO_DOT));
        rc = 0;
        goto out;
    }
    k->body_started = 1;
    if (send_body(k, e, d) < 0 || smtp_read_reply(k, &r, smtp_tmo(k, SMTP_TMO_DOT)) < 0)
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
static void mail_refused(struct smtp_conn *k, int pipe, int code, const char *st,
                         struct smtp_rcpt *rs, size_t n)
{
    /* the relay host wants AUTH: the administrator's to fix, not the sender's */
    char *own = k->policy && k->policy->relay && code == 530
                    ? xasprintf("4.7.0 %s requires authentication (set relay-auth=): %s",
                                k->relay, st) : NULL;
    for (size_t i = 0; i < n; i++)
        if (!rs[i].final)
            smtp_rcpt_set(&rs[i], own ? SO_DEFERRED : code / 100 == 5 ? SO_BOUNCED : SO_DEFERRED,
                          own ? own : st, k, 1);
    free(own);
    struct smtp_reply r;
    smtp_reply_init(&r);
    if (pipe && smtp_read_reply(k, &r, smtp_tmo(k, SMTP_TMO_DATA)) == 0 && r.code == 354 &&
        smtp_send_bytes(k, ".\r\n", 3, smtp_tmo(k, SMTP_TMO_BLOCK)) == 0)
        smtp_read_reply(k, &r, smtp_tmo(k, SMTP_TMO_DOT)); /* an empty message the server must refuse */
    smtp_reply_free(&r);
}

/* MAIL, RCPT..., DATA, message, dot on an open connection for the recipients
 * not finally answered yet.  Returns 0, or -1 if the connection broke (the
 * recipients it leaves open may go to the next host). */
int smtp_txn(struct smtp_conn *k, const struct envelope *e, const struct msgdata *d,
                       long long size,
                       int eightbit, struct smtp_rcpt *rs, size_t n)
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
                smtp_rcpt_set(&rs[i], SO_BOUNCED, perm, k, 1);
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

/* Bytes on the wire: the LF-terminated text plus a CR per line (dot-stuffing
 * adds a little more), for SIZE= and the peer's limit (RFC 1870); and whether
 * the text has 8-bit bytes (then BODY=8BITMIME even if the submitter did not
 * say so). */
long long smtp_wire_size(const struct msgdata *d, int *eightbit)
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
