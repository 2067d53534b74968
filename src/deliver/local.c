/* local.c - local delivery: a mailbox, a program or a file, each done by a
 * child running as the identity the target belongs to.
 *
 * Runs as root: local_deliver() and local_deliver_mbox_batch() themselves, in
 * the queue runner, only to look the identity up, check the spool directory,
 * open, lock and (after a writer that died) truncate a spool mailbox through
 * mbox_open/mbox_close - never reading it or the message - and fork.  The child
 * becomes the target's identity (child_start) before it touches the message,
 * the program or a file, and reports its results as one MSG_LOCAL_RESULT
 * message; the parent waits for it with a deadline and kills its group when
 * it hangs. */
#include "compat.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "child.h"
#include "expand.h"
#include "local.h"
#include "log.h"
#include "mailbox_limits.h"
#include "mailbox_place.h"
#include "maildir.h"
#include "mbox.h"
#include "msg.h"
#include "pipe.h"
#include "privs.h"
#include "util.h"
#include "vmailbox.h"

#define RESULT_MAX 2048    /* the child's report: code and one status line */
#define GRACE_MS 10000     /* extra time for the child after a program's own deadline */

char *local_mbox_path(const struct config *c, const char *user)
{
    return xasprintf("%s/%s", c->mailspool, user);
}

/* A mailbox name becomes a file name in the spool: one plain component. */
static int mailbox_name_ok(const char *u)
{
    if (u == NULL || *u == '\0' || *u == '.' || strlen(u) > 255)
        return 0;
    for (const unsigned char *p = (const unsigned char *)u; *p; p++)
        if (*p == '/' || *p <= ' ' || *p == 0x7f)
            return 0;
    return 1;
}

/* The spool directory (*dst): refuse one anybody could plant files in
 * without the sticky bit; when it is group-writable (2775 root:mail), dot-locks
 * of its group are another mail program's, never planted: *extra_gid. */
static enum deliv_result check_spool(const char *dir, gid_t *extra_gid, struct stat *dst,
                                     char **status)
{
    struct stat st;
    *extra_gid = (gid_t)-1;
    if (stat(dir, &st) < 0) {
        *status = xasprintf("4.3.0 mail spool %s: %s", dir, strerror(errno));
        return DELIV_DEFER;
    }
    if (!S_ISDIR(st.st_mode)) {
        *status = xasprintf("4.3.0 mail spool %s is not a directory", dir);
        return DELIV_DEFER;
    }
    if ((st.st_mode & S_IWOTH) && !(st.st_mode & S_ISVTX)) {
        *status = xasprintf("4.3.0 mail spool %s is world-writable without the sticky bit; "
                            "chmod 1777 or 2775 it", dir);
        return DELIV_DEFER;
    }
    if ((st.st_mode & S_IWGRP) && !(st.st_mode & S_IWOTH) && st.st_gid != 0)
        *extra_gid = st.st_gid;
    *dst = st;
    return DELIV_OK;
}

/* The delimiter of subaddress folders (subaddress-folder=), or NULL. */
static const char *folder_delim(const struct config *c)
{
    return c->subaddress_folder ? c->recipient_delimiter : NULL;
}

static enum deliv_result do_file(const struct config *c, const struct local_job *j,
                                 long lock_wait, long busy_wait, char **status)
{
    if (strcmp(j->dest, "/dev/null") == 0) {
        *status = xasprintf("2.0.0 discarded (/dev/null)");
        return DELIV_OK;
    }
    if (j->dest[0] != '/') {
        *status = xasprintf("5.3.5 file target %s is not an absolute path", j->dest);
        return DELIV_FAIL;
    }
    if (j->dest[strlen(j->dest) - 1] == '/') { /* "/path/": a maildir */
        struct maildir_req md = {.path = j->dest, .delim = folder_delim(c)};
        struct mbox_msg m = {.sender = j->sender, .rcpt = j->rcpt, .data = j->data};
        maildir_write(&md, &m, 1);
        *status = m.status;
        return m.res;
    }
    struct mbox_req r = {.path = j->dest, .owner = (uid_t)-1, .new_uid = (uid_t)-1,
                         .new_gid = (gid_t)-1, .mail_gid = (gid_t)-1, .sender = j->sender,
                         .rcpt = j->rcpt, .data = j->data, .escape_from = c->escape_from,
                         .lock_wait_ms = lock_wait, .busy_wait_ms = busy_wait};
    return mbox_deliver(&r, status);
}

/* In the child, as id: the delivery proper. */
static enum deliv_result deliver_as(const struct config *c, const struct local_job *j,
                                    const struct ident *id, long timeout,
                                    char **status)
{
    long lock_wait = timeout * 3 / 4 < MBOX_LOCK_WAIT_MS ? timeout * 3 / 4 : MBOX_LOCK_WAIT_MS;
    long busy_wait = timeout * 3 / 4 < MBOX_BUSY_WAIT_MS ? timeout * 3 / 4 : MBOX_BUSY_WAIT_MS;

    if (j->kind == T_FILE)
        return do_file(c, j, lock_wait, busy_wait, status);
    struct pipe_req p = {.command = j->dest, .id = id, .sender = j->sender,
                         .rcpt = j->rcpt, .data = j->data, .timeout_ms = timeout};
    return pipe_deliver(&p, status);
}

/* The report every local delivery child sends (MSG_LOCAL_RESULT): u32 n,
 * then per message u32 result and str status. */
static void send_results(int fd, const enum deliv_result *res, char *const *status, size_t n)
{
    struct buf b;
    buf_init(&b);
    msg_put_u32(&b, (uint32_t)n);
    for (size_t k = 0; k < n; k++) {
        const char *st = status[k] ? status[k] : "4.3.0 no status";
        msg_put_u32(&b, (uint32_t)res[k]);
        msg_put_bytes(&b, st, strnlen(st, RESULT_MAX)); /* a str, cut to size */
    }
    (void)msg_send(fd, MSG_LOCAL_RESULT, b.s, b.len, -1);
    buf_free(&b);
}

/* One status from the child: ours, but a stray control byte must still
 * never reach a control file record, nor a long one. */
static int get_result(struct msg_reader *r, enum deliv_result *res, char **status)
{
    uint32_t code;
    char *s;
    if (msg_get_u32(r, &code) < 0 || msg_get_str(r, &s) < 0)
        return -1;
    if (code > DELIV_FAIL || s == NULL ||
        !(s[0] == '2' || s[0] == '4' || s[0] == '5')) {
        free(s);
        return -1;
    }
    if (strlen(s) > RESULT_MAX)
        s[RESULT_MAX] = '\0';
    for (char *q = s; *q; q++)
        if ((unsigned char)*q < ' ' || *q == 0x7f)
            *q = '?';
    *res = (enum deliv_result)code;
    *status = s;
    return 0;
}

/* Read the child's report on n messages: 0 with res/status filled, -1 when
 * there was none or it did not add up (nothing is then kept); then reap. */
static int read_results(struct child *ch, enum deliv_result *res, char **status, size_t n,
                        struct child_end *end)
{
    struct msg m;
    int got = msg_recv(ch->fd, &m, (RESULT_MAX + 8) * n + 4, ch->deadline);
    if (got < 0 && errno == ETIMEDOUT) {
        child_kill(ch);
        *end = (struct child_end){.exited = 0, .signal = SIGKILL, .timed_out = 1,
                                  .after_ms = ch->deadline_ms};
        return -1;
    }
    child_wait(ch, end);
    if (got != 1)
        return -1;
    struct msg_reader r;
    uint32_t count;
    size_t k = 0;
    msg_reader_init(&r, &m);
    if (m.type == MSG_LOCAL_RESULT && msg_get_u32(&r, &count) == 0 && count == n)
        for (; k < n && get_result(&r, &res[k], &status[k]) == 0; k++)
            ;
    int ok = k == n && n > 0 && msg_get_end(&r) == 0;
    msg_free(&m);
    for (size_t i = 0; !ok && i < k; i++) {
        free(status[i]);
        status[i] = NULL;
    }
    return ok ? 0 : -1;
}

/* Why a child that gave no usable report ended. */
static char *no_result(const struct child_end *end, const char *who)
{
    if (end->exited && end->code == CHILD_EX_PRIVS)
        return xasprintf("4.3.0 cannot become %s", who);
    if (!end->exited)
        return xasprintf("4.3.0 delivery process for %s killed by signal %d", who,
                         end->signal);
    return xasprintf("4.3.0 delivery process for %s gave no result (exit %d)", who,
                     end->code);
}

struct one_job {
    const struct config *c;
    const struct local_job *j;
    const struct ident *id;
    long timeout;
};

/* In the child, as the target's identity (child_start made it so). */
static PO_NORETURN void one_child(void *arg, int resfd)
{
    const struct one_job *o = arg;
    char *status = NULL;
    umask(077);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGXFSZ, SIG_IGN); /* a file size limit is a write error, not death */
    enum deliv_result res = deliver_as(o->c, o->j, o->id, o->timeout, &status);
    send_results(resfd, &res, &status, 1);
    _exit(0);
}

static enum deliv_result run_child(const struct config *c, const struct local_job *j,
                                   const struct ident *id, gid_t extra_gid, char **status)
{
    long timeout = j->timeout_ms > 0 ? j->timeout_ms : LOCAL_TIMEOUT_MS;
    struct one_job o = {.c = c, .j = j, .id = id, .timeout = timeout};
    char *title = xasprintf("%s %s", j->kind == T_FILE ? "file" : "program", id->name);
    /* its own group: a program's children are killed with it */
    struct child_spec spec = {.title = title, .become = id, .extra_gid = extra_gid,
                              .deadline_ms = timeout + GRACE_MS, .own_group = 1,
                              .report = 1};
    struct child ch;
    struct child_end end;
    enum deliv_result r = DELIV_DEFER;

    int started = child_start(&ch, &spec, one_child, &o); /* reads j->data, inherited */
    free(title);
    if (started < 0) {
        *status = xasprintf("4.3.0 cannot start a delivery process: %s", strerror(errno));
        return DELIV_DEFER;
    }
    if (read_results(&ch, &r, status, 1, &end) == 0)
        return r;
    if (end.timed_out)
        *status = xasprintf("4.3.0 delivery to %s timed out after %ld seconds", id->name,
                            (timeout + GRACE_MS) / 1000);
    else
        *status = no_result(&end, id->name);
    return DELIV_DEFER;
}

/* Who the job runs as, or NULL with *status set. */
static const char *identity_of(const struct config *c, const struct local_job *j)
{
    if (j->user != NULL)
        return j->user;
    return j->kind == T_MBOX ? j->dest : c->user;
}

static enum deliv_result check_target(const struct local_job *j, const char *name,
                                      char **status)
{
    if (j->kind != T_MBOX && j->kind != T_PIPE && j->kind != T_FILE) {
        *status = xasprintf("5.3.5 not a local delivery (kind %d)", j->kind);
        return DELIV_FAIL;
    }
    if (j->dest == NULL || j->data.fd < 0) {
        *status = xasprintf("5.3.5 local delivery without a destination");
        return DELIV_FAIL;
    }
    if (j->kind == T_MBOX && !mailbox_name_ok(j->dest)) {
        *status = xasprintf("5.1.3 %s is not a valid mailbox name", j->dest);
        return DELIV_FAIL;
    }
    if (name == NULL || *name == '\0') {
        *status = xasprintf("4.3.0 no user= account configured to run programs and "
                            "write files named in the aliases");
        return DELIV_DEFER;
    }
    return DELIV_OK;
}

static char *no_such_user(const char *rcpt, const char *name)
{
    return xasprintf("5.1.1 <%s>: no such user %s here", rcpt ? rcpt : name, name);
}

static enum deliv_result lookup(const struct local_job *j, const char *name,
                                struct ident *id, char **status)
{
    int rc = privs_lookup(name, id);
    if (rc < 0) {
        *status = xasprintf("4.3.0 cannot look up user %s: %s", name, strerror(errno));
        return DELIV_DEFER;
    }
    if (rc == 1 && j->kind == T_MBOX) {
        *status = no_such_user(j->rcpt, name);
        return DELIV_FAIL;
    }
    if (rc == 1) {
        *status = xasprintf("4.3.0 account %s does not exist (set user= to an existing "
                            "account)", name);
        return DELIV_DEFER;
    }
    return DELIV_OK;
}

/* Identity rules: programs and files never as root, nor with group root
 * (root's mailbox is written by user=: writer_of); without root we can only
 * deliver to ourselves. */
static enum deliv_result check_identity(const struct local_job *j, const struct ident *id,
                                        char **status)
{
    if (id->uid == 0 && j->kind != T_MBOX) {
        *status = xasprintf("5.7.1 refusing to deliver as root");
        return DELIV_FAIL;
    }
    if (j->kind != T_MBOX && id->gid == 0) {
        *status = xasprintf("5.7.1 refusing to run programs or write files as group root "
                            "(account %s)", id->name);
        return DELIV_FAIL;
    }
    if (geteuid() != 0 && geteuid() != id->uid) {
        *status = xasprintf("4.3.0 delivery to %s needs the queue runner to run as root",
                            id->name);
        return DELIV_DEFER;
    }
    return DELIV_OK;
}

enum deliv_result local_deliver(const struct config *c, const struct local_job *j,
                                char **status)
{
    const char *name = identity_of(c, j);
    gid_t extra_gid = (gid_t)-1;
    struct ident id;
    enum deliv_result res;

    *status = NULL;
    if (j->kind == T_MBOX && j->dest != NULL) { /* one code path for mailboxes */
        struct local_mjob one = {.rcpt = j->rcpt, .sender = j->sender, .data = j->data,
                                 .qid = j->qid};
        local_deliver_mbox_batch(c, j->dest, &one, 1);
        *status = one.status;
        return one.res;
    }
    if ((res = check_target(j, name, status)) != DELIV_OK)
        return res;
    if ((res = lookup(j, name, &id, status)) != DELIV_OK)
        return res;
    res = check_identity(j, &id, status);
    if (res == DELIV_OK)
        res = run_child(c, j, &id, extra_gid, status);
    log_debug("%s: local delivery to %s as %s: %s", j->qid ? j->qid : "-", j->dest, id.name,
              *status);
    privs_free(&id);
    return res;
}

/* ---- a batch for one mailbox ---- */

static void batch_all(struct local_mjob *jobs, size_t n, enum deliv_result res,
                      const char *status)
{
    for (size_t k = 0; k < n; k++) {
        jobs[k].res = res;
        jobs[k].status = xstrdup(status);
    }
}

/* Who writes root's mailbox (any other is written by its owner): the user=
 * account, which reads every queued message anyway (nothing that parses a
 * message runs as root).  *w to privs_free. */
static enum deliv_result root_writer(const struct config *c, const struct ident *id,
                                     struct ident *w, char **status)
{
    const char *name = c->user;
    if (name == NULL || *name == '\0') {
        *status = xasprintf("4.3.0 no user= account configured to write %s's mailbox",
                            id->name);
        return DELIV_DEFER;
    }
    int rc = privs_lookup(name, w);
    if (rc != 0) {
        *status = xasprintf("4.3.0 cannot look up user %s to write %s's mailbox%s%s", name,
                            id->name, rc < 0 ? ": " : ": no such account",
                            rc < 0 ? strerror(errno) : "");
        return DELIV_DEFER;
    }
    if (w->uid == 0) {
        *status = xasprintf("4.3.0 user=%s is root: set user= to an unprivileged account "
                            "to write %s's mailbox", name, id->name);
        privs_free(w);
        return DELIV_DEFER;
    }
    return DELIV_OK;
}

/* What the mailbox writer does: append through the descriptor root opened
 * and locked (BATCH_FD), or open, lock and append itself (BATCH_MBOX: an mbox
 * in a directory root does not control), or write a maildir (BATCH_MAILDIR). */
enum batch_mode { BATCH_FD, BATCH_MBOX, BATCH_MAILDIR };

struct batch_job {
    const struct config *c;
    enum batch_mode mode;
    const struct mbox_req *r;      /* BATCH_FD, BATCH_MBOX */
    const struct mbox_box *box;    /* BATCH_FD */
    const char *path;              /* BATCH_MAILDIR */
    const char *luser;             /* whose limit applies (mailbox_limits.h): the */
    const char *ldomain;           /* account, or the virtual user and its domain */
    const struct local_mjob *jobs;
    size_t n;
};

/* The limit of the batch's mailbox, read by the writer (the admin's files,
 * never as root): bytes, 0 none, -1 with *status. */
static long long batch_limit(const struct batch_job *b, char **status)
{
    char *why = NULL;
    long long v;
    if (b->ldomain != NULL) {
        char *dom = xstrdup(b->ldomain);
        for (char *q = dom; *q; q++)
            *q = (char)tolower((unsigned char)*q);
        v = mlimit_virtual(b->c, b->luser, dom, &why);
        free(dom);
    } else {
        v = mlimit_local(b->c, b->luser, &why);
    }
    if (v < 0)
        *status = xasprintf("4.3.0 the mailbox limit of %s: %s", b->luser, why);
    free(why);
    return v;
}

/* In the child: the writing proper, a result in each msgs[k]. */
static void batch_write(const struct batch_job *b, struct mbox_msg *msgs)
{
    char *status = NULL;
    long long limit = batch_limit(b, &status);
    int bounce = b->c->mailbox_limit_action && !strcmp(b->c->mailbox_limit_action, "bounce");
    if (limit < 0) {
        for (size_t k = 0; k < b->n; k++) {
            msgs[k].res = DELIV_DEFER;
            msgs[k].status = xstrdup(status);
        }
        free(status);
        return;
    }
    struct mbox_req r = b->r ? *b->r : (struct mbox_req){0};
    r.limit = limit;
    r.limit_bounce = bounce;
    if (b->mode == BATCH_FD) {
        mbox_write(&r, b->box->fd, msgs, b->n);
    } else if (b->mode == BATCH_MBOX) {
        mbox_deliver_many(&r, msgs, b->n);
    } else {
        struct maildir_req md = {.path = b->path, .delim = folder_delim(b->c),
                                 .limit = limit, .limit_bounce = bounce};
        maildir_write(&md, msgs, b->n);
    }
}

/* In the child, as the writer: write the batch and report a result per
 * message.  It dies with the parent (child_spec.die_with_parent), so whoever
 * finds the parent's dot-lock stale and cuts the mailbox back is not racing a
 * writer still appending. */
static PO_NORETURN void batch_child(void *arg, int resfd)
{
    const struct batch_job *b = arg;
    size_t n = b->n;
    if (b->box != NULL && b->box->lockfd >= 0)
        close(b->box->lockfd);
    umask(077);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGXFSZ, SIG_IGN); /* a file size limit is a write error, not death */
    struct mbox_msg *msgs = xcalloc(n, sizeof *msgs);
    enum deliv_result *res = xcalloc(n, sizeof *res);
    char **status = xcalloc(n, sizeof *status);
    for (size_t k = 0; k < n; k++) {
        msgs[k].sender = b->jobs[k].sender;
        msgs[k].rcpt = b->jobs[k].rcpt;
        msgs[k].data = b->jobs[k].data;
    }
    batch_write(b, msgs);
    for (size_t k = 0; k < n; k++) {
        res[k] = msgs[k].res;
        status[k] = msgs[k].status;
    }
    send_results(resfd, res, status, n);
    _exit(0);
}

/* Fork the writer (on the open, locked mailbox for BATCH_FD) and wait for
 * it; the queue files' descriptors are inherited (never reopened by name:
 * that would drop our locks on them).  1 the writer reported on every message
 * (and cut back itself what failed), 0 it died, hung or lied: every message
 * defers and, for BATCH_FD, the caller cuts the mailbox back (a maildir
 * writer leaves at most a file in tmp/; an mbox writer's own dot-lock tells
 * the next delivery what to cut back). */
static int batch_run(const struct batch_job *bj, const char *shown, const char *owner,
                     const struct ident *w, struct local_mjob *jobs, size_t n)
{
    char *title = xasprintf("mailbox %s", owner);
    struct child_spec spec = {.title = title, .become = w, .extra_gid = (gid_t)-1,
                              .deadline_ms = LOCAL_TIMEOUT_MS + GRACE_MS, .own_group = 1,
                              .die_with_parent = 1, .report = 1};
    struct child ch;
    struct child_end end;
    int started = child_start(&ch, &spec, batch_child, (void *)bj);
    free(title);
    if (started < 0) {
        char *why = xasprintf("4.3.0 cannot start a delivery process: %s", strerror(errno));
        batch_all(jobs, n, DELIV_DEFER, why);
        free(why);
        return 0;
    }
    enum deliv_result *res = xcalloc(n, sizeof *res);
    char **status = xcalloc(n, sizeof *status);
    int done = read_results(&ch, res, status, n, &end) == 0 && end.exited;
    for (size_t k = 0; k < n; k++) {
        jobs[k].res = res[k];
        jobs[k].status = status[k];
    }
    free(res);
    free(status);
    if (!done) {
        for (size_t k = 0; k < n; k++) { /* whatever it said: we cut it all */
            free(jobs[k].status);
            jobs[k].status = NULL;
        }
        char *why = end.timed_out ? xasprintf("4.3.0 mailbox delivery timed out")
                                  : no_result(&end, w->name);
        batch_all(jobs, n, DELIV_DEFER, why);
        if (bj->mode == BATCH_FD)
            log_warn("%s: %s; the mailbox was cut back to %lld bytes", shown, why,
                     (long long)bj->box->size);
        else
            log_warn("%s: %s", shown, why);
        free(why);
    }
    return done;
}

/* Open and lock id's mailbox path here (root), let the writer append,
 * unlock: the locks and the size to go back to outlive a writer killed
 * half-way. */
static void mbox_batch(const struct config *c, const char *path, const struct ident *id,
                       const struct ident *w, gid_t mail_gid, const struct stat *spool,
                       const char *luser, const char *ldomain, struct local_mjob *jobs,
                       size_t n)
{
    struct mbox_req r = {.path = path, .owner = id->uid, .new_uid = id->uid,
                         .new_gid = (spool->st_mode & S_ISGID) ? (gid_t)-1 : id->gid,
                         .mail_gid = mail_gid, .escape_from = c->escape_from,
                         .lock_wait_ms = MBOX_LOCK_WAIT_MS,
                         .busy_wait_ms = MBOX_BUSY_WAIT_MS};
    struct mbox_box box;
    char *status = NULL;
    enum deliv_result res = mbox_open(&r, &box, &status);
    if (res != DELIV_OK) {
        batch_all(jobs, n, res, status);
        free(status);
    } else {
        struct batch_job bj = {.c = c, .mode = BATCH_FD, .r = &r, .box = &box,
                               .luser = luser, .ldomain = ldomain, .jobs = jobs, .n = n};
        mbox_close(&r, &box, !batch_run(&bj, path, id->name, w, jobs, n));
    }
}

/* Every message of the batch fails or defers with status; a "no such user"
 * names each message's own recipient. */
static void batch_refuse(struct local_mjob *jobs, size_t n, enum deliv_result r,
                         const char *status, const char *user)
{
    if (r != DELIV_FAIL || strncmp(status, "5.1.1 ", 6) != 0) {
        batch_all(jobs, n, r, status);
        return;
    }
    for (size_t k = 0; k < n; k++) {
        jobs[k].res = DELIV_FAIL;
        jobs[k].status = no_such_user(jobs[k].rcpt, user);
    }
}

/* A virtual user's mailbox (box "user@domain", vmailbox.h): written by the
 * same code as any mailbox, with another path and the vuser= account as its
 * owner and writer.  VSPOOL/DOMAIN is vuser's, so root opens nothing there:
 * the writer opens and locks the file itself (BATCH_MBOX), and a vuser
 * swapping the directory between our checks and the open gains nothing.
 * With virtual-maildir= the mailbox is the maildir VSPOOL/DOMAIN/USER/, made
 * by the writer, as vuser=, through directory descriptors (maildir.h). */
static void virtual_batch(const struct config *c, const char *box, struct local_mjob *jobs,
                          size_t n)
{
    struct local_job j = {.kind = T_MBOX, .dest = box, .user = box};
    struct vmbox v;
    struct stat spool;
    gid_t extra_gid = (gid_t)-1;
    char *status = NULL;
    enum deliv_result r = vmbox_prepare(c, box, jobs[0].rcpt, &v, &status);
    if (r == DELIV_OK) {
        r = check_identity(&j, &v.owner, &status);
        if (r == DELIV_OK)
            r = check_spool(v.dir, &extra_gid, &spool, &status);
        if (r == DELIV_OK) {
            char *name = xstrdup(box), *at = strrchr(name, '@');
            *at = '\0';
            struct mbox_req mr = {.path = v.path, .owner = v.owner.uid, .new_uid = (uid_t)-1,
                                  .new_gid = (gid_t)-1, .mail_gid = extra_gid,
                                  .escape_from = c->escape_from,
                                  .lock_wait_ms = MBOX_LOCK_WAIT_MS,
                         .busy_wait_ms = MBOX_BUSY_WAIT_MS};
            char *md = xasprintf("%s/", v.path);
            struct batch_job bj = {.c = c, .mode = c->virtual_maildir ? BATCH_MAILDIR
                                                                      : BATCH_MBOX,
                                   .r = &mr, .path = md, .luser = name, .ldomain = at + 1,
                                   .jobs = jobs, .n = n};
            (void)batch_run(&bj, c->virtual_maildir ? md : v.path, box, &v.owner, jobs, n);
            free(md);
            free(name);
        }
        vmbox_free(&v);
    }
    if (r != DELIV_OK)
        batch_refuse(jobs, n, r, status, box);
    log_debug("local delivery of %zu message(s) to %s: first %s", n, box,
              jobs[0].status ? jobs[0].status : "-");
    free(status);
}

/* A mailbox the writer opens itself (BATCH_MBOX, BATCH_MAILDIR), as w:
 * the maildir must be w's, an mbox file too. */
static void user_batch(const struct config *c, const struct mbplace *p,
                       const struct ident *id, const struct ident *w,
                       struct local_mjob *jobs, size_t n)
{
    struct mbox_req r = {.path = p->path, .owner = w->uid, .new_uid = (uid_t)-1,
                         .new_gid = (gid_t)-1, .mail_gid = (gid_t)-1,
                         .escape_from = c->escape_from, .lock_wait_ms = MBOX_LOCK_WAIT_MS,
                         .busy_wait_ms = MBOX_BUSY_WAIT_MS};
    struct batch_job bj = {.c = c, .mode = p->kind == MB_MAILDIR ? BATCH_MAILDIR : BATCH_MBOX,
                           .r = &r, .path = p->path, .luser = id->name, .jobs = jobs,
                           .n = n};
    (void)batch_run(&bj, p->path, id->name, w, jobs, n);
}

/* Deliver into the mailbox mailbox= names for id (mailbox_place.h), written
 * by w (id, or user= for root's mail). */
static void place_batch(const struct config *c, const struct ident *id,
                        const struct ident *w, struct local_mjob *jobs, size_t n)
{
    struct mbplace p;
    struct stat spool;
    gid_t extra_gid = (gid_t)-1;
    char *status = NULL;
    enum deliv_result r = mbplace_find(c, id, &p, &status);
    if (r == DELIV_OK && p.kind == MB_LMTP) {
        /* the queue run gives LMTP mailboxes to lmtp.c (flush_lmtp) before
         * any mailbox batch; a caller that did not is refused, not written */
        status = xasprintf("4.3.0 mailbox=%s: an LMTP mailbox is delivered by the "
                           "LMTP client, not the mailbox writer", c->mailbox);
        r = DELIV_DEFER;
    }
    if (r == DELIV_OK && p.root_owned)
        r = check_spool(p.dir, &extra_gid, &spool, &status);
    if (r == DELIV_OK && p.kind == MB_MAILDIR && p.root_owned)
        r = mbplace_make_maildir(&p, w->uid, w->gid, &status);
    if (r != DELIV_OK)
        batch_all(jobs, n, r, status);
    else if (p.kind == MB_MAILDIR || !p.root_owned)
        user_batch(c, &p, id, w, jobs, n);
    else
        mbox_batch(c, p.path, id, w, extra_gid, &spool, id->name, NULL, jobs, n);
    free(status);
    mbplace_free(&p);
}

void local_deliver_mbox_batch(const struct config *c, const char *user,
                              struct local_mjob *jobs, size_t n)
{
    struct local_job j = {.kind = T_MBOX, .dest = user, .user = user,
                          .rcpt = n ? jobs[0].rcpt : NULL,
                          .data = n ? jobs[0].data : (struct msgdata){.fd = -1}};
    struct ident id, w;
    char *status = NULL;
    enum deliv_result r;

    for (size_t k = 0; k < n; k++) {
        jobs[k].res = DELIV_DEFER;
        jobs[k].status = NULL;
    }
    if (n == 0)
        return;
    if (vmbox_is_virtual(user)) {
        virtual_batch(c, user, jobs, n);
        return;
    }
    if ((r = check_target(&j, user, &status)) != DELIV_OK) {
        batch_all(jobs, n, r, status);
        free(status);
        return;
    }
    if ((r = lookup(&j, user, &id, &status)) != DELIV_OK) {
        if (r != DELIV_FAIL)
            batch_all(jobs, n, r, status);
        else /* "no such user" names the recipient: each message its own */
            for (size_t k = 0; k < n; k++) {
                jobs[k].res = DELIV_FAIL;
                jobs[k].status = no_such_user(jobs[k].rcpt, user);
            }
        free(status);
        return;
    }
    r = check_identity(&j, &id, &status);
    if (r == DELIV_OK && id.uid == 0)
        r = root_writer(c, &id, &w, &status);
    if (r == DELIV_OK) {
        place_batch(c, &id, id.uid == 0 ? &w : &id, jobs, n);
        if (id.uid == 0)
            privs_free(&w);
    } else {
        batch_all(jobs, n, r, status);
    }
    log_debug("local delivery of %zu message(s) to %s: first %s", n, user,
              jobs[0].status ? jobs[0].status : "-");
    free(status);
    privs_free(&id);
}
