/* master.c - the daemon's master process (master.h).
 *
 * ROOT: runs as root in the master.  What it does as root: create the queue
 * directory and trigger FIFO, write the pid file, fork queue runs (they need
 * root to become mailbox owners), reap, and drive the listener (binding,
 * session children: listener.c) and the delivery workers (workerpool.c).  It
 * never parses network input; from its children it reads msg.h messages
 * only, through those two modules. */
#include "compat.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <sysexits.h>
#include <unistd.h>

#include "auth_helper.h"
#include "child.h"
#include "greylist.h"
#include "listener.h"
#include "log.h"
#include "master.h"
#include "preflight.h"
#include "privs.h"
#include "queue_run.h"
#include "sdnotify.h"
#include "spool.h"
#include "workerpool.h"

struct master {
    const struct config *c;
    struct config *owned;         /* a reloaded configuration we must free */
    const struct master_opts *o;
    struct listener l;
    struct workerpool wp;
    pid_t runq_pid;               /* the queue run going, or 0 */
    pid_t auth_pid;               /* the AUTH helper (auth_helper.h), or 0 */
    long long auth_started;       /* now_ms() when it started */
    int sigfd;                    /* read end of the self-pipe */
    int trigger;                  /* QUEUEDIR/trigger FIFO, or -1 */
    int pidfd;                    /* the locked pid file, or -1 */
    int qlock;                    /* the locked queue directory, or -1 */
    long long next_run;           /* now_ms() of the next periodic queue run */
    int rerun;                    /* a run is wanted (a trigger came, maybe while a
                                     run was going): started when none is going
                                     and TRIGGER_MIN_MS have passed since the last */
    long long last_run;           /* now_ms() when the last queue run started */
    int stop, hup;
};

/* The self-pipe: the one piece of state a signal handler must reach.  Signals
 * only write their number; all work happens in the poll loop. */
static int sigpipe_w = -1;

static void on_signal(int sig)
{
    int e = errno;
    unsigned char b = (unsigned char)sig;
    if (sigpipe_w >= 0 && write(sigpipe_w, &b, 1) < 0) {
        /* the pipe is full: enough signals are already waiting */
    }
    errno = e;
}

/* What every child of the master does first (the listener and the worker
 * pool call it, after taking the descriptors they keep): forget the
 * master's descriptors and signal handling. */
static void in_child(void *arg)
{
    struct master *m = arg;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_DFL;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    sigaction(SIGCHLD, &sa, NULL);
    sa.sa_handler = SIG_IGN; /* a closed connection is a write error, not death */
    sigaction(SIGPIPE, &sa, NULL);
    /* on_signal is no longer installed, so sigpipe_w can be closed without
     * resetting the variable (a write there would give every session child
     * a private copy of our .data page) */
    listener_close_in_child(&m->l);
    wp_close_in_child(&m->wp);
    close(sigpipe_w);
    close(m->sigfd);
    if (m->trigger >= 0)
        close(m->trigger);
    if (m->pidfd >= 0)
        close(m->pidfd);
    if (m->qlock >= 0)
        close(m->qlock);
}

/* The AUTH helper: its session end goes to the listener (the sessions
 * inherit it).  A replaced helper ends by itself when its last session has
 * ended.  Only the master forks it, as root. */
static void start_auth(struct master *m)
{
    struct auth_helper h;
    if (m->l.auth_fd >= 0)
        close(m->l.auth_fd);
    m->l.auth_fd = -1;
    m->auth_pid = 0;
    if (auth_helper_start(&h, m->c, in_child, m) < 0) {
        log_err("cannot start the AUTH helper: %s; AUTH answers 454 until SIGHUP",
                strerror(errno));
        return;
    }
    m->l.auth_fd = h.fd;
    m->auth_pid = h.pid;
    m->auth_started = now_ms();
}

static void reap(struct master *m)
{
    int st;
    pid_t pid;
    while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
        if (listener_reaped(&m->l, pid))
            continue;
        if (pid == m->auth_pid) {
            /* it never ends while we hold its socket: a crash.  Once more,
             * unless it dies right away again */
            int again = now_ms() - m->auth_started > 1000;
            log_err("the AUTH helper ended (%s %d)%s", WIFSIGNALED(st) ? "signal" : "exit",
                    WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st),
                    again ? "; starting another" : "; within a second of its start, so AUTH "
                    "answers 454 until SIGHUP");
            if (again) {
                start_auth(m);
                listener_reload(&m->l, m->c); /* a spare holding the old socket */
            } else {
                m->auth_pid = 0;
            }
            continue;
        }
        const char *what = NULL;
        if (wp_reaped(&m->wp, pid)) {
            what = "delivery";
        } else if (pid == m->runq_pid) {
            what = "queue run";
            m->runq_pid = 0;
        }
        if (what && WIFSIGNALED(st))
            log_err("%s process %ld killed by signal %d", what, (long)pid, WTERMSIG(st));
    }
}

/* ---- queue runs ---- */

/* At most one queue run per this many ms on triggers: the FIFO is writable by
 * every user, and a flood of writes must cost O(runs), not O(writes). */
#define TRIGGER_MIN_MS 1000

static void runq_child(void *arg, int report_fd)
{
    struct master *m = arg;
    (void)report_fd;
    in_child(m);
    log_open("runq", log_to_stderr());
    struct runq_opts ro = {0};
    _exit(runq_run(m->c, &ro));
}

static void start_queue_run(struct master *m)
{
    if (m->runq_pid) {
        m->rerun = 1;
        return;
    }
    m->rerun = 0;
    m->last_run = now_ms();
    struct child_spec spec = { .title = "queue run", .extra_gid = (gid_t)-1 };
    struct child ch;
    if (child_start(&ch, &spec, runq_child, m) < 0)
        log_err("cannot fork a queue run: %s", strerror(errno));
    else
        m->runq_pid = ch.pid;
}

/* Drain the FIFO (large reads: a pipe holds 64 KiB) and note that a run is
 * wanted; the loop starts it (trigger_due), and does not poll the FIFO again
 * until then: meanwhile writers only fill the pipe, at no cost to us. */
static void drain_trigger(const struct master *m)
{
    static char tmp[65536];
    if (m->trigger < 0)
        return;
    for (int k = 0; k < 16 && read(m->trigger, tmp, sizeof tmp) == (ssize_t)sizeof tmp; k++)
        ;
}

static void read_trigger(struct master *m)
{
    drain_trigger(m);
    m->rerun = 1;
}

/* ms until a wanted run may start: 0 now, -1 if none is wanted or one is
 * going (its end wakes the loop through SIGCHLD). */
static long long trigger_due(const struct master *m)
{
    if (!m->rerun || m->runq_pid)
        return -1;
    long long left = m->last_run + TRIGGER_MIN_MS - now_ms();
    return left > 0 ? left : 0;
}

/* Queue directory and trigger FIFO owned by user=. */
static void open_trigger(struct master *m)
{
    struct ident id;
    memset(&id, 0, sizeof id);
    if (getuid() == 0 && privs_lookup(m->c->user, &id) == 0) {
        if (spool_setup(m->c->queuedir, id.uid, id.gid) < 0)
            log_err("cannot set up %s: %s", m->c->queuedir, strerror(errno));
        privs_free(&id);
    } else if (getuid() != 0) {
        if (spool_setup(m->c->queuedir, getuid(), getgid()) < 0)
            log_err("cannot set up %s: %s", m->c->queuedir, strerror(errno));
    }
    char *path = xasprintf("%s/trigger", m->c->queuedir);
    /* O_RDWR: the FIFO never reports EOF while we hold a writer ourselves */
    m->trigger = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (m->trigger < 0)
        log_warn("no trigger FIFO %s (%s): runq cannot wake the daemon", path, strerror(errno));
    free(path);
}

/* ---- accepted messages ---- */

static void read_queued(struct master *m)
{
    struct strlist ids;
    sl_init(&ids);
    listener_read_queued(&m->l, &ids);
    long long now = now_ms();
    for (size_t i = 0; i < ids.n; i++)
        wp_add(&m->wp, ids.v[i], now);
    sl_free(&ids);
    wp_dispatch(&m->wp, now);
}

/* ---- signals, configuration ---- */

static int setup_signals(int fds[2])
{
    if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) < 0)
        return -1;
    sigpipe_w = fds[1];
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    sigaction(SIGCHLD, &sa, NULL);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
    return 0;
}

static void read_signals(struct master *m)
{
    unsigned char sigs[64];
    ssize_t r;
    while ((r = read(m->sigfd, sigs, sizeof sigs)) > 0) {
        for (ssize_t i = 0; i < r; i++) {
            if (sigs[i] == SIGTERM || sigs[i] == SIGINT)
                m->stop = 1;
            else if (sigs[i] == SIGHUP)
                m->hup = 1;
        }
    }
    reap(m);
}

static int default_reload(struct config *fresh, void *arg)
{
    const struct config *old = arg;
    /* the default file is checked for a secure path and may be missing, as
     * at start; a -C file must exist */
    int is_default = old->confpath && !strcmp(old->confpath, PATH_CONFIG);
    struct config_ctx ctx = { .privileged = getuid() == 0, .secure_check = is_default };
    config_defaults(fresh);
    if (config_load(fresh, old->confpath, !is_default, &ctx) != 0) {
        config_free(fresh);
        return -1;
    }
    return 0;
}

static void reload(struct master *m)
{
    struct config *fresh = xcalloc(1, sizeof *fresh);
    sd_notify_state("RELOADING=1");
    int r = m->o->reload ? m->o->reload(fresh, m->o->reload_arg)
                         : default_reload(fresh, (void *)m->c);
    m->hup = 0;
    if (r != 0) {
        free(fresh);
        log_err("SIGHUP: the configuration has errors; keeping the running one");
        sd_notify_state("READY=1\nSTATUS=configuration has errors; running the old one");
        return;
    }
    if (m->owned) {
        config_free(m->owned);
        free(m->owned);
    }
    m->owned = fresh;
    m->c = fresh;
    if (m->o->listen)
        start_auth(m); /* before the new spare, which takes its socket */
    listener_reload(&m->l, fresh);
    grey_daemon_setup(fresh);
    if (wp_renew(&m->wp, fresh) < 0) /* the workers have the old configuration */
        log_err("SIGHUP: cannot make a new delivery worker socket: %s", strerror(errno));
    log_info("SIGHUP: configuration re-read (listen= and msp= changes need a restart)");
    sd_notify_state("READY=1\nSTATUS=accepting connections");
}

/* Open and lock the pid file and the queue directory before serving: a
 * second daemon with the same pid file or the same queue refuses to start
 * instead of running two queue managers over one queue.  The locks are flock
 * locks, so they belong to the open descriptors: they survive the detaching
 * fork and go with the master (its children close the descriptors first).
 * 0 or a sysexits code after saying why. */
static int lock_instance(struct master *m)
{
    const struct config *c = m->c;
    if (c->pidfile && *c->pidfile) {
        m->pidfd = open(c->pidfile, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
        if (m->pidfd < 0) {
            say("cannot write the pid file %s: %s", c->pidfile, strerror(errno));
            return EX_CANTCREAT;
        }
        if (flock(m->pidfd, LOCK_EX | LOCK_NB) < 0) {
            char old[32] = "";
            ssize_t n = pread(m->pidfd, old, sizeof old - 1, 0);
            old[n > 0 ? n : 0] = '\0';
            old[strcspn(old, "\n")] = '\0';
            say("another postoffice daemon (pid %s) holds the pid file %s; stop it first "
                "(or give this one its own pidfile=)", *old ? old : "?", c->pidfile);
            return EX_UNAVAILABLE;
        }
    }
    m->qlock = open(c->queuedir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (m->qlock >= 0 && flock(m->qlock, LOCK_EX | LOCK_NB) < 0 && errno == EWOULDBLOCK) {
        say("another postoffice daemon is running on the queue %s; stop it first "
            "(or give this one its own queuedir=)", c->queuedir);
        return EX_UNAVAILABLE;
    }
    return 0;
}

static int write_pidfile(const struct master *m, pid_t pid)
{
    if (m->pidfd < 0)
        return 0;
    char tmp[32];
    int n = snprintf(tmp, sizeof tmp, "%ld\n", (long)pid);
    if (ftruncate(m->pidfd, 0) < 0 || pwrite(m->pidfd, tmp, (size_t)n, 0) != n)
        return -1;
    return 0;
}

/* ---- the loop ---- */

/* How long poll may sleep: the next periodic run, a wanted run, gathering. */
static int poll_ms(struct master *m)
{
    int ms = m->o->queue_interval > 0 ? ms_left(m->next_run) : -1;
    if (m->rerun || m->wp.pending.n)
        ms = ms < 0 || ms > 1000 ? 1000 : ms; /* retry when a slot frees */
    long long due = trigger_due(m);
    if (due > 0 && due < ms)
        ms = (int)due;
    int g = wp_gather_left(&m->wp, now_ms());
    if (g > 0 && (ms < 0 || g < ms))
        ms = g;
    int idle = listener_expire(&m->l); /* idle sessions let go */
    if (idle >= 0 && (ms < 0 || idle < ms))
        ms = idle;
    return ms;
}

/* The timers: the periodic run, a triggered run, pending ids. */
static void due_work(struct master *m)
{
    if (m->hup)
        reload(m);
    if (m->o->queue_interval > 0 && now_ms() >= m->next_run) {
        start_queue_run(m);
        m->next_run = now_ms() + (long long)m->o->queue_interval * 1000;
    }
    if (trigger_due(m) == 0) {
        drain_trigger(m); /* what came meanwhile: this run covers it */
        start_queue_run(m);
    }
    wp_dispatch(&m->wp, now_ms());
}

static void serve(struct master *m)
{
    size_t nls = m->l.nls, cap = nls + 4 + 64;
    struct pollfd *p = xcalloc(cap, sizeof *p);
    if (m->o->queue_interval > 0)
        m->next_run = now_ms();
    while (!m->stop) {
        due_work(m);
        size_t n = 0;
        if (nls + 4 + listener_npoll(&m->l) > cap) {
            cap = nls + 4 + listener_npoll(&m->l) * 2;
            p = xreallocarray(p, cap, sizeof *p);
        }
        for (size_t i = 0; i < nls; i++)
            p[n++] = (struct pollfd){ .fd = m->l.ls[i].fd, .events = POLLIN };
        p[n++] = (struct pollfd){ .fd = m->sigfd, .events = POLLIN };
        p[n++] = (struct pollfd){ .fd = m->l.notify[0], .events = POLLIN };
        /* -1 is ignored: no trigger FIFO, or a run is already wanted */
        p[n++] = (struct pollfd){ .fd = m->rerun ? -1 : m->trigger, .events = POLLIN };
        p[n++] = (struct pollfd){ .fd = m->wp.sock[0],
                                  .events = POLLIN | (m->wp.send_blocked ? POLLOUT : 0) };
        n += listener_pollfds(&m->l, p + n); /* sessions coming back (spare.h) */
        int r = poll(p, n, poll_ms(m));
        if (r < 0 && errno != EINTR) {
            log_err("poll: %s", strerror(errno));
            break;
        }
        if (r <= 0)
            continue;
        /* first: reaping (read_signals) closes sockets whose numbers a new
         * spare may take */
        listener_kid_events(&m->l, p + nls + 4, n - nls - 4);
        if (p[nls].revents)
            read_signals(m);
        if (p[nls + 1].revents)
            read_queued(m);
        if (m->trigger >= 0 && p[nls + 2].revents)
            read_trigger(m);
        if (p[nls + 3].revents & POLLIN)
            wp_read_done(&m->wp);
        for (size_t i = 0; i < nls && !m->stop; i++)
            if (p[i].revents & POLLIN)
                listener_accept(&m->l, i);
    }
    free(p);
}

static void master_free(struct master *m)
{
    listener_free(&m->l);
    wp_free(&m->wp);
    if (m->trigger >= 0)
        close(m->trigger);
    if (m->pidfd >= 0)
        close(m->pidfd);
    if (m->qlock >= 0)
        close(m->qlock);
    if (m->owned) {
        config_free(m->owned);
        free(m->owned);
    }
}

/* Leave the terminal (-bd): the parent writes the pid file and returns
 * with *parent set; the child goes on.  In the foreground (-bD) the pid file
 * names us.  0 or a sysexits code.  The one fork outside the child runner:
 * the detached master is not anyone's child to report to. */
static int detach(struct master *m, int *parent)
{
    const struct config *c = m->c;
    *parent = 0;
    if (m->o->foreground) {
        if (write_pidfile(m, getpid()) < 0) {
            say("cannot write the pid file %s: %s", c->pidfile, strerror(errno));
            return EX_CANTCREAT;
        }
        return 0;
    }
    pid_t pid = fork();
    if (pid < 0) {
        say("fork: %s", strerror(errno));
        return EX_OSERR;
    }
    if (pid > 0) {
        /* the sockets listen already: tell the truth and leave */
        *parent = 1;
        if (write_pidfile(m, pid) < 0) {
            say("cannot write the pid file %s: %s", c->pidfile, strerror(errno));
            kill(pid, SIGTERM);
            return EX_CANTCREAT;
        }
        return 0;
    }
    setsid();
    int null = open("/dev/null", O_RDWR);
    if (null >= 0) {
        dup2(null, 0);
        dup2(null, 1);
        if (!log_to_stderr())
            dup2(null, 2);
        if (null > 2)
            close(null);
    }
    return 0;
}

/* Sockets, pipes, detaching.  0, or a sysexits code (*parent: the caller is
 * the parent of the detached master and returns). */
static int master_open(struct master *m, int *parent)
{
    const struct master_opts *o = m->o;
    int rc = lock_instance(m);
    if (rc)
        return rc;
    rc = listener_open(&m->l, m->c, o->listen);
    if (rc)
        return rc;
    if (wp_init(&m->wp, m->c) < 0) {
        say("socketpair: %s", strerror(errno));
        return EX_OSERR;
    }
    m->l.in_child = m->wp.in_child = in_child;
    m->l.in_child_arg = m->wp.in_child_arg = m;
    rc = detach(m, parent);
    if (rc || *parent)
        return rc;
    int sig[2];
    if (setup_signals(sig) < 0) {
        log_err("pipe: %s", strerror(errno));
        return EX_OSERR;
    }
    m->sigfd = sig[0];
    return 0;
}

int master_run(const struct config *c, const struct master_opts *o)
{
    struct master m;
    memset(&m, 0, sizeof m);
    m.c = c;
    m.o = o;
    m.trigger = m.sigfd = m.pidfd = m.qlock = -1;
    m.wp.sock[0] = m.wp.sock[1] = -1;
    /* -bD: tests and terminals read the log on stderr; under systemd it is
     * the journal, which gets every line from syslog already */
    if (o->foreground && !sd_stderr_is_journal())
        log_set_stderr(1);
    if (!o->listen && o->queue_interval <= 0) {
        say("nothing to do: give -bd to listen or -qN to run the queue every N minutes");
        return EX_USAGE;
    }
    if (c->relay && o->listen)
        log_warn("WARNING: relay is set: this server relays mail for anyone (an open relay)");
    int rc = preflight_daemon(c);
    if (rc)
        return rc;
    int parent = 0;
    rc = master_open(&m, &parent);
    if (rc || parent) {
        master_free(&m);
        return rc;
    }
    child_set_cmdline("master");
    open_trigger(&m);
    if (o->listen)
        grey_daemon_setup(m.c);
    listener_load_user(&m.l);
    if (o->listen) {
        listener_start_tls(&m.l);
        start_auth(&m);
        if (c->auth_plaintext)
            log_warn("WARNING: auth-plaintext is set: AUTH is offered without TLS, so "
                     "passwords may cross the network unencrypted");
    }
    log_info("postoffice %s: accepting connections", PO_VERSION);
    listener_spare(&m.l);
    sd_notify_state("READY=1\nSTATUS=accepting connections");
    serve(&m);
    sd_notify_state("STOPPING=1");
    listener_stop(&m.l);
    log_info("stopping");
    if (m.pidfd >= 0)
        unlink(c->pidfile);
    close(m.sigfd);
    close(sigpipe_w);
    sigpipe_w = -1;
    master_free(&m);
    return 0;
}

int master_main(const struct config *c, int foreground, long queue_interval_secs,
                int listen)
{
    struct master_opts o = { .foreground = foreground, .listen = listen,
                             .queue_interval = queue_interval_secs };
    return master_run(c, &o);
}
