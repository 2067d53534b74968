/* bounce.c - delivery status notifications (RFC 3464) and delay notices.
 *
 * Runs as root when the queue runner does: compose_and_enqueue() then starts
 * a child (child_start, title "bounce QID"), and only the child, which has
 * become the unprivileged user= (the queue's owner), reads the original
 * message (through the descriptor it inherits) and writes the report into the
 * queue; the parent (root) only waits for the new queue id (one
 * MSG_BOUNCE_RESULT message) and records the results in the original's queue
 * file.  Everything that
 * comes from outside (addresses, remote servers' answers, host names) is made
 * printable ASCII with str_sanitize before it goes into a header field or the
 * report, so a hostile reply can neither add a field nor break the MIME
 * structure.  The original message is read into memory only up to
 * BOUNCE_FULL_MAX bytes (or its headers up to BOUNCE_HDRS_MAX). */
#include "compat.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bounce.h"
#include "child.h"
#include "date.h"
#include "headers.h"
#include "log.h"
#include "logfmt.h"
#include "msgid_peek.h"
#include "msg.h"
#include "privs.h"
#include "util.h"

#define VALUE_MAX 900 /* longest sanitised value: every line stays < 998 bytes */
#define FOLD_AT 76    /* fold header fields and report lines near this column */

/* What of the original message goes into the third part, and why. */
enum orig_kind { ORIG_FULL, ORIG_HDRS_ASKED, ORIG_HDRS_BIG, ORIG_MISSING };

struct orig {
    enum orig_kind kind;
    struct buf text;   /* the bytes to attach */
    int headerless;    /* the message has no header block */
    int eight_bit;     /* text has bytes >= 0x80 */
};

/* ---- small helpers ---- */

int bounce_owed(const struct rcpt *r, int delay)
{
    return delay ? r->state == RS_PENDING : r->state == RS_FAILED;
}

int bounce_wanted(const struct rcpt *r, int delay)
{
    if (r->notify & DSN_NEVER)
        return 0;
    if (r->notify == 0)
        return 1;
    return (r->notify & (delay ? DSN_DELAY : DSN_FAILURE)) != 0;
}

static int reported(const struct rcpt *r, int delay)
{
    return bounce_owed(r, delay) && bounce_wanted(r, delay);
}

/* Printable-ASCII copy of untrusted text, cut to VALUE_MAX bytes. */
static char *clean(const char *s)
{
    char *t = str_sanitize(s, strlen(s));
    if (strlen(t) > VALUE_MAX) {
        t[VALUE_MAX - 3] = '\0';
        char *u = xasprintf("%s...", t);
        free(t);
        t = u;
    }
    return t;
}

/* Append clean text starting at column col, breaking lines before a word that
 * would pass FOLD_AT.  cont starts each new line ("\n " folds a header field:
 * the space it adds replaces the one dropped, so unfolding restores the text). */
static void fold(struct buf *out, const char *text, size_t col, const char *cont)
{
    size_t cont_col = strlen(cont) - 1;
    int have_word = 0;
    const char *p = text;
    while (*p) {
        size_t sp = strspn(p, " ");
        size_t w = strcspn(p + sp, " ");
        if (sp > 0 && w > 0 && have_word && col + sp + w > FOLD_AT) {
            buf_add(out, p, sp - 1);
            buf_adds(out, cont);
            col = cont_col;
        } else {
            buf_add(out, p, sp);
            col += sp;
        }
        buf_add(out, p + sp, w);
        col += w;
        have_word |= w > 0;
        p += sp + w;
    }
}

/* "Name: value\n" with value sanitised and folded. */
static void field(struct buf *out, const char *name, const char *value)
{
    char *v = clean(value);
    buf_adds(out, name);
    buf_adds(out, ": ");
    fold(out, v, strlen(name) + 2, "\n ");
    buf_addc(out, '\n');
    free(v);
}

/* "Name: TYPE; value\n" (the typed fields of RFC 3464). */
static void typed_field(struct buf *out, const char *name, const char *type,
                        const char *value)
{
    char *v = clean(value);
    char *t = xasprintf("%s; %s", type, v);
    buf_adds(out, name);
    buf_adds(out, ": ");
    fold(out, t, strlen(name) + 2, "\n ");
    buf_addc(out, '\n');
    free(t);
    free(v);
}

static void date_field(struct buf *out, const char *name, time_t t)
{
    buf_addf(out, "%s: ", name);
    date_rfc5322(t, out);
    buf_addc(out, '\n');
}

/* hex of 12 random bytes: makes boundary and Message-ID unguessable and
 * unique even for two reports on the same message in the same second. */
static void random_hex(char out[25])
{
    unsigned char r[12];
    if (getentropy(r, sizeof r) != 0) {
        /* no entropy source: still unique enough with time and pid */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        unsigned long long x = (unsigned long long)ts.tv_nsec ^
                               ((unsigned long long)getpid() << 32) ^ (uintptr_t)r;
        for (size_t i = 0; i < sizeof r; i++)
            r[i] = (unsigned char)(x >> (i % 8 * 8)) ^ (unsigned char)ts.tv_sec;
    }
    for (size_t i = 0; i < sizeof r; i++)
        snprintf(out + 2 * i, 3, "%02x", r[i]);
}

/* "2 days, 3 hours and 5 minutes" */
static void add_duration(struct buf *out, long secs)
{
    long v[3] = {secs / 86400, secs % 86400 / 3600, secs % 3600 / 60};
    static const char *unit[3] = {"day", "hour", "minute"};
    int n = 0, left = (v[0] > 0) + (v[1] > 0) + (v[2] > 0);
    if (left == 0) {
        buf_adds(out, "less than a minute");
        return;
    }
    for (int i = 0; i < 3; i++) {
        if (v[i] == 0)
            continue;
        if (n > 0)
            buf_adds(out, left == 1 ? " and " : ", ");
        buf_addf(out, "%ld %s%s", v[i], unit[i], v[i] == 1 ? "" : "s");
        n++;
        left--;
    }
}

/* Split "X.Y.Z text": the enhanced code goes into code (empty when there is
 * none); returns the text after it. */
static const char *split_status(const char *s, char code[16])
{
    const char *p = s;
    size_t n[3];
    code[0] = '\0';
    if (!s)
        return "";
    for (int i = 0; i < 3; i++) {
        n[i] = strspn(p, "0123456789");
        if (n[i] == 0 || n[i] > 3 || (i == 0 && n[i] != 1))
            return s;
        p += n[i];
        if (i < 2 && *p++ != '.')
            return s;
    }
    if (*p != '\0' && *p != ' ')
        return s;
    if (s[0] != '2' && s[0] != '4' && s[0] != '5')
        return s;
    memcpy(code, s, (size_t)(p - s));
    code[p - s] = '\0';
    return p + strspn(p, " ");
}

/* The Status: value: the recipient's code when it fits the action (failed:
 * 4 or 5, delayed: 4), else the generic 5.0.0 / 4.0.0. */
static void status_code(const struct rcpt *r, int delay, char code[16])
{
    split_status(r->status, code);
    if (!code[0] || code[0] == '2' || (delay && code[0] != '4'))
        str_copy(code, delay ? "4.0.0" : "5.0.0", 16);
}

/* Program and file targets come from the aliases or a .forward: their command
 * lines and paths are ours, not the sender's business.  Wider than
 * rcpt_is_target on purpose: anything that looks like a target is hidden, even
 * without the address it came from (an older queue): hiding too much only
 * costs a line of the report. */
static int hidden_target(const struct rcpt *r)
{
    return r->addr[0] == '|' || r->addr[0] == '/';
}

static const char *shown_addr(const struct rcpt *r)
{
    if (hidden_target(r))
        return r->orig && *r->orig ? r->orig : "(local delivery)";
    return r->addr;
}

/* Local addresses ("carol") as user@HOST: a report is read elsewhere. */
static char *qualify(const char *addr, const struct config *c)
{
    if (strchr(addr, '@') || addr[0] == '(' || addr[0] == '\0')
        return xstrdup(addr);
    return xasprintf("%s@%s", addr, c->hostname);
}

/* ---- the original message ---- */

/* Length of the header block at the start of t (through the newline of its
 * last field line), 0 when the first line is no header field. */
static size_t header_len(const char *t, size_t len)
{
    size_t pos = 0;
    while (pos < len) {
        const char *nl = memchr(t + pos, '\n', len - pos);
        size_t end = nl ? (size_t)(nl - t) + 1 : len;
        if (t[pos] == '\n')
            return pos;
        if (t[pos] == ' ' || t[pos] == '\t') {
            if (pos == 0)
                return 0;
        } else {
            size_t i = pos;
            while (i < end && t[i] > ' ' && t[i] < 0x7f && t[i] != ':')
                i++;
            if (i == pos || i == end || t[i] != ':')
                return pos;
        }
        if (!nl)
            return len; /* unterminated last field line */
        pos = end;
    }
    return pos;
}

/* Read exactly n bytes at off (the queue file's locked descriptor: pread, so
 * nobody's offset moves).  0, or -1 with errno (EIO: shorter than it says). */
static int pread_exact(int fd, char *p, size_t n, off_t off)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = pread(fd, p + got, n - got, off + (off_t)got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            if (r == 0)
                errno = EIO;
            return -1;
        }
        got += (size_t)r;
    }
    return 0;
}

/* Read what we return of the original: all of it up to BOUNCE_FULL_MAX, else
 * (or with RET=HDRS) its header block up to BOUNCE_HDRS_MAX.  Never fails: an
 * unreadable file gives ORIG_MISSING. */
static void orig_load(struct orig *o, const struct msgdata *d, int ret_hdrs)
{
    buf_init(&o->text);
    o->kind = ORIG_MISSING;
    o->headerless = o->eight_bit = 0;
    if (!d || d->fd < 0) {
        log_warn("bounce: the original message is not available");
        return;
    }
    /* one byte past the cap tells a message that is too big */
    size_t cap = (size_t)(ret_hdrs ? BOUNCE_HDRS_MAX : BOUNCE_FULL_MAX);
    size_t want = d->len > (long long)cap ? cap + 1 : (size_t)d->len;
    char *p = xmalloc(want + 1);
    if (pread_exact(d->fd, p, want, (off_t)d->off) < 0) {
        log_warn("bounce: cannot read the original message: %s", strerror(errno));
        free(p);
        return;
    }
    size_t n = want;
    size_t hl = header_len(p, n);
    if (ret_hdrs || n > cap) {
        o->kind = ret_hdrs ? ORIG_HDRS_ASKED : ORIG_HDRS_BIG;
        if (hl > (size_t)BOUNCE_HDRS_MAX) {
            /* an endless header block: keep its complete lines within the cap */
            const char *nl = memrchr(p, '\n', (size_t)BOUNCE_HDRS_MAX);
            hl = nl ? (size_t)(nl - p) + 1 : 0;
        }
        n = hl;
    } else {
        o->kind = ORIG_FULL;
    }
    o->headerless = hl == 0;
    buf_add(&o->text, p, n);
    free(p);
    for (size_t i = 0; i < n && !o->eight_bit; i++)
        o->eight_bit = (unsigned char)o->text.s[i] >= 0x80;
}

/* ---- the parts ---- */

static void add_headers(struct buf *out, const struct config *c, const struct envelope *e,
                        int delay, const char *boundary, const struct orig *o, time_t now)
{
    char *host = clean(c->hostname);
    char *rcpt = qualify(*e->sender ? e->sender : "postmaster", c);
    char *to = xasprintf("<%s>", rcpt);
    free(rcpt);
    char *from = xasprintf("Mail Delivery System <MAILER-DAEMON@%s>", host);
    field(out, "From", from);
    field(out, "To", to);
    field(out, "Subject", delay ? "Delayed Mail (still being retried)"
                                : "Undelivered Mail Returned to Sender");
    date_field(out, "Date", now);
    buf_adds(out, "Message-ID: ");
    hdr_msgid(e->qid, c->hostname, out);
    buf_addc(out, '\n');
    buf_adds(out, "Auto-Submitted: auto-replied\n");
    buf_adds(out, "MIME-Version: 1.0\n");
    buf_addf(out, "Content-Type: multipart/report; report-type=delivery-status;\n"
                  " boundary=\"%s\"\n", boundary);
    if (o->eight_bit)
        buf_adds(out, "Content-Transfer-Encoding: 8bit\n");
    buf_adds(out, "\nThis is a MIME-encapsulated message: a delivery status notification.\n");
    free(host);
    free(to);
    free(from);
}

/* One recipient in the human-readable part. */
static void notice_rcpt(struct buf *out, const struct rcpt *r, const struct config *c)
{
    char *addr = qualify(shown_addr(r), c);
    char *line = xasprintf("<%s>: %s", addr, r->status ? r->status : "no reason recorded");
    free(addr);
    char *l = clean(line);
    buf_adds(out, "  ");
    fold(out, l, 2, "\n      ");
    buf_addc(out, '\n');
    if (r->remote_mta && *r->remote_mta) {
        char *mta = clean(r->remote_mta);
        buf_addf(out, "      (answer from the mail server %s)\n", mta);
        free(mta);
    } else if (hidden_target(r)) {
        buf_adds(out, r->addr[0] == '|' ? "      (delivery to a program)\n"
                                        : "      (delivery to a file)\n");
    }
    free(line);
    free(l);
}

static void notice_intro(struct buf *out, const struct config *c, const struct envelope *e,
                         int delay, time_t now)
{
    if (delay) {
        buf_adds(out, "Your message has not been delivered yet to the recipients\n"
                      "listed below.  It has been in the queue for ");
        add_duration(out, (long)(now - e->ctime));
        buf_adds(out, ".\nThe mail system will keep trying until\n    ");
        date_rfc5322(e->ctime + c->qreturn, out);
        buf_adds(out, "\nand will write to you again only if it has to give up.\n"
                      "This is only a warning: you do not need to send the message again.\n\n");
        return;
    }
    buf_adds(out, "Your message could not be delivered to the recipients listed\n"
                  "below.  The mail system has given up on them: nothing more will\n"
                  "be tried for these addresses.\n\n");
    if (!*e->sender)
        buf_adds(out, "The message was itself a delivery status notification (its\n"
                      "envelope sender was <>), so this report goes to the postmaster\n"
                      "instead of being returned.\n\n");
}

static void notice_orig(struct buf *out, const struct envelope *e, const struct orig *o)
{
    char *qid = clean(e->qid);
    buf_addf(out, "\nThe message was received on ");
    date_rfc5322(e->ctime, out);
    buf_addf(out, "\n(queue id %s).\n", qid);
    free(qid);
    switch (o->kind) {
    case ORIG_FULL:
        buf_adds(out, "It is attached below.\n");
        break;
    case ORIG_HDRS_ASKED:
        buf_adds(out, "Its header is attached below (the sender asked for headers only).\n");
        break;
    case ORIG_HDRS_BIG:
        buf_addf(out, "Its header is attached below (the message is larger than %ld bytes).\n",
                 (long)BOUNCE_FULL_MAX);
        break;
    case ORIG_MISSING:
        buf_adds(out, "It could not be read, so it is not attached.\n");
        break;
    }
}

static void add_notice(struct buf *out, const struct config *c, const struct envelope *e,
                       int delay, const struct orig *o, const char *boundary, time_t now)
{
    char *host = clean(c->hostname);
    buf_addf(out, "\n--%s\n", boundary);
    buf_adds(out, "Content-Type: text/plain; charset=us-ascii\n"
                  "Content-Description: Notification\n\n");
    buf_addf(out, "This is the mail system at %s.\n\n", host);
    notice_intro(out, c, e, delay, now);
    for (size_t i = 0; i < e->nrcpts; i++)
        if (reported(&e->rcpts[i], delay))
            notice_rcpt(out, &e->rcpts[i], c);
    notice_orig(out, e, o);
    free(host);
}

/* The server's answer as it sent it, from a remote status "X.Y.Z CODE text"
 * (smtp_reply_status moves the server's enhanced code in front of its reply
 * code): "CODE X.Y.Z text".  A class-only "X.0.0" is what smtp_reply_status
 * writes when the server gave no enhanced code, so it is not put back. */
static char *smtp_diagnostic(const char *status)
{
    char dcode[16];
    const char *text = split_status(status, dcode);
    if (!*text)
        return xstrdup(status);
    size_t cl = strspn(text, "0123456789");
    const char *rest = text + cl + (text[cl] == ' ');
    int has_reply = cl == 3 && (text[3] == ' ' || text[3] == '\0');
    int generic = dcode[0] && strcmp(dcode + 1, ".0.0") == 0;
    size_t dl = strlen(dcode);
    int repeated = strncmp(rest, dcode, dl) == 0 && (rest[dl] == ' ' || rest[dl] == '\0');
    if (!has_reply || !dcode[0] || generic || repeated)
        return xstrdup(text);
    return *rest ? xasprintf("%.3s %s %s", text, dcode, rest)
                 : xasprintf("%.3s %s", text, dcode);
}

/* One per-recipient block of the message/delivery-status part. */
static void report_rcpt(struct buf *out, const struct rcpt *r, const struct config *c,
                        const struct envelope *e, int delay, time_t now)
{
    char code[16];
    buf_addc(out, '\n');
    char *a;
    if (r->orig && *r->orig) {
        a = qualify(r->orig, c);
        typed_field(out, "Original-Recipient", "rfc822", a);
        free(a);
    }
    a = qualify(shown_addr(r), c);
    typed_field(out, "Final-Recipient", "rfc822", a);
    free(a);
    buf_addf(out, "Action: %s\n", delay ? "delayed" : "failed");
    status_code(r, delay, code);
    buf_addf(out, "Status: %s\n", code);
    int remote = r->remote_mta && *r->remote_mta;
    if (remote)
        typed_field(out, "Remote-MTA", "dns", r->remote_mta);
    if (r->status && *r->status) {
        char *diag = remote ? smtp_diagnostic(r->status) : xstrdup(r->status);
        typed_field(out, "Diagnostic-Code", remote ? "smtp" : "x-postoffice", diag);
        free(diag);
    }
    date_field(out, "Last-Attempt-Date", now);
    if (delay)
        date_field(out, "Will-Retry-Until", e->ctime + c->qreturn);
}

static void add_report(struct buf *out, const struct config *c, const struct envelope *e,
                       int delay, const char *boundary, time_t now)
{
    buf_addf(out, "\n--%s\n", boundary);
    buf_adds(out, "Content-Type: message/delivery-status\n"
                  "Content-Description: Delivery report\n\n");
    typed_field(out, "Reporting-MTA", "dns", c->hostname);
    field(out, "X-Postoffice-Queue-ID", e->qid);
    if (e->client_name && *e->client_name)
        typed_field(out, "Received-From-MTA", "dns", e->client_name);
    date_field(out, "Arrival-Date", e->ctime);
    for (size_t i = 0; i < e->nrcpts; i++)
        if (reported(&e->rcpts[i], delay))
            report_rcpt(out, &e->rcpts[i], c, e, delay, now);
}

static void add_original(struct buf *out, const struct orig *o, const char *boundary)
{
    if (o->kind == ORIG_MISSING)
        return;
    buf_addf(out, "\n--%s\n", boundary);
    if (o->kind == ORIG_FULL)
        buf_adds(out, "Content-Type: message/rfc822\n"
                      "Content-Description: Undelivered message\n");
    else
        buf_adds(out, "Content-Type: text/rfc822-headers\n"
                      "Content-Description: Undelivered message headers\n");
    if (o->eight_bit)
        buf_adds(out, "Content-Transfer-Encoding: 8bit\n");
    buf_addc(out, '\n');
    /* a message without headers still needs its empty line to be a message */
    if (o->kind == ORIG_FULL && o->headerless && o->text.len > 0)
        buf_addc(out, '\n');
    buf_add(out, o->text.s, o->text.len);
}

int bounce_compose(const struct config *c, const struct envelope *e,
                   const struct msgdata *data, int delay, struct buf *out)
{
    size_t n = 0;
    for (size_t i = 0; i < e->nrcpts; i++)
        n += reported(&e->rcpts[i], delay);
    if (n == 0)
        return 1;
    time_t now = time(NULL);
    struct orig o;
    orig_load(&o, data, (e->flags & ENV_RET_HDRS) != 0);
    /* "=_" cannot occur in quoted-printable or base64 text; the random part
     * makes a collision with the original's own lines practically impossible */
    char rnd[25];
    random_hex(rnd);
    char qid[QID_MAX];
    size_t k = 0;
    for (const char *q = e->qid; *q && k + 1 < sizeof qid; q++)
        if ((*q >= '0' && *q <= '9') || (*q >= 'A' && *q <= 'Z') || (*q >= 'a' && *q <= 'z'))
            qid[k++] = *q;
    qid[k] = '\0';
    char *boundary = xasprintf("=_po-%s-%s", qid, rnd);
    add_headers(out, c, e, delay, boundary, &o, now);
    add_notice(out, c, e, delay, &o, boundary, now);
    add_report(out, c, e, delay, boundary, now);
    add_original(out, &o, boundary);
    buf_addf(out, "\n--%s--\n", boundary);
    free(boundary);
    buf_free(&o.text);
    return 0;
}

/* ---- queuing ---- */

static int has_8bit(const struct buf *b)
{
    for (size_t i = 0; i < b->len; i++)
        if ((unsigned char)b->s[i] >= 0x80)
            return 1;
    return 0;
}

/* Mark every failed recipient RS_BOUNCED, keeping its status (copies: the
 * spool replaces the strings we would pass). */
static int mark_bounced(struct qmsg *m)
{
    struct envelope *e = spool_env(m);
    for (size_t i = 0; i < e->nrcpts; i++) {
        struct rcpt *r = &e->rcpts[i];
        if (r->state != RS_FAILED)
            continue;
        char *st = r->status ? xstrdup(r->status) : NULL;
        char *mta = r->remote_mta ? xstrdup(r->remote_mta) : NULL;
        int rc = spool_record(m, i, RS_BOUNCED, st, mta);
        int err = errno;
        free(st);
        free(mta);
        if (rc < 0) {
            log_err("%s: cannot record the bounce of %s: %s", e->qid, r->addr, strerror(err));
            errno = err;
            return -1;
        }
    }
    return 0;
}

/* The report's lines (postoffice-log(5)): "bounce" for the original message,
 * "queued" for the report. */
static void log_bounce(const struct envelope *e, const struct envelope *be,
                       const struct buf *text, int flags, int delay)
{
    struct logfmt l;
    lf_begin(&l, e->qid, "bounce");
    lf_str(&l, "kind", delay ? "delay" : (flags & ENV_DOUBLE) ? "double" : "failure");
    lf_str(&l, "bounce_qid", be->qid);
    lf_addr(&l, "to", be->rcpts[0].addr);
    lf_log(&l, LOG_INFO);
    bounce_log_queued(be->qid, text->s, text->len, "bounce", e->qid);
}

void bounce_log_queued(const char *qid, const char *text, size_t len, const char *proto,
                       const char *orig_qid)
{
    struct logfmt l;
    char *msgid = msgid_of(text, len);
    lf_begin(&l, qid, "queued");
    lf_addr(&l, "from", "");
    lf_num(&l, "size", (long long)len);
    lf_num(&l, "nrcpt", 1);
    lf_msgid(&l, msgid);
    lf_str(&l, "proto", proto);
    if (orig_qid)
        lf_str(&l, "orig_qid", orig_qid);
    lf_log(&l, LOG_INFO);
    free(msgid);
}

/* Enqueue the report text as a new message from <> to rcpt. */
static int enqueue(const struct config *c, const struct envelope *e, const struct buf *text,
                   int flags, int delay, char newqid[QID_MAX])
{
    const char *rcpt = *e->sender ? e->sender : "postmaster";
    struct spool_new *sn = spool_new(c->queuedir);
    if (!sn)
        return -1;
    if (spool_new_write(sn, text->s, text->len) < 0) {
        int err = errno;
        spool_abort(sn);
        errno = err;
        return -1;
    }
    struct envelope be;
    env_init(&be); /* sender "" */
    be.flags = ENV_BOUNCE | flags | (has_8bit(text) ? ENV_8BIT : 0) |
               (e->flags & ENV_SMTPUTF8);
    be.ctime = time(NULL);
    env_add_rcpt(&be, rcpt, NULL, NULL);
    int rc = spool_commit(sn, &be);
    int err = errno;
    if (rc == 0) {
        log_bounce(e, &be, text, flags, delay);
        if (newqid)
            str_copy(newqid, be.qid, QID_MAX);
    }
    env_free(&be);
    errno = err;
    return rc;
}

/* A double bounce that failed: telling anyone else would loop, and dropping
 * it would lose the only report of a lost message.  Its failed recipients go
 * back to pending, marked held, so that the queue run retries them on its
 * back-off schedule (never expiring them) and mailq shows them; each failed
 * attempt logs at LOG_CRIT what the admin must fix. */
static int hold_double(const struct config *c, struct qmsg *m)
{
    struct envelope *e = spool_env(m);
    for (size_t i = 0; i < e->nrcpts; i++) {
        struct rcpt *r = &e->rcpts[i];
        if (r->state != RS_FAILED)
            continue;
        const char *why = r->status ? r->status : "no reason recorded";
        char *st = xasprintf("4.3.0 " BOUNCE_HELD "; last error: %s", why);
        char *to = clean(r->addr), *reason = clean(why);
        log_crit("%s: double bounce held in the queue: it cannot be delivered to <%s> (%s); "
                 "give postmaster a deliverable alias in %s (then run newaliases and runq)",
                 e->qid, to, reason, c->aliases ? c->aliases : "the aliases file");
        free(to);
        free(reason);
        int rc = spool_record(m, i, RS_PENDING, st, NULL);
        int err = errno;
        free(st);
        if (rc < 0) {
            log_err("%s: cannot record that the double bounce is held: %s", e->qid,
                    strerror(err));
            errno = err;
            return -1;
        }
    }
    return 0;
}

/* Count the recipients a report is owed for, and those who want it. */
static void count(const struct envelope *e, int delay, size_t *owed, size_t *wanted)
{
    *owed = *wanted = 0;
    for (size_t i = 0; i < e->nrcpts; i++) {
        *owed += bounce_owed(&e->rcpts[i], delay);
        *wanted += reported(&e->rcpts[i], delay);
    }
}

/* Compose and queue here, as whoever we are. */
static int compose_here(const struct config *c, struct qmsg *m, int delay, int flags,
                        char newqid[QID_MAX])
{
    struct envelope *e = spool_env(m);
    struct buf text;
    buf_init(&text);
    struct msgdata data = spool_data(m);
    int rc = bounce_compose(c, e, &data, delay, &text);
    if (rc == 0)
        rc = enqueue(c, e, &text, flags, delay, newqid);
    int err = errno;
    if (rc < 0)
        log_err("%s: cannot queue a %s: %s", e->qid, delay ? "delay notice" : "bounce",
                strerror(err));
    buf_free(&text);
    errno = err;
    return rc;
}

struct compose_job {
    const struct config *c;
    struct qmsg *m;
    int delay, flags;
};

/* In the child, as user= (child_start made it so): compose, queue, and
 * report one MSG_BOUNCE_RESULT (i64 rc, i64 errno, str new queue id). */
static PO_NORETURN void compose_child(void *arg, int fd)
{
    const struct compose_job *cj = arg;
    char qid[QID_MAX] = "";
    int rc = compose_here(cj->c, cj->m, cj->delay, cj->flags, qid);
    int err = errno;
    struct buf b;
    buf_init(&b);
    msg_put_i64(&b, rc);
    msg_put_i64(&b, err);
    msg_put_str(&b, qid);
    _exit(msg_send(fd, MSG_BOUNCE_RESULT, b.s, b.len, -1) == 0 ? 0 : 1);
}

/* The child's report: 0 with *rc, *err and newqid set, -1 if malformed. */
static int bounce_result(const struct msg *msg, int *rc, int *err, char newqid[QID_MAX])
{
    struct msg_reader r;
    int64_t r1, r2;
    char *q = NULL;
    msg_reader_init(&r, msg);
    if (msg->type != MSG_BOUNCE_RESULT || msg_get_i64(&r, &r1) < 0 ||
        msg_get_i64(&r, &r2) < 0 || msg_get_str(&r, &q) < 0 || msg_get_end(&r) < 0 ||
        q == NULL || strlen(q) >= QID_MAX || (r1 != 0 && r1 != -1) || r2 < 0 ||
        r2 > 4095) {
        free(q);
        return -1;
    }
    *rc = (int)r1;
    *err = (int)r2;
    if (*rc == 0 && newqid)
        str_copy(newqid, q, QID_MAX);
    free(q);
    return 0;
}

/* Compose and queue as the queue's owner: the original message and the report
 * are message content, never handled by root.  A child does it; we wait. */
static int compose_and_enqueue(const struct config *c, struct qmsg *m, int delay,
                               int flags, char newqid[QID_MAX])
{
    if (geteuid() != 0)
        return compose_here(c, m, delay, flags, newqid);
    const char *user = c->user ? c->user : "mail";
    struct ident id;
    int lk = privs_lookup(user, &id);
    if (lk != 0) {
        int err = lk == 1 ? ENOENT : errno;
        log_err("%s: cannot become %s to compose a report: %s", spool_env(m)->qid, user,
                strerror(err));
        errno = err;
        return -1;
    }
    struct compose_job cj = {.c = c, .m = m, .delay = delay, .flags = flags};
    char *title = xasprintf("bounce %s", spool_env(m)->qid);
    struct child_spec spec = {.title = title, .become = &id, .extra_gid = (gid_t)-1,
                              .report = 1};
    struct child ch;
    struct child_end end;
    struct msg msg;
    int started = child_start(&ch, &spec, compose_child, &cj);
    int err = errno;
    free(title);
    privs_free(&id);
    if (started < 0) {
        errno = err;
        return -1;
    }
    int got = msg_recv(ch.fd, &msg, 256, 0);
    child_wait(&ch, &end);
    int rc = -1;
    err = EIO;
    if (got == 1 && bounce_result(&msg, &rc, &err, newqid) == 0) {
        msg_free(&msg);
        errno = err;
        return rc;
    }
    if (got == 1)
        msg_free(&msg);
    if (end.exited && end.code == CHILD_EX_PRIVS)
        log_err("%s: cannot become %s to compose a report", spool_env(m)->qid, user);
    else
        log_err("%s: the process composing a report died", spool_env(m)->qid);
    errno = end.exited && end.code == CHILD_EX_PRIVS ? EPERM : EIO;
    return -1;
}

/* The one-time "still trying" notice.  Never for a message from <> (nobody
 * to tell but the postmaster, who gets the failure if it comes to that). */
static int queue_delay(const struct config *c, struct qmsg *m, char newqid[QID_MAX])
{
    struct envelope *e = spool_env(m);
    size_t owed, wanted;
    count(e, 1, &owed, &wanted);
    if ((e->flags & (ENV_WARNED | ENV_DOUBLE)) || !*e->sender || wanted == 0)
        return 1;
    if (compose_and_enqueue(c, m, 1, 0, newqid) < 0)
        return -1;
    e->flags |= ENV_WARNED;
    if (spool_rewrite(m) < 0) {
        log_err("%s: cannot record that the delay notice was sent: %s", e->qid,
                strerror(errno));
        return -1;
    }
    return 0;
}

int bounce_queue(const struct config *c, struct qmsg *m, int delay, char newqid[QID_MAX])
{
    struct envelope *e = spool_env(m);
    size_t owed, wanted;
    if (newqid)
        newqid[0] = '\0';
    if (delay)
        return queue_delay(c, m, newqid);
    count(e, 0, &owed, &wanted);
    if (owed == 0)
        return 1;
    if (e->flags & ENV_DOUBLE)
        return hold_double(c, m) < 0 ? -1 : 1;
    if (wanted > 0) {
        /* the bounce of a bounce goes to the postmaster, and stops there */
        int flags = *e->sender ? 0 : ENV_DOUBLE;
        if (compose_and_enqueue(c, m, 0, flags, newqid) < 0)
            return -1;
    } else {
        log_info("%s: no bounce for %zu failed recipient(s): NOTIFY did not ask for one",
                 e->qid, owed);
    }
    /* queued first, marked after: a crash in between repeats the bounce,
     * it never loses it */
    if (mark_bounced(m) < 0)
        return -1;
    return wanted > 0 ? 0 : 1;
}
