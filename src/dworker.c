/* dworker.c - the daemon's delivery workers (dworker.h).
 *
 * Runs as root in the worker: only to fork the mailbox children (local.c),
 * exactly as a queue run does.  What it reads from the socket is the master's
 * (queue ids, checked with qid_valid all the same). */
#include "compat.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dworker.h"
#include "envelope.h"
#include "log.h"
#include "runq.h"
#include "util.h"

/* Take up to max ids already waiting.  *eof set when the master is gone. */
static void take(int sock, size_t max, struct strlist *ids, int *eof)
{
    while (ids->n < max) {
        char b[QID_MAX + 1];
        ssize_t n = recv(sock, b, sizeof b - 1, MSG_DONTWAIT);
        if (n == 0) {
            *eof = 1;
            return;
        }
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                *eof = 1;
            return;
        }
        b[n] = '\0';
        if (qid_valid(b))
            sl_add(ids, b);
    }
}

static void deliver(const struct config *c, const struct strlist *ids)
{
    struct runq_opts ro = {.local_only = !c->immediate, .in_process = 1};
    if (c->immediate)
        runq_messages(c, ids, &ro);
    else
        runq_batch(c, ids, &ro);
}

PO_NORETURN void dworker_main(const struct config *c, int sock)
{
    size_t max = c->immediate ? DW_TAKE_IMMEDIATE : DW_TAKE_LOCAL;
    runq_preload_nss(c); /* the master does not load them (daemon.c groups_of) */
    long handled = 0;
    long long last_round = 0;
    int eof = 0;
    while (!eof && handled < DW_MAX_IDS) {
        struct pollfd p = {.fd = sock, .events = POLLIN};
        int r = poll(&p, 1, DW_IDLE_MS);
        if (r == 0)
            break;
        if (r < 0) {
            if (errno == EINTR)
                continue;
            log_err("delivery worker: poll: %s", strerror(errno));
            break;
        }
        struct strlist ids;
        sl_init(&ids);
        take(sock, max, &ids, &eof);
        if (!eof && ids.n < max && now_ms() - last_round < DW_STREAM_MS) {
            /* mail is streaming in: a moment's wait fills the round, and a
             * fuller round costs one mailbox lock and flush for more mail */
            long long until = now_ms() + DW_GATHER_MS;
            struct pollfd q = {.fd = sock, .events = POLLIN};
            while (!eof && ids.n < max && poll(&q, 1, ms_left(until)) > 0)
                take(sock, max, &ids, &eof);
        }
        if (ids.n) {
            deliver(c, &ids);
            char rep[32];
            int n = snprintf(rep, sizeof rep, "D%zu", ids.n);
            (void)send(sock, rep, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL);
            handled += (long)ids.n;
            last_round = now_ms();
        }
        sl_free(&ids);
    }
    _exit(0);
}

int dworker_send(int sock, const char *qid)
{
    size_t len = strlen(qid);
    for (;;) {
        ssize_t n = send(sock, qid, len, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n == (ssize_t)len)
            return 0;
        if (n < 0 && errno == EINTR)
            continue;
        if (n >= 0)
            errno = EIO;
        return -1;
    }
}

long dworker_read_done(int sock)
{
    long done = 0;
    char b[32];
    ssize_t n;
    while ((n = recv(sock, b, sizeof b - 1, MSG_DONTWAIT)) > 0) {
        b[n] = '\0';
        if (b[0] == 'D')
            done += strtol(b + 1, NULL, 10);
    }
    return done;
}
