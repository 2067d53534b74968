/* test_workerpool.c - the delivery workers' decisions: when the master
 * starts another worker, how ids go out and come back when workers die, the
 * workers' reports, the master's gathering with immediate, and the worker's
 * side (taking ids, skipping malformed messages, the round gathering).  The
 * pool runs on a real socket; spawning is replaced by a counter. */
#include "compat.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "delivery_worker.h"
#include "msg.h"
#include "util.h"
#include "workerpool.h"

static int spawned;
static int spawn_fails;

static pid_t fake_spawn(struct workerpool *wp)
{
    (void)wp;
    if (spawn_fails) {
        errno = EAGAIN;
        return -1;
    }
    return (pid_t)(1000 + spawned++);
}

static void setup(struct workerpool *wp, struct config *c, int immediate, long procs)
{
    config_defaults(c);
    c->immediate = immediate;
    c->delivery_procs = procs;
    assert_int_equal(wp_init(wp, c), 0);
    wp->spawn = fake_spawn;
    spawned = 0;
    spawn_fails = 0;
}

static void teardown(struct workerpool *wp, struct config *c)
{
    wp_free(wp);
    config_free(c);
}

static void add_ids(struct workerpool *wp, int n, long long now)
{
    for (int i = 0; i < n; i++) {
        char qid[32];
        snprintf(qid, sizeof qid, "1A%06dX", i);
        wp_add(wp, qid, now);
    }
}

/* Everything the workers' end of the socket holds, as the worker takes it. */
static size_t drain_ids(struct workerpool *wp, struct strlist *ids)
{
    int eof = 0;
    dworker_take(wp->sock[1], 100000, ids, &eof);
    assert_int_equal(eof, 0);
    return ids->n;
}

static void test_should_start(void **state)
{
    (void)state;
    assert_true(wp_should_start(0, 4, 0, 8));   /* none running */
    assert_true(wp_should_start(0, 0, 0, 8));   /* none, whatever max says */
    assert_false(wp_should_start(1, 4, 7, 8));  /* the one has room */
    assert_true(wp_should_start(1, 4, 8, 8));   /* a full round in hand */
    assert_false(wp_should_start(2, 4, 15, 8));
    assert_true(wp_should_start(2, 4, 16, 8));
    assert_false(wp_should_start(4, 4, 100, 8)); /* at the limit */
}

static void test_ids_go_out_one_worker_then_more(void **state)
{
    (void)state;
    struct workerpool wp;
    struct config c;
    setup(&wp, &c, 0, 2);
    add_ids(&wp, 5, now_ms());
    wp_dispatch(&wp, now_ms());
    assert_int_equal(spawned, 1);
    assert_int_equal(wp.n, 1);
    assert_int_equal(wp.outstanding, 5);
    assert_int_equal(wp.pending.n, 0);
    struct strlist ids;
    sl_init(&ids);
    assert_int_equal(drain_ids(&wp, &ids), 5);
    assert_string_equal(ids.v[0], "1A000000X");
    assert_string_equal(ids.v[4], "1A000004X");
    sl_free(&ids);
    /* 3 more make 8 in hand: a full round, so the 9th starts a second
     * worker; delivery-processes=2 stops there */
    add_ids(&wp, 20, now_ms());
    wp_dispatch(&wp, now_ms());
    assert_int_equal(spawned, 2);
    assert_int_equal(wp.outstanding, 25);
    teardown(&wp, &c);
}

static void test_dead_workers_ids_taken_by_a_fresh_one(void **state)
{
    (void)state;
    struct workerpool wp;
    struct config c;
    setup(&wp, &c, 0, 4);
    add_ids(&wp, 3, now_ms());
    wp_dispatch(&wp, now_ms());
    assert_int_equal(spawned, 1);
    assert_int_equal(wp_reaped(&wp, 1000), 1);
    assert_int_equal(wp_reaped(&wp, 4242), 0); /* not ours */
    assert_int_equal(wp.n, 0);
    /* nothing new came, but ids are outstanding with no worker: a fresh one
     * takes what is left in the socket, and the count starts over */
    wp_dispatch(&wp, now_ms());
    assert_int_equal(spawned, 2);
    assert_int_equal(wp.outstanding, 0);
    struct strlist ids;
    sl_init(&ids);
    assert_int_equal(drain_ids(&wp, &ids), 3);
    sl_free(&ids);
    teardown(&wp, &c);
}

static void test_no_worker_ids_wait(void **state)
{
    (void)state;
    struct workerpool wp;
    struct config c;
    setup(&wp, &c, 0, 4);
    spawn_fails = 1;
    add_ids(&wp, 4, now_ms());
    wp_dispatch(&wp, now_ms());
    assert_int_equal(wp.pending.n, 4);
    assert_int_equal(wp.outstanding, 0);
    spawn_fails = 0;
    wp_dispatch(&wp, now_ms());
    assert_int_equal(wp.pending.n, 0);
    assert_int_equal(wp.outstanding, 4);
    teardown(&wp, &c);
}

static void test_full_socket_blocks_and_keeps_ids(void **state)
{
    (void)state;
    struct workerpool wp;
    struct config c;
    setup(&wp, &c, 0, 1);
    add_ids(&wp, 50000, now_ms());
    wp_dispatch(&wp, now_ms());
    assert_true(wp.send_blocked);
    assert_true(wp.pending.n > 0);
    assert_int_equal((long)wp.pending.n + wp.outstanding, 50000);
    teardown(&wp, &c);
}

static void send_done(int sock, enum msg_type type, uint32_t n, int extra)
{
    struct buf b;
    buf_init(&b);
    msg_put_u32(&b, n);
    if (extra)
        msg_put_u32(&b, 1);
    assert_int_equal(msg_send(sock, type, b.s, b.len, -1), 0);
    buf_free(&b);
}

static void test_reports(void **state)
{
    (void)state;
    struct workerpool wp;
    struct config c;
    setup(&wp, &c, 0, 4);
    add_ids(&wp, 10, now_ms());
    wp_dispatch(&wp, now_ms());
    assert_int_equal(wp.outstanding, 10);
    send_done(wp.sock[1], MSG_DELIVERED, 4, 0);
    send_done(wp.sock[1], MSG_QUEUED, 3, 0);    /* wrong type: ignored */
    send_done(wp.sock[1], MSG_DELIVERED, 3, 1); /* trailing bytes: ignored */
    wp_read_done(&wp);
    assert_int_equal(wp.outstanding, 6);
    send_done(wp.sock[1], MSG_DELIVERED, 100, 0);
    wp_read_done(&wp);
    assert_int_equal(wp.outstanding, 0); /* never below nothing */
    teardown(&wp, &c);
}

static void test_gathering_with_immediate(void **state)
{
    (void)state;
    struct workerpool wp;
    struct config c;
    setup(&wp, &c, 1, 4);
    long long t0 = now_ms();
    add_ids(&wp, 3, t0);
    assert_int_equal(wp_gather_left(&wp, t0), WP_GATHER_MS);
    assert_int_equal(wp_gather_left(&wp, t0 + 20), WP_GATHER_MS - 20);
    wp_dispatch(&wp, t0 + 20);
    assert_int_equal(spawned, 0); /* still gathering */
    assert_int_equal(wp.pending.n, 3);
    wp_dispatch(&wp, t0 + WP_GATHER_MS);
    assert_int_equal(wp.pending.n, 0);
    assert_int_equal(spawned, 1);
    /* enough ids end the gathering at once */
    add_ids(&wp, WP_GATHER_MAX, t0);
    assert_int_equal(wp_gather_left(&wp, t0), 0);
    teardown(&wp, &c);
    /* without immediate nothing waits */
    setup(&wp, &c, 0, 4);
    add_ids(&wp, 1, t0);
    assert_int_equal(wp_gather_left(&wp, t0), 0);
    teardown(&wp, &c);
}

static void test_worker_takes_and_skips(void **state)
{
    (void)state;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
    struct buf b;
    buf_init(&b);
    msg_put_str(&b, "1AAAAAAX");
    assert_int_equal(msg_send(sv[0], MSG_DELIVER, b.s, b.len, -1), 0);
    buf_reset(&b);
    msg_put_str(&b, "../etc/passwd"); /* not a queue id */
    assert_int_equal(msg_send(sv[0], MSG_DELIVER, b.s, b.len, -1), 0);
    assert_int_equal(msg_send(sv[0], MSG_QUEUED, b.s, b.len, -1), 0);
    buf_reset(&b);
    msg_put_str(&b, "1BBBBBBX");
    assert_int_equal(msg_send(sv[0], MSG_DELIVER, b.s, b.len, -1), 0);
    assert_int_equal(msg_send(sv[0], MSG_DELIVER, b.s, b.len, -1), 0);
    buf_free(&b);
    struct strlist ids;
    sl_init(&ids);
    int eof = 0;
    dworker_take(sv[1], 2, &ids, &eof); /* at most 2 */
    assert_int_equal(ids.n, 2);
    assert_string_equal(ids.v[0], "1AAAAAAX");
    assert_string_equal(ids.v[1], "1BBBBBBX");
    assert_int_equal(eof, 0);
    close(sv[0]);
    dworker_take(sv[1], 10, &ids, &eof); /* the last one, then the end */
    assert_int_equal(ids.n, 3);
    assert_int_equal(eof, 1);
    sl_free(&ids);
    close(sv[1]);
}

/* A reader like a worker's loop: wait for ids, take them, write how many
 * to out; ends when the master's end closes. */
static void racing_reader(int sock, int out)
{
    int eof = 0;
    while (!eof) {
        struct pollfd p = {.fd = sock, .events = POLLIN};
        if (poll(&p, 1, 5000) <= 0)
            break;
        struct strlist ids;
        sl_init(&ids);
        dworker_take(sock, 50, &ids, &eof);
        uint32_t n = (uint32_t)ids.n;
        if (n && write(out, &n, sizeof n) != sizeof n)
            break;
        sl_free(&ids);
    }
    _exit(0);
}

/* Several workers share the socket, as the daemon's do: when two see the
 * same id waiting and the other takes it, the loser must not wait in the
 * read for the next id while holding the ids it took before (they would
 * wait, undelivered, until more mail came: the relay benchmark's stall).
 * Ids go out in small bursts; soon after the last one every id must have
 * been handed back by some reader. */
static void test_workers_racing_for_ids_hold_none_back(void **state)
{
    (void)state;
    enum { READERS = 6, BURSTS = 2000, PER = 3 };
    int sv[2], res[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
    assert_int_equal(pipe(res), 0);
    pid_t kids[READERS];
    for (int i = 0; i < READERS; i++) {
        kids[i] = fork();
        assert_true(kids[i] >= 0);
        if (kids[i] == 0) {
            close(sv[0]);
            close(res[0]);
            racing_reader(sv[1], res[1]);
        }
    }
    close(res[1]);
    set_nonblock(res[0], 1);
    struct buf b;
    buf_init(&b);
    msg_put_str(&b, "1AAAAAAX");
    uint32_t got = 0, n;
    int stuck = -1;
    for (int k = 0; k < BURSTS && stuck < 0; k++) {
        for (int j = 0; j < PER; j++)
            assert_int_equal(msg_send(sv[0], MSG_DELIVER, b.s, b.len, -1), 0);
        /* each burst is the last for a while: all of it must come back */
        long long until = now_ms() + 1000;
        while (got < (uint32_t)((k + 1) * PER) && ms_left(until) > 0) {
            struct pollfd p = {.fd = res[0], .events = POLLIN};
            poll(&p, 1, ms_left(until));
            while (read(res[0], &n, sizeof n) == sizeof n)
                got += n;
        }
        if (got < (uint32_t)((k + 1) * PER))
            stuck = k;
    }
    buf_free(&b);
    close(sv[0]); /* a reader blocked in its read ends now */
    for (int i = 0; i < READERS; i++)
        waitpid(kids[i], NULL, 0);
    close(res[0]);
    close(sv[1]);
    if (stuck >= 0)
        fail_msg("burst %d: %u of %d ids came back; a reader held the rest waiting for more",
                 stuck, got, (stuck + 1) * PER);
}

static void test_worker_round_gathering(void **state)
{
    (void)state;
    assert_true(dworker_gather(1, DW_TAKE_LOCAL, 0));
    assert_true(dworker_gather(DW_TAKE_LOCAL - 1, DW_TAKE_LOCAL, DW_STREAM_MS - 1));
    assert_false(dworker_gather(DW_TAKE_LOCAL, DW_TAKE_LOCAL, 0)); /* full */
    assert_false(dworker_gather(1, DW_TAKE_LOCAL, DW_STREAM_MS));  /* not streaming */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_should_start),
        cmocka_unit_test(test_ids_go_out_one_worker_then_more),
        cmocka_unit_test(test_dead_workers_ids_taken_by_a_fresh_one),
        cmocka_unit_test(test_no_worker_ids_wait),
        cmocka_unit_test(test_full_socket_blocks_and_keeps_ids),
        cmocka_unit_test(test_reports),
        cmocka_unit_test(test_gathering_with_immediate),
        cmocka_unit_test(test_worker_takes_and_skips),
        cmocka_unit_test(test_worker_round_gathering),
        cmocka_unit_test(test_workers_racing_for_ids_hold_none_back),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
