/* pipe.c - deliver a message to a program.
 *
 * Runs in the local delivery child, already as the target identity (never
 * root).  The command comes from an alias or .forward file only; addresses
 * reach the program in $SENDER and $RECIPIENT, never on its command line.
 * A feeder process writes the message into the program's stdin while this
 * process collects (a bounded part of) its output, so neither side can
 * deadlock the other; a deadline bounds the whole run. */
#include "compat.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "child.h"
#include "message_out.h"
#include "pipe.h"
#include "util.h"
#include "mbox.h"

#define EX_TEMPFAIL_CODE 75   /* sysexits.h EX_TEMPFAIL: try again later */
#define SUMMARY_MAX 400       /* output bytes quoted in the status text */

static char *env_var(const char *name, const char *value)
{
    struct buf b;
    buf_init(&b);
    buf_adds(&b, name);
    buf_addc(&b, '=');
    for (const unsigned char *p = (const unsigned char *)(value ? value : ""); *p; p++)
        buf_addc(&b, (*p < ' ' || *p == 0x7f) ? '?' : *p);
    return buf_steal(&b);
}

char **pipe_env(const struct pipe_req *r)
{
    char **env = xcalloc(8, sizeof *env);
    const char *home = r->id->home && *r->id->home ? r->id->home : "/";
    env[0] = env_var("HOME", home);
    env[1] = env_var("USER", r->id->name);
    env[2] = env_var("LOGNAME", r->id->name);
    env[3] = env_var("SHELL", "/bin/sh");
    env[4] = env_var("PATH", "/usr/local/bin:/usr/bin:/bin");
    env[5] = env_var("SENDER", r->sender);
    env[6] = env_var("RECIPIENT", r->rcpt);
    return env;
}

void pipe_env_free(char **env)
{
    for (char **e = env; e && *e; e++)
        free(*e);
    free(env);
}

char *pipe_summary(const char *out, size_t len, size_t max)
{
    struct buf b;
    buf_init(&b);
    while (len > 0 && (out[len - 1] == '\n' || out[len - 1] == '\r'))
        len--;
    for (size_t i = 0; i < len && b.len < max; i++) {
        unsigned char c = (unsigned char)out[i];
        if (c == '\r' && i + 1 < len && out[i + 1] == '\n')
            continue;
        if (c == '\n' || c == '\r')
            buf_adds(&b, "; ");
        else if (c == '\t')
            buf_addc(&b, ' ');
        else if (c == '\\')
            buf_adds(&b, "\\\\");
        else if (c >= ' ' && c < 0x7f)
            buf_addc(&b, c);
        else
            buf_addf(&b, "\\x%02X", c);
    }
    if (b.len >= max) {
        buf_truncate(&b, max);
        buf_adds(&b, "...");
    }
    return buf_steal(&b);
}

struct prog_job {
    const struct pipe_req *r;
    int in, out; /* the program's stdin (read end), stdout+stderr (write end) */
    char **env;
};

/* The program: stdin from the feeder, stdout+stderr to us, cwd home.  Its
 * own process group (child_spec.own_group): what it starts dies with it. */
static PO_NORETURN void run_program(void *arg, int unused)
{
    const struct prog_job *pj = arg;
    const struct pipe_req *r = pj->r;
    const char *home = r->id->home && *r->id->home ? r->id->home : "/";
    (void)unused;
    if (dup2(pj->in, 0) < 0 || dup2(pj->out, 1) < 0 || dup2(pj->out, 2) < 0)
        _exit(EX_TEMPFAIL_CODE);
    if (chdir(home) < 0 && chdir("/") < 0)
        _exit(EX_TEMPFAIL_CODE);
    /* exec keeps ignored signals ignored: give the program normal ones */
    signal(SIGPIPE, SIG_DFL);
    signal(SIGXFSZ, SIG_DFL);
    signal(SIGCHLD, SIG_DFL);
    execle("/bin/sh", "sh", "-c", r->command, (char *)NULL, pj->env);
    static const char msg[] = "cannot run /bin/sh\n";
    (void)write_all(2, msg, sizeof msg - 1);
    _exit(EX_TEMPFAIL_CODE);
}

struct feed_job {
    const struct pipe_req *r;
    int in;     /* the program's stdin (write end) */
    int out_rd; /* our end of its output: not the feeder's to hold */
};

static PO_NORETURN void run_feeder(void *arg, int unused)
{
    const struct feed_job *fj = arg;
    const struct pipe_req *r = fj->r;
    struct msgout mo;
    (void)unused;
    close(fj->out_rd);
    char *prepend = mbox_prepend(r->sender, r->rcpt);
    signal(SIGPIPE, SIG_IGN); /* a program that stops reading is not an error */
    mo.flags = 0;
    mo.sender = r->sender;
    mo.prepend = prepend;
    _exit(msgout_write(&r->data, fj->in, &mo) == 0 ? 0 : 1);
}

static enum deliv_result judge(const struct child_end *e, long timeout_ms,
                               const struct buf *o, char **status)
{
    char *sum = pipe_summary(o->s, o->len, SUMMARY_MAX);
    const char *sep = *sum ? ": " : "";
    enum deliv_result res;

    if (e->timed_out) {
        *status = xasprintf("4.3.0 program timed out after %ld seconds and was killed%s%s",
                            (timeout_ms + 999) / 1000, sep, sum);
        res = DELIV_DEFER;
    } else if (e->exited && e->code == 0) {
        *status = xasprintf("2.0.0 delivered to program");
        res = DELIV_OK;
    } else if (e->exited && e->code == EX_TEMPFAIL_CODE) {
        *status = xasprintf("4.3.0 program exited 75 (temporary failure)%s%s", sep, sum);
        res = DELIV_DEFER;
    } else if (e->exited) {
        *status = xasprintf("5.3.0 program exited %d%s%s", e->code, sep, sum);
        res = DELIV_FAIL;
    } else {
        *status = xasprintf("5.3.0 program killed by signal %d%s%s", e->signal, sep, sum);
        res = DELIV_FAIL;
    }
    free(sum);
    return res;
}

enum deliv_result pipe_deliver(const struct pipe_req *r, char **status)
{
    int in[2], out[2];
    struct child prog, feeder;
    struct child_end end;
    struct buf o;

    if (pipe2(in, O_CLOEXEC) < 0) {
        *status = xasprintf("4.3.0 cannot create a pipe: %s", strerror(errno));
        return DELIV_DEFER;
    }
    if (pipe2(out, O_CLOEXEC) < 0) {
        *status = xasprintf("4.3.0 cannot create a pipe: %s", strerror(errno));
        close(in[0]);
        close(in[1]);
        return DELIV_DEFER;
    }
    struct prog_job pj = {.r = r, .in = in[0], .out = out[1], .env = pipe_env(r)};
    /* no title of its own: it keeps "program USER" until it execs */
    struct child_spec ps = {.title = NULL, .deadline_ms = r->timeout_ms, .own_group = 1};
    int started = child_start(&prog, &ps, run_program, &pj);
    int err = errno;
    pipe_env_free(pj.env);
    close(in[0]);
    close(out[1]);
    if (started < 0) {
        *status = xasprintf("4.3.0 cannot fork: %s", strerror(err));
        close(in[1]);
        close(out[0]);
        return DELIV_DEFER;
    }
    struct feed_job fj = {.r = r, .in = in[1], .out_rd = out[0]};
    char *title = xasprintf("feeder %s", r->id->name);
    struct child_spec fs = {.title = title};
    started = child_start(&feeder, &fs, run_feeder, &fj);
    err = errno;
    free(title);
    close(in[1]);
    if (started < 0) {
        /* the program would see an empty message: stop it, try later */
        *status = xasprintf("4.3.0 cannot fork: %s", strerror(err));
        child_kill(&prog);
        close(out[0]);
        return DELIV_DEFER;
    }
    buf_init(&o);
    int timed_out = read_until_eof(out[0], prog.deadline, &o, PIPE_OUTPUT_MAX) < 0;
    close(out[0]);
    if (timed_out) {
        child_kill(&prog);
        end = (struct child_end){.signal = SIGKILL, .timed_out = 1};
    } else {
        child_wait(&prog, &end); /* kills its group if it outlives the deadline */
    }
    child_kill(&feeder); /* done, or stuck on a program that stopped reading */
    enum deliv_result res = judge(&end, r->timeout_ms, &o, status);
    buf_free(&o);
    return res;
}
