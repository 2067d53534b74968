/* listener.c - the master's SMTP side (listener.h).
 *
 * ROOT: runs in the master.  As root it binds the listening sockets, looks
 * user= up and forks the session children (which become user= before they
 * read anything, spare.c).  It never reads from a client: a refused
 * connection gets a fixed line, an admitted one is passed on unread.  What
 * it reads from the session children (MSG_QUEUED, MSG_SESSION_DONE) is
 * checked for type, size and a valid queue id. */
#include "compat.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "child.h"
#include "envelope.h"
#include "listener.h"
#include "log.h"
#include "logfmt.h"
#include "msg.h"
#include "policy.h"
#include "privs.h"
#include "tls_pool.h"

/* ---- listening sockets ---- */

int listener_parse(const char *entry, char **host, int *port)
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

static void add_sock(struct listener *l, int fd, int submission, int implicit_tls,
                     const char *name)
{
    l->ls = xreallocarray(l->ls, l->nls + 1, sizeof *l->ls);
    l->ls[l->nls].fd = fd;
    l->ls[l->nls].submission = submission || implicit_tls;
    l->ls[l->nls].implicit_tls = implicit_tls;
    l->ls[l->nls].name = xstrdup(name);
    l->nls++;
}

/* Bind host:port ("" = every IPv4 and IPv6 address).  0 or a sysexits code. */
static int listen_on(struct listener *l, const char *host, int port, int submission,
                     int implicit_tls)
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
        add_sock(l, fd, submission, implicit_tls, name);
        log_info("listening on %s%s", name, implicit_tls ? " (submission, implicit TLS)"
                                            : submission ? " (submission)" : "");
    }
    return 0;
}

static int bind_all(struct listener *l)
{
    const struct config *c = l->c;
    struct strlist def;
    const struct strlist *want = &c->listen;
    sl_init(&def);
    if (want->n == 0) {
        sl_add(&def, "*:25");
        want = &def;
    }
    int rc = 0;
    for (size_t i = 0; i < want->n && !rc; i++) {
        char *host;
        int port;
        if (listener_parse(want->v[i], &host, &port) < 0) {
            say("listen=%s: not ADDRESS:PORT with a numeric address (e.g. 127.0.0.1:25, [::1]:25, *:25)",
                want->v[i]);
            rc = EX_CONFIG;
            break;
        }
        rc = listen_on(l, host, port, 0, 0);
        if (!rc && c->msp > 0)
            rc = listen_on(l, host, (int)c->msp, 1, 0);
        if (!rc && c->smtps > 0)
            rc = listen_on(l, host, (int)c->smtps, 1, 1);
        free(host);
    }
    sl_free(&def);
    return rc;
}

/* The TLS files, tried by a child as root before the daemon detaches, so
 * that a bad one stops the start with a message.  0 or EX_CONFIG (said and
 * logged). */
static int check_tls(struct listener *l)
{
    char *err = NULL;
    size_t nd = 0;
    if (tls_proxy_check(l->c, &nd, &err) < 0) {
        say("%s", err);
        log_err("%s", err);
        free(err);
        return EX_CONFIG;
    }
    int tls = l->c->tls_cert.n > 0;
    if (!tls && l->c->smtps > 0) {
        say("smtps=%ld needs a certificate: set tls-cert= and tls-key=", l->c->smtps);
        return EX_CONFIG;
    }
    if (tls)
        log_info("TLS: %zu certificate(s), %zu virtual domain(s) with their own",
                 l->c->tls_cert.n, nd);
    return 0;
}

void listener_start_tls(struct listener *l)
{
    if (l->nls == 0)
        return;
    l->tls.user = &l->user;
    l->tls.in_child = l->in_child;
    l->tls.in_child_arg = l->in_child_arg;
    tls_pool_start(&l->tls, l->c);
}

int listener_open(struct listener *l, const struct config *c, int do_bind)
{
    memset(l, 0, sizeof *l);
    l->c = c;
    l->spare_fd = -1;
    l->auth_fd = -1;
    tls_pool_init(&l->tls);
    l->notify[0] = l->notify[1] = -1;
    int rc = do_bind ? check_tls(l) : 0;
    if (!rc && do_bind)
        rc = bind_all(l);
    if (rc)
        return rc;
    if (pipe2(l->notify, O_CLOEXEC | O_NONBLOCK) < 0) {
        say("pipe: %s", strerror(errno));
        return EX_OSERR;
    }
    return 0;
}

/* ---- the session user ---- */

/* user='s groups (gid included), asked in a child: getgrouplist() loads the
 * NSS module of every group source (libnss_systemd and its libraries on
 * Debian), which would stay mapped in the master and be copied by every fork
 * and torn down by every exit.  The child reports them as one MSG_GROUPS. */
#define GROUPS_MAX 65536

struct groups_arg {
    const char *user;
    gid_t gid;
};

static void groups_child(void *arg, int report_fd)
{
    const struct groups_arg *ga = arg;
    int n = 64;
    gid_t *g = xcalloc((size_t)n, sizeof *g);
    if (getgrouplist(ga->user, ga->gid, g, &n) < 0) {
        /* n is now the count needed */
        if (n <= 0 || n > GROUPS_MAX)
            _exit(1);
        g = xreallocarray(g, (size_t)n, sizeof *g);
        if (getgrouplist(ga->user, ga->gid, g, &n) < 0)
            _exit(1);
    }
    struct buf b;
    buf_init(&b);
    for (int i = 0; i < n; i++)
        msg_put_u32(&b, (uint32_t)g[i]);
    _exit(n > 0 && msg_send(report_fd, MSG_GROUPS, b.s, b.len, -1) == 0 ? 0 : 1);
}

/* The count (*out malloc'd), or 0 on failure. */
static int groups_of(const char *user, gid_t gid, gid_t **out)
{
    struct groups_arg ga = { .user = user, .gid = gid };
    struct child_spec spec = { .title = "user lookup", .extra_gid = (gid_t)-1,
                               .deadline_ms = 30000, .report = 1 };
    struct child ch;
    struct child_end end;
    struct msg m;
    *out = NULL;
    if (child_start(&ch, &spec, groups_child, &ga) < 0)
        return 0;
    int r = msg_recv(ch.fd, &m, GROUPS_MAX * sizeof(uint32_t), ch.deadline);
    if (r != 1)
        child_kill(&ch);
    else
        child_wait(&ch, &end);
    if (r != 1)
        return 0;
    int n = 0;
    if (m.type == MSG_GROUPS && m.len > 0 && m.len % sizeof(uint32_t) == 0 && end.exited &&
        end.code == 0) {
        struct msg_reader rd;
        msg_reader_init(&rd, &m);
        *out = xreallocarray(NULL, m.len / sizeof(uint32_t), sizeof **out);
        uint32_t v;
        while (rd.left && msg_get_u32(&rd, &v) == 0)
            (*out)[n++] = (gid_t)v;
    }
    msg_free(&m);
    return n;
}

static void user_free(struct session_user *u)
{
    free(u->groups);
    memset(u, 0, sizeof *u);
}

void listener_load_user(struct listener *l)
{
    struct ident id;
    memset(&id, 0, sizeof id);
    user_free(&l->user);
    if (geteuid() != 0 || privs_lookup(l->c->user, &id) != 0)
        return;
    gid_t *g = NULL;
    int n = groups_of(l->c->user, id.gid, &g);
    if (id.uid != 0 && n > 0) {
        l->user.uid = id.uid;
        l->user.gid = id.gid;
        l->user.groups = g;
        l->user.ngroups = (size_t)n;
        l->user.ok = 1;
    } else {
        free(g);
    }
    privs_free(&id);
}

/* ---- session children ---- */

static void add_kid(struct listener *l, pid_t pid, const struct netaddr *a, int sock)
{
    if (l->nkids == l->capkids) {
        l->capkids = l->capkids ? l->capkids * 2 : 64;
        l->kids = xreallocarray(l->kids, l->capkids, sizeof *l->kids);
    }
    l->kids[l->nkids] = (struct session_kid){ .pid = pid, .addr = *a, .state = KID_BUSY,
                                              .sock = sock, .gen = l->gen };
    l->nkids++;
}

/* The sessions the admission limits count: those serving a client. */
static long count_kids(const struct listener *l, const struct netaddr *a)
{
    long n = 0;
    for (size_t i = 0; i < l->nkids; i++)
        if (l->kids[i].state == KID_BUSY && (!a || net_equal(&l->kids[i].addr, a)))
            n++;
    return n;
}

/* Not to be used again: its socket closed, so an idle one sees the end and
 * exits; a busy one stays counted until it is reaped. */
static void let_go(struct session_kid *k)
{
    if (k->sock >= 0)
        close(k->sock);
    k->sock = -1;
    if (k->state == KID_IDLE)
        k->state = KID_GONE;
}

/* SIGHUP, a new ticket key: no session process forked before is used again. */
static void new_generation(struct listener *l)
{
    l->gen++;
    for (size_t i = 0; i < l->nkids; i++)
        if (l->kids[i].state == KID_IDLE)
            let_go(&l->kids[i]);
}

static int have_idle(const struct listener *l)
{
    for (size_t i = 0; i < l->nkids; i++)
        if (l->kids[i].state == KID_IDLE)
            return 1;
    return 0;
}

/* Refuse a connection from the master without forking. */
static void refuse(int fd, const char *text)
{
    (void)send(fd, text, strlen(text), MSG_DONTWAIT | MSG_NOSIGNAL);
    close(fd);
}

/* What a session child is given; filled in the master before the fork. */
struct kid_arg {
    struct listener *l;
    int sock;                    /* the child's end of its hand-over socket, or -1 */
    int fd;                      /* forked at accept: the connection; -1: a spare */
    int master_end;              /* forked at accept: the master's end of sock */
    const struct netaddr *peer;  /* ...its client */
    int submission;
    int implicit_tls;
};

static void session_child(void *arg, int report_fd)
{
    struct kid_arg *k = arg;
    struct listener *l = k->l;
    (void)report_fd;
    if (k->master_end >= 0)
        close(k->master_end); /* it must see the master's close alone */
    int notify = fcntl(l->notify[1], F_DUPFD_CLOEXEC, 0);
    int auth = l->auth_fd >= 0 ? fcntl(l->auth_fd, F_DUPFD_CLOEXEC, 0) : -1;
    int tls = tls_pool_session_req(&l->tls);
    if (l->in_child)
        l->in_child(l->in_child_arg);
    struct spare_start st = { .c = l->c, .user = &l->user, .notify_fd = notify,
                              .auth_fd = auth, .tls_req = tls };
    if (k->fd < 0)
        spare_wait(&st, k->sock);
    spare_serve(&st, k->sock, k->fd, k->peer, k->submission, k->implicit_tls);
}

/* Forget the spare (it died, or was used, or is being replaced). */
static void drop_spare(struct listener *l)
{
    if (l->spare_fd >= 0)
        close(l->spare_fd); /* an unused spare sees the end and exits */
    l->spare_fd = -1;
    l->spare_pid = 0;
}

void listener_spare(struct listener *l)
{
    int sp[2];
    /* a session process waiting for its next client does as well */
    if (l->spare_pid > 0 || l->stopping || l->nls == 0 || have_idle(l) ||
        socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) < 0)
        return;
    /* the child closes sp[0] with the master's descriptors (spare_fd) */
    l->spare_fd = sp[0];
    struct kid_arg k = { .l = l, .sock = sp[1], .fd = -1, .master_end = -1 };
    struct child_spec spec = { .title = "spare", .extra_gid = (gid_t)-1 };
    struct child ch;
    int rc = child_start(&ch, &spec, session_child, &k);
    close(sp[1]);
    if (rc < 0) {
        drop_spare(l);
        return;
    }
    l->spare_pid = ch.pid;
}

/* Give the connection to the spare, which becomes a session.  0 or -1 (no
 * spare, or it is gone: the caller forks as before). */
static int hand_to_spare(struct listener *l, int fd, const struct listen_sock *s,
                         const struct netaddr *a)
{
    if (l->spare_pid <= 0)
        return -1;
    pid_t pid = l->spare_pid;
    int rc = spare_handover_send(l->spare_fd, fd, a, s->submission, s->implicit_tls);
    int sock = l->spare_fd;
    l->spare_fd = -1; /* the kid's now: it comes back on it (spare.h) */
    drop_spare(l);
    if (rc < 0) {
        close(sock);
        kill(pid, SIGKILL); /* reaped as a spare: it never got the connection */
        return -1;
    }
    add_kid(l, pid, a, sock);
    return 0;
}

/* Give the connection to the session process that came back last (the
 * others age out: session-max-idle).  0 or -1 (none, or it is gone). */
static int hand_to_idle(struct listener *l, int fd, const struct listen_sock *s,
                        const struct netaddr *a)
{
    struct session_kid *k = NULL;
    for (size_t i = 0; i < l->nkids; i++)
        if (l->kids[i].state == KID_IDLE && (!k || l->kids[i].idle_since > k->idle_since))
            k = &l->kids[i];
    if (!k)
        return -1;
    if (spare_handover_send(k->sock, fd, a, s->submission, s->implicit_tls) < 0) {
        let_go(k);
        kill(k->pid, SIGKILL);
        return hand_to_idle(l, fd, s, a);
    }
    k->state = KID_BUSY;
    k->addr = *a;
    return 0;
}

const char *listener_admit(const struct config *c, long sessions, long from_host,
                           double *load)
{
    if (c->clients > 0 && sessions >= c->clients)
        return "421 4.3.2 too many connections; try again later\r\n";
    if (c->clients_per_host > 0 && from_host >= c->clients_per_host)
        return "421 4.3.2 too many connections from your address; try again later\r\n";
    if (policy_overloaded(c, load))
        return "421 4.3.2 system load too high; try again later\r\n";
    return NULL;
}

/* The reject line (postoffice-log(5)) of a connection listener_admit
 * refused; load < 0: not known.  The master does no DNS: no name. */
static void log_admission(const struct netaddr *a, const char *reply, double load)
{
    char ip[64];
    net_format(a, ip, sizeof ip);
    size_t n = strcspn(reply, "\r");
    char *text = xstrndup(reply + 4, n > 4 ? n - 4 : 0);
    struct logfmt l;
    lf_begin(&l, NULL, "reject");
    lf_str(&l, "cmd", "CONNECT");
    lf_client(&l, NULL, ip);
    if (load >= 0)
        lf_fmt(&l, "load", "%.2f", load);
    lf_reply(&l, atoi(reply), text);
    lf_log(&l, LOG_NOTICE);
    free(text);
}

/* A session child forked now, for a connection no spare could take. */
static void fork_session(struct listener *l, int fd, const struct listen_sock *s,
                         const struct netaddr *a)
{
    int sp[2] = { -1, -1 };
    /* without a socket it serves this one connection only */
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) < 0)
        sp[0] = sp[1] = -1;
    struct kid_arg k = { .l = l, .sock = sp[1], .fd = fd, .peer = a,
                         .submission = s->submission, .implicit_tls = s->implicit_tls };
    struct child_spec spec = { .title = "session", .extra_gid = (gid_t)-1 };
    struct child ch;
    k.master_end = sp[0];
    int rc = child_start(&ch, &spec, session_child, &k);
    if (sp[1] >= 0)
        close(sp[1]);
    if (rc < 0) {
        if (sp[0] >= 0)
            close(sp[0]);
        log_err("fork: %s", strerror(errno));
        refuse(fd, "421 4.3.0 cannot start a session now; try again later\r\n");
        return;
    }
    close(fd);
    add_kid(l, ch.pid, a, sp[0]);
}

void listener_accept(struct listener *l, size_t i)
{
    const struct listen_sock *s = &l->ls[i];
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    int fd = accept4(s->fd, (struct sockaddr *)&ss, &len, SOCK_CLOEXEC);
    if (fd < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
            errno != ECONNABORTED)
            log_err("accept on %s: %s", s->name, strerror(errno));
        return;
    }
    struct netaddr a;
    double load = 0;
    if (net_from_sockaddr((struct sockaddr *)&ss, &a) < 0) {
        close(fd);
        return;
    }
    const struct config *c = l->c;
    long all = count_kids(l, NULL), here = count_kids(l, &a);
    const char *no = listener_admit(c, all, here, &load);
    if (no) {
        refuse(fd, no);
        log_admission(&a, no, load > 0 ? load : -1);
        return;
    }
    /* a new ticket key, when one is due (the proxies hold them, not the
     * sessions) */
    tls_pool_rotate(&l->tls);
    if (hand_to_idle(l, fd, s, &a) == 0 || hand_to_spare(l, fd, s, &a) == 0)
        close(fd);
    else
        fork_session(l, fd, s, &a);
    listener_spare(l); /* for the next client, while this one is served */
}

/* ---- what the sessions report ---- */

static int readable(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    return poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
}

/* Several sessions write to the pipe; each message is one atomic write, so
 * a malformed one leaves the next intact only if its header was honest: on
 * a framing error the pipe is drained (those messages wait for the queue
 * run). */
static void drain(int fd)
{
    char tmp[4096];
    while (read(fd, tmp, sizeof tmp) > 0)
        ;
}

void listener_read_queued(struct listener *l, struct strlist *ids)
{
    struct msg m;
    while (readable(l->notify[0])) {
        /* written whole (one write under PIPE_BUF): a message that is not
         * all there at once is broken, and must not hold the master up */
        int r = msg_recv(l->notify[0], &m, QID_MAX + 16, now_ms() + 10);
        if (r != 1) {
            if (r < 0) {
                log_err("a malformed message from a session (%s)", strerror(errno));
                drain(l->notify[0]);
            }
            return;
        }
        struct msg_reader rd;
        char *qid = NULL;
        msg_reader_init(&rd, &m);
        if (m.type == MSG_QUEUED && msg_get_str(&rd, &qid) == 0 && msg_get_end(&rd) == 0 &&
            qid && qid_valid(qid))
            sl_add_owned(ids, qid);
        else {
            log_err("an unexpected message from a session (type %u)", (unsigned)m.type);
            free(qid);
        }
        msg_free(&m);
    }
}

/* ---- session processes coming back (spare.h) ---- */

size_t listener_npoll(const struct listener *l)
{
    return l->nkids;
}

size_t listener_pollfds(const struct listener *l, struct pollfd *p)
{
    size_t n = 0;
    for (size_t i = 0; i < l->nkids; i++)
        if (l->kids[i].sock >= 0)
            p[n++] = (struct pollfd){ .fd = l->kids[i].sock, .events = POLLIN };
    return n;
}

/* One message from a session process: it is done with its client. */
static void kid_readable(struct listener *l, struct session_kid *k)
{
    struct msg m;
    /* written whole (one sendmsg): what is not there at once is broken */
    int r = msg_recv(k->sock, &m, 0, now_ms() + 10);
    int done = r == 1 && m.type == MSG_SESSION_DONE && m.fd < 0 && k->state == KID_BUSY;
    if (r == 1 && !done)
        log_err("an unexpected message from session process %ld (type %u)", (long)k->pid,
                (unsigned)m.type);
    if (r == 1)
        msg_free(&m);
    if (done && k->gen == l->gen && !l->stopping && l->c->session_max_idle > 0) {
        k->state = KID_IDLE;
        k->idle_since = now_ms();
        return;
    }
    if (done)
        k->state = KID_IDLE; /* of an older generation: it goes */
    let_go(k);
}

void listener_kid_events(struct listener *l, const struct pollfd *p, size_t n)
{
    for (size_t j = 0; j < n; j++) {
        if (!p[j].revents)
            continue;
        /* by descriptor: a kid may have been reaped since the poll */
        for (size_t i = 0; i < l->nkids; i++)
            if (l->kids[i].sock == p[j].fd) {
                kid_readable(l, &l->kids[i]);
                break;
            }
    }
}

int listener_expire(struct listener *l)
{
    long long now = now_ms(), max = l->c->session_max_idle * 1000LL, next = -1;
    int gone = 0;
    for (size_t i = 0; i < l->nkids; i++) {
        struct session_kid *k = &l->kids[i];
        if (k->state != KID_IDLE)
            continue;
        long long left = k->idle_since + max - now;
        if (left <= 0) {
            let_go(k);
            gone = 1;
        } else if (next < 0 || left < next) {
            next = left;
        }
    }
    if (gone)
        listener_spare(l); /* the next client still finds a process waiting */
    return next < 0 ? -1 : next > 0x7fffffffLL ? 0x7fffffff : (int)next;
}

/* ---- the rest of the life cycle ---- */

int listener_reaped(struct listener *l, pid_t pid)
{
    if (tls_pool_reaped(&l->tls, pid, l->c, l->stopping)) {
        if (!l->stopping) { /* those waiting hold the dead one's socket */
            drop_spare(l);
            new_generation(l);
            listener_spare(l);
        }
        return 1;
    }
    if (pid == l->spare_pid) {
        drop_spare(l);
        return 1;
    }
    for (size_t i = 0; i < l->nkids; i++)
        if (l->kids[i].pid == pid) {
            if (l->kids[i].sock >= 0)
                close(l->kids[i].sock);
            l->kids[i] = l->kids[--l->nkids];
            return 1;
        }
    return 0;
}

void listener_reload(struct listener *l, const struct config *c)
{
    l->c = c;
    listener_load_user(l);
    if (l->nls)
        tls_pool_reload(&l->tls, c); /* the proxies become the new user= */
    drop_spare(l); /* it has the old configuration */
    new_generation(l); /* and so have the session processes */
    listener_spare(l);
}

void listener_stop(struct listener *l)
{
    pid_t pid = l->spare_pid;
    l->stopping = 1;
    drop_spare(l);
    new_generation(l); /* the idle session processes end too */
    if (pid > 0 && kill(pid, SIGKILL) == 0)
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
            ;
}

void listener_close_in_child(struct listener *l)
{
    for (size_t i = 0; i < l->nls; i++)
        close(l->ls[i].fd);
    for (int i = 0; i < 2; i++)
        if (l->notify[i] >= 0)
            close(l->notify[i]);
    if (l->spare_fd >= 0)
        close(l->spare_fd);
    /* the master's ends: a session process must see its own close */
    for (size_t i = 0; i < l->nkids; i++)
        if (l->kids[i].sock >= 0)
            close(l->kids[i].sock);
    /* the TLS proxies' sockets (a session took its copy first) and the
     * ticket keys, which only the proxies are given */
    tls_pool_close_in_child(&l->tls);
    if (l->auth_fd >= 0)
        close(l->auth_fd);
}

void listener_free(struct listener *l)
{
    for (size_t i = 0; i < l->nls; i++) {
        close(l->ls[i].fd);
        free(l->ls[i].name);
    }
    free(l->ls);
    for (size_t i = 0; i < l->nkids; i++)
        if (l->kids[i].sock >= 0)
            close(l->kids[i].sock);
    free(l->kids);
    user_free(&l->user);
    tls_pool_free(&l->tls);
    if (l->auth_fd >= 0)
        close(l->auth_fd);
    for (int i = 0; i < 2; i++)
        if (l->notify[i] >= 0)
            close(l->notify[i]);
    if (l->spare_fd >= 0)
        close(l->spare_fd);
    memset(l, 0, sizeof *l);
    l->spare_fd = -1;
    l->auth_fd = -1;
    tls_pool_init(&l->tls);
    l->notify[0] = l->notify[1] = -1;
}
