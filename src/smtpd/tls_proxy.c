/* tls_proxy.c - the TLS proxy process, and the master's side of starting,
 * keying and releasing it (tls_proxy.h).
 *
 * ROOT: tls_proxy_check, tls_proxy_start, tls_proxy_rotate, tls_proxy_keys
 * and tls_proxy_release run in the master and call no OpenSSL function
 * (the master's heap must stay free of OpenSSL's state: tls_proxy.h says
 * why).  The proxy child loads the certificates as root, then becomes user=
 * before its loop reads from any session or client. */
#include "compat.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sysexits.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/random.h>
#endif

#include "child.h"
#include "log.h"
#include "msg.h"
#include "spare.h"
#include "tls_proxy.h"
#include "tls_relay.h"
#include "util.h"

#define HANDSHAKE_MAX_MS 600000 /* a session may ask for at most this */
#define CONN_MSG_MAX 1024       /* MSG_TLS_CONN: a number and an address */
#define INTAKE_BATCH 32         /* requests taken per poll round */

struct proxy_arg {
    const struct config *c;
    const struct session_user *u;
    const struct tls_ticket_keys *keys;
    int req, req_other;      /* the request socket: the proxy's end, the sessions' */
    int ctl, ctl_other;      /* the control socket: the proxy's end, the master's */
    int check_only;          /* load, report, end */
    void (*in_child)(void *);
    void *arg;
};

/* ---- the proxy's report to the master ---- */

static void report(int fd, int ok, size_t ndomains, const char *why)
{
    struct buf b;
    buf_init(&b);
    msg_put_u32(&b, ok ? 1 : 0);
    msg_put_u64(&b, ndomains);
    msg_put_str(&b, why);
    (void)msg_send(fd, MSG_TLS_READY, b.s, b.len, -1);
    buf_free(&b);
}

/* -1 with *err, or 0 with the proxy's word that it is ready. */
static int read_report(int fd, size_t *ndomains, char **err)
{
    struct msg m;
    struct msg_reader rd;
    uint32_t ok = 0;
    uint64_t nd = 0;
    char *why = NULL;
    int r = msg_recv(fd, &m, 64 * 1024, now_ms() + TLS_PROXY_START_MS);
    if (r != 1) {
        *err = xasprintf("TLS: the TLS proxy did not start (%s)",
                         r == 0 ? "it ended without a word" : strerror(errno));
        return -1;
    }
    msg_reader_init(&rd, &m);
    int bad = m.type != MSG_TLS_READY || msg_get_u32(&rd, &ok) < 0 ||
              msg_get_u64(&rd, &nd) < 0 || msg_get_str(&rd, &why) < 0 || msg_get_end(&rd) < 0;
    msg_free(&m);
    if (bad || !ok) {
        *err = bad ? xstrdup("TLS: a malformed word from the TLS proxy at its start")
                   : xstrdup(why ? why : "TLS: the TLS proxy could not start");
        free(why);
        return -1;
    }
    free(why);
    *ndomains = (size_t)nd;
    return 0;
}

/* ---- ticket keys, master -> proxy ---- */

int tls_proxy_rotate(struct tls_ticket_keys *k, time_t now)
{
    if (k->n && now - k->k[0].made < TLS_TICKET_ROTATE && now >= k->k[0].made)
        return 0;
    struct tls_ticket_key fresh;
    if (getentropy(fresh.name, sizeof fresh.name) < 0 ||
        getentropy(fresh.aes, sizeof fresh.aes) < 0 ||
        getentropy(fresh.hmac, sizeof fresh.hmac) < 0) {
        log_err("TLS: cannot make a session ticket key (getentropy: %s)", strerror(errno));
        return -1;
    }
    fresh.made = now;
    k->k[1] = k->k[0];
    k->k[0] = fresh;
    k->n = k->n ? 2 : 1;
    explicit_bzero(&fresh, sizeof fresh);
    return 1;
}

static void put_keys(struct buf *b, const struct tls_ticket_keys *k)
{
    msg_put_u32(b, (uint32_t)k->n);
    for (int i = 0; i < k->n; i++) {
        msg_put_bytes(b, k->k[i].name, sizeof k->k[i].name);
        msg_put_bytes(b, k->k[i].aes, sizeof k->k[i].aes);
        msg_put_bytes(b, k->k[i].hmac, sizeof k->k[i].hmac);
        msg_put_i64(b, (int64_t)k->k[i].made);
    }
}

static int get_field(struct msg_reader *rd, unsigned char *to, size_t n)
{
    const unsigned char *p;
    size_t len;
    if (msg_get_bytes(rd, &p, &len) < 0 || len != n)
        return -1;
    memcpy(to, p, n);
    return 0;
}

static int get_keys(const struct msg *m, struct tls_ticket_keys *k)
{
    struct msg_reader rd;
    uint32_t n;
    memset(k, 0, sizeof *k);
    msg_reader_init(&rd, m);
    if (m->type != MSG_TLS_KEYS || msg_get_u32(&rd, &n) < 0 || n < 1 || n > 2)
        return -1;
    for (uint32_t i = 0; i < n; i++) {
        int64_t made;
        if (get_field(&rd, k->k[i].name, sizeof k->k[i].name) < 0 ||
            get_field(&rd, k->k[i].aes, sizeof k->k[i].aes) < 0 ||
            get_field(&rd, k->k[i].hmac, sizeof k->k[i].hmac) < 0 ||
            msg_get_i64(&rd, &made) < 0)
            return -1;
        k->k[i].made = (time_t)made;
    }
    k->n = (int)n;
    return msg_get_end(&rd);
}

int tls_proxy_keys(struct tls_proxy *p, const struct tls_ticket_keys *k)
{
    if (p->ctl < 0)
        return -1;
    struct buf b;
    buf_init(&b);
    put_keys(&b, k);
    int r = msg_send(p->ctl, MSG_TLS_KEYS, b.s, b.len, -1);
    explicit_bzero(b.s, b.len);
    buf_free(&b);
    if (r < 0)
        log_err("TLS: cannot send the ticket keys to the TLS proxy: %s", strerror(errno));
    return r;
}

/* ---- the proxy's loop ---- */

struct proxy {
    struct tls_server *t;
    int req, ctl;            /* -1 once closed */
    struct relay **r;
    size_t n, cap;
};

/* Is fd a stream socket?  (What a session passes is not trusted.) */
static int stream_socket(int fd)
{
    int type = 0;
    socklen_t len = sizeof type;
    return getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 && type == SOCK_STREAM;
}

static void refuse(int pfd, const char *why)
{
    struct buf b;
    buf_init(&b);
    msg_put_u32(&b, 0);
    msg_put_u32(&b, 0);
    msg_put_str(&b, why);
    (void)msg_send(pfd, MSG_TLS_DONE, b.s, b.len, -1);
    buf_free(&b);
}

/* One MSG_TLS_START: its pair end carries MSG_TLS_CONN, already written. */
static void take(struct proxy *px, struct msg *start, long long now)
{
    int pfd = start->fd;
    start->fd = -1;
    struct msg m;
    struct msg_reader rd;
    uint32_t ms = 0;
    char *client = NULL;
    if (start->type != MSG_TLS_START || start->len != 0 || pfd < 0 || !stream_socket(pfd) ||
        msg_recv(pfd, &m, CONN_MSG_MAX, now) != 1) {
        log_err("TLS proxy: a malformed request from a session (dropped)");
        if (pfd >= 0)
            close(pfd);
        return;
    }
    msg_reader_init(&rd, &m);
    if (m.type != MSG_TLS_CONN || m.fd < 0 || !stream_socket(m.fd) ||
        msg_get_u32(&rd, &ms) < 0 || msg_get_str(&rd, &client) < 0 || msg_get_end(&rd) < 0) {
        log_err("TLS proxy: a malformed request from a session (dropped)");
        refuse(pfd, "a malformed request to the TLS proxy");
        free(client);
        msg_free(&m);
        close(pfd);
        return;
    }
    int cfd = m.fd;
    m.fd = -1;
    msg_free(&m);
    char *why = NULL;
    SSL *ssl = tls_server_ssl(px->t, cfd, &why);
    if (!ssl) {
        refuse(pfd, why);
        free(why);
        free(client);
        close(cfd);
        close(pfd);
        return;
    }
    if (ms == 0 || ms > HANDSHAKE_MAX_MS)
        ms = HANDSHAKE_MAX_MS;
    if (px->n == px->cap) {
        px->cap = px->cap ? px->cap * 2 : 64;
        px->r = xreallocarray(px->r, px->cap, sizeof *px->r);
    }
    px->r[px->n++] = relay_new(ssl, cfd, pfd, now + ms, client);
    free(client);
}

static void intake(struct proxy *px, long long now)
{
    for (int i = 0; i < INTAKE_BATCH && px->req >= 0; i++) {
        struct msg m;
        int r = msg_recv(px->req, &m, 0, now);
        if (r == 1) {
            take(px, &m, now);
            msg_free(&m);
        } else if (r == 0) {
            close(px->req); /* no session can ask any more */
            px->req = -1;
        } else {
            if (errno != ETIMEDOUT && errno != EAGAIN)
                log_err("TLS proxy: a request could not be read: %s", strerror(errno));
            return;
        }
    }
}

static void control(struct proxy *px, long long now)
{
    struct msg m;
    struct tls_ticket_keys k;
    int r = msg_recv(px->ctl, &m, 4096, now + 1000);
    if (r == 1 && get_keys(&m, &k) == 0)
        tls_server_set_keys(px->t, &k);
    else if (r == 1)
        log_err("TLS proxy: a malformed message from the master (ignored)");
    else if (r == 0 || errno != ETIMEDOUT) {
        close(px->ctl); /* the master let us go */
        px->ctl = -1;
    }
    if (r == 1)
        explicit_bzero(m.data, m.len);
    msg_free(&m);
    explicit_bzero(&k, sizeof k);
}

/* The poll set: ctl, req, then two per relay.  Returns the poll timeout. */
static int poll_set(const struct proxy *px, struct pollfd *p, long long now)
{
    p[0] = (struct pollfd){ .fd = px->ctl, .events = POLLIN };
    p[1] = (struct pollfd){ .fd = px->req, .events = POLLIN };
    long long next = 0;
    for (size_t i = 0; i < px->n; i++) {
        struct pollfd *q = &p[2 + 2 * i];
        relay_events(px->r[i], &q[0].fd, &q[0].events, &q[1].fd, &q[1].events);
        q[0].revents = q[1].revents = 0;
        long long d = relay_deadline(px->r[i]);
        if (d && (!next || d < next))
            next = d;
    }
    if (!next)
        return -1;
    return next <= now ? 0 : next - now > 60000 ? 60000 : (int)(next - now);
}

static void serve_relays(struct proxy *px, const struct pollfd *p, long long now)
{
    size_t n = px->n;
    /* from the end: a finished relay takes the last one's place */
    for (size_t i = n; i-- > 0;) {
        const struct pollfd *q = &p[2 + 2 * i];
        long long d = relay_deadline(px->r[i]);
        if (!q[0].revents && !q[1].revents && !(d && now >= d))
            continue;
        if (relay_run(px->r[i], now))
            continue;
        relay_free(px->r[i]);
        px->r[i] = px->r[--px->n];
    }
}

static void proxy_loop(struct proxy *px)
{
    struct pollfd *p = NULL;
    size_t pcap = 0;
    while (px->ctl >= 0 || px->req >= 0 || px->n > 0) {
        if (pcap < 2 + 2 * px->n) {
            pcap = 2 + 2 * px->cap + 2;
            p = xreallocarray(p, pcap, sizeof *p);
        }
        int timeout = poll_set(px, p, now_ms());
        int k = poll(p, 2 + 2 * px->n, timeout);
        if (k < 0 && errno != EINTR) {
            log_err("TLS proxy: poll: %s", strerror(errno));
            break;
        }
        long long now = now_ms();
        if (k > 0)
            serve_relays(px, p, now);
        else if (k == 0)
            serve_relays(px, p, now); /* deadlines */
        if (k > 0 && px->ctl >= 0 && p[0].revents)
            control(px, now);
        if (k > 0 && px->req >= 0 && p[1].revents)
            intake(px, now);
    }
    free(p);
}

/* A connection is two descriptors: as many as the system lets us have. */
static void raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
    }
}

static PO_NORETURN void proxy_main(void *arg, int report_fd)
{
    struct proxy_arg *a = arg;
    struct tls_ticket_keys keys; /* in_child unmaps the master's page */
    memset(&keys, 0, sizeof keys);
    if (a->keys)
        keys = *a->keys;
    if (a->in_child)
        a->in_child(a->arg);
    if (a->req_other >= 0)
        close(a->req_other);
    if (a->ctl_other >= 0)
        close(a->ctl_other);
    char *err = NULL;
    struct tls_server *t = tls_server_new(a->c, &err);
    if (!t) {
        report(report_fd, 0, 0, err ? err : "TLS: no tls-cert= is set");
        _exit(EX_CONFIG);
    }
    size_t nd = tls_server_domains(t);
    if (a->check_only) {
        report(report_fd, 1, nd, NULL);
        _exit(0);
    }
    tls_server_set_keys(t, &keys);
    explicit_bzero(&keys, sizeof keys);
    if (spare_become(a->c, a->u) < 0) {
        char *why = xasprintf("TLS: the TLS proxy cannot become user=%s: %s", a->c->user,
                              strerror(errno));
        report(report_fd, 0, 0, why);
        _exit(EX_NOPERM);
    }
    raise_nofile();
    set_nonblock(a->req, 1);
    report(report_fd, 1, nd, NULL);
    close(report_fd);
    struct proxy px = { .t = t, .req = a->req, .ctl = a->ctl };
    proxy_loop(&px);
    tls_server_free(t);
    _exit(0);
}

/* ---- the master's side ---- */

int tls_proxy_check(const struct config *c, size_t *ndomains, char **err)
{
    *err = NULL;
    *ndomains = 0;
    if (c->tls_cert.n == 0 && c->tls_key.n == 0)
        return 0;
    struct proxy_arg a = { .c = c, .req = -1, .req_other = -1, .ctl = -1, .ctl_other = -1,
                           .check_only = 1 };
    struct child_spec spec = { .title = "tls check", .extra_gid = (gid_t)-1,
                               .deadline_ms = TLS_PROXY_START_MS, .report = 1 };
    struct child ch;
    struct child_end end;
    if (child_start(&ch, &spec, proxy_main, &a) < 0) {
        *err = xasprintf("TLS: cannot start a process to load the certificates: %s",
                         strerror(errno));
        return -1;
    }
    int r = read_report(ch.fd, ndomains, err);
    if (r < 0)
        child_kill(&ch);
    else
        child_wait(&ch, &end);
    return r;
}

int tls_proxy_start(struct tls_proxy *p, const struct config *c, const struct session_user *u,
                    const struct tls_ticket_keys *k, void (*in_child)(void *), void *arg,
                    char **err)
{
    int req[2], ctl[2];
    *p = (struct tls_proxy){ .pid = 0, .req = -1, .ctl = -1 };
    *err = NULL;
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, req) < 0) {
        *err = xasprintf("TLS: socketpair: %s", strerror(errno));
        return -1;
    }
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, ctl) < 0) {
        *err = xasprintf("TLS: socketpair: %s", strerror(errno));
        close(req[0]);
        close(req[1]);
        return -1;
    }
    struct proxy_arg a = { .c = c, .u = u, .keys = k, .req = req[0], .req_other = req[1],
                           .ctl = ctl[0], .ctl_other = ctl[1], .in_child = in_child,
                           .arg = arg };
    struct child_spec spec = { .title = "tls", .extra_gid = (gid_t)-1, .report = 1 };
    struct child ch;
    size_t nd = 0;
    int rc = child_start(&ch, &spec, proxy_main, &a);
    close(req[0]);
    close(ctl[0]);
    if (rc < 0) {
        *err = xasprintf("TLS: cannot start the TLS proxy: %s", strerror(errno));
    } else if (read_report(ch.fd, &nd, err) < 0) {
        child_kill(&ch);
        rc = -1;
    }
    if (rc < 0) {
        close(req[1]);
        close(ctl[1]);
        return -1;
    }
    close(ch.fd); /* it runs on: the master reaps it when it ends */
    /* a proxy that stops reading (stopped, stuck) must not hold a session
     * in its hand-over for ever: the send gives up (the socket is shared by
     * every session, so the option is set once here) */
    struct timeval tv = { .tv_sec = TLS_REQUEST_SEND_MS / 1000, .tv_usec = 0 };
    (void)setsockopt(req[1], SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    *p = (struct tls_proxy){ .pid = ch.pid, .req = req[1], .ctl = ctl[1], .ndomains = nd };
    return 0;
}

void tls_proxy_release(struct tls_proxy *p)
{
    if (p->req >= 0)
        close(p->req);
    if (p->ctl >= 0)
        close(p->ctl);
    *p = (struct tls_proxy){ .pid = 0, .req = -1, .ctl = -1 };
}
