/* tls_relay.c - one TLS connection in the TLS proxy (tls_relay.h).
 *
 * Runs in the proxy as user=: everything read here comes from a client (TLS
 * records, parsed by OpenSSL) or from a session child (plaintext, passed on
 * unread).  Both sockets are non-blocking; OpenSSL says through
 * SSL_get_error which way the client's socket must become ready. */
#include "compat.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>

#include "msg.h"
#include "tls_relay.h"
#include "tls_server.h"
#include "util.h"

enum relay_state { R_HANDSHAKE, R_RELAY, R_DONE };

/* Bytes waiting to go one way: data[off..len). */
struct relay_buf {
    unsigned char *data;
    size_t off, len;
};

struct relay {
    SSL *ssl;
    int cfd, pfd;           /* the client's socket, the session's */
    enum relay_state state;
    long long deadline;     /* the handshake's, or the drain's; 0: none */
    char *client;
    struct relay_buf in;    /* client -> session (decrypted) */
    struct relay_buf out;   /* session -> client (to encrypt) */
    int c_eof;              /* nothing more comes from the client */
    int c_dead;             /* nothing more can go to it (TLS failed) */
    int p_eof;              /* the session closed its end */
    int p_shut;             /* the session was told the client's end */
    short cwant, pwant;     /* what the last attempts wait for */
};

struct relay *relay_new(SSL *ssl, int cfd, int pfd, long long handshake_deadline,
                        const char *client)
{
    struct relay *r = xcalloc(1, sizeof *r);
    r->ssl = ssl;
    r->cfd = cfd;
    r->pfd = pfd;
    r->deadline = handshake_deadline;
    r->client = xstrdup(client ? client : "unknown");
    r->cwant = POLLIN;
    set_nonblock(cfd, 1);
    set_nonblock(pfd, 1);
    /* a flight is several records, each its own write, and the server
     * speaks twice in a row (its flight, then the TLS 1.3 ticket): Nagle
     * would hold the later ones until the client's delayed ACK */
    int one = 1;
    (void)setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return r;
}

void relay_free(struct relay *r)
{
    if (!r)
        return;
    SSL_free(r->ssl);
    close(r->cfd);
    close(r->pfd);
    free(r->in.data);
    free(r->out.data);
    free(r->client);
    free(r);
}

void relay_events(const struct relay *r, int *cfd, short *cev, int *pfd, short *pev)
{
    *cfd = r->cfd;
    *pfd = r->pfd;
    *cev = r->state == R_DONE ? 0 : r->cwant;
    *pev = r->state == R_RELAY ? r->pwant : 0;
}

long long relay_deadline(const struct relay *r)
{
    return r->deadline;
}

/* ---- the session's answer ---- */

static void answer(struct relay *r, int ok, const char *text)
{
    struct buf b;
    buf_init(&b);
    msg_put_u32(&b, ok ? 1 : 0);
    msg_put_u32(&b, ok && SSL_session_reused(r->ssl) ? 1 : 0);
    msg_put_str(&b, text);
    /* the pair is new and empty: this fits at once */
    if (msg_send(r->pfd, MSG_TLS_DONE, b.s, b.len, -1) < 0 && ok)
        r->state = R_DONE; /* the session is gone */
    buf_free(&b);
}

static void fail(struct relay *r, const char *why)
{
    answer(r, 0, why);
    r->state = R_DONE;
}

/* What an SSL_* result that is not success means: POLLIN or POLLOUT to
 * wait for, or 0 (the connection is over: closed, or an error). */
static short ssl_wait(const struct relay *r, int n)
{
    switch (SSL_get_error(r->ssl, n)) {
    case SSL_ERROR_WANT_READ:
        return POLLIN;
    case SSL_ERROR_WANT_WRITE:
        return POLLOUT;
    default:
        return 0;
    }
}

static void handshake(struct relay *r, long long now)
{
    if (r->deadline && now >= r->deadline) {
        fail(r, "handshake timed out");
        return;
    }
    int one = 1, zero = 0;
    ERR_clear_error();
    /* corked while SSL_accept writes: a flight leaves in as few segments
     * as it fits in */
    (void)setsockopt(r->cfd, IPPROTO_TCP, TCP_CORK, &one, sizeof one);
    int a = SSL_accept(r->ssl);
    (void)setsockopt(r->cfd, IPPROTO_TCP, TCP_CORK, &zero, sizeof zero);
    if (a == 1) {
        char *info = tls_describe(r->ssl);
        r->state = R_RELAY;
        r->deadline = 0;
        answer(r, 1, info);
        free(info);
        return;
    }
    int e = errno;
    short w = ssl_wait(r, a);
    if (w) {
        r->cwant = w;
        return;
    }
    char *why = tls_errors(a == 0 || e == 0 ? "the client closed the connection" : strerror(e));
    fail(r, why);
    free(why);
}

/* ---- the relay ---- */

static unsigned char *room(struct relay_buf *b)
{
    if (!b->data)
        b->data = xmalloc(RELAY_BUF);
    return b->data + b->len;
}

/* Consumed n bytes; an empty buffer is given back (idle connections). */
static void consumed(struct relay_buf *b, size_t n)
{
    b->off += n;
    if (b->off == b->len) {
        free(b->data);
        memset(b, 0, sizeof *b);
    }
}

static int from_client(struct relay *r)
{
    if (r->c_eof || r->in.len >= RELAY_BUF)
        return 0;
    unsigned char *p = room(&r->in);
    ERR_clear_error();
    int n = SSL_read(r->ssl, p, (int)(RELAY_BUF - r->in.len));
    if (n > 0) {
        r->in.len += (size_t)n;
        return 1;
    }
    if (!r->in.len)
        consumed(&r->in, 0);
    short w = ssl_wait(r, n);
    if (w)
        r->cwant |= w;
    else
        r->c_eof = 1;
    ERR_clear_error();
    return 0;
}

static int to_session(struct relay *r)
{
    if (r->in.off == r->in.len)
        return 0;
    ssize_t n = send(r->pfd, r->in.data + r->in.off, r->in.len - r->in.off, MSG_NOSIGNAL);
    if (n > 0) {
        consumed(&r->in, (size_t)n);
        return 1;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
        r->pwant |= POLLOUT;
        return 0;
    }
    /* the session is gone: nothing it would answer can come */
    consumed(&r->in, r->in.len - r->in.off);
    r->p_eof = 1;
    return 0;
}

static int from_session(struct relay *r)
{
    if (r->p_eof || r->out.len >= RELAY_BUF)
        return 0;
    unsigned char *p = room(&r->out);
    ssize_t n = read(r->pfd, p, RELAY_BUF - r->out.len);
    if (n > 0) {
        r->out.len += (size_t)n;
        return 1;
    }
    if (!r->out.len)
        consumed(&r->out, 0);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        r->pwant |= POLLIN;
    else
        r->p_eof = 1;
    return 0;
}

static int to_client(struct relay *r)
{
    if (r->out.off == r->out.len)
        return 0;
    if (r->c_dead) {
        consumed(&r->out, r->out.len - r->out.off);
        return 0;
    }
    ERR_clear_error();
    size_t left = r->out.len - r->out.off;
    int n = SSL_write(r->ssl, r->out.data + r->out.off, (int)left);
    if (n > 0) {
        consumed(&r->out, (size_t)n);
        return 1;
    }
    short w = ssl_wait(r, n);
    if (w) {
        r->cwant |= w;
    } else {
        r->c_eof = r->c_dead = 1;
        consumed(&r->out, left);
    }
    ERR_clear_error();
    return 0;
}

/* Both ways until nothing moves; then whether the relay is over.  The
 * client's end (close_notify, or TCP's) is passed on as the session's end
 * of input; its last replies still go out (a client may close its side
 * after QUIT and wait for the 221). */
static void pump(struct relay *r, long long now)
{
    int moved;
    do {
        r->cwant = r->pwant = 0;
        moved = from_client(r);
        moved |= to_session(r);
        moved |= from_session(r);
        moved |= to_client(r);
    } while (moved);
    int in_empty = r->in.off == r->in.len, out_empty = r->out.off == r->out.len;
    if (r->c_eof && in_empty && !r->p_shut) {
        (void)shutdown(r->pfd, SHUT_WR);
        r->p_shut = 1;
    }
    if (r->c_dead && in_empty) {
        r->state = R_DONE; /* the session sees its end when the pair closes */
    } else if (r->p_eof && out_empty) {
        ERR_clear_error();
        (void)SSL_shutdown(r->ssl); /* one try at close_notify */
        ERR_clear_error();
        r->state = R_DONE;
    } else if ((r->p_eof || r->c_eof) && !r->deadline) {
        r->deadline = now + RELAY_DRAIN_MS; /* one side is done: a bounded end */
    } else if ((r->p_eof || r->c_eof) && now >= r->deadline) {
        r->state = R_DONE;
    }
}

int relay_run(struct relay *r, long long now)
{
    if (r->state == R_HANDSHAKE)
        handshake(r, now);
    if (r->state == R_RELAY)
        pump(r, now);
    return r->state != R_DONE;
}
