/* daemon.c - the SMTP listener and its children.
 *
 * ROOT: this file runs as root in the master process.  What it does as root:
 * bind the listening sockets, create the queue directory and trigger FIFO,
 * write the pid file, fork, reap, and fork delivery workers and queue runs
 * (they need root to become mailbox owners).  It never parses network input:
 * each connection is handed to a child that drops to user= before reading. */
#include "compat.h"

#include <arpa/inet.h>
#include <errno.h>
#include <grp.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif
#include <sys/stat.h>
#include <sys/wait.h>
#include <sysexits.h>
#include <unistd.h>

#include "daemon.h"
#include "dworker.h"
#include "log.h"
#include "netaddr.h"
#include "policy.h"
#include "privs.h"
#include "runq.h"
#include "session.h"
#include "spool.h"
#include "wrap.h"

enum child_kind { K_SESSION, K_DELIVERY, K_RUNQ, K_SPARE };

struct child {
    pid_t pid;
    enum child_kind kind;
    struct netaddr addr; /* K_SESSION: the client */
};

struct listener {
    int fd;
    int submission;
    char *name; /* "addr:port" for messages */
};

struct cred {
    int ok;
    uid_t uid;
    gid_t gid;
    gid_t *groups;
    size_t n;
};

struct daemon {
    const struct config *c;
    struct cred cred;             /* user= for the session children */
    struct config *owned;         /* a reloaded configuration we must free */
    const struct daemon_opts *o;
    struct listener *ls;
    size_t nls;
    struct child *kids;
    size_t nkids, capkids;
    int notify[2];                /* session children -> master: "QID\n" */
    int dsock[2];                 /* master <-> delivery workers (dworker.h) */
    long outstanding;             /* ids handed to workers, not reported done */
    int send_blocked;             /* the worker socket was full: poll POLLOUT */
    pid_t spare_pid;              /* a session child forked ahead, waiting for a
                                     connection (0: none) */
    int spare_fd;                 /* master's end of its socket, or -1 */
    int sigfd;                    /* read end of the self-pipe */
    struct buf notebuf;           /* partial line from notify[0] */
    struct strlist pending;       /* queue ids waiting for a delivery slot */
    long long pending_since;      /* now_ms() when the oldest pending id came */
    int trigger;                  /* QUEUEDIR/trigger FIFO, or -1 */
    long long next_run;           /* now_ms() of the next periodic queue run */
    int rerun;                    /* a run is wanted (a trigger came, maybe while a
                                     run was going): started when none is going
                                     and TRIGGER_MIN_MS have passed since the last */
    long long last_run;           /* now_ms() when the last queue run started */
    int stop, hup;
};

static void load_cred(struct daemon *d);
static void drop_spare(struct daemon *d);
static int drop_privileges(const struct daemon *d);

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

/* ---- listening sockets ---- */

int daemon_parse_listen(const char *entry, char **host, int *port)
{
    const char *p = NULL;
    char *h = NULL;
    unsigned long pv = 25;
    *host = NULL;
    if (entry[0] == '[') {
        const char *close = strchr(entry, ']');
        if (!close)
            return -1;
        h = xstrndup(entry + 1, (size_t)(close - entry - 1));
        if (close[1] == ':')
            p = close + 2;
        else if (close[1])
            goto bad;
    } else {
        const char *colon = strrchr(entry, ':');
        if (colon && strchr(entry, ':') != colon) {
            h = xstrdup(entry); /* a bare IPv6 address */
        } else if (colon) {
            h = xstrndup(entry, (size_t)(colon - entry));
            p = colon + 1;
        } else if (parse_ulong(entry, &pv) == 0) {
            h = xstrdup("");
        } else {
            h = xstrdup(entry);
        }
    }
    if (!strcmp(h, "*")) {
        free(h);
        h = xstrdup("");
    }
    if (p && (parse_ulong(p, &pv) < 0))
        goto bad;
    if (pv == 0 || pv > 65535)
        goto bad;
    struct netaddr na;
    if (*h && net_parse(h, &na) < 0)
        goto bad;
    *host = h;
    *port = (int)pv;
    return 0;
bad:
    free(h);
    return -1;
}

/* Bind one socket.  0, or -1 with errno. */
static int bind_one(int family, const char *host, int port, int *out)
{
    struct sockaddr_storage ss;
    socklen_t len;
    memset(&ss, 0, sizeof ss);
    if (family == AF_INET) {
        struct sockaddr_in *s4 = (struct sockaddr_in *)(void *)&ss;
        s4->sin_family = AF_INET;
        s4->sin_port = htons((unsigned short)port);
        if (*host && inet_pton(AF_INET, host, &s4->sin_addr) != 1)
            return errno = EINVAL, -1;
        len = sizeof *s4;
    } else {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)(void *)&ss;
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((unsigned short)port);
        if (*host && inet_pton(AF_INET6, host, &s6->sin6_addr) != 1)
            return errno = EINVAL, -1;
        len = sizeof *s6;
    }
    int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    /* re-bind at once after a restart, despite connections in TIME_WAIT */
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
    if (family == AF_INET6) /* the IPv4 socket serves IPv4 */
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, 128) < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    *out = fd;
    return 0;
}

static void add_listener(struct daemon *d, int fd, int submission, const char *name)
{
    d->ls = xreallocarray(d->ls, d->nls + 1, sizeof *d->ls);
    d->ls[d->nls].fd = fd;
    d->ls[d->nls].submission = submission;
    d->ls[d->nls].name = xstrdup(name);
    d->nls++;
}

/* Bind host:port ("" = every IPv4 and IPv6 address).  0 or a sysexits code. */
static int listen_on(struct daemon *d, const char *host, int port, int submission)
{
    struct netaddr na;
    int fams[2], nf = 0;
    if (*host && net_parse(host, &na) == 0) {
        fams[nf++] = na.family;
    } else {
        fams[nf++] = AF_INET;
        fams[nf++] = AF_INET6;
    }
    for (int i = 0; i < nf; i++) {
        int fd;
        char name[128];
        snprintf(name, sizeof name, fams[i] == AF_INET6 ? "[%s]:%d" : "%s:%d",
                 *host ? host : (fams[i] == AF_INET6 ? "::" : "0.0.0.0"), port);
        if (bind_one(fams[i], host, port, &fd) < 0) {
            /* a host without IPv6 still serves IPv4 on "all addresses" */
            if (!*host && fams[i] == AF_INET6 && errno == EAFNOSUPPORT)
                continue;
            say("cannot listen on %s: %s", name, strerror(errno));
            log_err("cannot listen on %s: %s", name, strerror(errno));
            return EX_OSERR;
        }
        add_listener(d, fd, submission, name);
        log_info("listening on %s%s", name, submission ? " (submission)" : "");
    }
    return 0;
}

static int open_listeners(struct daemon *d)
{
    const struct config *c = d->c;
    struct strlist def;
    const struct strlist *l = &c->listen;
    sl_init(&def);
    if (l->n == 0) {
        sl_add(&def, "*:25");
        l = &def;
    }
    int rc = 0;
    for (size_t i = 0; i < l->n && !rc; i++) {
        char *host;
        int port;
        if (daemon_parse_listen(l->v[i], &host, &port) < 0) {
            say("listen=%s: not ADDRESS:PORT with a numeric address (e.g. 127.0.0.1:25, [::1]:25, *:25)",
                l->v[i]);
            rc = EX_CONFIG;
            break;
        }
        rc = listen_on(d, host, port, 0);
        if (!rc && c->msp > 0)
            rc = listen_on(d, host, (int)c->msp, 1);
        free(host);
    }
    sl_free(&def);
    return rc;
}

/* ---- children ---- */

static void add_child(struct daemon *d, pid_t pid, enum child_kind k, const struct netaddr *a)
{
    if (d->nkids == d->capkids) {
        d->capkids = d->capkids ? d->capkids * 2 : 64;
        d->kids = xreallocarray(d->kids, d->capkids, sizeof *d->kids);
    }
    d->kids[d->nkids].pid = pid;
    d->kids[d->nkids].kind = k;
    if (a)
        d->kids[d->nkids].addr = *a;
    d->nkids++;
}

static size_t count_kids(const struct daemon *d, enum child_kind k, const struct netaddr *a)
{
    size_t n = 0;
    for (size_t i = 0; i < d->nkids; i++)
        if (d->kids[i].kind == k && (!a || net_equal(&d->kids[i].addr, a)))
            n++;
    return n;
}

static void reap(struct daemon *d)
{
    int st;
    pid_t pid;
    while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
        for (size_t i = 0; i < d->nkids; i++) {
            if (d->kids[i].pid != pid)
                continue;
            if (d->kids[i].kind != K_SESSION && d->kids[i].kind != K_SPARE &&
                WIFSIGNALED(st))
                log_err("%s process %ld killed by signal %d",
                        d->kids[i].kind == K_RUNQ ? "queue run" : "delivery", (long)pid,
                        WTERMSIG(st));
            if (pid == d->spare_pid)
                drop_spare(d);
            d->kids[i] = d->kids[--d->nkids];
            break;
        }
    }
}

/* What every child does first: forget the master's descriptors and signal
 * handling. */
static void child_setup(struct daemon *d)
{
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
    for (size_t i = 0; i < d->nls; i++)
        close(d->ls[i].fd);
    close(sigpipe_w);
    close(d->sigfd);
    close(d->notify[0]);
    close(d->dsock[0]);
    close(d->dsock[1]);
    if (d->spare_fd >= 0)
        close(d->spare_fd);
    if (d->trigger >= 0)
        close(d->trigger);
}

/* Refuse a connection from the master without forking. */
static void refuse(int fd, const char *text)
{
    (void)send(fd, text, strlen(text), MSG_DONTWAIT | MSG_NOSIGNAL);
    close(fd);
}

static void run_session(struct daemon *d, int fd, const struct sockaddr *peer, int submission)
{
    child_setup(d);
    if (drop_privileges(d) < 0) {
        log_err("cannot become %s: %s", d->c->user, strerror(errno));
        refuse(fd, "421 4.3.0 server configuration error; try again later\r\n");
        _exit(EX_OSERR);
    }
    /* unprivileged already: syslog can wait for a first message */
    log_open_deferred("smtpd", log_to_stderr());
    struct session_conn conn = { .fd = fd, .peer = peer, .submission = submission,
                                 .notify_fd = d->notify[1] };
    _exit(session_run(d->c, &conn));
}

/* ---- the spare session ----
 *
 * The master forks the next session child before its connection arrives: the
 * child drops privileges and waits on a socket for the connection's
 * descriptor (SCM_RIGHTS), so a client does not wait for a fork.  Each child
 * still serves exactly one connection. */

struct handover {
    struct sockaddr_storage peer;
    int submission;
};

/* Forget the spare (it died, or was used, or is being replaced). */
static void drop_spare(struct daemon *d)
{
    if (d->spare_fd >= 0)
        close(d->spare_fd); /* an unused spare sees the end and exits */
    d->spare_fd = -1;
    d->spare_pid = 0;
}

/* At stop: a spare forked a moment ago may not have closed its copies of the
 * listening sockets yet; connections queued there would be reset when it
 * does.  It has no client: kill it and wait, so that when the master is gone
 * the port is free for the next daemon. */
static void stop_spare(struct daemon *d)
{
    pid_t pid = d->spare_pid;
    drop_spare(d);
    if (pid > 0 && kill(pid, SIGKILL) == 0)
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
            ;
}

/* In the spare: the connection's descriptor and what goes with it, or -1. */
static int receive_conn(int s, struct handover *h)
{
    union {
        struct cmsghdr h;
        char b[CMSG_SPACE(sizeof(int))];
    } u;
    struct iovec iov = {.iov_base = h, .iov_len = sizeof *h};
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.b,
                       .msg_controllen = sizeof u.b};
    ssize_t n;
    while ((n = recvmsg(s, &m, MSG_CMSG_CLOEXEC)) < 0 && errno == EINTR)
        ;
    struct cmsghdr *c = n == (ssize_t)sizeof *h ? CMSG_FIRSTHDR(&m) : NULL;
    if (c == NULL || c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS ||
        c->cmsg_len != CMSG_LEN(sizeof(int)))
        return -1;
    int fd;
    memcpy(&fd, CMSG_DATA(c), sizeof fd);
    return fd;
}

/* A waiting spare is named "po-spare" (ps, /proc/PID/comm), so it is not
 * taken for a session; a session has the program's name again. */
static void spare_name(int waiting)
{
#ifdef PR_SET_NAME
    static const char spare[16] = "po-spare";
    char name[16] = "postoffice";
    if (!waiting && program_invocation_short_name)
        str_copy(name, program_invocation_short_name, sizeof name);
    (void)prctl(PR_SET_NAME, waiting ? spare : name, 0, 0, 0);
#else
    (void)waiting;
#endif
}

static PO_NORETURN void spare_main(struct daemon *d, int s)
{
    child_setup(d);
    spare_name(1);
    int ok = drop_privileges(d) == 0;
    struct handover h;
    int fd = receive_conn(s, &h);
    close(s);
    spare_name(0);
    if (fd < 0)
        _exit(0); /* the master has no use for us any more */
    if (!ok) {
        log_err("cannot become %s: %s", d->c->user, strerror(errno));
        refuse(fd, "421 4.3.0 server configuration error; try again later\r\n");
        _exit(EX_OSERR);
    }
    log_open_deferred("smtpd", log_to_stderr());
    struct session_conn conn = { .fd = fd, .peer = (struct sockaddr *)&h.peer,
                                 .submission = h.submission, .notify_fd = d->notify[1] };
    _exit(session_run(d->c, &conn));
}

static void spawn_spare(struct daemon *d)
{
    int sp[2];
    if (d->spare_pid > 0 || d->stop || d->nls == 0 ||
        socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) < 0)
        return;
    pid_t pid = fork();
    if (pid == 0) {
        close(sp[0]);
        spare_main(d, sp[1]);
    }
    close(sp[1]);
    if (pid < 0) {
        close(sp[0]);
        return;
    }
    d->spare_pid = pid;
    d->spare_fd = sp[0];
    add_child(d, pid, K_SPARE, NULL);
}

/* Give the connection to the spare, which becomes a session.  0 or -1 (no
 * spare, or it is gone: the caller forks as before). */
static int hand_to_spare(struct daemon *d, int fd, const struct sockaddr_storage *ss,
                         int submission, const struct netaddr *a)
{
    if (d->spare_pid <= 0)
        return -1;
    struct handover h;
    memset(&h, 0, sizeof h);
    h.peer = *ss;
    h.submission = submission;
    union {
        struct cmsghdr h;
        char b[CMSG_SPACE(sizeof(int))];
    } u;
    memset(&u, 0, sizeof u);
    struct iovec iov = {.iov_base = &h, .iov_len = sizeof h};
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.b,
                       .msg_controllen = sizeof u.b};
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &fd, sizeof fd);
    pid_t pid = d->spare_pid;
    ssize_t n = sendmsg(d->spare_fd, &m, MSG_NOSIGNAL | MSG_DONTWAIT);
    drop_spare(d);
    if (n != (ssize_t)sizeof h) {
        kill(pid, SIGKILL); /* reaped as a spare: it never got the connection */
        return -1;
    }
    for (size_t i = 0; i < d->nkids; i++)
        if (d->kids[i].pid == pid) {
            d->kids[i].kind = K_SESSION;
            d->kids[i].addr = *a;
        }
    return 0;
}

static void accept_one(struct daemon *d, const struct listener *l)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    int fd = accept4(l->fd, (struct sockaddr *)&ss, &len, SOCK_CLOEXEC);
    if (fd < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
            errno != ECONNABORTED)
            log_err("accept on %s: %s", l->name, strerror(errno));
        return;
    }
    struct netaddr a;
    double load;
    if (net_from_sockaddr((struct sockaddr *)&ss, &a) < 0) {
        close(fd);
        return;
    }
    const struct config *c = d->c;
    if (c->clients > 0 && (long)count_kids(d, K_SESSION, NULL) >= c->clients) {
        refuse(fd, "421 4.3.2 too many connections; try again later\r\n");
        log_notice("refused a connection: clients=%ld sessions running", c->clients);
        return;
    }
    if (c->clients_per_host > 0 &&
        (long)count_kids(d, K_SESSION, &a) >= c->clients_per_host) {
        refuse(fd, "421 4.3.2 too many connections from your address; try again later\r\n");
        return;
    }
    if (policy_overloaded(c, &load)) {
        refuse(fd, "421 4.3.2 system load too high; try again later\r\n");
        log_notice("refused a connection: load average %.2f over %.2f", load, c->load);
        return;
    }
    if (hand_to_spare(d, fd, &ss, l->submission, &a) == 0) {
        close(fd);
        spawn_spare(d); /* for the next client, while this one is served */
        return;
    }
    pid_t pid = fork();
    if (pid < 0) {
        log_err("fork: %s", strerror(errno));
        refuse(fd, "421 4.3.0 cannot start a session now; try again later\r\n");
        return;
    }
    if (pid == 0)
        run_session(d, fd, (struct sockaddr *)&ss, l->submission);
    close(fd);
    add_child(d, pid, K_SESSION, &a);
    spawn_spare(d);
}

/* ---- delivery ---- */

static long max_deliveries(const struct config *c)
{
    return c->delivery_procs > 0 ? c->delivery_procs : 4;
}

/* Accepted ids go to long-lived delivery workers (dworker.h).  With immediate
 * their remote workers open connections: gathering ids for a moment lets one
 * connection carry several messages instead of one each. */
#define GATHER_MS 50
#define GATHER_MAX 50

/* Milliseconds to keep gathering before the pending ids are handed out; 0 when
 * they should go now. */
static int gather_left(const struct daemon *d)
{
    if (!d->c->immediate || d->pending.n == 0 || d->pending.n >= GATHER_MAX)
        return 0;
    return ms_left(d->pending_since + GATHER_MS);
}

/* A new delivery worker (dworker.h). */
static int spawn_worker(struct daemon *d)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        int s = fcntl(d->dsock[1], F_DUPFD_CLOEXEC, 0);
        child_setup(d);
        close(d->notify[1]);
        log_open("runq", log_to_stderr());
        if (s < 0)
            _exit(EX_OSERR);
        dworker_main(d->c, s);
    }
    if (pid < 0) {
        log_err("cannot fork a delivery worker (%s); the queue run will deliver "
                "what is waiting", strerror(errno));
        return -1;
    }
    add_child(d, pid, K_DELIVERY, NULL);
    return 0;
}

/* Hand the pending ids to the workers: a worker is started when there is
 * none, or when every running one has a full round's worth of ids waiting or
 * in hand, up to delivery-processes.  Fewer workers with fuller rounds: a
 * round's mail for one mailbox costs one lock and one flush. */
static void start_deliveries(struct daemon *d)
{
    if (gather_left(d) > 0)
        return;
    long max = max_deliveries(d->c);
    long running = (long)count_kids(d, K_DELIVERY, NULL);
    if (running == 0 && d->outstanding > 0) {
        /* the workers are gone (idle, worn out, killed): a fresh one takes
         * whatever they left in the socket */
        d->outstanding = 0;
        if (spawn_worker(d) == 0)
            running++;
    }
    long take = d->c->immediate ? DW_TAKE_IMMEDIATE : DW_TAKE_LOCAL;
    d->send_blocked = 0;
    size_t sent = 0;
    for (; sent < d->pending.n; sent++) {
        if ((running == 0 || (d->outstanding >= running * take && running < max)) &&
            spawn_worker(d) == 0)
            running++;
        if (running == 0)
            break; /* no worker: retried from the poll loop */
        if (dworker_send(d->dsock[0], d->pending.v[sent]) < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                d->send_blocked = 1;
            else
                log_err("cannot hand %s to a delivery worker: %s", d->pending.v[sent],
                        strerror(errno));
            break;
        }
        d->outstanding++;
        free(d->pending.v[sent]);
    }
    if (sent) {
        memmove(d->pending.v, d->pending.v + sent, (d->pending.n - sent) * sizeof *d->pending.v);
        d->pending.n -= sent;
    }
}

static void read_done(struct daemon *d)
{
    d->outstanding -= dworker_read_done(d->dsock[0]);
    if (d->outstanding < 0)
        d->outstanding = 0;
}

/* A fresh worker socket: workers on the old one deliver what they took and
 * what is still queued there, then see the end and exit. */
static int open_dsock(struct daemon *d)
{
    for (int i = 0; i < 2; i++)
        if (d->dsock[i] >= 0)
            close(d->dsock[i]);
    d->dsock[0] = d->dsock[1] = -1;
    d->outstanding = 0;
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, d->dsock) < 0)
        return -1;
    int fl = fcntl(d->dsock[0], F_GETFL);
    return fl < 0 ? -1 : fcntl(d->dsock[0], F_SETFL, fl | O_NONBLOCK);
}

/* Queue ids from session children: "QID\n" each. */
static void read_notify(struct daemon *d)
{
    char tmp[4096];
    ssize_t r;
    while ((r = read(d->notify[0], tmp, sizeof tmp)) > 0) {
        buf_add(&d->notebuf, tmp, (size_t)r);
        char *nl;
        while ((nl = memchr(d->notebuf.s, '\n', d->notebuf.len))) {
            *nl = '\0';
            if (qid_valid(d->notebuf.s)) {
                if (d->pending.n == 0)
                    d->pending_since = now_ms();
                sl_add(&d->pending, d->notebuf.s);
            }
            size_t rest = d->notebuf.len - (size_t)(nl + 1 - d->notebuf.s);
            memmove(d->notebuf.s, nl + 1, rest);
            buf_truncate(&d->notebuf, rest);
        }
        if (d->notebuf.len > 256) /* garbage: no qid is that long */
            buf_reset(&d->notebuf);
    }
    start_deliveries(d);
}

/* At most one queue run per this many ms on triggers: the FIFO is writable by
 * every user, and a flood of writes must cost O(runs), not O(writes). */
#define TRIGGER_MIN_MS 1000

static void start_queue_run(struct daemon *d)
{
    if (count_kids(d, K_RUNQ, NULL)) {
        d->rerun = 1;
        return;
    }
    d->rerun = 0;
    d->last_run = now_ms();
    pid_t pid = fork();
    if (pid == 0) {
        child_setup(d);
        close(d->notify[1]);
        log_open("runq", log_to_stderr());
        struct runq_opts ro = {0};
        _exit(runq_run(d->c, &ro));
    }
    if (pid < 0)
        log_err("cannot fork a queue run: %s", strerror(errno));
    else
        add_child(d, pid, K_RUNQ, NULL);
}

/* Drain the FIFO (large reads: a pipe holds 64 KiB) and note that a run is
 * wanted; the loop starts it (trigger_due), and does not poll the FIFO again
 * until then: meanwhile writers only fill the pipe, at no cost to us. */
static void drain_trigger(const struct daemon *d)
{
    static char tmp[65536];
    if (d->trigger < 0)
        return;
    for (int k = 0; k < 16 && read(d->trigger, tmp, sizeof tmp) == (ssize_t)sizeof tmp; k++)
        ;
}

static void read_trigger(struct daemon *d)
{
    drain_trigger(d);
    d->rerun = 1;
}

/* ms until a wanted run may start: 0 now, -1 if none is wanted or one is
 * going (its end wakes the loop through SIGCHLD). */
static long long trigger_due(const struct daemon *d)
{
    if (!d->rerun || count_kids(d, K_RUNQ, NULL))
        return -1;
    long long left = d->last_run + TRIGGER_MIN_MS - now_ms();
    return left > 0 ? left : 0;
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

static void read_signals(struct daemon *d, int fd)
{
    unsigned char sigs[64];
    ssize_t r;
    while ((r = read(fd, sigs, sizeof sigs)) > 0) {
        for (ssize_t i = 0; i < r; i++) {
            if (sigs[i] == SIGTERM || sigs[i] == SIGINT)
                d->stop = 1;
            else if (sigs[i] == SIGHUP)
                d->hup = 1;
        }
    }
    reap(d);
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

static void reload(struct daemon *d)
{
    struct config *fresh = xcalloc(1, sizeof *fresh);
    int r = d->o->reload ? d->o->reload(fresh, d->o->reload_arg)
                         : default_reload(fresh, (void *)d->c);
    d->hup = 0;
    if (r != 0) {
        free(fresh);
        log_err("SIGHUP: the configuration has errors; keeping the running one");
        return;
    }
    if (d->owned) {
        config_free(d->owned);
        free(d->owned);
    }
    d->owned = fresh;
    d->c = fresh;
    load_cred(d);
    drop_spare(d); /* it has the old configuration */
    spawn_spare(d);
    if (open_dsock(d) < 0) /* the workers have the old configuration */
        log_err("SIGHUP: cannot make a new delivery worker socket: %s", strerror(errno));
    log_info("SIGHUP: configuration re-read (listen= and msp= changes need a restart)");
}

static int write_pidfile(const char *path, pid_t pid)
{
    if (!path || !*path)
        return 0;
    char tmp[32];
    int n = snprintf(tmp, sizeof tmp, "%ld\n", (long)pid);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -1;
    int r = write_all(fd, tmp, (size_t)n);
    if (close(fd) < 0)
        r = -1;
    return r;
}

/* ---- the loop ---- */

static void serve(struct daemon *d, int sigfd)
{
    size_t nfds = d->nls + 4;
    struct pollfd *p = xcalloc(nfds, sizeof *p);
    if (d->o->queue_interval > 0)
        d->next_run = now_ms();
    while (!d->stop) {
        if (d->hup)
            reload(d);
        if (d->o->queue_interval > 0 && now_ms() >= d->next_run) {
            start_queue_run(d);
            d->next_run = now_ms() + (long long)d->o->queue_interval * 1000;
        }
        if (trigger_due(d) == 0) {
            drain_trigger(d); /* what came meanwhile: this run covers it */
            start_queue_run(d);
        }
        start_deliveries(d);
        size_t n = 0;
        for (size_t i = 0; i < d->nls; i++)
            p[n++] = (struct pollfd){ .fd = d->ls[i].fd, .events = POLLIN };
        p[n++] = (struct pollfd){ .fd = sigfd, .events = POLLIN };
        p[n++] = (struct pollfd){ .fd = d->notify[0], .events = POLLIN };
        /* -1 is ignored: no trigger FIFO, or a run is already wanted */
        p[n++] = (struct pollfd){ .fd = d->rerun ? -1 : d->trigger, .events = POLLIN };
        p[n++] = (struct pollfd){ .fd = d->dsock[0],
                                  .events = POLLIN | (d->send_blocked ? POLLOUT : 0) };
        int ms = d->o->queue_interval > 0 ? ms_left(d->next_run) : -1;
        if (d->rerun || d->pending.n)
            ms = ms < 0 || ms > 1000 ? 1000 : ms; /* retry when a slot frees */
        long long due = trigger_due(d);
        if (due > 0 && due < ms)
            ms = (int)due;
        int g = gather_left(d);
        if (g > 0 && (ms < 0 || g < ms))
            ms = g;
        int r = poll(p, n, ms);
        if (r < 0 && errno != EINTR) {
            log_err("poll: %s", strerror(errno));
            break;
        }
        if (r <= 0)
            continue;
        if (p[d->nls].revents)
            read_signals(d, sigfd);
        if (p[d->nls + 1].revents)
            read_notify(d);
        if (d->trigger >= 0 && p[d->nls + 2].revents)
            read_trigger(d);
        if (p[d->nls + 3].revents & POLLIN)
            read_done(d);
        for (size_t i = 0; i < d->nls && !d->stop; i++)
            if (p[i].revents & POLLIN)
                accept_one(d, &d->ls[i]);
    }
    free(p);
}

/* The session user's identity, looked up once in the master (and again on
 * SIGHUP): a session child then drops privileges with setgroups/setgid/setuid
 * alone, without reading /etc/passwd and /etc/group or loading NSS modules
 * on every connection (faster, and ~100 KiB less private memory per idle
 * session). */
/* user's groups (gid included), asked in a child: getgrouplist() loads the NSS
 * module of every group source (libnss_systemd and its libraries on Debian),
 * which would stay mapped in the master and be copied by every fork and torn
 * down by every exit.  The count (*out malloc'd), or 0 on failure. */
#define GROUPS_MAX 65536
static int groups_of(const char *user, gid_t gid, gid_t **out)
{
    int p[2];
    *out = NULL;
    if (pipe2(p, O_CLOEXEC) < 0)
        return 0;
    pid_t pid = fork();
    if (pid == 0) {
        close(p[0]);
        int n = 64;
        gid_t *g = xcalloc((size_t)n, sizeof *g);
        if (getgrouplist(user, gid, g, &n) < 0) {
            /* n is now the count needed */
            if (n <= 0 || n > GROUPS_MAX)
                _exit(1);
            g = xreallocarray(g, (size_t)n, sizeof *g);
            if (getgrouplist(user, gid, g, &n) < 0)
                _exit(1);
        }
        _exit(n > 0 && write_all(p[1], g, (size_t)n * sizeof *g) == 0 ? 0 : 1);
    }
    close(p[1]);
    struct buf b;
    buf_init(&b);
    int ok = pid > 0 &&
             read_until_eof(p[0], now_ms() + 30000, &b, GROUPS_MAX * sizeof(gid_t)) == 0;
    close(p[0]);
    int st = 0;
    if (pid > 0) {
        if (!ok)
            kill(pid, SIGKILL);
        while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
            ;
    }
    int n = ok && WIFEXITED(st) && WEXITSTATUS(st) == 0 ? (int)(b.len / sizeof(gid_t)) : 0;
    if (n > 0) {
        *out = xreallocarray(NULL, (size_t)n, sizeof **out);
        memcpy(*out, b.s, (size_t)n * sizeof **out);
    }
    buf_free(&b);
    return n;
}

static void load_cred(struct daemon *d)
{
    struct ident id;
    memset(&id, 0, sizeof id);
    free(d->cred.groups);
    memset(&d->cred, 0, sizeof d->cred);
    if (geteuid() != 0 || privs_lookup(d->c->user, &id) != 0)
        return;
    gid_t *g = NULL;
    int n = groups_of(d->c->user, id.gid, &g);
    if (id.uid != 0 && n > 0) {
        d->cred.uid = id.uid;
        d->cred.gid = id.gid;
        d->cred.groups = g;
        d->cred.n = (size_t)n;
        d->cred.ok = 1;
    } else {
        free(g);
    }
    privs_free(&id);
}

/* In a session child: become the cached user and make sure root is gone
 * (the same checks as privs_become).  Falls back to privs_drop_to. */
static int drop_privileges(const struct daemon *d)
{
    const struct cred *cr = &d->cred;
    if (!cr->ok)
        return privs_drop_to(d->c->user);
    if (setgroups(cr->n, cr->groups) < 0 || setgid(cr->gid) < 0 || setuid(cr->uid) < 0)
        return -1;
    if (getuid() != cr->uid || geteuid() != cr->uid || getgid() != cr->gid ||
        getegid() != cr->gid || setuid(0) == 0 || seteuid(0) == 0 ||
        (cr->gid != 0 && (setgid(0) == 0 || setegid(0) == 0))) {
        errno = EPERM;
        return -1;
    }
    return 0;
}

/* Queue directory and trigger FIFO owned by user=. */
static void open_trigger(struct daemon *d)
{
    struct ident id;
    memset(&id, 0, sizeof id);
    if (getuid() == 0 && privs_lookup(d->c->user, &id) == 0) {
        if (spool_setup(d->c->queuedir, id.uid, id.gid) < 0)
            log_err("cannot set up %s: %s", d->c->queuedir, strerror(errno));
        privs_free(&id);
    } else if (getuid() != 0) {
        if (spool_setup(d->c->queuedir, getuid(), getgid()) < 0)
            log_err("cannot set up %s: %s", d->c->queuedir, strerror(errno));
    }
    char *path = xasprintf("%s/trigger", d->c->queuedir);
    /* O_RDWR: the FIFO never reports EOF while we hold a writer ourselves */
    d->trigger = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (d->trigger < 0)
        log_warn("no trigger FIFO %s (%s): runq cannot wake the daemon", path, strerror(errno));
    free(path);
}

static void daemon_free(struct daemon *d)
{
    for (size_t i = 0; i < d->nls; i++) {
        close(d->ls[i].fd);
        free(d->ls[i].name);
    }
    free(d->ls);
    free(d->kids);
    free(d->cred.groups);
    buf_free(&d->notebuf);
    sl_free(&d->pending);
    if (d->trigger >= 0)
        close(d->trigger);
    for (int i = 0; i < 2; i++) {
        if (d->notify[i] >= 0)
            close(d->notify[i]);
        if (d->dsock[i] >= 0)
            close(d->dsock[i]);
    }
    if (d->owned) {
        config_free(d->owned);
        free(d->owned);
    }
}

/* Leave the terminal (-bd): the parent writes the pid file and returns
 * with *parent set; the child goes on.  In the foreground (-bD) the pid file
 * names us.  0 or a sysexits code. */
static int detach(struct daemon *d, int *parent)
{
    const struct config *c = d->c;
    *parent = 0;
    if (d->o->foreground) {
        if (write_pidfile(c->pidfile, getpid()) < 0) {
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
        if (write_pidfile(c->pidfile, pid) < 0) {
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

int daemon_run(const struct config *c, const struct daemon_opts *o)
{
    struct daemon d;
    memset(&d, 0, sizeof d);
    d.c = c;
    d.o = o;
    d.trigger = -1;
    d.notify[0] = d.notify[1] = -1;
    d.dsock[0] = d.dsock[1] = -1;
    d.spare_fd = -1;
    buf_init(&d.notebuf);
    sl_init(&d.pending);
    if (o->foreground) /* -bD: systemd and tests read the log on stderr */
        log_set_stderr(1);
    if (!o->listen && o->queue_interval <= 0) {
        say("nothing to do: give -bd to listen or -qN to run the queue every N minutes");
        daemon_free(&d);
        return EX_USAGE;
    }
    if (c->relay && o->listen)
        log_warn("WARNING: relay is set: this server relays mail for anyone (an open relay)");
    int rc = o->listen ? open_listeners(&d) : 0;
    if (rc) {
        daemon_free(&d);
        return rc;
    }
    if (pipe2(d.notify, O_CLOEXEC | O_NONBLOCK) < 0 || open_dsock(&d) < 0) {
        say("pipe: %s", strerror(errno));
        daemon_free(&d);
        return EX_OSERR;
    }
    int parent = 0;
    rc = detach(&d, &parent);
    if (rc || parent) {
        daemon_free(&d);
        return rc;
    }
    int sig[2];
    if (setup_signals(sig) < 0) {
        log_err("pipe: %s", strerror(errno));
        daemon_free(&d);
        return EX_OSERR;
    }
    d.sigfd = sig[0];
    open_trigger(&d);
    load_cred(&d);
    log_info("postoffice %s: accepting connections", PO_VERSION);
    spawn_spare(&d);
    serve(&d, sig[0]);
    stop_spare(&d);
    log_info("stopping");
    if (c->pidfile && *c->pidfile)
        unlink(c->pidfile);
    close(sig[0]);
    close(sig[1]);
    sigpipe_w = -1;
    daemon_free(&d);
    return 0;
}

int daemon_main(const struct config *c, int foreground, long queue_interval_secs,
                int listen)
{
    struct daemon_opts o = { .foreground = foreground, .listen = listen,
                             .queue_interval = queue_interval_secs };
    return daemon_run(c, &o);
}
