/* auth_helper.c - the privileged AUTH helper and the session's question to it
 * (auth_helper.h).
 *
 * ROOT: auth_helper_start forks the helper in the caller's identity (root in
 * the daemon and for root's -bs); the helper and its checker children stay
 * root, because shadow passwords and PAM need it.  What they read from the
 * sessions: msg.h records, each checked for type, size and fields before
 * use.  auth_helper_ask runs in the session child (user=). */
#include "compat.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "auth_helper.h"
#include "child.h"
#include "log.h"
#include "msg.h"
#include "util.h"

/* three strings with their length prefixes */
#define REQUEST_MAX (3 * (AUTH_FIELD_MAX + 8))

struct helper_arg {
    const struct config *c;
    int sock;       /* the helper's end */
    int other;      /* the session end: closed in the helper */
    void (*in_child)(void *);
    void *arg;
};

struct check_arg {
    const struct config *c;
    int sock;       /* the request socket: closed in the checker */
    int reply;      /* where the answer goes */
    const char *user, *pass, *client;
};

static void wipe_free(char *s)
{
    if (s) {
        OPENSSL_cleanse(s, strlen(s));
        free(s);
    }
}

int auth_helper_decode(const struct msg *m, char **user, char **pass, char **client)
{
    struct msg_reader r;
    *user = *pass = *client = NULL;
    if (m->type != MSG_AUTH_REQUEST || m->fd < 0)
        return errno = EPROTO, -1;
    msg_reader_init(&r, m);
    if (msg_get_str(&r, user) == 0 && msg_get_str(&r, pass) == 0 &&
        msg_get_str(&r, client) == 0 && msg_get_end(&r) == 0 && *user && *pass && *client &&
        strlen(*user) <= AUTH_FIELD_MAX && strlen(*pass) <= AUTH_FIELD_MAX &&
        strlen(*client) <= AUTH_FIELD_MAX)
        return 0;
    free(*user);
    wipe_free(*pass);
    free(*client);
    *user = *pass = *client = NULL;
    return errno = EPROTO, -1;
}

/* The answer socket must be what a session makes: a Unix SEQPACKET socket. */
static int reply_socket_ok(int fd)
{
    int type = 0, domain = 0;
    socklen_t l1 = sizeof type, l2 = sizeof domain;
    return getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &l1) == 0 && type == SOCK_SEQPACKET &&
           getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &l2) == 0 && domain == AF_UNIX;
}

static PO_NORETURN void checker_main(void *arg, int report_fd)
{
    struct check_arg *a = arg;
    (void)report_fd;
    close(a->sock);
    enum auth_verdict v = auth_check(a->c, a->user, a->pass, a->client);
    struct buf b;
    buf_init(&b);
    msg_put_u32(&b, (uint32_t)v);
    if (msg_send(a->reply, MSG_AUTH_RESULT, b.s, b.len, -1) < 0)
        log_warn("AUTH helper: the session went before its answer: %s", strerror(errno));
    _exit(0);
}

/* Reap finished checkers, kill those past their deadline. */
static void reap_checkers(struct child *kids, size_t *n)
{
    for (size_t i = 0; i < *n;) {
        int st;
        pid_t r = waitpid(kids[i].pid, &st, WNOHANG);
        if (r == 0 && now_ms() < kids[i].deadline) {
            i++;
            continue;
        }
        if (r == 0) {
            log_err("AUTH helper: a password check took over %d seconds; killed",
                    AUTH_CHECK_MS / 1000);
            child_kill(&kids[i]);
        } else if (r > 0 && WIFSIGNALED(st)) {
            log_err("AUTH helper: a password check was killed by signal %d", WTERMSIG(st));
        }
        kids[i] = kids[--*n];
    }
}

/* One request: check it, start its checker.  The reply socket is closed here
 * (the checker has its copy). */
static void handle(const struct helper_arg *h, struct msg *m, struct child *kids, size_t *n)
{
    char *user, *pass, *client;
    if (auth_helper_decode(m, &user, &pass, &client) < 0 || !reply_socket_ok(m->fd)) {
        log_err("AUTH helper: a malformed request from a session dropped");
        free(user); /* decode leaves NULLs when it fails */
        wipe_free(pass);
        free(client);
        return;
    }
    struct check_arg a = { .c = h->c, .sock = h->sock, .reply = m->fd, .user = user,
                           .pass = pass, .client = client };
    struct child_spec spec = { .title = "auth check", .extra_gid = (gid_t)-1,
                               .deadline_ms = AUTH_CHECK_MS, .own_group = 1,
                               .die_with_parent = 1 };
    if (child_start(&kids[*n], &spec, checker_main, &a) < 0)
        log_err("AUTH helper: fork: %s", strerror(errno)); /* the session sees AUTH_TEMP */
    else
        ++*n;
    free(user);
    wipe_free(pass);
    free(client);
}

/* A zero-length record also reads as 0: the end is only when the peers are gone. */
static int peers_gone(int fd)
{
    struct pollfd p = { .fd = fd, .events = POLLIN };
    return poll(&p, 1, 0) == 1 && (p.revents & POLLHUP);
}

static PO_NORETURN void helper_main(void *arg, int report_fd)
{
    struct helper_arg *h = arg;
    (void)report_fd;
    if (h->in_child)
        h->in_child(h->arg);
    close(h->other);
    log_open("auth", log_to_stderr());
    signal(SIGPIPE, SIG_IGN);
    struct child kids[AUTH_CHECKERS];
    size_t n = 0;
    for (;;) {
        reap_checkers(kids, &n);
        if (n >= AUTH_CHECKERS) {
            poll(NULL, 0, 20); /* the requests wait in the socket meanwhile */
            continue;
        }
        struct msg m;
        int r = msg_recv(h->sock, &m, REQUEST_MAX, now_ms() + 1000);
        if (r == 0 && peers_gone(h->sock))
            break;
        if (r == 1)
            handle(h, &m, kids, &n);
        else if (r < 0 && errno != ETIMEDOUT && errno != EPROTO && errno != EMSGSIZE) {
            log_err("AUTH helper: reading requests: %s", strerror(errno));
            break;
        } else if (r < 0 && errno != ETIMEDOUT) {
            log_err("AUTH helper: a malformed request from a session dropped");
        }
        if (r == 1)
            msg_free(&m); /* closes our copy of the reply socket */
    }
    while (n > 0) {
        reap_checkers(kids, &n);
        if (n)
            poll(NULL, 0, 20);
    }
    _exit(0);
}

int auth_helper_start(struct auth_helper *h, const struct config *c,
                      void (*in_child)(void *), void *arg)
{
    int sp[2];
    h->pid = 0;
    h->fd = -1;
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) < 0)
        return -1;
    struct helper_arg a = { .c = c, .sock = sp[0], .other = sp[1], .in_child = in_child,
                            .arg = arg };
    struct child_spec spec = { .title = "auth", .extra_gid = (gid_t)-1 };
    struct child ch;
    if (child_start(&ch, &spec, helper_main, &a) < 0) {
        int e = errno;
        close(sp[0]);
        close(sp[1]);
        errno = e;
        return -1;
    }
    close(sp[0]);
    h->pid = ch.pid;
    h->fd = sp[1];
    return 0;
}

static void stdio_to_null(void *arg)
{
    (void)arg;
    int null = open("/dev/null", O_RDWR);
    if (null >= 0) {
        dup2(null, 0);
        dup2(null, 1);
        if (null > 1)
            close(null);
    }
}

int auth_helper_start_stdio(struct auth_helper *h, const struct config *c)
{
    return auth_helper_start(h, c, stdio_to_null, NULL);
}

void auth_helper_finish(struct auth_helper *h)
{
    pid_t pid = h->pid;
    auth_helper_release(h); /* it ends when its last socket is closed */
    if (pid > 0)
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
            ;
}

void auth_helper_release(struct auth_helper *h)
{
    if (h->fd >= 0)
        close(h->fd);
    h->fd = -1;
    h->pid = 0;
}

enum auth_verdict auth_helper_ask(int fd, const char *user, const char *pass,
                                  const char *client)
{
    int sp[2];
    if (fd < 0 || socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) < 0) {
        log_err("AUTH: no helper to ask: %s", fd < 0 ? "none started" : strerror(errno));
        return AUTH_TEMP;
    }
    struct buf b;
    buf_init(&b);
    msg_put_str(&b, user);
    msg_put_str(&b, pass);
    msg_put_str(&b, client);
    int r = msg_send(fd, MSG_AUTH_REQUEST, b.s, b.len, sp[1]);
    int e = errno;
    OPENSSL_cleanse(b.s, b.cap);
    buf_free(&b);
    close(sp[1]);
    if (r < 0) {
        log_err("AUTH: the helper cannot be reached: %s", strerror(e));
        close(sp[0]);
        return AUTH_TEMP;
    }
    struct msg m;
    struct msg_reader rd;
    uint32_t v = AUTH_TEMP;
    r = msg_recv(sp[0], &m, 16, now_ms() + AUTH_ASK_MS);
    close(sp[0]);
    if (r != 1) {
        log_err("AUTH: no answer from the helper: %s",
                r == 0 ? "it dropped the question" : strerror(errno));
        return AUTH_TEMP;
    }
    msg_reader_init(&rd, &m);
    if (m.type != MSG_AUTH_RESULT || m.fd >= 0 || msg_get_u32(&rd, &v) < 0 ||
        msg_get_end(&rd) < 0 || v > AUTH_TEMP) {
        log_err("AUTH: a malformed answer from the helper");
        v = AUTH_TEMP;
    }
    msg_free(&m);
    return (enum auth_verdict)v;
}
