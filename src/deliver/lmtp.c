/* lmtp.c - mailbox deliveries over LMTP (RFC 2033): see lmtp.h.
 *
 * Runs as root: lmtp_wanted (one lstat) and lmtp_deliver's parent half, which
 * forks and reads the child's report.  The child becomes user= before it
 * reads a domain's lmtp file, connects or reads a server's reply; the
 * connection's I/O and reply parsing are the SMTP client's (smtp_conn.h,
 * smtp_reply.h), the message text goes through message_out.h. */
#include "compat.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "child.h"
#include "lmtp.h"
#include "log.h"
#include "mailbox_spec.h"
#include "milter_conf.h"
#include "msg.h"
#include "privs.h"
#include "smtp_reply.h"
#include "smtp_txn.h"
#include "util.h"
#include "vdomain.h"
#include "vmailbox.h"

enum deliv_result lmtp_result_of(int code)
{
    return code / 100 == 2 ? DELIV_OK : code / 100 == 5 ? DELIV_FAIL : DELIV_DEFER;
}

/* ---- which mailboxes (root: no file is read) ---- */

static int global_lmtp(const struct config *c)
{
    struct mailbox_spec s;
    char *why = NULL;
    if (!c->mailbox || mailbox_spec_parse(c->mailbox, &s, &why) < 0) {
        free(why);
        return 0; /* conf.c refused a bad value already */
    }
    int yes = s.kind == MB_LMTP;
    mailbox_spec_free(&s);
    return yes;
}

/* VHOSTDIR/DOMAIN/lmtp of virtual box "name@domain", or NULL when the domain
 * could not be part of a path. */
static char *domain_file(const struct config *c, const char *box)
{
    const char *at = strrchr(box, '@');
    if (!at || !at[1] || strchr(at, '/') || at[1] == '.' || !c->vpath)
        return NULL;
    char *d = xstrdup(at + 1);
    str_lower(d);
    char *path = xasprintf("%s/%s/lmtp", c->vpath, d);
    free(d);
    return path;
}

int lmtp_wanted(const struct config *c, const char *box, char **domfile)
{
    *domfile = NULL;
    if (vmbox_is_virtual(box)) {
        struct stat st;
        char *path = domain_file(c, box);
        /* there at all (a symlink too: the child refuses it, with a reason) */
        if (path && lstat(path, &st) == 0) {
            *domfile = path;
            return 1;
        }
        free(path);
    }
    return global_lmtp(c);
}

/* ---- the session (in the child, as user=) ---- */

static void job_set(struct lmtp_job *j, enum deliv_result r, const char *status)
{
    free(j->status);
    j->res = r;
    j->status = xstrdup(status);
}

static void job_reply(struct lmtp_job *j, const struct smtp_reply *r)
{
    char *st = smtp_reply_status(r);
    job_set(j, lmtp_result_of(r->code), st);
    free(st);
}

/* Anything that could end or split a command line. */
static int unsafe(const char *s)
{
    for (; *s; s++)
        if (*s == '<' || *s == '>' || (unsigned char)*s <= ' ' || *s == 0x7f)
            return 1;
    return 0;
}

static int has_8bit(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s >= 0x80)
            return 1;
    return 0;
}

static int reply(struct smtp_conn *k, struct smtp_reply *r, long rfc)
{
    return smtp_read_reply(k, r, smtp_tmo(k, rfc));
}

/* The text (CRLF, dot-stuffed, no bare CR or LF) and the final dot. */
static int send_body(struct smtp_conn *k, const struct lmtp_job *j)
{
    struct msgout mo = {MO_SMTP, j->sender, NULL};
    if (k->verbose)
        fprintf(stderr, "%s << (message text, then .)\n", k->addr);
    if (msgout_write_to(&j->data, smtp_body_sink, k, &mo) < 0) {
        if (k->fd >= 0) /* our own read error, not the connection's */
            smtp_conn_fail(k, "4.3.0 %s: cannot read the message: %s", k->relay,
                           strerror(errno));
        return -1;
    }
    return smtp_send_bytes(k, ".\r\n", 3, smtp_tmo(k, SMTP_TMO_BLOCK));
}

/* RSET after a transaction that did not end with the dot.  0 or -1. */
static int rset(struct smtp_conn *k)
{
    struct smtp_reply r;
    smtp_reply_init(&r);
    int rc = -1;
    if (smtp_send_cmd(k, "RSET", smtp_tmo(k, SMTP_TMO_MAIL)) == 0 &&
        reply(k, &r, SMTP_TMO_MAIL) == 0) {
        rc = r.code / 100 == 2 ? 0 : -1;
        if (rc < 0)
            smtp_conn_fail(k, "4.4.2 %s: RSET refused (%d)", k->relay, r.code);
    }
    smtp_reply_free(&r);
    return rc;
}

/* One message's transaction: t[0..m-1], its jobs.  acc[] notes the accepted
 * RCPTs.  0: the connection is still usable; -1: it broke (k->err), and the
 * jobs without a status are the caller's to defer. */
struct txn {
    struct smtp_conn *k;
    struct lmtp_job **t;
    size_t m;
    int *acc;  /* RCPT 2xx */
    int *sent; /* RCPT sent */
    int pipe;
};

/* Refusals decided before talking; 1 when every job got one. */
static int refuse_early(struct txn *x, long long size)
{
    const char *why = NULL;
    char *own = NULL;
    if (x->k->size_limit > 0 && size > x->k->size_limit)
        why = own = xasprintf("5.3.4 message of %lld bytes exceeds the limit of %lld bytes "
                              "declared by %s", size, x->k->size_limit, x->k->relay);
    else if (unsafe(x->t[0]->sender) && x->t[0]->sender[0])
        why = "5.1.7 sender address unusable in LMTP";
    for (size_t i = 0; why && i < x->m; i++)
        job_set(x->t[i], DELIV_FAIL, why);
    free(own);
    for (size_t i = 0; !why && i < x->m; i++)
        if (unsafe(x->t[i]->rcpt))
            job_set(x->t[i], DELIV_FAIL, "5.1.3 mailbox name unusable in LMTP");
    return why != NULL;
}

static void mail_cmd(const struct txn *x, long long size, int eightbit, struct buf *b)
{
    const struct lmtp_job *j = x->t[0];
    buf_addf(b, "MAIL FROM:<%s>", j->sender);
    if (x->k->ext_size)
        buf_addf(b, " SIZE=%lld", size);
    if (eightbit && x->k->ext_8bitmime)
        buf_adds(b, " BODY=8BITMIME");
    int utf8 = has_8bit(j->sender);
    for (size_t i = 0; i < x->m; i++)
        utf8 |= has_8bit(x->t[i]->rcpt);
    if (utf8 && x->k->ext_smtputf8)
        buf_adds(b, " SMTPUTF8");
}

/* Send MAIL, the RCPTs and (pipelined) DATA; read and apply the replies.
 * *mail and *data get the MAIL and DATA reply codes (DATA: 0 when it was not
 * sent).  0 or -1 (broken). */
static int envelope(struct txn *x, const char *mailcmd, int *mail, int *data)
{
    struct smtp_conn *k = x->k;
    struct smtp_reply r;
    struct buf cmd;
    int rc = -1;
    smtp_reply_init(&r);
    buf_init(&cmd);
    *data = 0;
    if (x->pipe)
        smtp_cork(k);
    if (smtp_send_cmd(k, mailcmd, smtp_tmo(k, SMTP_TMO_MAIL)) < 0)
        goto out;
    if (!x->pipe) {
        if (reply(k, &r, SMTP_TMO_MAIL) < 0)
            goto out;
        *mail = r.code;
        if (r.code / 100 != 2) {
            for (size_t i = 0; i < x->m; i++)
                if (!x->t[i]->status)
                    job_reply(x->t[i], &r);
            rc = 0;
            goto out;
        }
    }
    for (size_t i = 0; i < x->m; i++) {
        if (x->t[i]->status) /* refused before talking */
            continue;
        buf_reset(&cmd);
        buf_addf(&cmd, "RCPT TO:<%s>", x->t[i]->rcpt);
        if (smtp_send_cmd(k, cmd.s, smtp_tmo(k, SMTP_TMO_RCPT)) < 0)
            goto out;
        x->sent[i] = 1;
        if (x->pipe)
            continue;
        if (reply(k, &r, SMTP_TMO_RCPT) < 0)
            goto out;
        if (r.code / 100 == 2)
            x->acc[i] = 1; /* accepted is not delivered yet */
        else
            job_reply(x->t[i], &r);
    }
    if (x->pipe) {
        /* DATA ends the group (RFC 2920); then the replies in order */
        if (smtp_send_cmd(k, "DATA", smtp_tmo(k, SMTP_TMO_DATA)) < 0 ||
            smtp_uncork(k, smtp_tmo(k, SMTP_TMO_DATA)) < 0 || reply(k, &r, SMTP_TMO_MAIL) < 0)
            goto out;
        *mail = r.code;
        char *mail_st = smtp_reply_status(&r);
        for (size_t i = 0; i < x->m; i++) {
            if (!x->sent[i])
                continue;
            if (reply(k, &r, SMTP_TMO_RCPT) < 0) {
                free(mail_st);
                goto out;
            }
            if (*mail / 100 != 2)
                job_set(x->t[i], lmtp_result_of(*mail), mail_st);
            else if (r.code / 100 == 2)
                x->acc[i] = 1;
            else
                job_reply(x->t[i], &r);
        }
        free(mail_st);
        if (reply(k, &r, SMTP_TMO_DATA) < 0)
            goto out;
        *data = r.code;
        for (size_t i = 0; i < x->m; i++) /* answers for the accepted ones */
            if (x->acc[i] && r.code != 354) {
                job_reply(x->t[i], &r);
                if (r.code / 100 == 2)
                    job_set(x->t[i], DELIV_DEFER, "4.5.0 DATA answered without 354");
                x->acc[i] = 0;
            }
    }
    rc = 0;
out:
    k->corked = 0;
    buf_free(&cmd);
    smtp_reply_free(&r);
    return rc;
}

static size_t accepted(const struct txn *x)
{
    size_t n = 0;
    for (size_t i = 0; i < x->m; i++)
        n += x->acc[i] != 0;
    return n;
}

/* After the envelope: DATA (unless pipelined), the text, one reply per
 * accepted recipient, in RCPT order (RFC 2033 4.2).  0 or -1 (broken). */
static int data(struct txn *x, int mail, int data_code)
{
    struct smtp_conn *k = x->k;
    struct smtp_reply r;
    smtp_reply_init(&r);
    int rc = -1;
    if (mail / 100 != 2 && data_code == 354) {
        smtp_conn_fail(k, "4.5.0 %s: protocol error: DATA accepted after MAIL was refused",
                       k->relay);
        goto out;
    }
    if (mail / 100 != 2) {
        rc = 0; /* no transaction open */
        goto out;
    }
    if (accepted(x) == 0) {
        if (data_code == 354) {
            smtp_conn_fail(k, "4.5.0 %s: protocol error: DATA accepted with no recipient "
                           "(RFC 2033 4.2)", k->relay);
            goto out;
        }
        rc = rset(k);
        goto out;
    }
    if (!x->pipe) {
        if (smtp_send_cmd(k, "DATA", smtp_tmo(k, SMTP_TMO_DATA)) < 0 ||
            reply(k, &r, SMTP_TMO_DATA) < 0)
            goto out;
        if (r.code != 354) {
            for (size_t i = 0; i < x->m; i++)
                if (x->acc[i]) {
                    job_reply(x->t[i], &r);
                    if (r.code / 100 == 2)
                        job_set(x->t[i], DELIV_DEFER, "4.5.0 DATA answered without 354");
                    x->acc[i] = 0;
                }
            rc = rset(k);
            goto out;
        }
    }
    k->body_started = 1;
    if (send_body(k, x->t[0]) < 0)
        goto out;
    for (size_t i = 0; i < x->m; i++) {
        if (!x->acc[i])
            continue;
        if (reply(k, &r, SMTP_TMO_DOT) < 0)
            goto out; /* the ones not answered defer: they may be delivered twice */
        job_reply(x->t[i], &r);
        x->acc[i] = 0;
    }
    rc = 0;
out:
    smtp_reply_free(&r);
    return rc;
}

static int transaction(struct smtp_conn *k, struct lmtp_job **t, size_t m)
{
    int eightbit = 0;
    long long size = smtp_wire_size(&t[0]->data, &eightbit);
    struct txn x = {.k = k, .t = t, .m = m, .pipe = k->ext_pipelining};
    if (refuse_early(&x, size))
        return 0;
    x.acc = xcalloc(m, sizeof *x.acc);
    x.sent = xcalloc(m, sizeof *x.sent);
    k->body_started = 0;
    struct buf cmd;
    buf_init(&cmd);
    mail_cmd(&x, size, eightbit, &cmd);
    int mail = 0, data_code = 0, rc = 0;
    size_t live = 0;
    for (size_t i = 0; i < m; i++)
        live += t[i]->status == NULL;
    if (live) /* every name unusable: no transaction at all */
        rc = envelope(&x, cmd.s, &mail, &data_code) < 0 ? -1 : data(&x, mail, data_code);
    buf_free(&cmd);
    free(x.acc);
    free(x.sent);
    return rc;
}

/* Greeting and LHLO.  0, or -1 (k->err). */
static int hello(struct smtp_conn *k)
{
    struct smtp_reply r;
    smtp_reply_init(&r);
    int rc = -1;
    if (smtp_conn_greeting(k) < 0)
        goto out;
    char *cmd = xasprintf("LHLO %s", k->c->hostname);
    int sent = smtp_send_cmd(k, cmd, smtp_tmo(k, SMTP_TMO_MAIL));
    free(cmd);
    if (sent < 0 || reply(k, &r, SMTP_TMO_MAIL) < 0)
        goto out;
    if (r.code / 100 != 2) {
        char *st = smtp_reply_status(&r);
        smtp_conn_fail(k, "4.4.1 %s: LHLO refused: %s", k->relay, st);
        free(st);
        goto out;
    }
    smtp_conn_extensions(k, &r);
    rc = 0;
out:
    smtp_reply_free(&r);
    return rc;
}

void lmtp_session(struct smtp_conn *k, struct lmtp_job *jobs, size_t n, long long budget_end)
{
    struct lmtp_job **t = xcalloc(n ? n : 1, sizeof *t);
    int ok = k->fd >= 0 && hello(k) == 0;
    char *late = NULL;
    for (size_t a = 0; ok && a < n; a++) {
        if (jobs[a].status)
            continue; /* answered, or in an earlier message's transaction */
        if (now_ms() > budget_end) {
            late = xasprintf("4.4.2 %s: the LMTP session ran out of time (%ld seconds); "
                             "the rest waits for the next run", k->relay,
                             LMTP_BUDGET_MS / 1000);
            break;
        }
        size_t m = 0;
        for (size_t b = a; b < n; b++) /* this message's jobs, in order */
            if (!jobs[b].status && jobs[b].msg == jobs[a].msg)
                t[m++] = &jobs[b];
        if (transaction(k, t, m) < 0)
            ok = 0;
        for (size_t i = 0; ok && i < m; i++)
            if (!t[i]->status) /* cannot be: every job of it was answered */
                job_set(t[i], DELIV_DEFER, "4.5.0 no reply for this recipient");
    }
    smtp_conn_quit(k);
    const char *why = late ? late : k->err ? k->err : "4.4.2 LMTP session ended early";
    for (size_t a = 0; a < n; a++)
        if (!jobs[a].status)
            job_set(&jobs[a], DELIV_DEFER, why);
    free(late);
    free(t);
}

/* ---- the child ---- */

char *lmtp_file_value(const char *text, size_t len, char **why)
{
    char *value = NULL;
    *why = NULL;
    if (memchr(text, '\0', len)) {
        *why = xstrdup("holds a NUL byte");
        return NULL;
    }
    char *copy = xstrndup(text, len), *save = NULL;
    for (char *l = strtok_r(copy, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        l += strspn(l, " \t\r");
        size_t e = strlen(l);
        while (e && strchr(" \t\r", l[e - 1]))
            l[--e] = '\0';
        if (!*l || *l == '#')
            continue;
        if (value) {
            *why = xstrdup("names more than one server");
            break;
        }
        value = xstrdup(l);
    }
    free(copy);
    if (!*why && !value)
        *why = xstrdup("names no server (lmtp:unix:/PATH or lmtp:[HOST]:PORT)");
    for (const char *p = value; !*why && p && *p; p++)
        if ((unsigned char)*p <= ' ' || *p == 0x7f)
            *why = xstrdup("holds a blank or a control character inside its value");
    struct mailbox_spec s;
    char *perr = NULL;
    if (!*why && mailbox_spec_parse(value, &s, &perr) < 0) {
        *why = perr;
    } else if (!*why) {
        if (s.kind != MB_LMTP)
            *why = xasprintf("%s: not an LMTP server (lmtp:unix:/PATH or lmtp:[HOST]:PORT)",
                             value);
        mailbox_spec_free(&s);
    }
    if (*why) {
        free(value);
        return NULL;
    }
    return value;
}

/* The domain's file, read as user=: its value, or NULL with a status. */
static char *read_domain_file(const char *path, char **status)
{
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    struct stat st;
    char *why = NULL, *value = NULL;
    struct buf b;
    buf_init(&b);
    if (fd < 0) {
        *status = xasprintf("4.3.5 cannot read %s: %s", path,
                            errno == ELOOP ? "a symbolic link" : strerror(errno));
        return NULL;
    }
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
        why = xstrdup("not a regular file");
    else if (pread_rest(fd, 0, &b, LMTP_FILE_MAX) < 0)
        why = xasprintf("cannot read it (more than %d bytes?): %s", LMTP_FILE_MAX,
                        strerror(errno));
    else
        value = lmtp_file_value(b.len ? b.s : "", b.len, &why);
    close(fd);
    buf_free(&b);
    if (why)
        *status = xasprintf("4.3.5 %s: %s", path, why);
    free(why);
    return value;
}

/* A connection to the server spec names (connected, or k->err set). */
static struct smtp_conn *lmtp_connect(const struct config *c, const char *spec, int verbose)
{
    struct sockaddr_storage none;
    struct mailbox_spec s;
    char *why = NULL;
    memset(&none, 0, sizeof none);
    struct smtp_conn *k = smtp_conn_new(c, verbose, &none);
    k->relay = xstrdup(spec);
    k->host = xstrdup(spec);
    if (mailbox_spec_parse(spec, &s, &why) < 0 || s.kind != MB_LMTP) {
        smtp_conn_fail(k, "4.3.5 mailbox=%s: %s", spec, why ? why : "not an LMTP server");
        free(why);
        if (!why)
            mailbox_spec_free(&s);
        return k;
    }
    str_copy(k->addr, s.lmtp_unix ? "lmtp" : s.lmtp_host, sizeof k->addr);
    struct mconf_addr a = {.family = s.lmtp_unix ? MCONF_UNIX
                                     : strchr(s.lmtp_host, ':') ? MCONF_INET6 : MCONF_INET,
                           .path = s.lmtp_unix, .host = s.lmtp_host,
                           .port = s.lmtp_port ? atoi(s.lmtp_port) : 0};
    long secs = c->connect_timeout > 0 ? c->connect_timeout : 30;
    if (s.lmtp_unix && strlen(s.lmtp_unix) >= sizeof ((struct sockaddr_un *)0)->sun_path) {
        smtp_conn_fail(k, "4.3.5 %s: the socket's path is too long", spec);
    } else {
        if (verbose)
            fprintf(stderr, "%s OPEN (%s)\n", k->addr, spec);
        k->fd = mconf_connect(&a, secs * 1000);
        if (k->fd < 0)
            smtp_conn_fail(k, "4.4.1 %s: cannot connect: %s", spec,
                           errno == ETIMEDOUT ? "timed out" : strerror(errno));
    }
    mailbox_spec_free(&s);
    return k;
}

struct lmtp_run {
    const struct config *c;
    struct lmtp_job *jobs;
    size_t n;
    int verbose;
};

/* Each job's server (malloc'd, the value of mailbox= or of its domain's
 * file), or NULL when its status says why there is none. */
static char **servers_of(const struct lmtp_run *r)
{
    char **srv = xcalloc(r->n, sizeof *srv);
    for (size_t i = 0; i < r->n; i++) {
        struct lmtp_job *j = &r->jobs[i];
        if (j->status) /* answered before the child started */
            continue;
        if (!j->domfile) {
            srv[i] = xstrdup(r->c->mailbox ? r->c->mailbox : "");
            continue;
        }
        size_t same = 0;
        while (same < i && !(r->jobs[same].domfile &&
                             strcmp(r->jobs[same].domfile, j->domfile) == 0))
            same++;
        if (same < i) { /* read once */
            srv[i] = srv[same] ? xstrdup(srv[same]) : NULL;
            if (!srv[i])
                job_set(j, DELIV_DEFER, r->jobs[same].status);
            continue;
        }
        char *st = NULL;
        srv[i] = read_domain_file(j->domfile, &st);
        if (!srv[i])
            job_set(j, DELIV_DEFER, st);
        free(st);
    }
    return srv;
}

/* One session per server, for the jobs that have one. */
static void run_sessions(const struct lmtp_run *r, char **srv)
{
    long long budget_end = now_ms() + LMTP_BUDGET_MS;
    struct lmtp_job *part = xcalloc(r->n, sizeof *part);
    size_t *at = xcalloc(r->n, sizeof *at);
    for (size_t a = 0; a < r->n; a++) {
        if (!srv[a] || r->jobs[a].status)
            continue;
        size_t m = 0;
        for (size_t b = a; b < r->n; b++)
            if (srv[b] && !r->jobs[b].status && strcmp(srv[b], srv[a]) == 0) {
                at[m] = b;
                part[m++] = r->jobs[b];
            }
        struct smtp_conn *k = lmtp_connect(r->c, srv[a], r->verbose);
        lmtp_session(k, part, m, budget_end);
        for (size_t i = 0; i < m; i++) {
            r->jobs[at[i]].res = part[i].res;
            r->jobs[at[i]].status = part[i].status;
            r->jobs[at[i]].relay = xstrdup(srv[a]);
        }
        smtp_conn_free(k);
    }
    free(part);
    free(at);
}

static PO_NORETURN void lmtp_child(void *arg, int fd)
{
    const struct lmtp_run *r = arg;
    signal(SIGPIPE, SIG_IGN);
    if (privs_drop_to(r->c->user) < 0 || geteuid() == 0) {
        char *st = xasprintf("4.3.0 cannot become user=%s for LMTP delivery (it must be an "
                             "unprivileged account)", r->c->user ? r->c->user : "");
        for (size_t i = 0; i < r->n; i++)
            job_set(&r->jobs[i], DELIV_DEFER, st);
        free(st);
    } else {
        char **srv = servers_of(r);
        run_sessions(r, srv);
        for (size_t i = 0; i < r->n; i++)
            free(srv[i]);
        free(srv);
    }
    struct buf b;
    buf_init(&b);
    msg_put_u32(&b, (uint32_t)r->n);
    for (size_t i = 0; i < r->n; i++) {
        const char *st = r->jobs[i].status ? r->jobs[i].status : "4.3.0 no status";
        const char *rl = r->jobs[i].relay ? r->jobs[i].relay : "lmtp";
        msg_put_u32(&b, (uint32_t)r->jobs[i].res);
        msg_put_bytes(&b, st, strnlen(st, LMTP_STATUS_MAX)); /* a str, cut to size */
        msg_put_bytes(&b, rl, strnlen(rl, LMTP_STATUS_MAX));
    }
    if (msg_send(fd, MSG_LMTP_RESULT, b.s, b.len, -1) < 0)
        log_err("cannot report LMTP results: %s", strerror(errno));
    _exit(0);
}

/* ---- the parent ---- */

/* One string from the child: ours, but it carries a server's words: no
 * control byte, no overlong text. */
static int get_text(struct msg_reader *m, char **out)
{
    char *s;
    if (msg_get_str(m, &s) < 0 || s == NULL)
        return -1;
    if (strlen(s) > LMTP_STATUS_MAX)
        s[LMTP_STATUS_MAX] = '\0';
    for (char *q = s; *q; q++)
        if ((unsigned char)*q < ' ' || *q == 0x7f)
            *q = '?';
    *out = s;
    return 0;
}

static int read_report(struct child *ch, struct lmtp_job *jobs, size_t n)
{
    struct msg m;
    struct msg_reader rd;
    uint32_t count = 0;
    size_t k = 0;
    int got = msg_recv(ch->fd, &m, (2 * LMTP_STATUS_MAX + 16) * n + 4, ch->deadline);
    if (got != 1)
        return -1;
    msg_reader_init(&rd, &m);
    if (m.type == MSG_LMTP_RESULT && msg_get_u32(&rd, &count) == 0 && count == n)
        for (; k < n; k++) {
            uint32_t res;
            char *st = NULL, *relay = NULL;
            if (msg_get_u32(&rd, &res) < 0 || res > DELIV_FAIL || get_text(&rd, &st) < 0 ||
                get_text(&rd, &relay) < 0 || !strchr("245", st[0]) || !st[0]) {
                free(st);
                free(relay);
                break;
            }
            free(jobs[k].status); /* the child's word replaces ours (check_domain) */
            jobs[k].res = (enum deliv_result)res;
            jobs[k].status = st;
            jobs[k].relay = relay;
        }
    int ok = k == n && msg_get_end(&rd) == 0;
    msg_free(&m);
    return ok ? 0 : -1;
}

static void deliver_chunk(const struct config *c, struct lmtp_job *jobs, size_t n, int verbose)
{
    struct lmtp_run r = {.c = c, .jobs = jobs, .n = n, .verbose = verbose};
    struct child_spec spec = {.title = "lmtp", .deadline_ms = LMTP_DEADLINE_MS,
                              .own_group = 1, .die_with_parent = 1, .report = 1};
    struct child ch;
    struct child_end end = {0};
    char *why = NULL;
    if (child_start(&ch, &spec, lmtp_child, &r) < 0) {
        why = xasprintf("4.3.0 cannot start the LMTP delivery process: %s", strerror(errno));
    } else {
        int ok = read_report(&ch, jobs, n) == 0;
        if (!ok && ch.deadline && now_ms() >= ch.deadline) {
            child_kill(&ch);
            end.timed_out = 1;
        } else {
            child_wait(&ch, &end);
        }
        if (!ok) {
            char t[96];
            why = xasprintf("4.3.0 the LMTP delivery process gave no usable result (%s)",
                            end.timed_out ? "timed out" : child_end_text(&end, t, sizeof t));
        }
    }
    for (size_t i = 0; why && i < n; i++) { /* what it said, if anything, is dropped */
        free(jobs[i].status);
        free(jobs[i].relay);
        jobs[i].res = DELIV_DEFER;
        jobs[i].status = xstrdup(why);
        jobs[i].relay = NULL;
    }
    if (why)
        log_warn("LMTP delivery of %zu recipient(s): %s", n, why);
    free(why);
}

/* A virtual user's domain switched off since the mail was queued: its mail
 * waits, as for a mailbox file (vmailbox.h). */
static void check_domain(const struct config *c, struct lmtp_job *j)
{
    const char *at = strrchr(j->rcpt, '@');
    char *dom = at && vmbox_is_virtual(j->rcpt) ? vdomain_name(c, at + 1) : NULL;
    if (at && vmbox_is_virtual(j->rcpt) && !dom)
        j->status = xasprintf("4.3.0 %s is not an active virtual domain now (see %s/domains.cf)",
                              at + 1, c->vpath);
    free(dom);
}

void lmtp_deliver(const struct config *c, struct lmtp_job *jobs, size_t n, int verbose)
{
    for (size_t i = 0; i < n; i++) {
        jobs[i].res = DELIV_DEFER;
        jobs[i].status = NULL;
        jobs[i].relay = NULL;
        check_domain(c, &jobs[i]);
    }
    for (size_t a = 0; a < n; a += LMTP_JOBS_MAX)
        deliver_chunk(c, jobs + a, n - a < LMTP_JOBS_MAX ? n - a : LMTP_JOBS_MAX, verbose);
}
