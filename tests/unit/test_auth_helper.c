/* test_auth_helper.c - the AUTH helper (auth_helper.h) against a virtual
 * domain's passwd file: right and wrong answers, answers never mixed up
 * between concurrent sessions, and a helper that survives malformed requests
 * (wrong type, no answer socket, a pipe instead, two descriptors, truncated
 * fields, oversized, empty records, garbage) and ends when its socket closes. */
#include "compat.h"

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "auth_helper.h"
#include "conf.h"
#include "msg.h"
#include "util.h"
#include "vdomain.h"

static char dir[] = "/tmp/po-authhelper-XXXXXX";
static struct config cfg;
static struct auth_helper helper;

/* "S3cret pw", SHA-512 and bcrypt, as in test_pwhash.c */
#define H6 "$6$QCGLWGl7jKWci6K.$U92Q8shDEmUdHcfp7GlZx18HQsBcN5o5QNVG0P79y3F5s8LuuUyak33vGYIn" \
           "z18fWn8d.Ls7v9FsgJe/Mgw9l/"
#define H2 "$2y$05$zITqLI64gVIpEOSY9hWtm.Dm0X/lNrXSAKzc.eQuY3/9jbVcim0ga"

static void put(const char *rel, const char *text)
{
    char *p = xasprintf("%s/%s", dir, rel);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    free(p);
}

static int setup(void **state)
{
    (void)state;
    if (!mkdtemp(dir))
        return -1;
    char *d = xasprintf("%s/one.example", dir);
    mkdir(d, 0755);
    free(d);
    put("domains.cf", "root:one.example:1\n");
    put("one.example/passwd", "joe:" H6 "\nann:" H2 "\nplain:S3cret pw\n");
    config_defaults(&cfg);
    free(cfg.vpath);
    cfg.vpath = xstrdup(dir);
    return auth_helper_start(&helper, &cfg, NULL, NULL);
}

static int teardown(void **state)
{
    (void)state;
    char *cmd = xasprintf("rm -rf %s", dir);
    int rc = system(cmd);
    free(cmd);
    config_free(&cfg);
    return rc == 0 ? 0 : -1;
}

static enum auth_verdict ask(const char *user, const char *pass)
{
    return auth_helper_ask(helper.fd, user, pass, "203.0.113.7");
}

static void test_answers(void **state)
{
    (void)state;
    assert_int_equal(ask("joe@one.example", "S3cret pw"), AUTH_YES);
    assert_int_equal(ask("JOE@One.Example", "S3cret pw"), AUTH_YES);
    assert_int_equal(ask("ann@one.example", "S3cret pw"), AUTH_YES);
    assert_int_equal(ask("joe@one.example", "S3cret pX"), AUTH_NO);
    assert_int_equal(ask("nobody@one.example", "S3cret pw"), AUTH_NO);
    assert_int_equal(ask("plain@one.example", "S3cret pw"), AUTH_NO); /* plaintext refused */
    assert_int_equal(ask("joe@two.example", "S3cret pw"), AUTH_NO);
    assert_int_equal(ask("joe", "S3cret pw"), AUTH_NO); /* auth-local off */
    assert_int_equal(ask("../one.example/joe@one.example", "S3cret pw"), AUTH_NO);
    assert_int_equal(ask("joe@../one.example", "S3cret pw"), AUTH_NO);
}

/* A request with a reply socket; returns our end of it. */
static int send_raw(enum msg_type type, const void *p, size_t n, int with_fd)
{
    int sp[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp), 0);
    int rc = msg_send(helper.fd, type, p, n, with_fd ? sp[1] : -1);
    close(sp[1]);
    assert_int_equal(rc, 0);
    return sp[0];
}

/* The helper dropped the request: our reply socket sees the end, no answer. */
static void assert_dropped(int fd)
{
    struct msg m;
    assert_int_equal(msg_recv(fd, &m, 64, now_ms() + 10000), 0);
    close(fd);
}

static void test_survives_malformed_requests(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b);
    msg_put_str(&b, "joe@one.example");
    msg_put_str(&b, "S3cret pw");
    msg_put_str(&b, "203.0.113.7");
    assert_dropped(send_raw(MSG_TEST, b.s, b.len, 1));                /* wrong type */
    assert_dropped(send_raw(MSG_AUTH_REQUEST, b.s, b.len - 3, 1));    /* truncated */
    assert_int_equal(close(send_raw(MSG_AUTH_REQUEST, b.s, b.len, 0)), 0); /* no socket */
    struct buf extra;
    buf_init(&extra);
    buf_add(&extra, b.s, b.len);
    msg_put_str(&extra, "more");
    assert_dropped(send_raw(MSG_AUTH_REQUEST, extra.s, extra.len, 1)); /* a 4th field */
    buf_free(&extra);
    /* a field over AUTH_FIELD_MAX */
    struct buf big;
    buf_init(&big);
    char *long_user = xcalloc(1, AUTH_FIELD_MAX + 2);
    memset(long_user, 'a', AUTH_FIELD_MAX + 1);
    msg_put_str(&big, long_user);
    msg_put_str(&big, "x");
    msg_put_str(&big, "y");
    assert_dropped(send_raw(MSG_AUTH_REQUEST, big.s, big.len, 1));
    free(long_user);
    /* far over the request size */
    buf_reset(&big);
    for (int i = 0; i < 100; i++)
        buf_add(&big, b.s, b.len);
    assert_dropped(send_raw(MSG_AUTH_REQUEST, big.s, big.len, 1));
    buf_free(&big);
    /* a pipe where the answer socket belongs */
    int pp[2];
    assert_int_equal(pipe(pp), 0);
    assert_int_equal(msg_send(helper.fd, MSG_AUTH_REQUEST, b.s, b.len, pp[1]), 0);
    close(pp[1]);
    char c;
    assert_int_equal(read(pp[0], &c, 1), 0); /* nothing written, closed */
    close(pp[0]);
    /* two descriptors in one message, raw */
    int a[2], d[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, a), 0);
    assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, d), 0);
    union { struct cmsghdr h; char space[CMSG_SPACE(2 * sizeof(int))]; } ctl;
    memset(&ctl, 0, sizeof ctl);
    unsigned char hdr[8] = { 0, MSG_VERSION, 0, MSG_AUTH_REQUEST, 0, 0, 0, 0 };
    hdr[4] = (unsigned char)(b.len >> 24), hdr[5] = (unsigned char)(b.len >> 16);
    hdr[6] = (unsigned char)(b.len >> 8), hdr[7] = (unsigned char)b.len;
    struct iovec iov[2] = { { hdr, sizeof hdr }, { b.s, b.len } };
    struct msghdr mh = { .msg_iov = iov, .msg_iovlen = 2, .msg_control = ctl.space,
                         .msg_controllen = sizeof ctl.space };
    struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(2 * sizeof(int));
    int fds[2] = { a[1], d[1] };
    memcpy(CMSG_DATA(cm), fds, sizeof fds);
    assert_true(sendmsg(helper.fd, &mh, 0) > 0);
    close(a[1]);
    close(d[1]);
    assert_dropped(a[0]);
    assert_dropped(d[0]);
    /* an empty record and garbage */
    assert_int_equal(send(helper.fd, "", 0, 0), 0);
    assert_int_equal(send(helper.fd, "garbage!garbage!", 16, 0), 16);
    buf_free(&b);
    /* and it still answers */
    assert_int_equal(ask("joe@one.example", "S3cret pw"), AUTH_YES);
    assert_int_equal(ask("joe@one.example", "wrong"), AUTH_NO);
}

static void test_concurrent_answers_not_mixed(void **state)
{
    (void)state;
    enum { N = 16 };
    pid_t kids[N];
    for (int i = 0; i < N; i++) {
        kids[i] = fork();
        assert_true(kids[i] >= 0);
        if (kids[i] == 0) {
            const char *pw = (i & 1) ? "S3cret pw" : "wrong";
            const char *user = (i & 2) ? "ann@one.example" : "joe@one.example";
            enum auth_verdict want = (i & 1) ? AUTH_YES : AUTH_NO;
            _exit(ask(user, pw) == want ? 0 : 1);
        }
    }
    for (int i = 0; i < N; i++) {
        int st;
        assert_int_equal(waitpid(kids[i], &st, 0), kids[i]);
        assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    }
}

static void test_ends_when_released(void **state)
{
    (void)state;
    pid_t pid = helper.pid;
    auth_helper_release(&helper);
    long long end = now_ms() + 10000;
    int st, r = 0;
    while ((r = waitpid(pid, &st, WNOHANG)) == 0 && now_ms() < end)
        usleep(20000);
    assert_int_equal(r, pid);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    /* no helper: a temporary failure, not a yes or no */
    assert_int_equal(auth_helper_ask(-1, "joe@one.example", "S3cret pw", ""), AUTH_TEMP);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_answers),
        cmocka_unit_test(test_survives_malformed_requests),
        cmocka_unit_test(test_concurrent_answers_not_mixed),
        cmocka_unit_test(test_ends_when_released),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
