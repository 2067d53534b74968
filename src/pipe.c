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
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "msgout.h"
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

/* The program: stdin from the feeder, stdout+stderr to us, cwd home. */
static PO_NORETURN void run_program(const struct pipe_req *r, int in, int out, char **env)
{
    const char *home = r->id->home && *r->id->home ? r->id->home : "/";
    setpgid(0, 0);
    if (dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(out, 2) < 0)
        _exit(EX_TEMPFAIL_CODE);
    if (chdir(home) < 0 && chdir("/") < 0)
        _exit(EX_TEMPFAIL_CODE);
    /* exec keeps ignored signals ignored: give the program normal ones */
    signal(SIGPIPE, SIG_DFL);
    signal(SIGXFSZ, SIG_DFL);
    signal(SIGCHLD, SIG_DFL);
    execle("/bin/sh", "sh", "-c", r->command, (char *)NULL, env);
    static const char msg[] = "cannot run /bin/sh\n";
    (void)write_all(2, msg, sizeof msg - 1);
    _exit(EX_TEMPFAIL_CODE);
}

static PO_NORETURN void run_feeder(const struct pipe_req *r, int in)
{
    struct msgout mo;
    char *prepend = mbox_prepend(r->sender, r->rcpt);
    signal(SIGPIPE, SIG_IGN); /* a program that stops reading is not an error */
    mo.flags = 0;
    mo.sender = r->sender;
    mo.prepend = prepend;
    _exit(msgout_write(&r->data, in, &mo) == 0 ? 0 : 1);
}

/* Wait for pid until the deadline; then kill its process group.  Returns the
 * wait status, *timed_out set when we had to kill it. */
static int reap(pid_t pid, long long deadline, int *timed_out)
{
    int st = 0;
    for (;;) {
        pid_t w = waitpid(pid, &st, WNOHANG);
        if (w == pid)
            return st;
        if (w < 0 && errno != EINTR)
            return 0;
        if (ms_left(deadline) == 0) {
            *timed_out = 1;
            kill(-pid, SIGKILL);
            kill(pid, SIGKILL);
            while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
                ;
            return st;
        }
        poll(NULL, 0, 50);
    }
}

static enum deliv_result judge(int st, int timed_out, long timeout_ms, const struct buf *o,
                               char **status)
{
    char *sum = pipe_summary(o->s, o->len, SUMMARY_MAX);
    const char *sep = *sum ? ": " : "";
    enum deliv_result res;

    if (timed_out) {
        *status = xasprintf("4.3.0 program timed out after %ld seconds and was killed%s%s",
                            (timeout_ms + 999) / 1000, sep, sum);
        res = DELIV_DEFER;
    } else if (WIFEXITED(st) && WEXITSTATUS(st) == 0) {
        *status = xasprintf("2.0.0 delivered to program");
        res = DELIV_OK;
    } else if (WIFEXITED(st) && WEXITSTATUS(st) == EX_TEMPFAIL_CODE) {
        *status = xasprintf("4.3.0 program exited 75 (temporary failure)%s%s", sep, sum);
        res = DELIV_DEFER;
    } else if (WIFEXITED(st)) {
        *status = xasprintf("5.3.0 program exited %d%s%s", WEXITSTATUS(st), sep, sum);
        res = DELIV_FAIL;
    } else {
        *status = xasprintf("5.3.0 program killed by signal %d%s%s",
                            WIFSIGNALED(st) ? WTERMSIG(st) : 0, sep, sum);
        res = DELIV_FAIL;
    }
    free(sum);
    return res;
}

enum deliv_result pipe_deliver(const struct pipe_req *r, char **status)
{
    long long deadline = now_ms() + r->timeout_ms;
    int in[2], out[2], st, timed_out = 0, fst;
    pid_t prog, feeder;
    struct buf o;
    char **env;

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
    env = pipe_env(r);
    prog = fork();
    if (prog == 0)
        run_program(r, in[0], out[1], env);
    pipe_env_free(env);
    close(in[0]);
    close(out[1]);
    if (prog < 0) {
        *status = xasprintf("4.3.0 cannot fork: %s", strerror(errno));
        close(in[1]);
        close(out[0]);
        return DELIV_DEFER;
    }
    setpgid(prog, prog); /* also here, so kill(-prog) works whoever runs first */
    feeder = fork();
    if (feeder == 0) {
        close(out[0]);
        run_feeder(r, in[1]);
    }
    close(in[1]);
    if (feeder < 0) {
        /* the program would see an empty message: stop it, try later */
        *status = xasprintf("4.3.0 cannot fork: %s", strerror(errno));
        kill(-prog, SIGKILL);
        while (waitpid(prog, &st, 0) < 0 && errno == EINTR)
            ;
        close(out[0]);
        return DELIV_DEFER;
    }
    buf_init(&o);
    if (read_until_eof(out[0], deadline, &o, PIPE_OUTPUT_MAX) < 0)
        timed_out = 1;
    close(out[0]);
    st = reap(prog, timed_out ? now_ms() : deadline, &timed_out);
    kill(feeder, SIGKILL); /* done, or stuck on a program that stopped reading */
    while (waitpid(feeder, &fst, 0) < 0 && errno == EINTR)
        ;
    enum deliv_result res = judge(st, timed_out, r->timeout_ms, &o, status);
    buf_free(&o);
    return res;
}
