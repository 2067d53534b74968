/* workerpool.c - the master's half of the delivery workers (workerpool.h).
 *
 * ROOT: runs in the master; forks the workers as root (they become mailbox
 * owners through their own children).  It reads only the workers' reports,
 * each checked for type and size. */
#include "compat.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sysexits.h>
#include <unistd.h>

#include "child.h"
#include "delivery_worker.h"
#include "log.h"
#include "msg.h"
#include "workerpool.h"

static long max_workers(const struct config *c)
{
    return c->delivery_procs > 0 ? c->delivery_procs : 4;
}

static void worker_child(void *arg, int report_fd)
{
    struct workerpool *wp = arg;
    (void)report_fd;
    int s = fcntl(wp->sock[1], F_DUPFD_CLOEXEC, 0);
    if (wp->in_child)
        wp->in_child(wp->in_child_arg);
    log_open("runq", log_to_stderr());
    if (s < 0)
        _exit(EX_OSERR);
    dworker_main(wp->c, s);
}

static pid_t spawn_real(struct workerpool *wp)
{
    struct child ch;
    struct child_spec spec = { .title = "deliver", .extra_gid = (gid_t)-1 };
    if (child_start(&ch, &spec, worker_child, wp) < 0)
        return -1;
    return ch.pid;
}

static int open_sock(struct workerpool *wp)
{
    wp->sock[0] = wp->sock[1] = -1;
    wp->outstanding = 0;
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, wp->sock) < 0)
        return -1;
    return set_nonblock(wp->sock[0], 1);
}

static void close_sock(struct workerpool *wp)
{
    for (int i = 0; i < 2; i++)
        if (wp->sock[i] >= 0)
            close(wp->sock[i]);
    wp->sock[0] = wp->sock[1] = -1;
}

int wp_init(struct workerpool *wp, const struct config *c)
{
    memset(wp, 0, sizeof *wp);
    wp->c = c;
    wp->spawn = spawn_real;
    sl_init(&wp->pending);
    return open_sock(wp);
}

void wp_free(struct workerpool *wp)
{
    close_sock(wp);
    free(wp->pids);
    wp->pids = NULL;
    wp->n = wp->cap = 0;
    sl_free(&wp->pending);
}

int wp_renew(struct workerpool *wp, const struct config *c)
{
    close_sock(wp);
    wp->c = c;
    return open_sock(wp);
}

void wp_close_in_child(struct workerpool *wp)
{
    for (int i = 0; i < 2; i++)
        if (wp->sock[i] >= 0)
            close(wp->sock[i]);
}

void wp_add(struct workerpool *wp, const char *qid, long long now)
{
    if (wp->pending.n == 0)
        wp->pending_since = now;
    sl_add(&wp->pending, qid);
}

int wp_gather_left(const struct workerpool *wp, long long now)
{
    if (!wp->c->immediate || wp->pending.n == 0 || wp->pending.n >= WP_GATHER_MAX)
        return 0;
    long long left = wp->pending_since + WP_GATHER_MS - now;
    return left > 0 ? (int)left : 0;
}

int wp_should_start(long running, long max, long outstanding, long take)
{
    return running == 0 || (outstanding >= running * take && running < max);
}

static int start_one(struct workerpool *wp)
{
    pid_t pid = wp->spawn(wp);
    if (pid < 0) {
        log_err("cannot start a delivery worker (%s); the queue run will deliver "
                "what is waiting", strerror(errno));
        return -1;
    }
    if (wp->n == wp->cap) {
        wp->cap = wp->cap ? wp->cap * 2 : 8;
        wp->pids = xreallocarray(wp->pids, wp->cap, sizeof *wp->pids);
    }
    wp->pids[wp->n++] = pid;
    return 0;
}

/* One id to the workers, without blocking.  0, or -1 with errno (EAGAIN: the
 * socket is full). */
static int send_id(int sock, const char *qid)
{
    struct buf b;
    buf_init(&b);
    msg_put_str(&b, qid);
    int rc = msg_send(sock, MSG_DELIVER, b.s, b.len, -1);
    buf_free(&b);
    return rc;
}

void wp_dispatch(struct workerpool *wp, long long now)
{
    if (wp_gather_left(wp, now) > 0)
        return;
    long max = max_workers(wp->c);
    long running = (long)wp->n;
    if (running == 0 && wp->outstanding > 0) {
        /* the workers are gone (idle, worn out, killed): a fresh one takes
         * whatever they left in the socket */
        wp->outstanding = 0;
        if (start_one(wp) == 0)
            running++;
    }
    long take = wp->c->immediate ? DW_TAKE_IMMEDIATE : DW_TAKE_LOCAL;
    wp->send_blocked = 0;
    size_t sent = 0;
    for (; sent < wp->pending.n; sent++) {
        if (wp_should_start(running, max, wp->outstanding, take) && start_one(wp) == 0)
            running++;
        if (running == 0)
            break; /* no worker: retried from the poll loop */
        if (send_id(wp->sock[0], wp->pending.v[sent]) < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                wp->send_blocked = 1;
            else
                log_err("cannot hand %s to a delivery worker: %s", wp->pending.v[sent],
                        strerror(errno));
            break;
        }
        wp->outstanding++;
        free(wp->pending.v[sent]);
    }
    if (sent) {
        memmove(wp->pending.v, wp->pending.v + sent,
                (wp->pending.n - sent) * sizeof *wp->pending.v);
        wp->pending.n -= sent;
    }
}

/* A message is waiting (messages are written whole: reading one never waits
 * long once its first byte is there). */
static int readable(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    return poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
}

void wp_read_done(struct workerpool *wp)
{
    struct msg m;
    while (readable(wp->sock[0]) && msg_recv(wp->sock[0], &m, 64, now_ms() + 10) == 1) {
        struct msg_reader rd;
        uint32_t n = 0;
        msg_reader_init(&rd, &m);
        if (m.type == MSG_DELIVERED && msg_get_u32(&rd, &n) == 0 && msg_get_end(&rd) == 0)
            wp->outstanding -= (long)n;
        else
            log_err("delivery worker: an unexpected message (type %u)", (unsigned)m.type);
        msg_free(&m);
    }
    if (wp->outstanding < 0)
        wp->outstanding = 0;
}

int wp_reaped(struct workerpool *wp, pid_t pid)
{
    for (size_t i = 0; i < wp->n; i++)
        if (wp->pids[i] == pid) {
            wp->pids[i] = wp->pids[--wp->n];
            return 1;
        }
    return 0;
}
