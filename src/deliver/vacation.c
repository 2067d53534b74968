/* vacation.c - vacation replies after mailbox deliveries: see vacation.h.
 *
 * Runs as root (the queue runner): vacation_after_mbox looks up the account,
 * stat()s its vacation file and starts the two children; it reads no user
 * file and no message text itself (the composed reply passes through as
 * bytes, into the submitting child's memory).  Everything that reads the
 * vacation file, the record or the message runs in the "vacation USER" child
 * as the user (or vuser=). */
#include "compat.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "bounce.h"
#include "child.h"
#include "headers.h"
#include "envelope.h"
#include "log.h"
#include "privs.h"
#include "spool.h"
#include "util.h"
#include "vacation.h"
#include "vacation_db.h"
#include "vacation_msg.h"
#include "vacation_rules.h"

/* Whose vacation this is, and where its files are. */
struct vac_who {
    struct ident id;     /* the composing child's identity */
    char *user;          /* for logs: the account, or name@domain */
    char *msgpath;       /* the vacation file */
    char *dbpath;        /* the record */
    char *from;          /* the user's address (From:) */
    struct strlist self; /* the user's addresses */
};

static void who_free(struct vac_who *w)
{
    privs_free(&w->id);
    free(w->user);
    free(w->msgpath);
    free(w->dbpath);
    free(w->from);
    sl_free(&w->self);
}

/* A local account: 0, or -1 when it has no replies (no account, uid 0). */
static int who_local(const struct config *c, const char *box, struct vac_who *w)
{
    if (privs_lookup(box, &w->id) != 0 || w->id.uid == 0 || !w->id.home || !*w->id.home)
        return -1;
    w->user = xstrdup(w->id.name);
    w->msgpath = xasprintf("%s/.vacation.msg", w->id.home);
    w->dbpath = xasprintf("%s/.vacation.db", w->id.home);
    w->from = xasprintf("%s@%s", w->id.name, c->hostname);
    sl_add(&w->self, w->from);
    for (size_t i = 0; i < c->self_names.n; i++)
        sl_add_owned(&w->self, xasprintf("%s@%s", w->id.name, c->self_names.v[i]));
    return 0;
}

/* A name that can be part of a path: not empty, no '/', no leading dot. */
static int path_safe(const char *s)
{
    return *s && *s != '.' && !strchr(s, '/');
}

/* A virtual user "name@domain": runs as vuser= (never root). */
static int who_virtual(const struct config *c, const char *box, struct vac_who *w)
{
    const char *at = strrchr(box, '@');
    const char *vuser = c->vuser && *c->vuser ? c->vuser : "mail";
    if (!at || privs_lookup(vuser, &w->id) != 0 || w->id.uid == 0)
        return -1;
    char *name = xstrndup(box, (size_t)(at - box)), *dom = xstrdup(at + 1);
    str_lower(name);
    str_lower(dom);
    int ok = path_safe(name) && path_safe(dom);
    if (ok) {
        w->user = xasprintf("%s@%s", name, dom);
        w->msgpath = xasprintf("%s/%s/vacation/%s.msg", c->vpath, dom, name);
        w->dbpath = xasprintf("%s/%s/vacation/%s.db", c->vpath, dom, name);
        w->from = xstrdup(w->user);
        sl_add(&w->self, w->from);
    }
    free(name);
    free(dom);
    return ok ? 0 : -1;
}

/* ---- the composing child (as the user) ---- */

struct compose_arg {
    const struct vac_who *w;
    const struct local_mjob *j;
    const char *host;
};

/* The first VAC_HDR_MAX bytes of the message (or all of it). */
static int read_head(const struct msgdata *d, struct buf *b)
{
    size_t want = d->len < VAC_HDR_MAX ? (size_t)d->len : VAC_HDR_MAX;
    buf_reserve(b, want + 1);
    while (b->len < want) {
        ssize_t r = pread(d->fd, b->s + b->len, want - b->len, (off_t)(d->off + (long long)b->len));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        b->len += (size_t)r;
    }
    b->s[b->len] = '\0';
    return 0;
}

/* The reply for job j, or why there is none: 0 with out filled (a reply) or
 * empty (none, logged), 1 on an error (logged). */
static int compose(const struct compose_arg *a, struct buf *out)
{
    const struct vac_who *w = a->w;
    const struct local_mjob *j = a->j;
    struct buf text, head;
    buf_init(&text);
    buf_init(&head);
    struct vac_file f;
    char *err = NULL;
    const char *why = NULL;
    int rc = 1;
    if (read_file(w->msgpath, &text, VAC_FILE_MAX) < 0) {
        if (errno == ENOENT)
            rc = 0; /* removed since the parent looked */
        else
            log_warn("%s: vacation file %s: %s; no reply sent", j->qid, w->msgpath,
                     errno == EFBIG ? "larger than 64 KiB" : strerror(errno));
        goto out;
    }
    if (vac_file_parse(text.s, text.len, &f, &err) < 0) {
        log_warn("%s: vacation file %s: %s; no reply sent", j->qid, w->msgpath, err);
        goto out;
    }
    if (read_head(&j->data, &head) < 0) {
        log_warn("%s: vacation for %s: cannot read the message: %s", j->qid, w->user,
                 strerror(errno ? errno : EIO));
        goto out_f;
    }
    struct hdr_info hi;
    hdr_scan(head.s, head.len, &hi);
    struct strlist self;
    sl_init(&self);
    for (size_t i = 0; i < w->self.n; i++)
        sl_add(&self, w->self.v[i]);
    for (size_t i = 0; i < f.aliases.n; i++)
        sl_add(&self, f.aliases.v[i]);
    if (j->rcpt && strchr(j->rcpt, '@'))
        sl_add(&self, j->rcpt);
    if (hi.hdr_len >= head.len && (long long)head.len < j->data.len)
        why = "the header block is longer than 256 KiB";
    else
        (void)vac_rules_check(j->sender, head.s, hi.hdr_len, &self, f.check_to, &why);
    sl_free(&self);
    if (why) {
        log_info("%s: vacation for %s: no reply to <%s>: %s", j->qid, w->user, j->sender, why);
        rc = 0;
        goto out_f;
    }
    struct vac_orig o = {.subject = NULL};
    char *subj = hdr_get(head.s, hi.hdr_len, "Subject");
    char *mid = hdr_get(head.s, hi.hdr_len, "Message-ID");
    char *refs = hdr_get(head.s, hi.hdr_len, "References");
    o.subject = subj;
    o.msgid = mid;
    o.refs = refs;
    time_t now = time(NULL), last = 0;
    if (vac_compose(&f, &o, w->from, j->sender, a->host, now, out, &err) < 0) {
        log_warn("%s: vacation file %s: %s; no reply sent", j->qid, w->msgpath, err);
    } else if (out->len > VAC_REPLY_MAX) { /* $SUBJECT many times over */
        log_warn("%s: vacation file %s: the reply would be larger than %d KiB; no reply "
                 "sent", j->qid, w->msgpath, VAC_REPLY_MAX / 1024);
        buf_reset(out);
    } else {
        int due = vacdb_due(w->dbpath, j->sender, f.period, now, &last, &err);
        if (due < 0)
            log_warn("%s: vacation for %s: %s; no reply sent", j->qid, w->user, err);
        else if (due == 0)
            log_info("%s: vacation for %s: no reply to <%s>: already answered %ld seconds "
                     "ago", j->qid, w->user, j->sender, (long)(now - last));
        rc = due < 0;
        if (due != 1)
            buf_reset(out);
    }
    free(subj);
    free(mid);
    free(refs);
out_f:
    vac_file_free(&f);
out:
    free(err);
    buf_free(&text);
    buf_free(&head);
    return rc;
}

static PO_NORETURN void compose_child(void *arg, int fd)
{
    struct buf out;
    buf_init(&out);
    int rc = compose(arg, &out);
    if (out.len && write_all(fd, out.s, out.len) < 0)
        rc = 1;
    _exit(rc);
}

/* ---- the submitting child (as user=) ---- */

struct submit_arg {
    const struct config *c;
    const char *rcpt;
    const struct buf *reply;
};

static int has_8bit(const struct buf *b)
{
    for (size_t i = 0; i < b->len; i++)
        if ((unsigned char)b->s[i] & 0x80)
            return 1;
    return 0;
}

/* As user= (the queue's owner): the reply into the queue, from <> to rcpt,
 * as a bounce is queued.  No sendmail run, so no configuration file is read
 * again: a daemon started with -C FILE holding root-only options replies
 * all the same. */
static PO_NORETURN void submit_child(void *arg, int unused)
{
    const struct submit_arg *a = arg;
    (void)unused;
    struct spool_new *sn = spool_new(a->c->queuedir);
    if (!sn || spool_new_write(sn, a->reply->s, a->reply->len) < 0) {
        log_err("vacation: cannot queue the reply to <%s>: %s", a->rcpt, strerror(errno));
        if (sn)
            spool_abort(sn);
        _exit(EX_TEMPFAIL);
    }
    struct envelope e;
    env_init(&e); /* sender "" (RFC 3834) */
    e.flags = has_8bit(a->reply) ? ENV_8BIT : 0;
    e.ctime = time(NULL);
    env_add_rcpt(&e, a->rcpt, NULL, NULL);
    if (spool_commit(sn, &e) < 0) {
        log_err("vacation: cannot queue the reply to <%s>: %s", a->rcpt, strerror(errno));
        _exit(EX_TEMPFAIL);
    }
    bounce_log_queued(e.qid, a->reply->s, a->reply->len, "vacation", NULL);
    _exit(0);
}

/* Queue reply (to rcpt) as user=. */
static void submit(const struct config *c, const struct local_mjob *j, const char *user,
                   const struct buf *reply)
{
    struct ident qo;
    if (privs_lookup(c->user, &qo) != 0 || qo.uid == 0) {
        privs_free(&qo);
        log_warn("%s: vacation for %s: user=%s is missing or root: reply not sent", j->qid,
                 user, c->user);
        return;
    }
    struct submit_arg a = {.c = c, .rcpt = j->sender, .reply = reply};
    struct child_spec spec = {.title = "vacation submit", .become = &qo,
                              .extra_gid = (gid_t)-1, .deadline_ms = VAC_CHILD_MS,
                              .own_group = 1, .die_with_parent = 1};
    struct child ch;
    struct child_end end;
    char how[64];
    if (child_start(&ch, &spec, submit_child, &a) < 0) {
        log_warn("%s: vacation for %s: cannot fork: %s", j->qid, user, strerror(errno));
    } else {
        child_wait(&ch, &end);
        if (end.exited && end.code == 0) {
            log_info("%s: vacation for %s: reply to <%s> queued", j->qid, user, j->sender);
            spool_trigger(c->queuedir);
        } else {
            log_warn("%s: vacation for %s: queueing failed (%s): reply to <%s> not sent",
                     j->qid, user, child_end_text(&end, how, sizeof how), j->sender);
        }
    }
    privs_free(&qo);
}

/* One reply: compose as the user, then submit. */
static void reply_one(const struct config *c, const struct vac_who *w,
                      const struct local_mjob *j)
{
    struct compose_arg a = {.w = w, .j = j, .host = c->hostname};
    char title[128];
    snprintf(title, sizeof title, "vacation %s", w->user);
    struct child_spec spec = {.title = title, .become = &w->id, .extra_gid = (gid_t)-1,
                              .deadline_ms = VAC_CHILD_MS, .own_group = 1,
                              .die_with_parent = 1, .report = 1};
    struct child ch;
    struct child_end end;
    struct buf reply;
    buf_init(&reply);
    char how[64];
    if (child_start(&ch, &spec, compose_child, &a) < 0) {
        log_warn("%s: vacation for %s: cannot fork: %s", j->qid, w->user, strerror(errno));
    } else if (child_finish(&ch, &reply, VAC_REPLY_MAX, &end) < 0 || !end.exited ||
               end.code != 0) {
        if (!end.exited || end.code != 1) /* 1: the child said why itself */
            log_warn("%s: vacation for %s: the composing child failed (%s): no reply",
                     j->qid, w->user, child_end_text(&end, how, sizeof how));
    } else if (reply.len) {
        submit(c, j, w->user, &reply);
    }
    buf_free(&reply);
}

void vacation_after_mbox(const struct config *c, const char *box,
                         const struct local_mjob *jobs, size_t n)
{
    size_t due = 0;
    for (size_t k = 0; k < n; k++)
        due += jobs[k].res == DELIV_OK && jobs[k].sender && *jobs[k].sender;
    if (due == 0)
        return; /* bounces are never answered: no lookup at all */
    struct vac_who w;
    memset(&w, 0, sizeof w);
    sl_init(&w.self);
    int rc = strchr(box, '@') ? who_virtual(c, box, &w) : who_local(c, box, &w);
    struct stat st;
    /* the common case ends here: no vacation file, no process made */
    if (rc == 0 && (stat(w.msgpath, &st) == 0 || (errno != ENOENT && errno != ENOTDIR)))
        for (size_t k = 0; k < n; k++)
            if (jobs[k].res == DELIV_OK && jobs[k].sender && *jobs[k].sender)
                reply_one(c, &w, &jobs[k]);
    who_free(&w);
}
