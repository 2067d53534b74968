/* submit.c - the sendmail front end (see submit.h).
 *
 * Never runs with more privilege than the caller has: it is not setuid. */
#include "compat.h"

#include <errno.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "address.h"
#include "av_scan.h"
#include "child.h"
#include "date.h"
#include "envelope.h"
#include "header_qualify.h"
#include "headers.h"
#include "log.h"
#include "logfmt.h"
#include "msgid_peek.h"
#include "queue_run.h"
#include "spool.h"
#include "submit.h"
#include "verdict.h"
#include "submit_filter.h"

#define HDR_MAX (1024 * 1024)   /* header block scanned for To/Cc/Bcc, Date... */
#define PIECE_MAX (64 * 1024)   /* longest piece of a line read at once */

/* The caller, as the queue will know them. */
struct caller {
    char *login;
    char *gecos;
    int trusted;   /* root, the queue owner or trusted-users=: -f without a warning */
    int direct;    /* may write into the queue itself (root or spool owner) */
};

static int get_caller(const struct config *c, struct caller *who)
{
    uid_t uid = getuid();
    struct passwd *pw = getpwuid(uid);
    if (!pw) {
        say("your user id %ld has no account name; cannot send mail as nobody",
            (long)uid);
        return EX_NOUSER;
    }
    who->login = xstrdup(pw->pw_name);
    who->gecos = pw->pw_gecos && *pw->pw_gecos ? xstrdup(pw->pw_gecos) : NULL;
    struct stat st;
    who->direct = uid == 0 || (stat(c->queuedir, &st) == 0 && st.st_uid == uid);
    /* the queue owner writes queue files itself: it can set any sender anyway
     * (the vacation replies' -f "" comes from it: vacation.h) */
    who->trusted = who->direct || sl_contains(&c->trusted_users, pw->pw_name);
    return 0;
}

/* Read one piece of a line (up to and including '\n', at most PIECE_MAX bytes)
 * into b, turning CRLF into LF.  Returns 0 at EOF with nothing read, 1 for a piece
 * ending in LF, 2 for a piece cut at the limit or at EOF without LF, -1 on error. */
static int read_piece(FILE *in, struct buf *b)
{
    buf_reset(b);
    int ch;
    while ((ch = getc_unlocked(in)) != EOF) {
        if (ch == '\n') {
            if (b->len && b->s[b->len - 1] == '\r')
                buf_truncate(b, b->len - 1);
            buf_addc(b, '\n');
            return 1;
        }
        buf_addc(b, ch);
        if (b->len >= PIECE_MAX && b->s[b->len - 1] != '\r')
            return 2;
    }
    if (ferror(in))
        return -1;
    if (b->len && b->s[b->len - 1] == '\r') {
        /* CRLF input whose last line lost its LF: the CR still ends it */
        b->s[b->len - 1] = '\n';
        return 1;
    }
    return b->len ? 2 : 0;
}

static int is_dot_line(const struct buf *b, int at_start)
{
    return at_start && b->len == 2 && b->s[0] == '.' && b->s[1] == '\n';
}

/* size= and minfree= while the input streams in. */
struct limits {
    const struct config *c;
    long long seen;        /* input bytes taken so far (LF form) */
    long long next_check;  /* when to look at the free space again */
};

#define MINFREE_STEP (1024 * 1024) /* bytes between two free-space checks */

/* Is the queue's file system below minfree=?  Says so and returns EX_TEMPFAIL. */
static int short_of_space(const struct config *c)
{
    if (spool_below_minfree(c) != 1)
        return 0; /* enough, or can't tell: writing will tell (ENOSPC) */
    say("the queue file system has less than minfree= (%lld bytes) free; nothing "
        "was queued, try again later", c->minfree);
    return EX_TEMPFAIL;
}

/* Count n more input bytes: EX_DATAERR past size=, EX_TEMPFAIL when the free
 * space has fallen below minfree= (looked at every MINFREE_STEP bytes). */
static int take_bytes(struct limits *l, size_t n)
{
    l->seen += (long long)n;
    if (l->c->size > 0 && l->seen > l->c->size) {
        say("message too large (limit %lld bytes, size= in %s); nothing was queued",
            l->c->size, l->c->confpath);
        return EX_DATAERR;
    }
    if (l->seen < l->next_check)
        return 0;
    l->next_check = l->seen + MINFREE_STEP;
    return short_of_space(l->c);
}

/* Reads the header block (and maybe the first body lines) into hdr.
 * *ended: the input ended (EOF or lone dot). */
static int read_head(FILE *in, const struct submit_opts *o, struct limits *l,
                     struct buf *hdr, int *ended)
{
    struct buf piece;
    buf_init(&piece);
    int at_start = 1, r = 0, rc = 0;
    *ended = 0;
    while (hdr->len < HDR_MAX) {
        r = read_piece(in, &piece);
        if (r <= 0 || (o->dot_ends && is_dot_line(&piece, at_start))) {
            *ended = 1;
            break;
        }
        if ((rc = take_bytes(l, piece.len)))
            break;
        buf_add(hdr, piece.s, piece.len);
        if (r == 1 && at_start && piece.len == 1)
            break; /* the empty line that ends the header block */
        at_start = r == 1;
    }
    buf_free(&piece);
    if (r < 0) {
        say("cannot read the message: %s", strerror(errno));
        return EX_IOERR;
    }
    /* the whole message is here: end its last line, so that a header field
     * without its LF is scanned as the complete line it is */
    if (*ended && hdr->len && hdr->s[hdr->len - 1] != '\n')
        buf_addc(hdr, '\n');
    return rc;
}

/* Copy the rest of the input into the queue, ending it with a LF.  *eightbit
 * is set on any 8-bit byte.  0, -1 (write failed: errno), -2 (read failed,
 * said), or a sysexits code from take_bytes (said). */
static int copy_body(FILE *in, const struct submit_opts *o, struct limits *l,
                     struct spool_new *sn, int *eightbit, int at_start)
{
    struct buf piece;
    buf_init(&piece);
    int r, rc = 0;
    while ((r = read_piece(in, &piece)) > 0) {
        if (o->dot_ends && is_dot_line(&piece, at_start))
            break;
        for (size_t i = 0; i < piece.len && !*eightbit; i++)
            if ((unsigned char)piece.s[i] >= 0x80)
                *eightbit = 1;
        if ((rc = take_bytes(l, piece.len)))
            break;
        if (spool_new_write(sn, piece.s, piece.len) < 0) {
            rc = -1;
            break;
        }
        at_start = r == 1;
    }
    if (r < 0) {
        say("cannot read the message: %s", strerror(errno));
        rc = -2;
    }
    if (rc == 0 && !at_start && spool_new_write(sn, "\n", 1) < 0)
        rc = -1;
    buf_free(&piece);
    return rc;
}

/* The envelope sender: -f/-r when given (a bare name gets @hostname), else the
 * caller's login at our host. */
static char *envelope_sender(const struct config *c, const struct submit_opts *o,
                             const struct caller *who, int *rc)
{
    *rc = 0;
    if (o->from) {
        if (!strcmp(o->from, "<>") || !*o->from)
            return xstrdup("");
        char *addr;
        const char *why;
        if (addr_parse_mailbox(o->from, &addr, &why) < 0) {
            say("bad sender address \"%s\": %s", o->from, why);
            *rc = EX_DATAERR;
            return NULL;
        }
        if (!addr_domain(addr)) {
            char *full = xasprintf("%s@%s", addr, c->hostname);
            free(addr);
            addr = full;
        }
        return addr;
    }
    return xasprintf("%s@%s", who->login, c->hostname);
}

/* Every recipient is checked before anything is queued: one that is not an
 * address (a program or file name among them: address.h) refuses the whole
 * submission, so the caller learns of it and nothing is half sent. */
static int add_recipients(struct envelope *e, const struct strlist *l)
{
    for (size_t i = 0; i < l->n; i++) {
        char *addr;
        const char *why;
        if (addr_parse_mailbox(l->v[i], &addr, &why) < 0) {
            char *safe = str_sanitize(l->v[i], strlen(l->v[i]));
            say("bad recipient address \"%s\": %s; nothing was sent", safe, why);
            free(safe);
            return EX_DATAERR;
        }
        int dup = 0;
        for (size_t j = 0; j < e->nrcpts && !dup; j++)
            dup = strcasecmp(e->rcpts[j].addr, addr) == 0;
        if (!dup)
            env_add_rcpt(e, addr, NULL, NULL);
        free(addr);
    }
    return 0;
}

/* With -t, add the To:, Cc: and Bcc: recipients (one that is not an address
 * refuses the message); then there must be some. */
static int header_recipients(const struct submit_opts *o, const struct buf *head,
                             const struct hdr_info *hi, struct envelope *e)
{
    if (o->extract) {
        struct strlist hr, bad;
        sl_init(&hr);
        sl_init(&bad);
        hdr_recipients_report(head->s, hi->hdr_len, &hr, &bad);
        /* a recipient we cannot read is refused, never dropped in silence */
        for (size_t i = 0; i < bad.n; i++)
            say("-t: bad recipient address in %s; nothing was sent", bad.v[i]);
        int rc = bad.n ? EX_DATAERR : add_recipients(e, &hr);
        sl_free(&hr);
        sl_free(&bad);
        if (rc)
            return rc;
    }
    if (e->nrcpts == 0) {
        say("no recipients: name them as arguments, or use -t to take them from "
            "the To:, Cc: and Bcc: lines");
        return EX_USAGE;
    }
    return 0;
}

/* qualify-headers: "@hostname" for the bare names in the address fields
 * (header_qualify.h).  Only a complete header block: a field cut at
 * HDR_MAX could be the start of a longer address. */
static void qualify_headers(const struct config *c, struct buf *head, struct hdr_info *hi,
                            int ended)
{
    if (!c->qualify_headers || (!ended && hi->hdr_len == head->len))
        return;
    struct buf nb;
    buf_init(&nb);
    size_t n = hq_headers(head->s, hi->hdr_len, c->hostname, &nb);
    if (n > 0) {
        buf_add(&nb, head->s + hi->hdr_len, head->len - hi->hdr_len);
        buf_free(head);
        *head = nb;
        hdr_scan(head->s, head->len, hi);
    } else {
        buf_free(&nb);
    }
}

/* Build the header lines we add in front of / after the caller's header block. */
static void make_headers(const struct config *c, const struct submit_opts *o,
                         const struct caller *who, const char *qid,
                         const struct hdr_info *hi, const char *sender,
                         struct buf *front, struct buf *back)
{
    struct buf date;
    buf_init(&date);
    date_rfc5322(time(NULL), &date);
    buf_addf(front, "Received: by %s (postoffice, from uid %ld)\n\tid %s; %s\n",
             c->hostname, (long)getuid(), qid, date.s);
    if (o->from && !who->trusted) {
        char *safe = str_sanitize(sender, strlen(sender));
        buf_addf(front, "X-Authentication-Warning: %s: %s set sender to %s using -f\n",
                 c->hostname, who->login, *safe ? safe : "<>");
        free(safe);
    }
    if (!hi->has_date)
        buf_addf(back, "Date: %s\n", date.s);
    if (!hi->has_msgid) {
        struct buf id;
        buf_init(&id);
        hdr_msgid(qid, c->hostname, &id);
        buf_addf(back, "Message-ID: %s\n", id.s);
        buf_free(&id);
    }
    if (!hi->has_from) {
        char *own = xasprintf("%s@%s", who->login, c->hostname);
        if (o->from && *sender)
            hdr_from_addr(sender, o->fullname, back); /* -F names -f's address */
        else if (o->fullname)
            hdr_from_addr(own, o->fullname, back);
        else
            hdr_from_line(who->login, c->hostname, who->gecos, back);
        free(own);
    }
    buf_free(&date);
}

/* Write the message (our headers, theirs minus Bcc with -t, the body) to sn.
 * Returns as copy_body. */
static int write_message(struct spool_new *sn, FILE *in, const struct submit_opts *o,
                         struct limits *l, const struct buf *head,
                         const struct hdr_info *hi, const struct buf *front,
                         const struct buf *back, int ended, int *eightbit)
{
    struct buf hdrs;
    buf_init(&hdrs);
    buf_add(&hdrs, front->s, front->len);
    if (o->extract)
        hdr_strip_bcc(head->s, hi->hdr_len, &hdrs);
    else
        buf_add(&hdrs, head->s, hi->hdr_len);
    if (hdrs.len && hdrs.s[hdrs.len - 1] != '\n')
        buf_addc(&hdrs, '\n'); /* never glue our fields onto the last of theirs */
    buf_add(&hdrs, back->s, back->len);
    const char *rest = head->s + hi->hdr_len;
    size_t restlen = head->len - hi->hdr_len;
    if (restlen && rest[0] != '\n')
        buf_addc(&hdrs, '\n'); /* a body without its empty line: separate it */
    int rc = spool_new_write(sn, hdrs.s, hdrs.len);
    buf_free(&hdrs);
    if (rc == 0)
        rc = spool_new_write(sn, rest, restlen);
    if (rc == 0 && !ended) {
        int at_start = head->len == 0 || head->s[head->len - 1] == '\n';
        rc = copy_body(in, o, l, sn, eightbit, at_start);
    }
    return rc;
}

/* The message's "queued" line (postoffice-log(5)); a maildrop submission is
 * marked so (the pickup gives it its queue id later). */
static void log_queued(const struct envelope *e, long long size, const char *msgid,
                       const struct caller *who)
{
    struct logfmt l;
    lf_begin(&l, e->qid, "queued");
    lf_addr(&l, "from", e->sender);
    lf_num(&l, "size", size);
    lf_num(&l, "nrcpt", (long long)e->nrcpts);
    lf_msgid(&l, msgid);
    lf_client(&l, NULL, NULL);
    lf_str(&l, "user", who->login);
    lf_num(&l, "uid", (long long)getuid());
    lf_str(&l, "proto", "sendmail");
    if (!who->direct)
        lf_str(&l, "queue", "maildrop");
    lf_log(&l, LOG_INFO);
}

static int queue_failed(int err)
{
    if (err == ENOSPC || err == EDQUOT) {
        say("the queue file system is full; nothing was queued, try again later");
        return EX_TEMPFAIL;
    }
    say("cannot queue the message: %s", strerror(err));
    return err == EACCES ? EX_NOPERM : EX_CANTCREAT;
}

struct bg_job {
    const struct config *c;
    const char *qid;
    struct runq_opts ro;
};

/* The background delivery proper, in the grandchild. */
static PO_NORETURN void bg_deliver(void *arg, int unused)
{
    const struct bg_job *bj = arg;
    (void)unused;
    freopen("/dev/null", "r", stdin);
    freopen("/dev/null", "w", stdout);
    freopen("/dev/null", "w", stderr);
    log_set_stderr(0);
    runq_message(bj->c, bj->qid, &bj->ro);
    _exit(0);
}

/* The middle child: detach so the caller isn't kept waiting and can't signal
 * us by accident (a new session, then a grandchild that is not its leader,
 * so it can never get a controlling terminal back). */
static PO_NORETURN void bg_detach(void *arg, int unused)
{
    struct child gc;
    struct child_spec spec = {.title = "deliver"};
    (void)unused;
    setsid();
    signal(SIGHUP, SIG_IGN);
    (void)child_start(&gc, &spec, bg_deliver, arg); /* not reaped: init adopts it */
    _exit(0);
}

/* Start delivery of qid in the background (or the foreground with -v). */
static void start_delivery(const struct config *c, const struct submit_opts *o,
                           const struct caller *who, const char *qid)
{
    if (o->queue_only)
        return;
    if (!who->direct) {
        spool_trigger(c->queuedir); /* the daemon picks up the maildrop */
        return;
    }
    /* local recipients now; remote ones too with immediate (or -v), else at the
     * next queue run, as for mail accepted over SMTP */
    struct bg_job bj = {.c = c, .qid = qid,
                        .ro = {.verbose = o->verbose,
                               .local_only = !c->immediate && !o->verbose}};
    if (o->verbose) {
        runq_message(c, qid, &bj.ro);
        return;
    }
    struct child mid;
    struct child_spec spec = {.title = "deliver"};
    struct child_end end;
    if (child_start(&mid, &spec, bg_detach, &bj) == 0)
        child_wait(&mid, &end); /* it ends at once, leaving the grandchild */
    /* (fork failed: the next queue run delivers it) */
}

/* av=: scan the message before it is queued (av_scan.h).  A flagged message
 * is refused as the original refused it (EX_UNAVAILABLE, the scanner's output
 * on stderr); a scan that fails is a temporary error. */
static int scan(const struct config *c, struct spool_new *sn, const char *sender)
{
    if (!c->av)
        return 0;
    struct buf out;
    buf_init(&out);
    struct msgdata md = spool_new_data(sn);
    enum av_result r = av_scan(c, &md, sender, &out);
    char *said = r == AV_FLAGGED ? verdict_diag(out.len ? out.s : "(no reason given)")
                                 : str_sanitize(out.s, out.len > 400 ? 400 : out.len);
    int rc = 0;
    if (r == AV_FLAGGED) {
        say("message refused by the virus scanner: %s", said);
        log_notice("refused a message from uid %ld: av: %s", (long)getuid(), said);
        rc = EX_UNAVAILABLE;
    } else if (r == AV_FAILED) {
        say("cannot scan the message now (%s); try again later", said);
        log_err("cannot scan a message from uid %ld: %s", (long)getuid(), said);
        rc = EX_TEMPFAIL;
    }
    free(said);
    buf_free(&out);
    return rc;
}

static int submit(const struct config *c, struct submit_opts *o, struct caller *who)
{
    struct buf head, front, back;
    buf_init(&head);
    buf_init(&front);
    buf_init(&back);
    struct envelope e;
    env_init(&e);
    int ended, eightbit = 0, rc;
    struct hdr_info hi;
    char *sender = NULL;
    struct spool_new *sn = NULL;

    struct limits lim = {.c = c, .next_check = MINFREE_STEP};
    /* the command line is checked before the input is read */
    if ((rc = add_recipients(&e, &o->rcpts)))
        goto out;
    if (!(sender = envelope_sender(c, o, who, &rc)))
        goto out;
    if ((rc = short_of_space(c)))
        goto out;
    if ((rc = read_head(stdin, o, &lim, &head, &ended)))
        goto out;
    hdr_scan(head.s, head.len, &hi);
    eightbit = hi.eight_bit;
    if ((rc = header_recipients(o, &head, &hi, &e)))
        goto out;
    qualify_headers(c, &head, &hi, ended);
    char *qdir = who->direct ? xstrdup(c->queuedir)
                             : xasprintf("%s/maildrop", c->queuedir);
    sn = spool_new(qdir);
    if (!sn) {
        free(qdir);
        rc = queue_failed(errno);
        goto out;
    }
    make_headers(c, o, who, spool_new_qid(sn), &hi, sender, &front, &back);
    int w = write_message(sn, stdin, o, &lim, &head, &hi, &front, &back, ended, &eightbit);
    if (w != 0) {
        int err = errno;
        spool_abort(sn); /* nothing half-written stays */
        free(qdir);
        rc = w == -2 ? EX_IOERR : w == -1 ? queue_failed(err) : w;
        goto out;
    }
    if ((rc = scan(c, sn, sender))) {
        spool_abort(sn);
        free(qdir);
        goto out;
    }
    free(e.sender);
    e.sender = sender;
    sender = NULL;
    e.local_user = xstrdup(who->login);
    e.client_name = xstrdup("localhost");
    e.flags |= eightbit ? ENV_8BIT : 0;
    e.flags |= o->ret_hdrs ? ENV_RET_HDRS : 0;
    for (size_t i = 0; i < e.nrcpts; i++)
        e.rcpts[i].notify = o->notify;
    e.ctime = time(NULL);
    rc = sfilter_run(c, qdir, &sn, &e); /* filter-local= */
    free(qdir);
    if (rc) {
        spool_abort(sn);
        rc = rc == 1 ? 0 : rc; /* 1: dropped on purpose, logged */
        goto out;
    }
    long long size = spool_new_size(sn);
    char *msgid = msgid_peek(sn);
    if (spool_commit(sn, &e) < 0) {
        rc = queue_failed(errno);
        free(msgid);
        goto out;
    }
    log_queued(&e, size, msgid, who);
    free(msgid);
    start_delivery(c, o, who, e.qid);
out:
    free(sender);
    env_free(&e);
    buf_free(&head);
    buf_free(&front);
    buf_free(&back);
    return rc;
}

int submit_main(const struct config *c, struct submit_opts *o)
{
    struct caller who = {0};
    int rc = get_caller(c, &who);
    if (rc == 0)
        rc = submit(c, o, &who);
    free(who.login);
    free(who.gecos);
    return rc;
}
