/* delivery_worker.c - the daemon's delivery workers (delivery_worker.h).
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

#include "delivery_worker.h"
#include "envelope.h"
#include "log.h"
#include "msg.h"
#include "queue_run.h"
#include "util.h"

static int readable(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    return poll(&p, 1, 0) == 1 && (p.revents & (POLLIN | POLLHUP));
}

/* One MSG_DELIVER: its queue id into ids.  A message of another type or
 * shape is logged and skipped (it came from the master, but is checked all
 * the same). */
static void take_one(const struct msg *m, struct strlist *ids)
{
    struct msg_reader r;
    char *qid = NULL;
    msg_reader_init(&r, m);
    if (m->type == MSG_DELIVER && msg_get_str(&r, &qid) == 0 && msg_get_end(&r) == 0 &&
        qid && qid_valid(qid))
        sl_add_owned(ids, qid);
    else {
        log_err("delivery worker: an unexpected message (type %u)", (unsigned)m->type);
        free(qid);
    }
}

void dworker_take(int sock, size_t max, struct strlist *ids, int *eof)
{
    /* Every worker reads the one socket: an id seen waiting may be taken by
     * another worker before this one reads it.  A read that waited would
     * hold the ids taken so far, undelivered, until the next id came (with
     * the last mail of a burst: until the next queue run), so it never
     * waits, and finding nothing is not the end. */
    set_nonblock(sock, 1);
    while (ids->n < max && readable(sock)) {
        struct msg m;
        int r = msg_recv(sock, &m, QID_MAX + 16, now_ms());
        if (r != 1) {
            if (r == 0 || (errno != EMSGSIZE && errno != ETIMEDOUT && errno != EAGAIN))
                *eof = 1; /* the end, or the stream is broken */
            return;
        }
        take_one(&m, ids);
        msg_free(&m);
    }
}

/* After a round: n ids done. */
static void report_done(int sock, size_t n)
{
    struct buf b;
    buf_init(&b);
    msg_put_u32(&b, (uint32_t)n);
    (void)msg_send(sock, MSG_DELIVERED, b.s, b.len, -1);
    buf_free(&b);
}

static void deliver(const struct config *c, const struct strlist *ids)
{
    struct runq_opts ro = {.local_only = !c->immediate, .in_process = 1};
    if (c->immediate)
        runq_messages(c, ids, &ro);
    else
        runq_batch(c, ids, &ro);
}

int dworker_gather(size_t have, size_t max, long long since_last_round)
{
    return have < max && since_last_round < DW_STREAM_MS;
}

PO_NORETURN void dworker_main(const struct config *c, int sock)
{
    size_t max = c->immediate ? DW_TAKE_IMMEDIATE : DW_TAKE_LOCAL;
    runq_preload_nss(c); /* the master does not load them (listener.c looks user= up in a child) */
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
        dworker_take(sock, max, &ids, &eof);
        if (!eof && dworker_gather(ids.n, max, now_ms() - last_round)) {
            /* mail is streaming in: a moment's wait fills the round, and a
             * fuller round costs one mailbox lock and flush for more mail */
            long long until = now_ms() + DW_GATHER_MS;
            struct pollfd q = {.fd = sock, .events = POLLIN};
            while (!eof && ids.n < max && poll(&q, 1, ms_left(until)) > 0)
                dworker_take(sock, max, &ids, &eof);
        }
        if (ids.n) {
            deliver(c, &ids);
            report_done(sock, ids.n);
            handled += (long)ids.n;
            last_round = now_ms();
        }
        sl_free(&ids);
    }
    _exit(0);
}

