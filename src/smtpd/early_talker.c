/* early_talker.c - clients that do not wait for the server (early_talker.h).
 * Runs in the session child (user=). */
#include "compat.h"

#include <errno.h>
#include <poll.h>
#include <sys/socket.h>

#include "early_talker.h"
#include "util.h"

#define DRAIN_MS 1000
#define DRAIN_MAX (64 * 1024)

/* A byte waiting on fd (EOF and errors are not talk). */
static int input_waiting(int fd)
{
    char c;
    ssize_t n;
    do
        n = recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    while (n < 0 && errno == EINTR);
    return n > 0;
}

int early_before_greeting(int fd, long pause_ms)
{
    if (input_waiting(fd))
        return 1;
    long long deadline = now_ms() + (pause_ms > 0 ? pause_ms : 0);
    while (ms_left(deadline) > 0) {
        struct pollfd p = {fd, POLLIN, 0};
        int r = poll(&p, 1, ms_left(deadline));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return 0;
        /* readable: data, or the client gave up (EOF), which is not talk */
        return input_waiting(fd);
    }
    return 0;
}

int early_pipelined(const struct smtpio *io)
{
    return io->in.len > io->in_off || input_waiting(io->rfd);
}

void early_close(struct smtpio *io)
{
    (void)io_flush(io);
    shutdown(io->wfd, SHUT_WR);
    long long deadline = now_ms() + DRAIN_MS;
    size_t got = 0;
    char tmp[4096];
    while (got < DRAIN_MAX && ms_left(deadline) > 0) {
        struct pollfd p = {io->rfd, POLLIN, 0};
        if (poll(&p, 1, ms_left(deadline)) <= 0)
            break;
        ssize_t n = recv(io->rfd, tmp, sizeof tmp, MSG_DONTWAIT);
        if (n <= 0 && !(n < 0 && (errno == EINTR || errno == EAGAIN)))
            break;
        if (n > 0)
            got += (size_t)n;
    }
}
