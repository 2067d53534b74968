/* test_smtp_txn.c - the SMTP client's transaction (smtp_txn.h), connection
 * I/O (smtp_conn.h) and connection cache (smtp_cache.h), driven over a
 * socketpair: the "server" replies are written ahead (the socket buffer holds
 * them), the transaction runs, then what the client sent is read back.  The
 * decisions checked: which recipient gets which outcome for which reply,
 * pipelined grouping, refusals before talking, a connection lost before and
 * after the message text (RFC 5321 6.1), reuse only after RSET. */
#include "compat.h"

#include <arpa/inet.h>
#include <netinet/in.h>
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
#include "envelope.h"
#include "smtp_cache.h"
#include "smtp_conn.h"
#include "smtp_txn.h"
#include "smtp_client.h"
#include "util.h"

struct fx {
    struct config c;
    struct envelope e;
    struct msgdata d;
    struct smtp_conn *k;
    int peer;                   /* the server's end */
    struct smtpc_result res[3];
    struct smtp_rcpt rs[3];
    size_t n;
};

static const char body[] = "Subject: t\n\n.dot line\nbye\n";

static int setup(void **st)
{
    struct fx *f = xcalloc(1, sizeof *f);
    signal(SIGPIPE, SIG_IGN); /* as smtpc_deliver does */
    config_defaults(&f->c);
    env_init(&f->e);
    str_copy(f->e.qid, "Q1", sizeof f->e.qid);
    free(f->e.sender);
    f->e.sender = xstrdup("s@here.test");
    const char *to[] = {"a@r.test", "b@r.test", "c@r.test"};
    f->n = 3;
    for (size_t i = 0; i < f->n; i++) {
        env_add_rcpt(&f->e, to[i], NULL, NULL);
        f->rs[i].addr = f->e.rcpts[i].addr;
        f->rs[i].r = &f->e.rcpts[i];
        f->rs[i].res = &f->res[i];
        smtp_rcpt_set(&f->rs[i], SO_DEFERRED, "4.4.1 not tried", NULL, 0);
    }
    char tmpl[] = "/tmp/test_smtp_txn.XXXXXX";
    f->d.fd = mkstemp(tmpl);
    assert_true(f->d.fd >= 0);
    unlink(tmpl);
    assert_int_equal(write(f->d.fd, body, sizeof body - 1), (ssize_t)(sizeof body - 1));
    f->d.len = sizeof body - 1;
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
    s4->sin_family = AF_INET;
    s4->sin_port = htons(25);
    inet_pton(AF_INET, "203.0.113.7", &s4->sin_addr);
    f->k = smtp_conn_new(&f->c, 0, &ss);
    smtp_conn_name(f->k, "mx.r.test");
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
    if (f->k)
        smtp_conn_free(f->k);
    close(f->peer);
    close(f->d.fd);
    smtpc_results_free(f->res, f->n);
    env_free(&f->e);
    config_free(&f->c);
    free(f);
    return 0;
}

/* The server's replies, written before the client runs. */
static void replies(struct fx *f, const char *text)
{
    assert_int_equal(write(f->peer, text, strlen(text)), (ssize_t)strlen(text));
}

/* Everything the client has sent so far (malloc'd). */
static char *sent(struct fx *f)
{
    struct buf b;
    buf_init(&b);
    char tmp[4096];
    ssize_t r;
    set_nonblock(f->peer, 1);
    while ((r = read(f->peer, tmp, sizeof tmp)) > 0)
        buf_add(&b, tmp, (size_t)r);
    return buf_steal(&b);
}

static void outcome(const struct fx *f, size_t i, enum smtpc_outcome o, const char *status,
                    int final)
{
    assert_int_equal(f->res[i].outcome, o);
    if (strncmp(f->res[i].status, status, strlen(status)) != 0)
        fail_msg("recipient %zu: status \"%s\", want \"%s...\"", i, f->res[i].status, status);
    assert_int_equal(f->rs[i].final, final);
}

/* PIPELINING: MAIL, every RCPT and DATA in one write; each RCPT reply
 * decides its recipient; the final reply answers for the accepted ones. */
static void test_pipelined(void **st)
{
    struct fx *f = *st;
    f->k->ext_pipelining = 1;
    f->k->ext_size = 1;
    replies(f, "250 2.1.0 ok\r\n250 ok\r\n550 5.1.1 no such user\r\n451 4.3.0 later\r\n"
               "354 go\r\n250 2.0.0 queued as X\r\n");
    assert_int_equal(smtp_txn(f->k, &f->e, &f->d, smtp_wire_size(&f->d, &(int){0}), 0, f->rs,
                              f->n), 0);
    outcome(f, 0, SO_SENT, "2.0.0 250 queued as X", 1);
    outcome(f, 1, SO_BOUNCED, "5.1.1 550 no such user", 1);
    outcome(f, 2, SO_DEFERRED, "4.3.0 451 later", 1);
    assert_string_equal(f->res[0].mta, "mx.r.test");
    assert_string_equal(f->res[0].relay, "mx.r.test[203.0.113.7]:25");
    char *s = sent(f);
    assert_non_null(strstr(s, "MAIL FROM:<s@here.test> SIZE="));
    assert_non_null(strstr(s, "\r\nRCPT TO:<a@r.test>\r\nRCPT TO:<b@r.test>\r\n"
                              "RCPT TO:<c@r.test>\r\nDATA\r\n"));
    /* the text: CRLF, the dot stuffed, then the end mark */
    assert_non_null(strstr(s, "DATA\r\nSubject: t\r\n\r\n..dot line\r\nbye\r\n.\r\n"));
    free(s);
}

/* Without PIPELINING a refused MAIL answers for everyone: no RCPT is sent. */
static void test_mail_refused(void **st)
{
    struct fx *f = *st;
    replies(f, "452 4.3.1 out of space\r\n");
    assert_int_equal(smtp_txn(f->k, &f->e, &f->d, 100, 0, f->rs, f->n), 0);
    for (size_t i = 0; i < f->n; i++)
        outcome(f, i, SO_DEFERRED, "4.3.1 452 out of space", 1);
    char *s = sent(f);
    assert_null(strstr(s, "RCPT"));
    free(s);
}

/* A recipient already answered by an earlier host takes no part. */
static void test_final_skipped(void **st)
{
    struct fx *f = *st;
    smtp_rcpt_set(&f->rs[1], SO_SENT, "2.0.0 done elsewhere", NULL, 1);
    replies(f, "250 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n250 fine\r\n");
    assert_int_equal(smtp_txn(f->k, &f->e, &f->d, 100, 0, f->rs, f->n), 0);
    outcome(f, 0, SO_SENT, "2.0.0 250 fine", 1);
    outcome(f, 1, SO_SENT, "2.0.0 done elsewhere", 1);
    outcome(f, 2, SO_SENT, "2.0.0 250 fine", 1);
    char *s = sent(f);
    assert_null(strstr(s, "b@r.test"));
    free(s);
}

/* Decided before talking: SMTPUTF8 needed but not offered, a declared SIZE
 * below the message.  Nothing is sent. */
static void test_refused_early(void **st)
{
    struct fx *f = *st;
    f->e.flags |= ENV_SMTPUTF8;
    assert_int_equal(smtp_txn(f->k, &f->e, &f->d, 100, 0, f->rs, f->n), 0);
    outcome(f, 0, SO_BOUNCED, "5.6.7 ", 1);
    f->e.flags &= ~ENV_SMTPUTF8;
    for (size_t i = 0; i < f->n; i++)
        smtp_rcpt_set(&f->rs[i], SO_DEFERRED, "4.4.1 not tried", NULL, 0);
    f->k->size_limit = 50;
    assert_int_equal(smtp_txn(f->k, &f->e, &f->d, 100, 0, f->rs, f->n), 0);
    outcome(f, 2, SO_BOUNCED, "5.3.4 ", 1);
    char *s = sent(f);
    assert_string_equal(s, "");
    free(s);
}

/* Lost before the text went out: the recipients stay open for the next host.
 * Lost after it: they may have it, so no other host now (RFC 5321 6.1). */
static void test_lost_before_and_after_text(void **st)
{
    struct fx *f = *st;
    replies(f, "250 ok\r\n250 ok\r\n");
    shutdown(f->peer, SHUT_WR);
    assert_int_equal(smtp_txn(f->k, &f->e, &f->d, 100, 0, f->rs, f->n), -1);
    outcome(f, 0, SO_DEFERRED, "4.4.2 ", 0);
    outcome(f, 2, SO_DEFERRED, "4.4.2 ", 0);
    assert_true(f->k->fd < 0);
}

static void test_lost_after_text(void **st)
{
    struct fx *f = *st;
    f->k->ext_pipelining = 1;
    replies(f, "250 ok\r\n250 ok\r\n550 no\r\n250 ok\r\n354 go\r\n");
    shutdown(f->peer, SHUT_WR);
    assert_int_equal(smtp_txn(f->k, &f->e, &f->d, 100, 0, f->rs, f->n), -1);
    outcome(f, 0, SO_DEFERRED, "4.4.2 ", 1); /* final: no second copy elsewhere */
    outcome(f, 1, SO_BOUNCED, "5.0.0 550 no", 1);
    outcome(f, 2, SO_DEFERRED, "4.4.2 ", 1);
}

/* A hostile reply: a line longer than SMTPC_LINE_MAX ends the connection,
 * even when it arrives in one read; one of exactly that length is fine. */
static void test_overlong_reply(void **st)
{
    struct fx *f = *st;
    struct buf b;
    buf_init(&b);
    buf_adds(&b, "250-");
    for (int i = 4; i < SMTPC_LINE_MAX; i++)
        buf_addc(&b, 'x');
    buf_adds(&b, "\r\n250 ");
    for (int i = 3; i < SMTPC_LINE_MAX; i++)
        buf_addc(&b, 'y');
    buf_adds(&b, "\r\n");
    replies(f, b.s);
    buf_free(&b);
    struct smtp_reply r;
    smtp_reply_init(&r);
    assert_int_equal(smtp_read_reply(f->k, &r, 5), -1);
    assert_int_equal(r.lines.n, 1); /* the first line (SMTPC_LINE_MAX bytes) was taken */
    assert_non_null(strstr(f->k->err, "longer than"));
    assert_true(f->k->fd < 0);
    smtp_reply_free(&r);
}

/* The cache gives a connection back only to the same peer and only after
 * RSET was answered 2xx; one that fails RSET is closed (QUIT). */
static void test_cache(void **st)
{
    struct fx *f = *st;
    struct smtpc_cache *cc = smtpc_cache_new();
    struct sockaddr_storage peer = f->k->ss, other = f->k->ss;
    ((struct sockaddr_in *)&other)->sin_port = htons(26);
    f->k->pkey = xstrdup("tls=require ca=/a auth=/x");
    smtp_cache_put(cc, f->k);
    f->k = NULL; /* the cache owns it */
    assert_null(smtp_cache_take(cc, &other, "tls=require ca=/a auth=/x", 0)); /* another port */
    /* the same peer with another TLS policy or credentials (relay-map=): not this one */
    assert_null(smtp_cache_take(cc, &peer, "tls=may ca=- auth=-", 0));
    assert_null(smtp_cache_take(cc, &peer, NULL, 0));
    char *none = sent(f); /* not even RSET went to a connection of another policy */
    assert_true(!none || !*none);
    free(none);
    replies(f, "250 reset\r\n");
    struct smtp_conn *k = smtp_cache_take(cc, &peer, "tls=require ca=/a auth=/x", 0);
    assert_non_null(k);
    char *s = sent(f);
    assert_string_equal(s, "RSET\r\n");
    free(s);
    assert_null(smtp_cache_take(cc, &peer, "tls=require ca=/a auth=/x", 0)); /* none left */
    smtp_cache_put(cc, k);
    replies(f, "421 4.3.2 closing\r\n");
    shutdown(f->peer, SHUT_WR); /* then EOF: QUIT gets no answer */
    assert_null(smtp_cache_take(cc, &peer, "tls=require ca=/a auth=/x", 0));
    s = sent(f);
    assert_string_equal(s, "RSET\r\nQUIT\r\n");
    free(s);
    smtpc_cache_close(cc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_pipelined, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mail_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_final_skipped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused_early, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lost_before_and_after_text, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lost_after_text, setup, teardown),
        cmocka_unit_test_setup_teardown(test_overlong_reply, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cache, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
