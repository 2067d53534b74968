/* child.h - the one way postoffice makes a process.
 *
 * Every fork in postoffice goes through child_start() (the daemon's own
 * detach at start excepted).  The child: names itself for ps ("postoffice:
 * TITLE"), optionally becomes an identity (privs_become, verified), optionally
 * dies with its parent, and runs fn(arg, report_fd), which must not return
 * (it ends with _exit).  The parent: reads the child's report with a deadline,
 * kills the child's process group when the deadline passes, reaps it and says
 * how it ended.  Used by root processes (delivery workers, the queue runner,
 * the master) and by unprivileged ones alike; it never parses anything itself.
 *
 * Failures: child_start returns -1 with errno (pipe or fork failed, nothing
 * left behind).  In the child, a failed identity change ends it at once with
 * exit code CHILD_EX_PRIVS (it never runs fn with the wrong identity).
 */
#ifndef PO_CHILD_H
#define PO_CHILD_H

#include <sys/types.h>

#include "privs.h"
#include "util.h"

#define CHILD_EX_PRIVS 126 /* the child could not become spec->become */

struct child_spec {
    const char *title;          /* for ps: "mailbox alice", "remote example.org" */
    const struct ident *become; /* NULL: keep the caller's identity */
    gid_t extra_gid;            /* with become: extra group, (gid_t)-1 for none */
    long deadline_ms;           /* > 0: killed (whole group) this long after start */
    int own_group;              /* 1: the child leads a new process group */
    int die_with_parent;        /* 1: SIGKILL when the parent dies (Linux) */
    int report;                 /* 1: a pipe the child writes and the parent reads */
};

struct child {
    pid_t pid;
    int fd;             /* parent's end of the report pipe, or -1 */
    long long deadline; /* now_ms() value, or 0 for none */
    long deadline_ms;   /* spec->deadline_ms, for child_end_text */
};

struct child_end {
    int exited;    /* 1: exited with code; 0: killed by signal */
    int code;      /* exit code */
    int signal;    /* the signal that killed it */
    int timed_out; /* 1: the deadline passed and we killed it */
    long after_ms; /* with timed_out: the deadline it passed (spec->deadline_ms) */
};

/* Fork.  In the child: title, identity, then fn(arg, report_fd) (report_fd is
 * -1 without spec->report); fn must end with _exit.  In the parent: fills ch
 * and returns 0.  stdio buffers are flushed first. */
int child_start(struct child *ch, const struct child_spec *spec,
                void (*fn)(void *arg, int report_fd), void *arg);

/* Read the child's report into out (at most max bytes; more is an error) until
 * it closes the pipe or the deadline passes, then reap it.  Returns 0 when the
 * report was read to its end, -1 when it was too long or late (the child's
 * group is then killed first; out is left as it was).  end says how the child
 * ended in both cases.  A caller reading msg records instead uses
 * msg_recv(ch->fd, ..., ch->deadline) and then child_wait or child_kill. */
int child_finish(struct child *ch, struct buf *out, size_t max, struct child_end *end);

/* Reap without reading (no report pipe, or its result is not wanted): closes
 * the report pipe, waits until the child ends or the deadline passes (then
 * kills its group).  child_finish, child_wait and child_kill all close ch->fd
 * and reap: call exactly one of them once per child. */
void child_wait(struct child *ch, struct child_end *end);

/* Kill the child's group (or the child) with SIGKILL and reap it. */
void child_kill(struct child *ch);

/* One line for logs and statuses: "exit 3", "killed by signal 9",
 * "timed out after 120 seconds". */
const char *child_end_text(const struct child_end *end, char *buf, size_t len);

/* Name this process for ps: "postoffice: TITLE" over argv (where main passed
 * it to child_set_argv), and the kernel's short name (/proc/PID/comm)
 * "po-FIRSTWORD" ("po-session", "po-spare", "po-mailbox"). */
void child_set_title(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The same for argv only: the master keeps the program's name as its short
 * name, so "pgrep postoffice" and "pidof postoffice" find it alone. */
void child_set_cmdline(const char *title);

/* Called once by main() with its argv, so titles can be written over it. */
void child_set_argv(int argc, char **argv);

#endif
