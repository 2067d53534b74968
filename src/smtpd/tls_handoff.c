/* tls_handoff.c - a session's side of the TLS proxy: hand the client's
 * socket over and wait for the handshake's outcome (tls_proxy.h).
 *
 * Runs in the session child as user=.  No OpenSSL here: the proxy's answer
 * is a msg.h record, checked for type and fields. */
#include "compat.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "msg.h"
#include "tls_proxy.h"
#include "util.h"

#define DONE_MAX 4096 /* MSG_TLS_DONE: two numbers and a line */

/* Not established: our end of the pair closed, and the client's connection
 * shut down both ways, since the proxy may still hold a copy of its socket
 * (a stopped proxy has it unread in its queue): the client learns at once. */
static int fail(int pair, int client, char **info, char *why)
{
    if (pair >= 0)
        close(pair);
    (void)shutdown(client, SHUT_RDWR);
    *info = why;
    return -1;
}

int tls_proxy_handoff(int req, int fd, const char *client, long timeout_ms,
                      long long deadline, int *plain, int *resumed, char **info)
{
    int sp[2];
    *plain = -1;
    *resumed = 0;
    *info = NULL;
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0)
        return fail(-1, fd, info, xasprintf("socketpair: %s", strerror(errno)));
    struct buf b;
    buf_init(&b);
    msg_put_u32(&b, timeout_ms > 0 ? (uint32_t)timeout_ms : 0);
    msg_put_str(&b, client);
    /* the socket first, on our pair: the proxy finds it there at once */
    int r = msg_send(sp[1], MSG_TLS_CONN, b.s, b.len, fd);
    buf_free(&b);
    if (r == 0)
        r = msg_send(req, MSG_TLS_START, NULL, 0, sp[0]);
    int e = errno;
    close(sp[0]);
    if (r < 0)
        return fail(sp[1], fd, info, xasprintf("the TLS proxy cannot be reached: %s", strerror(e)));
    long long until = now_ms() + (timeout_ms > 0 ? timeout_ms : 60000) + TLS_HANDOFF_SLACK_MS;
    if (deadline && deadline < until)
        until = deadline;
    struct msg m;
    r = msg_recv(sp[1], &m, DONE_MAX, until);
    if (r != 1)
        return fail(sp[1], fd, info,
                    r == 0            ? xstrdup("the TLS proxy ended the connection")
                    : errno == ETIMEDOUT ? xstrdup("handshake timed out")
                                         : xasprintf("the TLS proxy: %s", strerror(errno)));
    struct msg_reader rd;
    uint32_t ok = 0, res = 0;
    char *text = NULL;
    msg_reader_init(&rd, &m);
    int bad = m.type != MSG_TLS_DONE || m.fd >= 0 || msg_get_u32(&rd, &ok) < 0 ||
              msg_get_u32(&rd, &res) < 0 || msg_get_str(&rd, &text) < 0 ||
              msg_get_end(&rd) < 0;
    msg_free(&m);
    if (bad || !ok) {
        char *why = bad ? xstrdup("a malformed answer from the TLS proxy")
                        : xstrdup(text ? text : "unknown TLS error");
        free(text);
        return fail(sp[1], fd, info, why);
    }
    *plain = sp[1];
    *resumed = res != 0;
    *info = text ? text : xstrdup("TLS");
    return 0;
}
