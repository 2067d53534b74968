/* test_queue_run_plan.c - the queue runner's decisions: which recipients go in one
 * transaction, which worker takes a message, the local pass's shares, the
 * back-off, expiry, the finish rule and the delay notice. */
#include "compat.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "conf.h"
#include "envelope.h"
#include "queue_run_plan.h"
#include "util.h"

static const struct config_ctx root = {1, 0};

static void conf(struct config *c, const char *opt)
{
    config_defaults(c);
    assert_int_equal(config_set(c, "self=example.org", "t", &root), 0);
    if (opt)
        assert_int_equal(config_set(c, opt, "t", &root), 0);
}

static void test_transactions(void **st)
{
    (void)st;
    struct config c;
    conf(&c, NULL);
    struct envelope e;
    env_init(&e);
    const char *to[] = {"a@one.example", "b@two.example", "c@ONE.example", "d@example.org",
                        "e@two.example", "f@three.example", "g@one.example"};
    enum route_way way[] = {ROUTE_MX, ROUTE_MX, ROUTE_MX, ROUTE_LOCAL,
                            ROUTE_MX, ROUTE_UNSURE, ROUTE_MX};
    for (size_t i = 0; i < 7; i++)
        env_add_rcpt(&e, to[i], NULL, NULL);
    e.rcpts[6].state = RS_DONE; /* already delivered: not again */
    size_t idx[8];
    size_t n = rq_remote_order(&c, &e, way, idx);
    /* one.example's two, then two.example's two; local, unsure and done left out */
    assert_int_equal(n, 4);
    assert_int_equal(idx[0], 0);
    assert_int_equal(idx[1], 2);
    assert_int_equal(idx[2], 1);
    assert_int_equal(idx[3], 4);
    assert_true(rq_same_transaction(&c, to[0], to[2]));
    assert_false(rq_same_transaction(&c, to[0], to[1]));
    assert_false(rq_same_transaction(&c, "bare", to[1]));
    /* a program target an expansion wrote is never sent, whatever its way */
    size_t t = env_add_rcpt(&e, "|/bin/cat", "x@example.org", NULL);
    enum route_way way2[9];
    memcpy(way2, way, sizeof way);
    way2[7] = ROUTE_MX;
    way2[8] = ROUTE_MX;
    assert_int_equal(t, 7);
    assert_int_equal(rq_remote_order(&c, &e, way2, idx), 4);
    env_free(&e);
    config_free(&c);
    /* with relay-host every remote recipient goes in one transaction */
    conf(&c, "relay-host=smart.example");
    assert_true(rq_same_transaction(&c, "a@one.example", "b@two.example"));
    config_free(&c);
}

static void test_workers(void **st)
{
    (void)st;
    struct config c;
    conf(&c, NULL);
    struct envelope e1, e2, e3;
    env_init(&e1);
    env_init(&e2);
    env_init(&e3);
    str_copy(e1.qid, "AAAA1", sizeof e1.qid);
    str_copy(e2.qid, "BBBB2", sizeof e2.qid);
    str_copy(e3.qid, "CCCC3", sizeof e3.qid);
    env_add_rcpt(&e1, "u@example.org", NULL, NULL);
    env_add_rcpt(&e1, "v@far.example", NULL, NULL);
    env_add_rcpt(&e2, "w@FAR.example", NULL, NULL);
    env_add_rcpt(&e3, "u@example.org", NULL, NULL);
    assert_string_equal(rq_remote_domain(&c, &e1), "far.example");
    /* one destination over one slot (destination-processes=1): one worker */
    c.dest_procs = 1;
    for (long nw = 1; nw < 9; nw++) {
        long w = rq_worker_of(&c, &e1, nw);
        assert_true(w >= 0 && w < nw);
        assert_int_equal(rq_worker_of(&c, &e2, nw), w);
    }
    /* over three slots: a destination meets in at most three workers */
    c.dest_procs = 3;
    long seen[64] = {0};
    size_t distinct = 0;
    for (int k = 0; k < 200; k++) {
        snprintf(e2.qid, sizeof e2.qid, "Q%05d", k);
        long w = rq_worker_of(&c, &e2, 64);
        assert_true(w >= 0 && w < 64);
        distinct += seen[w]++ == 0;
    }
    assert_true(distinct >= 2 && distinct <= 3);
    assert_int_equal(rq_worker_of(&c, &e3, 4), -1); /* nothing remote */
    assert_null(rq_remote_domain(&c, &e3));
    e1.rcpts[1].state = RS_DONE;
    assert_int_equal(rq_worker_of(&c, &e1, 4), -1);
    env_free(&e1);
    env_free(&e2);
    env_free(&e3);
    config_free(&c);
}

static void test_shares(void **st)
{
    (void)st;
    assert_int_equal(rq_share_size(0, 4), 0);
    assert_int_equal(rq_share_size(1, 4), 1);
    assert_int_equal(rq_share_size(4, 4), 1);
    assert_int_equal(rq_share_size(5, 4), 2);
    assert_int_equal(rq_share_size(100, 4), 25);
    assert_int_equal(rq_share_size(101, 4), 26);
    assert_int_equal(rq_share_size(7, 1), 7);
    assert_int_equal(rq_share_size(7, 0), 7);
}

static void test_backoff(void **st)
{
    (void)st;
    struct config c;
    conf(&c, NULL);
    c.retry_min = 0;
    c.retry_max = 0;
    assert_int_equal(rq_backoff(&c, 1), 300); /* unset: 5 minutes, no ceiling */
    c.retry_min = 60;
    c.retry_max = 3600;
    assert_int_equal(rq_backoff(&c, 1), 60);
    assert_int_equal(rq_backoff(&c, 2), 120);
    assert_int_equal(rq_backoff(&c, 3), 240);
    assert_int_equal(rq_backoff(&c, 6), 1920);
    assert_int_equal(rq_backoff(&c, 7), 3600);
    assert_int_equal(rq_backoff(&c, 500), 3600);
    config_free(&c);
}

static void test_finish(void **st)
{
    (void)st;
    struct config c;
    conf(&c, NULL);
    c.qreturn = 5 * 86400;
    c.qwarn = 4 * 3600;
    struct envelope e;
    env_init(&e);
    env_add_rcpt(&e, "a@far.example", NULL, NULL);
    env_add_rcpt(&e, "b@far.example", NULL, NULL);
    time_t now = 1000000000;
    e.ctime = now - 3600;
    assert_false(rq_expired(&c, &e, now));
    assert_int_equal(rq_fate(&e, 0), RQ_RETRY);
    assert_int_equal(rq_fate(&e, 1), RQ_LEAVE);
    assert_false(rq_must_warn(&c, &e, now, 0));
    e.ctime = now - 5 * 3600;
    assert_true(rq_must_warn(&c, &e, now, 0));
    assert_false(rq_must_warn(&c, &e, now, 1)); /* a bounce just went out */
    e.flags |= ENV_WARNED;
    assert_false(rq_must_warn(&c, &e, now, 0));
    e.flags = ENV_BOUNCE;
    assert_false(rq_must_warn(&c, &e, now, 0));
    e.ctime = now - 5 * 86400;
    assert_true(rq_expired(&c, &e, now));
    e.flags = ENV_DOUBLE; /* nobody to tell: never expires */
    assert_false(rq_expired(&c, &e, now));
    e.flags = 0;
    e.rcpts[0].state = RS_DONE;
    e.rcpts[1].state = RS_FAILED;
    assert_false(rq_expired(&c, &e, now)); /* nothing pending */
    assert_true(rq_any_failed(&e));
    assert_int_equal(rq_fate(&e, 0), RQ_KEEP); /* the bounce is still owed */
    e.rcpts[1].state = RS_BOUNCED;
    assert_false(rq_any_failed(&e));
    assert_int_equal(rq_fate(&e, 0), RQ_REMOVE);
    assert_int_equal(rq_fate(&e, 1), RQ_REMOVE);
    c.qreturn = 0;
    e.rcpts[1].state = RS_PENDING;
    assert_false(rq_expired(&c, &e, now)); /* qreturn=0: never */
    env_free(&e);
    config_free(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_transactions),
        cmocka_unit_test(test_workers),
        cmocka_unit_test(test_shares),
        cmocka_unit_test(test_backoff),
        cmocka_unit_test(test_finish),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
