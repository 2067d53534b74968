/* test_milter.c - the milter client (milter.h) against a scripted fake filter
 * in a child process: the commands it sends for each step, the fallback for
 * an old (version 2) filter, replies that are out of protocol, a packet
 * length no filter may send, flags that were not offered, a filter's reply
 * code, and filter-fail=.  (Real filters: tests/e2e/test_milter.py.) */
#include "compat.h"

#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "conf.h"
#include "milter.h"

static char sockpath[108];

enum mode { M_V2, M_V6, M_BADREPLY, M_REPLY421, M_HUGE, M_FLAGS, M_STALL };

static void put32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

static void reply(int fd, char cmd, const void *data, uint32_t n)
{
    unsigned char h[5];
    put32(h, n + 1);
    h[4] = (unsigned char)cmd;
    if (write(fd, h, 5) != 5 || (n && write(fd, data, n) != (ssize_t)n))
        _exit(2);
}

static int readn(int fd, void *p, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, (char *)p + got, n - got);
        if (r <= 0)
            return -1;
        got += (size_t)r;
    }
    return 0;
}

/* The fake filter: one connection; every command letter it gets is written
 * to logfd. */
static void fake_filter(int lsock, enum mode mode, int logfd)
{
    int fd = accept(lsock, NULL, NULL);
    if (fd < 0)
        _exit(1);
    for (;;) {
        unsigned char h[5];
        if (readn(fd, h, 5) < 0)
            _exit(0);
        uint32_t len = (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 | (uint32_t)h[2] << 8 | h[3];
        char *d = malloc(len);
        if (len > 1 && readn(fd, d, len - 1) < 0)
            _exit(0);
        char c = (char)h[4];
        if (write(logfd, &c, 1) != 1)
            _exit(2);
        if (c == 'O') {
            unsigned char o[12];
            put32(o, mode == M_V2 ? 2 : 6);
            put32(o + 4, 0x1ff);
            put32(o + 8, mode == M_FLAGS ? 0x800 : 0);
            reply(fd, 'O', o, 12);
        } else if (c == 'Q') {
            _exit(0);
        } else if (strchr("DA", c)) {
            /* no reply */
        } else if (c == 'M' && mode == M_BADREPLY) {
            reply(fd, 'y', "hello", 6);
        } else if (c == 'M' && mode == M_REPLY421) {
            reply(fd, 'y', "421 4.7.0 go away %s", 21);
        } else if (c == 'M' && mode == M_HUGE) {
            unsigned char x[5];
            put32(x, 0x7fffffff);
            x[4] = 'c';
            if (write(fd, x, 5) != 5)
                _exit(2);
        } else if (c == 'M' && mode == M_STALL) {
            sleep(5);
            reply(fd, 'c', NULL, 0);
        } else if (c == 'E') {
            reply(fd, 'h', "X-Fake\0yes\0", 11);
            reply(fd, 'p', NULL, 0);
            reply(fd, 'c', NULL, 0);
        } else {
            reply(fd, 'c', NULL, 0);
        }
        free(d);
    }
}

static const char MESSAGE[] = "Received: from x\nSubject: hi\n\nbody\n";

static ssize_t mem_read(void *arg, void *p, size_t n, long long off)
{
    (void)arg;
    size_t len = strlen(MESSAGE);
    if ((size_t)off >= len)
        return 0;
    if (n > len - (size_t)off)
        n = len - (size_t)off;
    memcpy(p, MESSAGE + off, n);
    return (ssize_t)n;
}

struct run {
    int mail_code;        /* milter_mail's answer */
    int msg_code;         /* milter_message's, when MAIL passed */
    char seen[64];        /* the commands the filter got */
    char why[256];
    size_t nmods;
};

static void run(enum mode mode, const char *fail, struct run *out)
{
    memset(out, 0, sizeof *out);
    snprintf(sockpath, sizeof sockpath, "/tmp/po-milter-%ld.sock", (long)getpid());
    unlink(sockpath);
    int ls = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sun = { .sun_family = AF_UNIX };
    str_copy(sun.sun_path, sockpath, sizeof sun.sun_path);
    assert_int_equal(bind(ls, (struct sockaddr *)&sun, sizeof sun), 0);
    assert_int_equal(listen(ls, 1), 0);
    int lp[2];
    assert_int_equal(pipe(lp), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(lp[0]);
        fake_filter(ls, mode, lp[1]);
        _exit(0);
    }
    close(lp[1]);
    close(ls);

    struct config c;
    config_defaults(&c);
    struct config_ctx root = {1, 0};
    char spec[160];
    snprintf(spec, sizeof spec, "filter=unix:%s", sockpath);
    assert_int_equal(config_set(&c, spec, "t", &root), 0);
    assert_int_equal(config_set(&c, "filter-timeout=1", "t", &root), 0);
    char f[64];
    snprintf(f, sizeof f, "filter-fail=%s", fail);
    assert_int_equal(config_set(&c, f, "t", &root), 0);

    struct buf why;
    buf_init(&why);
    struct milter_set *ms = milter_open(&c);
    assert_non_null(ms);
    struct milter_client cl = { .ip = "203.0.113.5", .ptr = "client.example", .port = 4242 };
    milter_connect(ms, &cl, &why);
    milter_helo(ms, "client.example", NULL, &why);
    out->mail_code = milter_mail(ms, "a@example.org", "SIZE=10", NULL, &why);
    if (!out->mail_code) {
        assert_int_equal(milter_rcpt(ms, "b@example.org", 0, &why), 0);
        assert_int_equal(milter_data(ms, "QID1", &why), 0);
        out->msg_code = milter_message(ms, mem_read, NULL, (long long)strlen(MESSAGE), &why);
        out->nmods = milter_mods(ms)->n;
    }
    str_copy(out->why, why.s ? why.s : "", sizeof out->why);
    milter_close(ms);
    buf_free(&why);
    config_free(&c);
    if (mode == M_STALL)
        kill(pid, SIGKILL);
    waitpid(pid, NULL, 0); /* it ends at QUIT or when we closed */
    ssize_t n = read(lp[0], out->seen, sizeof out->seen - 1);
    out->seen[n > 0 ? n : 0] = '\0';
    close(lp[0]);
    unlink(sockpath);
}

static void test_v6_sequence(void **st)
{
    (void)st;
    struct run r;
    run(M_V6, "tempfail", &r);
    assert_int_equal(r.mail_code, 0);
    assert_int_equal(r.msg_code, 0);
    /* negotiation, macros before connect/MAIL/RCPT/DATA (HELO has none
     * without TLS), headers, end of headers, body, end of message, quit */
    assert_string_equal(r.seen, "ODCHDMDRDTLLDNBDEQ");
    assert_int_equal(r.nmods, 1); /* X-Fake, after a progress reply */
}

static void test_v2_fallback(void **st)
{
    (void)st;
    struct run r;
    run(M_V2, "tempfail", &r);
    assert_int_equal(r.msg_code, 0);
    assert_null(strchr(r.seen, 'T')); /* no DATA step before version 4 */
    assert_string_equal(r.seen, "ODCHDMDRLLDNBDEQ");
}

static void test_out_of_protocol(void **st)
{
    (void)st;
    struct run r;
    run(M_BADREPLY, "tempfail", &r);
    assert_int_equal(r.mail_code, 451);
    assert_string_equal(r.why, "4.7.1 a mail filter is not available; try again later");
    run(M_BADREPLY, "accept", &r);
    assert_int_equal(r.mail_code, 0); /* filter-fail=accept: on without it */
    assert_int_equal(r.msg_code, 0);
    run(M_HUGE, "tempfail", &r);
    assert_int_equal(r.mail_code, 451);
    run(M_FLAGS, "tempfail", &r); /* asked for a step we did not offer */
    assert_int_equal(r.mail_code, 451);
    assert_string_equal(r.seen, "O");
}

static void test_reply_code_and_deadline(void **st)
{
    (void)st;
    struct run r;
    run(M_REPLY421, "tempfail", &r);
    assert_int_equal(r.mail_code, 421);
    assert_string_equal(r.why, "4.7.0 go away %s");
    long long t0 = now_ms();
    run(M_STALL, "tempfail", &r);
    assert_int_equal(r.mail_code, 451);
    assert_true(now_ms() - t0 < 4000); /* filter-timeout=1 */
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_v6_sequence),
        cmocka_unit_test(test_v2_fallback),
        cmocka_unit_test(test_out_of_protocol),
        cmocka_unit_test(test_reply_code_and_deadline),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
