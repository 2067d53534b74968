/* test_lmtp.c - the LMTP client (lmtp.h): the reply mapping, the domain
 * file's value, and whole sessions over a socketpair whose "server" replies
 * are written ahead (then EOF), checking which recipient gets which result
 * for which reply: per-recipient replies after the dot (RFC 2033 4.2), RCPT
 * and DATA refusals, a connection lost between two of those replies, a
 * refused greeting, the session's time budget. */
#include "compat.h"

#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "conf.h"
#include "lmtp.h"
#include "smtp_conn.h"
#include "util.h"

#define NJOBS 4

struct fx {
    struct config c;
    struct msgdata d;
    struct smtp_conn *k;
    int peer; /* the server's end */
    struct lmtp_job j[NJOBS];
    int msg_a, msg_b; /* their addresses tell the messages apart */
};

static const char body[] = "Subject: t\n\n.dot line\nh\xc3\xa9\n";

static int setup(void **st)
{
    struct fx *f = xcalloc(1, sizeof *f);
    signal(SIGPIPE, SIG_IGN);
    config_defaults(&f->c);
    free(f->c.hostname);
    f->c.hostname = xstrdup("mx.test");
    char tmpl[] = "/tmp/test_lmtp.XXXXXX";
    f->d.fd = mkstemp(tmpl);
    assert_true(f->d.fd >= 0);
    unlink(tmpl);
    assert_int_equal(write(f->d.fd, body, sizeof body - 1), (ssize_t)(sizeof body - 1));
    f->d.len = sizeof body - 1;
    /* message A to a, b, c; message B to d */
    const char *to[NJOBS] = {"a", "b", "c@v.example", "d"};
    for (size_t i = 0; i < NJOBS; i++)
        f->j[i] = (struct lmtp_job){.rcpt = to[i], .sender = "s@here.test", .data = f->d,
                                    .qid = "Q", .msg = i < 3 ? &f->msg_a : &f->msg_b};
    struct sockaddr_storage none;
    memset(&none, 0, sizeof none);
    f->k = smtp_conn_new(&f->c, 0, &none);
    f->k->relay = xstrdup("lmtp:unix:/run/test");
    f->k->host = xstrdup("lmtp:unix:/run/test");
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    assert_int_equal(set_nonblock(sv[0], 1), 0);
    f->k->fd = sv[0];
    f->peer = sv[1];
    *st = f;
    return 0;
}

static int teardown(void **st)
{
    struct fx *f = *st;
    smtp_conn_free(f->k);
    close(f->peer);
    close(f->d.fd);
    for (size_t i = 0; i < NJOBS; i++)
        free(f->j[i].status);
    config_free(&f->c);
    free(f);
    return 0;
}

/* The server's whole side, written before the client runs; then EOF. */
static void server(struct fx *f, const char *text)
{
    assert_int_equal(write(f->peer, text, strlen(text)), (ssize_t)strlen(text));
    shutdown(f->peer, SHUT_WR);
}

static char *sent(struct fx *f)
{
    struct buf b;
    buf_init(&b);
    char tmp[4096];
    ssize_t r;
    set_nonblock(f->peer, 1);
    while ((r = read(f->peer, tmp, sizeof tmp)) > 0)
        buf_add(&b, tmp, (size_t)r);
    buf_addc(&b, '\0');
    return buf_steal(&b);
}

static void result(const struct fx *f, size_t i, enum deliv_result r, const char *status)
{
    assert_non_null(f->j[i].status);
    if (f->j[i].res != r || strncmp(f->j[i].status, status, strlen(status)) != 0)
        fail_msg("job %zu: %d \"%s\", want %d \"%s...\"", i, f->j[i].res, f->j[i].status, r,
                 status);
}

static void test_result_of(void **st)
{
    (void)st;
    assert_int_equal(lmtp_result_of(250), DELIV_OK);
    assert_int_equal(lmtp_result_of(251), DELIV_OK);
    assert_int_equal(lmtp_result_of(452), DELIV_DEFER);
    assert_int_equal(lmtp_result_of(550), DELIV_FAIL);
    assert_int_equal(lmtp_result_of(354), DELIV_DEFER); /* not an answer for a recipient */
    assert_int_equal(lmtp_result_of(0), DELIV_DEFER);
}

static void file_bad(const char *text, const char *why_part)
{
    char *why = NULL;
    char *v = lmtp_file_value(text, strlen(text), &why);
    assert_null(v);
    assert_non_null(why);
    if (!strstr(why, why_part))
        fail_msg("\"%s\": why \"%s\", want \"%s\"", text, why, why_part);
    free(why);
}

static void test_file_value(void **st)
{
    (void)st;
    char *why = NULL;
    const char *t = "# dovecot\n\n  lmtp:unix:/run/dovecot/lmtp \r\n";
    char *v = lmtp_file_value(t, strlen(t), &why);
    assert_string_equal(v, "lmtp:unix:/run/dovecot/lmtp");
    assert_null(why);
    free(v);
    v = lmtp_file_value("lmtp:[::1]:24", 13, &why);
    assert_string_equal(v, "lmtp:[::1]:24");
    free(v);
    file_bad("", "names no server");
    file_bad("# only a comment\n", "names no server");
    file_bad("lmtp:[127.0.0.1]:24\nlmtp:[127.0.0.1]:25\n", "more than one");
    file_bad("/var/mail/%u\n", "not an LMTP server");
    file_bad("lmtp:unix:relative\n", "absolute");
    file_bad("lmtp:[h]:99999\n", "port");
    file_bad("lmtp:[a\rb]:24\n", "control character");
    file_bad("lmtp:unix:/a b\n", "blank");
    v = lmtp_file_value("lmtp:unix:/a\0b", 14, &why);
    assert_null(v);
    assert_non_null(strstr(why, "NUL"));
    free(why);
}

/* Pipelined: one write for MAIL, the RCPTs and DATA; after the dot one reply
 * per accepted recipient, in RCPT order; the next message in the same
 * session. */
static void test_pipelined_two_messages(void **st)
{
    struct fx *f = *st;
    server(f, "220 lmtp ready\r\n"
              "250-here\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 ENHANCEDSTATUSCODES\r\n"
              "250 2.1.0 OK\r\n250 2.1.5 OK\r\n550 5.1.1 <b> User doesn't exist: b\r\n"
              "250 2.1.5 OK\r\n354 OK\r\n"
              "250 2.0.0 <a> Saved\r\n452 4.2.2 <c@v.example> Quota exceeded\r\n"
              "250 2.1.0 OK\r\n250 2.1.5 OK\r\n354 OK\r\n250 2.0.0 <d> Saved\r\n"
              "221 2.0.0 Bye\r\n");
    lmtp_session(f->k, f->j, NJOBS, now_ms() + 60000);
    result(f, 0, DELIV_OK, "2.0.0 250 <a> Saved");
    result(f, 1, DELIV_FAIL, "5.1.1 550 <b> User doesn't exist: b");
    result(f, 2, DELIV_DEFER, "4.2.2 452 <c@v.example> Quota exceeded");
    result(f, 3, DELIV_OK, "2.0.0 250 <d> Saved");
    assert_int_equal(f->k->fd, -1);
    char *s = sent(f);
    assert_non_null(strstr(s, "LHLO mx.test\r\n"));
    assert_non_null(strstr(s, "MAIL FROM:<s@here.test> BODY=8BITMIME\r\nRCPT TO:<a>\r\n"
                              "RCPT TO:<b>\r\nRCPT TO:<c@v.example>\r\nDATA\r\n"
                              "Subject: t\r\n\r\n..dot line\r\nh\xc3\xa9\r\n.\r\n"));
    assert_non_null(strstr(s, ".\r\nMAIL FROM:<s@here.test> BODY=8BITMIME\r\nRCPT TO:<d>\r\n"));
    assert_null(strstr(s, "SIZE=")); /* not offered */
    assert_non_null(strstr(s, "QUIT\r\n"));
    free(s);
}

/* The connection goes after the first of two replies after the dot: that
 * one counts, the other recipient defers, and so does the message not
 * begun. */
static void test_lost_between_replies(void **st)
{
    struct fx *f = *st;
    f->j[2].msg = &f->msg_b; /* A: a, b; B: c, d */
    server(f, "220 ready\r\n250 here\r\n250 OK\r\n250 OK\r\n250 OK\r\n354 go\r\n"
              "250 2.0.0 <a> Saved\r\n");
    lmtp_session(f->k, f->j, NJOBS, now_ms() + 60000);
    result(f, 0, DELIV_OK, "2.0.0 250 <a> Saved");
    result(f, 1, DELIV_DEFER, "4.4.2 lmtp:unix:/run/test: lost connection");
    result(f, 2, DELIV_DEFER, "4.4.2 lmtp:unix:/run/test: lost connection");
    result(f, 3, DELIV_DEFER, "4.4.2 ");
    char *s = sent(f);
    assert_non_null(strstr(s, "MAIL FROM:<s@here.test>\r\n")); /* no 8BITMIME offered */
    free(s);
}

/* Without PIPELINING: DATA refused answers for the accepted ones, then RSET;
 * a message whose only recipient is refused sends no DATA. */
static void test_data_refused_then_rcpt_refused(void **st)
{
    struct fx *f = *st;
    f->j[1].msg = f->j[2].msg = &f->msg_b; /* A: a; B: b, c, d */
    server(f, "220 ready\r\n250 here\r\n"
              "250 OK\r\n250 OK\r\n554 5.3.0 no thanks\r\n250 reset\r\n"
              "250 OK\r\n550 5.1.1 no b\r\n450 4.2.1 busy c\r\n550 5.1.1 no d\r\n250 reset\r\n"
              "221 bye\r\n");
    lmtp_session(f->k, f->j, NJOBS, now_ms() + 60000);
    result(f, 0, DELIV_FAIL, "5.3.0 554 no thanks");
    result(f, 1, DELIV_FAIL, "5.1.1 550 no b");
    result(f, 2, DELIV_DEFER, "4.2.1 450 busy c");
    result(f, 3, DELIV_FAIL, "5.1.1 550 no d");
    char *s = sent(f);
    const char *second = strstr(s, "RSET\r\nMAIL");
    assert_non_null(second);
    assert_null(strstr(second, "DATA"));
    assert_non_null(strstr(second, "RCPT TO:<d>\r\nRSET\r\nQUIT\r\n"));
    free(s);
}

static void test_greeting_refused(void **st)
{
    struct fx *f = *st;
    server(f, "554 5.3.2 not today\r\n");
    lmtp_session(f->k, f->j, NJOBS, now_ms() + 60000);
    for (size_t i = 0; i < NJOBS; i++)
        result(f, i, DELIV_DEFER, "4.4.1 lmtp:unix:/run/test: greeting: 5.3.2 554 not today");
}

/* No connection at all (connect failed: k->err): everything defers with it. */
static void test_not_connected(void **st)
{
    struct fx *f = *st;
    smtp_conn_fail(f->k, "4.4.1 lmtp:unix:/run/test: cannot connect: No such file or directory");
    lmtp_session(f->k, f->j, NJOBS, now_ms() + 60000);
    for (size_t i = 0; i < NJOBS; i++)
        result(f, i, DELIV_DEFER, "4.4.1 lmtp:unix:/run/test: cannot connect: No such file");
}

/* Past the budget no transaction starts: LHLO, then QUIT. */
static void test_budget(void **st)
{
    struct fx *f = *st;
    server(f, "220 ready\r\n250 here\r\n221 bye\r\n");
    lmtp_session(f->k, f->j, NJOBS, now_ms() - 1);
    for (size_t i = 0; i < NJOBS; i++)
        result(f, i, DELIV_DEFER, "4.4.2 lmtp:unix:/run/test: the LMTP session ran out of time");
    char *s = sent(f);
    assert_string_equal(s, "LHLO mx.test\r\nQUIT\r\n");
    free(s);
}

/* A name that could split a command line is never sent; a SIZE limit the
 * server declared is kept before talking. */
static void test_refused_before_talking(void **st)
{
    struct fx *f = *st;
    f->j[1].rcpt = "b>\r\nRCPT TO:<x";
    f->j[3].msg = &f->msg_a; /* one message: a, b, c, d */
    f->j[2].rcpt = "c d";
    server(f, "220 ready\r\n250-here\r\n250 SIZE 10\r\n221 bye\r\n");
    lmtp_session(f->k, f->j, NJOBS, now_ms() + 60000);
    for (size_t i = 0; i < NJOBS; i++)
        result(f, i, DELIV_FAIL, "5.3.4 message of ");
    char *s = sent(f);
    assert_string_equal(s, "LHLO mx.test\r\nQUIT\r\n");
    free(s);
}

static void test_unusable_name(void **st)
{
    struct fx *f = *st;
    f->j[1].rcpt = "b>\r\nRCPT TO:<x";
    server(f, "220 ready\r\n250 here\r\n250 OK\r\n250 OK\r\n250 OK\r\n354 go\r\n"
              "250 2.0.0 a\r\n250 2.0.0 c\r\n250 OK\r\n250 OK\r\n354 go\r\n250 2.0.0 d\r\n"
              "221 bye\r\n");
    lmtp_session(f->k, f->j, NJOBS, now_ms() + 60000);
    result(f, 0, DELIV_OK, "2.0.0 250 a");
    result(f, 1, DELIV_FAIL, "5.1.3 mailbox name unusable in LMTP");
    result(f, 2, DELIV_OK, "2.0.0 250 c");
    result(f, 3, DELIV_OK, "2.0.0 250 d");
    char *s = sent(f);
    assert_null(strstr(s, "RCPT TO:<x"));
    free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_result_of),
        cmocka_unit_test(test_file_value),
        cmocka_unit_test_setup_teardown(test_pipelined_two_messages, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lost_between_replies, setup, teardown),
        cmocka_unit_test_setup_teardown(test_data_refused_then_rcpt_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_greeting_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_not_connected, setup, teardown),
        cmocka_unit_test_setup_teardown(test_budget, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused_before_talking, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unusable_name, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
