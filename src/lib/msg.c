/* msg.c - typed, length-prefixed messages between postoffice's processes.
 *
 * Wire format: an 8-byte header (version u16, type u16, payload length u32,
 * all big-endian) and the payload.  On a SOCK_SEQPACKET socket a message is
 * one record (read with one recvmsg, so a record longer than announced is
 * seen); on a pipe or stream it is read header first, then payload. */
#include "compat.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "msg.h"
#include "util.h"

#define HDR 8

static void put16(unsigned char *p, unsigned v)
{
    p[0] = (unsigned char)(v >> 8);
    p[1] = (unsigned char)v;
}

static void put32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (24 - 8 * i));
}

static unsigned get16(const unsigned char *p)
{
    return (unsigned)p[0] << 8 | p[1];
}

static uint32_t get32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* A pipe has no MSG_NOSIGNAL: block SIGPIPE around the write and take back
 * one that our write raised, so the caller sees EPIPE and nothing else. */
static int write_nosigpipe(int fd, const unsigned char *p, size_t n)
{
    sigset_t pipe_set, old, pending;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    sigpending(&pending);
    int was_pending = sigismember(&pending, SIGPIPE);
    sigprocmask(SIG_BLOCK, &pipe_set, &old);
    int r = write_all(fd, p, n);
    int e = errno;
    if (r < 0 && e == EPIPE && !was_pending) {
        struct timespec zero = {0, 0};
        while (sigtimedwait(&pipe_set, NULL, &zero) < 0 && errno == EINTR)
            ;
    }
    sigprocmask(SIG_SETMASK, &old, NULL);
    errno = e;
    return r;
}

static int send_sock(int fd, const unsigned char *p, size_t n, int pass_fd)
{
    struct iovec iov = {.iov_base = (void *)p, .iov_len = n};
    union {
        struct cmsghdr h;
        char space[CMSG_SPACE(sizeof(int))];
    } ctl;
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
    if (pass_fd >= 0) {
        memset(&ctl, 0, sizeof ctl);
        mh.msg_control = ctl.space;
        mh.msg_controllen = sizeof ctl.space;
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &pass_fd, sizeof(int));
    }
    for (;;) {
        ssize_t r = sendmsg(fd, &mh, MSG_NOSIGNAL);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        if ((size_t)r == n)
            return 0;
        /* a stream socket took part of it; the descriptor went with it */
        return write_all(fd, p + r, n - (size_t)r);
    }
}

int msg_send(int fd, enum msg_type type, const void *data, size_t len, int pass_fd)
{
    if (len > MSG_MAX || type <= MSG_NONE || type >= MSG_TYPE_END) {
        errno = len > MSG_MAX ? EMSGSIZE : EINVAL;
        return -1;
    }
    unsigned char *p = xmalloc(HDR + len);
    put16(p, MSG_VERSION);
    put16(p + 2, (unsigned)type);
    put32(p + 4, (uint32_t)len);
    if (len)
        memcpy(p + HDR, data, len);
    int r = send_sock(fd, p, HDR + len, pass_fd);
    if (r < 0 && errno == ENOTSOCK) {
        if (pass_fd >= 0)
            errno = EINVAL; /* descriptors travel over Unix sockets only */
        else
            r = write_nosigpipe(fd, p, HDR + len);
    }
    int e = errno;
    free(p);
    errno = e;
    return r;
}

/* Wait until fd is readable or the deadline passes (ETIMEDOUT). */
static int wait_readable(int fd, long long deadline)
{
    struct pollfd pf = {.fd = fd, .events = POLLIN};
    for (;;) {
        int n = poll(&pf, 1, deadline ? ms_left(deadline) : -1);
        if (n > 0)
            return 0;
        if (n == 0) {
            errno = ETIMEDOUT;
            return -1;
        }
        if (errno != EINTR)
            return -1;
    }
}

enum kind { K_PIPE, K_STREAM, K_RECORD };

/* One recvmsg (or read on a pipe), keeping a descriptor that came with it.
 * *trunc is set when a datagram/record did not fit. */
static ssize_t recv_some(int fd, enum kind k, void *p, size_t n, long long deadline,
                         int *gotfd, int *trunc)
{
    union {
        struct cmsghdr h;
        char space[CMSG_SPACE(sizeof(int))];
    } ctl;
    for (;;) {
        if (wait_readable(fd, deadline) < 0)
            return -1;
        struct iovec iov = {.iov_base = p, .iov_len = n};
        struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1,
                            .msg_control = ctl.space, .msg_controllen = sizeof ctl.space};
        ssize_t r = k == K_PIPE ? read(fd, p, n) : recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);
        if (r >= 0 && k != K_PIPE) {
            for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
                if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS &&
                    c->cmsg_len == CMSG_LEN(sizeof(int))) {
                    int got;
                    memcpy(&got, CMSG_DATA(c), sizeof got);
                    if (*gotfd >= 0)
                        close(*gotfd);
                    *gotfd = got;
                } else if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
                    /* more descriptors than one message carries: an
                     * untrusted peer must not fill our descriptor table */
                    size_t nfd = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
                    for (size_t i = 0; i < nfd; i++) {
                        int extra;
                        memcpy(&extra, CMSG_DATA(c) + i * sizeof(int), sizeof extra);
                        close(extra);
                    }
                    *trunc = 1;
                }
            if (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC))
                *trunc = 1;
        }
        if (r < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        return r;
    }
}

static enum kind kind_of(int fd)
{
    int type;
    socklen_t l = sizeof type;
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &l) < 0)
        return K_PIPE;
    return type == SOCK_SEQPACKET || type == SOCK_DGRAM ? K_RECORD : K_STREAM;
}

/* Check a header; 0 or -1 with errno. */
static int check_header(const unsigned char *h, size_t max, uint16_t *type, size_t *len)
{
    *type = (uint16_t)get16(h + 2);
    *len = get32(h + 4);
    if (get16(h) != MSG_VERSION || *type == MSG_NONE || *type >= MSG_TYPE_END) {
        errno = EPROTO;
        return -1;
    }
    if (*len > max) {
        errno = EMSGSIZE;
        return -1;
    }
    return 0;
}

static int recv_record(int fd, struct msg *m, size_t max, long long deadline)
{
    unsigned char *p = xmalloc(HDR + max + 1);
    int trunc = 0;
    ssize_t r = recv_some(fd, K_RECORD, p, HDR + max + 1, deadline, &m->fd, &trunc);
    int rc = -1;
    if (r == 0)
        rc = 0;
    else if (r > 0 && (size_t)r < HDR)
        errno = EPROTO;
    else if (r > 0 && check_header(p, max, &m->type, &m->len) == 0) {
        if (trunc || (size_t)r > HDR + max)
            errno = EMSGSIZE;
        else if ((size_t)r != HDR + m->len)
            errno = EPROTO;
        else {
            m->data = xmalloc(m->len + 1);
            memcpy(m->data, p + HDR, m->len);
            m->data[m->len] = '\0';
            rc = 1;
        }
    }
    free(p);
    return rc;
}

/* Read exactly n bytes from a stream; 1 done, 0 EOF before any byte, -1. */
static int recv_exact(int fd, enum kind k, unsigned char *p, size_t n, long long deadline,
                      int *gotfd)
{
    size_t got = 0;
    while (got < n) {
        int trunc = 0;
        ssize_t r = recv_some(fd, k, p + got, n - got, deadline, gotfd, &trunc);
        if (r < 0)
            return -1;
        if (r == 0) {
            if (got == 0)
                return 0;
            errno = EPROTO;
            return -1;
        }
        got += (size_t)r;
    }
    return 1;
}

static int recv_stream(int fd, enum kind k, struct msg *m, size_t max, long long deadline)
{
    unsigned char h[HDR];
    int r = recv_exact(fd, k, h, HDR, deadline, &m->fd);
    if (r <= 0)
        return r;
    if (check_header(h, max, &m->type, &m->len) < 0)
        return -1;
    m->data = xmalloc(m->len + 1);
    m->data[m->len] = '\0';
    if (m->len == 0)
        return 1;
    r = recv_exact(fd, k, m->data, m->len, deadline, &m->fd);
    if (r == 0)
        errno = EPROTO; /* the end came inside the message */
    return r == 1 ? 1 : -1;
}

int msg_recv(int fd, struct msg *m, size_t max, long long deadline)
{
    memset(m, 0, sizeof *m);
    m->fd = -1;
    if (max > MSG_MAX)
        max = MSG_MAX;
    enum kind k = kind_of(fd);
    int r = k == K_RECORD ? recv_record(fd, m, max, deadline)
                          : recv_stream(fd, k, m, max, deadline);
    if (r != 1) {
        int e = errno;
        msg_free(m);
        errno = e;
    }
    return r;
}

void msg_free(struct msg *m)
{
    free(m->data);
    m->data = NULL;
    m->len = 0;
    if (m->fd >= 0)
        close(m->fd);
    m->fd = -1;
}

void msg_put_u32(struct buf *b, uint32_t v)
{
    unsigned char p[4];
    put32(p, v);
    buf_add(b, p, 4);
}

void msg_put_u64(struct buf *b, uint64_t v)
{
    msg_put_u32(b, (uint32_t)(v >> 32));
    msg_put_u32(b, (uint32_t)v);
}

void msg_put_i64(struct buf *b, int64_t v)
{
    msg_put_u64(b, (uint64_t)v);
}

#define ABSENT 0xffffffffu

void msg_put_str(struct buf *b, const char *s)
{
    if (s == NULL)
        msg_put_u32(b, ABSENT);
    else
        msg_put_bytes(b, s, strlen(s));
}

void msg_put_bytes(struct buf *b, const void *p, size_t n)
{
    msg_put_u32(b, (uint32_t)n);
    buf_add(b, p, n);
}

void msg_reader_init(struct msg_reader *r, const struct msg *m)
{
    r->p = m->data;
    r->left = m->data ? m->len : 0;
    r->bad = 0;
}

static const unsigned char *take(struct msg_reader *r, size_t n)
{
    if (r->bad || r->left < n) {
        r->bad = 1;
        return NULL;
    }
    const unsigned char *p = r->p;
    r->p += n;
    r->left -= n;
    return p;
}

int msg_get_u32(struct msg_reader *r, uint32_t *v)
{
    const unsigned char *p = take(r, 4);
    if (p == NULL)
        return -1;
    *v = get32(p);
    return 0;
}

int msg_get_u64(struct msg_reader *r, uint64_t *v)
{
    const unsigned char *p = take(r, 8);
    if (p == NULL)
        return -1;
    *v = (uint64_t)get32(p) << 32 | get32(p + 4);
    return 0;
}

int msg_get_i64(struct msg_reader *r, int64_t *v)
{
    uint64_t u;
    if (msg_get_u64(r, &u) < 0)
        return -1;
    *v = (int64_t)u;
    return 0;
}

int msg_get_bytes(struct msg_reader *r, const unsigned char **p, size_t *n)
{
    uint32_t len;
    if (msg_get_u32(r, &len) < 0)
        return -1;
    const unsigned char *q = take(r, len);
    if (q == NULL)
        return -1;
    *p = q;
    *n = len;
    return 0;
}

int msg_get_str(struct msg_reader *r, char **s)
{
    *s = NULL;
    if (r->bad || r->left < 4) {
        r->bad = 1;
        return -1;
    }
    if (get32(r->p) == ABSENT) {
        take(r, 4);
        return 0;
    }
    const unsigned char *p;
    size_t n;
    if (msg_get_bytes(r, &p, &n) < 0)
        return -1;
    if (memchr(p, '\0', n) != NULL) {
        r->bad = 1;
        return -1;
    }
    *s = xstrndup((const char *)p, n);
    return 0;
}

int msg_get_end(struct msg_reader *r)
{
    if (r->bad || r->left != 0) {
        r->bad = 1;
        return -1;
    }
    return 0;
}
