/* av_scan.c - run the av= program on a message (av_scan.h).  Runs in the
 * session child (user=), or in the sendmail front end as the caller: a root
 * caller's scanner runs as user= (child_start's identity change). */
#include "compat.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "av_scan.h"
#include "child.h"
#include "log.h"
#include "privs.h"

#define EX_TEMPFAIL_CODE 75

struct av_job {
    const struct msgdata *d;
    const char *sender;
    char **argv;
    int in_r, in_w; /* the program's stdin: its end, the feeder's end */
    int report_fd;  /* the program's stdout/stderr */
};

/* The feeder: writes the message into the program's stdin and ends. */
static PO_NORETURN void feeder(void *arg, int report_fd)
{
    struct av_job *j = arg;
    struct msgout mo = {MO_FROM_LINE, j->sender, NULL};
    (void)report_fd;
    /* only the program may hold these: its exit must end our writes (EPIPE)
     * and its output pipe must reach EOF when it ends */
    close(j->in_r);
    close(j->report_fd);
    signal(SIGPIPE, SIG_IGN); /* a program that reads only a part is fine */
    _exit(msgout_write(j->d, j->in_w, &mo) < 0 ? 1 : 0);
}

/* The scanner child: start the feeder, then become the program with its
 * stdin from the feeder and stdout/stderr into the report pipe. */
static PO_NORETURN void scanner(void *arg, int report_fd)
{
    struct av_job *j = arg;
    int in[2];
    if (pipe(in) < 0) {
        dprintf(report_fd, "cannot make a pipe: %s", strerror(errno));
        _exit(127);
    }
    j->in_r = in[0];
    j->in_w = in[1];
    j->report_fd = report_fd;
    struct child feed;
    struct child_spec fs = {.title = "av feeder", .die_with_parent = 1};
    if (child_start(&feed, &fs, feeder, j) < 0) {
        dprintf(report_fd, "cannot start the feeder: %s", strerror(errno));
        _exit(127);
    }
    close(in[1]);
    static const int sigs[] = {SIGPIPE, SIGTERM, SIGHUP, SIGINT, SIGCHLD, SIGUSR1, SIGUSR2};
    for (size_t i = 0; i < sizeof sigs / sizeof *sigs; i++)
        signal(sigs[i], SIG_DFL);
    if (dup2(in[0], 0) < 0 || dup2(report_fd, 1) < 0 || dup2(report_fd, 2) < 0)
        _exit(127);
    close_range(3, ~0U, 0); /* not the client's socket, not the queue file */
    execv(j->argv[0], j->argv);
    dprintf(2, "cannot run %s: %s", j->argv[0], strerror(errno));
    _exit(127);
}

static enum av_result judge(const struct config *c, const struct child_end *end,
                            struct buf *out)
{
    char t[80];
    if (end->exited && end->code == 0)
        return AV_CLEAN;
    if (end->exited && end->code != EX_TEMPFAIL_CODE && end->code != 126 &&
        end->code != 127 && !end->timed_out)
        return AV_FLAGGED;
    char *said = str_sanitize(out->s ? out->s : "", out->len > 200 ? 200 : out->len);
    char *why = xasprintf("av program %s: %s%s%s", c->av, child_end_text(end, t, sizeof t),
                          *said ? ": " : "", said);
    buf_reset(out);
    buf_adds(out, why);
    free(why);
    free(said);
    return AV_FAILED;
}

enum av_result av_scan(const struct config *c, const struct msgdata *d, const char *sender,
                       struct buf *out)
{
    struct strlist argv;
    struct ident id;
    sl_init(&argv);
    sl_split(&argv, c->av, " \t");
    buf_reset(out);
    memset(&id, 0, sizeof id);
    if (!argv.n || argv.v[0][0] != '/' ||
        (geteuid() == 0 && privs_lookup(c->user, &id) != 0)) {
        buf_addf(out, "av=%s: %s", c->av,
                 argv.n && argv.v[0][0] == '/' ? "no such user= account" :
                                                 "not an absolute program path");
        sl_free(&argv);
        return AV_FAILED;
    }
    argv.v = xreallocarray(argv.v, argv.n + 1, sizeof *argv.v);
    argv.v[argv.n] = NULL;
    struct av_job j = {d, sender, argv.v, -1, -1, -1};
    long tmo = c->av_timeout > 0 ? c->av_timeout : 60;
    struct child_spec spec = {.title = "av scan", .become = id.name ? &id : NULL,
                              .extra_gid = (gid_t)-1, .deadline_ms = tmo * 1000,
                              .own_group = 1, .die_with_parent = 1, .report = 1};
    struct child ch;
    struct child_end end;
    enum av_result r = AV_FAILED;
    if (child_start(&ch, &spec, scanner, &j) < 0) {
        buf_addf(out, "cannot start the av program: %s", strerror(errno));
    } else {
        /* still talking at the deadline: child_wait then kills it */
        (void)read_until_eof(ch.fd, ch.deadline, out, AV_OUTPUT_MAX);
        child_wait(&ch, &end);
        r = judge(c, &end, out);
    }
    privs_free(&id);
    sl_free(&argv);
    return r;
}
