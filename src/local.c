/* local.c - local delivery: a mailbox, a program or a file, each done by a
 * child running as the identity the target belongs to.
 *
 * Runs as root: local_deliver() itself, in the queue runner, only to look the
 * identity up, check the spool directory, open the queued data file and fork.
 * The child calls privs_become() before it touches the mailbox, the program
 * or the message, and reports "CODE STATUS" back through a pipe; the parent
 * waits for it with a deadline and kills it when it hangs. */
#include "compat.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "expand.h"
#include "local.h"
#include "log.h"
#include "mbox.h"
#include "pipe.h"
#include "privs.h"
#include "util.h"

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

/* The spool directory: refuse one anybody could plant files in without the
 * sticky bit; when it is group-writable (0775 root:mail) the child needs
 * that group to create mailboxes and dot-locks: *extra_gid. */
static enum deliv_result check_spool(const char *dir, gid_t *extra_gid, char **status)
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
    return DELIV_OK;
}

static enum deliv_result do_file(const struct config *c, const struct local_job *j,
                                 long lock_wait, char **status)
{
    if (strcmp(j->dest, "/dev/null") == 0) {
        *status = xasprintf("2.0.0 discarded (/dev/null)");
        return DELIV_OK;
    }
    if (j->dest[0] != '/') {
        *status = xasprintf("5.3.5 file target %s is not an absolute path", j->dest);
        return DELIV_FAIL;
    }
    struct mbox_req r = {.path = j->dest, .owner = (uid_t)-1, .sender = j->sender,
                         .rcpt = j->rcpt, .data = j->data, .escape_from = c->escape_from,
                         .lock_wait_ms = lock_wait};
    return mbox_deliver(&r, status);
}

/* In the child, as id: the delivery proper. */
static enum deliv_result deliver_as(const struct config *c, const struct local_job *j,
                                    const struct ident *id, long timeout,
                                    char **status)
{
    long lock_wait = timeout * 3 / 4 < MBOX_LOCK_WAIT_MS ? timeout * 3 / 4 : MBOX_LOCK_WAIT_MS;

    if (j->kind == T_MBOX) {
        /* the account's own spelling when the name was matched case-insensitively */
        char *path = local_mbox_path(c, j->user != NULL ? j->dest : id->name);
        struct mbox_req r = {.path = path, .owner = id->uid, .sender = j->sender,
                             .rcpt = j->rcpt, .data = j->data,
                             .escape_from = c->escape_from, .lock_wait_ms = lock_wait};
        enum deliv_result res = mbox_deliver(&r, status);
        free(path);
        return res;
    }
    if (j->kind == T_FILE)
        return do_file(c, j, lock_wait, status);
    struct pipe_req p = {.command = j->dest, .id = id, .sender = j->sender,
                         .rcpt = j->rcpt, .data = j->data, .timeout_ms = timeout};
    return pipe_deliver(&p, status);
}

static PO_NORETURN void child(const struct config *c, const struct local_job *j,
                              const struct ident *id, gid_t extra_gid, int resfd,
                              long timeout)
{
    enum deliv_result res;
    char *status = NULL;

    setpgid(0, 0); /* the parent kills the whole group on timeout */
    umask(077);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGXFSZ, SIG_IGN); /* a file size limit is a write error, not death */
    if (privs_become(id, extra_gid) < 0) {
        status = xasprintf("4.3.0 cannot become %s: %s", id->name, strerror(errno));
        res = DELIV_DEFER;
    } else {
        res = deliver_as(c, j, id, timeout, &status);
    }
    char *line = xasprintf("%d %s", (int)res, status ? status : "4.3.0 no status");
    (void)write_all(resfd, line, strlen(line));
    _exit(0);
}

static enum deliv_result parse_report(const struct buf *b, int wst, const char *who,
                                      char **status)
{
    if (b->len >= 3 && b->s[0] >= '0' && b->s[0] <= '2' && b->s[1] == ' ' &&
        (b->s[2] == '2' || b->s[2] == '4' || b->s[2] == '5')) {
        /* ours, already printable; a stray control byte must still never
         * reach a control file record */
        size_t n = b->len - 2 > RESULT_MAX ? RESULT_MAX : b->len - 2;
        char *clean = xstrndup(b->s + 2, n);
        for (char *p = clean; *p; p++)
            if ((unsigned char)*p < ' ' || *p == 0x7f)
                *p = '?';
        *status = clean;
        return (enum deliv_result)(b->s[0] - '0');
    }
    if (WIFSIGNALED(wst))
        *status = xasprintf("4.3.0 delivery process for %s killed by signal %d", who,
                            WTERMSIG(wst));
    else
        *status = xasprintf("4.3.0 delivery process for %s gave no result (exit %d)", who,
                            WIFEXITED(wst) ? WEXITSTATUS(wst) : -1);
    return DELIV_DEFER;
}

static enum deliv_result run_child(const struct config *c, const struct local_job *j,
                                   const struct ident *id, gid_t extra_gid, char **status)
{
    long timeout = j->timeout_ms > 0 ? j->timeout_ms : LOCAL_TIMEOUT_MS;
    int res[2], wst = 0;
    struct buf b;
    pid_t pid;

    if (pipe2(res, O_CLOEXEC) < 0 || (pid = fork()) < 0) {
        *status = xasprintf("4.3.0 cannot start a delivery process: %s", strerror(errno));
        return DELIV_DEFER;
    }
    if (pid == 0) {
        close(res[0]);
        child(c, j, id, extra_gid, res[1], timeout); /* reads j->data, inherited */
    }
    close(res[1]);
    setpgid(pid, pid);
    buf_init(&b);
    int late = read_until_eof(res[0], now_ms() + timeout + GRACE_MS, &b, RESULT_MAX) < 0;
    close(res[0]);
    if (late) {
        kill(-pid, SIGKILL);
        kill(pid, SIGKILL);
    }
    while (waitpid(pid, &wst, 0) < 0 && errno == EINTR)
        ;
    enum deliv_result r;
    if (late) {
        *status = xasprintf("4.3.0 delivery to %s timed out after %ld seconds", id->name,
                            (timeout + GRACE_MS) / 1000);
        r = DELIV_DEFER;
    } else {
        r = parse_report(&b, wst, id->name, status);
    }
    buf_free(&b);
    return r;
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

/* Identity rules: never root; files and programs never with group root;
 * without root we can only deliver to ourselves. */
static enum deliv_result check_identity(const struct local_job *j, const struct ident *id,
                                        char **status)
{
    if (id->uid == 0) {
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
    if ((res = check_target(j, name, status)) != DELIV_OK)
        return res;
    if ((res = lookup(j, name, &id, status)) != DELIV_OK)
        return res;
    res = check_identity(j, &id, status);
    if (res == DELIV_OK && j->kind == T_MBOX)
        res = check_spool(c->mailspool, &extra_gid, status);
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

/* In the child, as the mailbox owner: deliver and write one "CODE STATUS\n"
 * line per message. */
static PO_NORETURN void batch_child(const struct config *c, const char *user,
                                    const struct ident *id, gid_t extra_gid,
                                    const struct local_mjob *jobs, size_t n, int resfd)
{
    setpgid(0, 0);
    umask(077);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGXFSZ, SIG_IGN);
    struct mbox_msg *msgs = xcalloc(n, sizeof *msgs);
    struct buf out;
    buf_init(&out);
    if (privs_become(id, extra_gid) < 0) {
        char *why = xasprintf("4.3.0 cannot become %s: %s", id->name, strerror(errno));
        for (size_t k = 0; k < n; k++)
            buf_addf(&out, "%d %s\n", (int)DELIV_DEFER, why);
        free(why);
    } else {
        char *path = local_mbox_path(c, user);
        struct mbox_req r = {.path = path, .owner = id->uid, .escape_from = c->escape_from,
                             .lock_wait_ms = MBOX_LOCK_WAIT_MS};
        for (size_t k = 0; k < n; k++) {
            msgs[k].sender = jobs[k].sender;
            msgs[k].rcpt = jobs[k].rcpt;
            msgs[k].data = jobs[k].data;
        }
        mbox_deliver_many(&r, msgs, n);
        for (size_t k = 0; k < n; k++)
            buf_addf(&out, "%d %s\n", (int)msgs[k].res,
                     msgs[k].status ? msgs[k].status : "4.3.0 no status");
    }
    (void)write_all(resfd, out.s, out.len);
    _exit(0);
}

/* The child's report, one line per job in order; a missing line defers. */
static void batch_parse(struct buf *b, int wst, const char *who, struct local_mjob *jobs,
                        size_t n)
{
    char *p = b->s, *end = b->s + b->len;
    for (size_t k = 0; k < n; k++) {
        char *nl = p < end ? memchr(p, '\n', (size_t)(end - p)) : NULL;
        if (nl != NULL) {
            struct buf one;
            buf_init(&one);
            buf_add(&one, p, (size_t)(nl - p));
            jobs[k].res = parse_report(&one, wst, who, &jobs[k].status);
            buf_free(&one);
            p = nl + 1;
        } else {
            struct buf none;
            buf_init(&none);
            jobs[k].res = parse_report(&none, wst, who, &jobs[k].status);
            buf_free(&none);
        }
    }
}

/* The child reads the messages through the queue files' descriptors it
 * inherits (never reopened by name: that would drop our locks on them). */
static void batch_run(const struct config *c, const char *user, const struct ident *id,
                      gid_t extra_gid, struct local_mjob *jobs, size_t n)
{
    int res[2] = {-1, -1}, wst = 0;
    pid_t pid = -1;
    if (pipe2(res, O_CLOEXEC) < 0 || (pid = fork()) < 0) {
        char *why = xasprintf("4.3.0 cannot start a delivery process: %s", strerror(errno));
        batch_all(jobs, n, DELIV_DEFER, why);
        free(why);
        if (pid < 0 && res[0] >= 0) {
            close(res[0]);
            close(res[1]);
        }
        return;
    }
    if (pid == 0) {
        close(res[0]);
        batch_child(c, user, id, extra_gid, jobs, n, res[1]);
    }
    close(res[1]);
    setpgid(pid, pid);
    struct buf b;
    buf_init(&b);
    long long deadline = now_ms() + LOCAL_TIMEOUT_MS + GRACE_MS;
    int late = read_until_eof(res[0], deadline, &b, RESULT_MAX * n) < 0;
    close(res[0]);
    if (late) {
        kill(-pid, SIGKILL);
        kill(pid, SIGKILL);
    }
    while (waitpid(pid, &wst, 0) < 0 && errno == EINTR)
        ;
    if (late)
        batch_all(jobs, n, DELIV_DEFER, "4.3.0 mailbox delivery timed out");
    else
        batch_parse(&b, wst, id->name, jobs, n);
    buf_free(&b);
}

void local_deliver_mbox_batch(const struct config *c, const char *user,
                              struct local_mjob *jobs, size_t n)
{
    struct local_job j = {.kind = T_MBOX, .dest = user, .user = user,
                          .rcpt = n ? jobs[0].rcpt : NULL,
                          .data = n ? jobs[0].data : (struct msgdata){.fd = -1}};
    gid_t extra_gid = (gid_t)-1;
    struct ident id;
    char *status = NULL;
    enum deliv_result r;

    for (size_t k = 0; k < n; k++) {
        jobs[k].res = DELIV_DEFER;
        jobs[k].status = NULL;
    }
    if (n == 0)
        return;
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
    if (r == DELIV_OK)
        r = check_spool(c->mailspool, &extra_gid, &status);
    if (r == DELIV_OK)
        batch_run(c, user, &id, extra_gid, jobs, n);
    else
        batch_all(jobs, n, r, status);
    log_debug("local delivery of %zu message(s) to %s: first %s", n, user,
              jobs[0].status ? jobs[0].status : "-");
    free(status);
    privs_free(&id);
}
