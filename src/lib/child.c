/* child.c - the one way postoffice makes a process (see child.h).
 *
 * Runs in root processes (it may make a child become a user) and in
 * unprivileged ones; it reads only the bytes a child reports, never parses
 * them. */
#include "compat.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#include "child.h"
#include "privs.h"
#include "util.h"

extern char **environ;

/* The bytes of argv (and the environment strings after it, moved away)
 * that a title may be written over; set once by child_set_argv. */
static char *title_area;
static size_t title_len;
static char **volatile environ_copy; /* kept: setenv may replace environ later */

static PO_NORETURN void child_run(const struct child_spec *spec, pid_t parent, int fd,
                                  void (*fn)(void *, int), void *arg)
{
    if (spec->own_group)
        setpgid(0, 0);
    if (spec->title)
        child_set_title("%s", spec->title);
    if (spec->become && privs_become(spec->become, spec->extra_gid) < 0)
        _exit(CHILD_EX_PRIVS);
#ifdef PR_SET_PDEATHSIG
    /* after the identity change, which clears it; then make sure the parent
     * did not die before it took effect */
    if (spec->die_with_parent) {
        (void)prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
        if (getppid() != parent)
            _exit(1);
    }
#else
    (void)parent;
#endif
    fn(arg, fd);
    _exit(70); /* fn broke its contract: EX_SOFTWARE */
}

int child_start(struct child *ch, const struct child_spec *spec,
                void (*fn)(void *arg, int report_fd), void *arg)
{
    int p[2] = {-1, -1};
    if (spec->report && pipe2(p, O_CLOEXEC) < 0)
        return -1;
    fflush(NULL);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        int e = errno;
        if (p[0] >= 0) {
            close(p[0]);
            close(p[1]);
        }
        errno = e;
        return -1;
    }
    if (pid == 0) {
        if (p[0] >= 0)
            close(p[0]);
        child_run(spec, parent, p[1], fn, arg);
    }
    if (p[1] >= 0)
        close(p[1]);
    if (spec->own_group)
        setpgid(pid, pid); /* both sides: the parent may kill before the child runs */
    ch->pid = pid;
    ch->fd = p[0];
    ch->deadline_ms = spec->deadline_ms > 0 ? spec->deadline_ms : 0;
    ch->deadline = ch->deadline_ms ? now_ms() + ch->deadline_ms : 0;
    return 0;
}

static void close_report(struct child *ch)
{
    if (ch->fd >= 0)
        close(ch->fd);
    ch->fd = -1;
}

static void fill_end(struct child_end *end, int wst, int timed_out, long after_ms)
{
    memset(end, 0, sizeof *end);
    end->exited = WIFEXITED(wst);
    end->code = WIFEXITED(wst) ? WEXITSTATUS(wst) : -1;
    end->signal = WIFSIGNALED(wst) ? WTERMSIG(wst) : 0;
    end->timed_out = timed_out;
    end->after_ms = after_ms;
}

static int reap(pid_t pid, int flags)
{
    int wst = 0;
    pid_t r;
    while ((r = waitpid(pid, &wst, flags)) < 0 && errno == EINTR)
        ;
    if (r < 0)
        return -2; /* not ours to reap (someone else did): report exit -1 */
    return r == 0 ? -1 : wst;
}

static void kill_group(pid_t pid)
{
    kill(-pid, SIGKILL); /* its group, when it leads one: grandchildren too */
    kill(pid, SIGKILL);
}

/* Sleep until pid may have ended or the deadline comes: on a pidfd when
 * the kernel has them (it wakes us at the exit), else a growing pause. */
static void pause_for(pid_t pid, int left, long *pause)
{
#ifdef SYS_pidfd_open
    int pfd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (pfd >= 0) {
        struct pollfd p = {.fd = pfd, .events = POLLIN};
        (void)poll(&p, 1, left);
        close(pfd);
        return;
    }
#else
    (void)pid;
#endif
    long ms = *pause < left ? *pause : left;
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
    if (*pause < 50)
        *pause *= 2;
}

/* Reap ch, killing its group if the deadline passes first. */
static void reap_by_deadline(struct child *ch, int late, struct child_end *end)
{
    int wst;
    long pause = 1;
    if (!late && ch->deadline) {
        while ((wst = reap(ch->pid, WNOHANG)) == -1) {
            int left = ms_left(ch->deadline);
            if (left == 0) {
                late = 1;
                break;
            }
            pause_for(ch->pid, left, &pause);
        }
        if (!late)
            goto done;
    }
    if (late)
        kill_group(ch->pid);
    wst = reap(ch->pid, 0);
done:
    fill_end(end, wst == -2 ? 0 : wst, late, ch->deadline_ms);
    if (wst == -2)
        end->code = -1; /* reaped by someone else: how it ended is unknown */
    ch->pid = -1;
}

int child_finish(struct child *ch, struct buf *out, size_t max, struct child_end *end)
{
    int bad = 0;
    if (ch->fd >= 0) {
        struct buf tmp;
        buf_init(&tmp);
        /* one byte over max tells "too long" from "exactly max" */
        int late = read_until_eof(ch->fd, ch->deadline ? ch->deadline : now_ms() + 0x7fffffff,
                                  &tmp, max + 1) < 0;
        int over = tmp.len > max;
        if (!late && !over)
            buf_add(out, tmp.s, tmp.len);
        buf_free(&tmp);
        close_report(ch);
        if (over)
            kill_group(ch->pid);
        bad = late || over;
        if (late) {
            reap_by_deadline(ch, 1, end);
            return -1;
        }
    }
    reap_by_deadline(ch, 0, end);
    return bad || end->timed_out ? -1 : 0;
}

void child_wait(struct child *ch, struct child_end *end)
{
    close_report(ch);
    reap_by_deadline(ch, 0, end);
}

void child_kill(struct child *ch)
{
    struct child_end end;
    close_report(ch);
    reap_by_deadline(ch, 1, &end);
}

const char *child_end_text(const struct child_end *end, char *buf, size_t len)
{
    if (end->timed_out)
        snprintf(buf, len, "timed out after %ld seconds", (end->after_ms + 999) / 1000);
    else if (!end->exited)
        snprintf(buf, len, "killed by signal %d", end->signal);
    else
        snprintf(buf, len, "exit %d", end->code);
    return buf;
}

static void set_cmdline(const char *t)
{
    if (title_area == NULL || title_len < 2)
        return;
    memset(title_area, 0, title_len);
    snprintf(title_area, title_len, "postoffice: %s", t);
}

void child_set_title(const char *fmt, ...)
{
    char t[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t, sizeof t, fmt, ap);
    va_end(ap);
#ifdef PR_SET_NAME
    /* the kernel keeps 15 bytes: "po-" and the title's first word, so pgrep
     * and pidof postoffice find the master alone, as before */
    char comm[16];
    snprintf(comm, sizeof comm, "po-%.*s", (int)strcspn(t, " "), t);
    (void)prctl(PR_SET_NAME, comm, 0, 0, 0);
#endif
    set_cmdline(t);
}

void child_set_cmdline(const char *title)
{
    set_cmdline(title);
}

/* Move the environment strings out of the way so the title may use their
 * bytes too (they follow argv's in memory at exec). */
static char *move_environ(char *end)
{
    size_t n = 0;
    while (environ[n])
        n++;
    char **copy = xcalloc(n + 1, sizeof *copy);
    for (size_t i = 0; i < n; i++) {
        if (environ[i] == end + 1)
            end = environ[i] + strlen(environ[i]);
        copy[i] = xstrdup(environ[i]);
    }
    environ = environ_copy = copy;
    return end;
}

void child_set_argv(int argc, char **argv)
{
    if (argc < 1 || argv == NULL || argv[0] == NULL || title_area != NULL)
        return;
    char *start = argv[0];
    char *end = argv[0] + strlen(argv[0]);
    for (int i = 1; i < argc && argv[i]; i++)
        if (argv[i] == end + 1)
            end = argv[i] + strlen(argv[i]);
    /* the caller parses its arguments after this call: give it copies */
    for (int i = 0; i < argc && argv[i]; i++)
        argv[i] = xstrdup(argv[i]);
#ifdef __GLIBC__
    program_invocation_name = argv[0];
    char *slash = strrchr(argv[0], '/');
    program_invocation_short_name = slash ? slash + 1 : argv[0];
#endif
    if (environ != NULL)
        end = move_environ(end);
    title_area = start;
    title_len = (size_t)(end - start) + 1;
}
