/* test_msg.c - the message framing: round trips of every field type, and
 * every malformed message (truncated header or payload, wrong version,
 * unknown type, oversize, a NUL in a string, a mid-message end) refused. */
#include "compat.h"

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "msg.h"
#include "util.h"

static void make_pipe(int p[2])
{
    assert_int_equal(pipe(p), 0);
}

/* A raw header as msg.c writes it: version, type, length (big-endian). */
static void raw_header(unsigned char h[8], unsigned version, unsigned type, uint32_t len)
{
    h[0] = (unsigned char)(version >> 8);
    h[1] = (unsigned char)version;
    h[2] = (unsigned char)(type >> 8);
    h[3] = (unsigned char)type;
    h[4] = (unsigned char)(len >> 24);
    h[5] = (unsigned char)(len >> 16);
    h[6] = (unsigned char)(len >> 8);
    h[7] = (unsigned char)len;
}

static void test_round_trip_fields(void **state)
{
    (void)state;
    int p[2];
    make_pipe(p);
    struct buf b;
    buf_init(&b);
    msg_put_u32(&b, 0xdeadbeef);
    msg_put_u64(&b, 0x0123456789abcdefULL);
    msg_put_i64(&b, -42);
    msg_put_str(&b, "alice");
    msg_put_str(&b, NULL);
    msg_put_str(&b, "");
    msg_put_bytes(&b, "a\0b", 3);
    assert_int_equal(msg_send(p[1], MSG_TEST, b.s, b.len, -1), 0);
    buf_free(&b);

    struct msg m;
    assert_int_equal(msg_recv(p[0], &m, MSG_MAX, 0), 1);
    assert_int_equal(m.type, MSG_TEST);
    assert_int_equal(m.fd, -1);
    struct msg_reader r;
    msg_reader_init(&r, &m);
    uint32_t u32;
    uint64_t u64;
    int64_t i64;
    char *s1, *s2, *s3;
    const unsigned char *bp;
    size_t bn;
    assert_int_equal(msg_get_u32(&r, &u32), 0);
    assert_int_equal(u32, 0xdeadbeef);
    assert_int_equal(msg_get_u64(&r, &u64), 0);
    assert_true(u64 == 0x0123456789abcdefULL);
    assert_int_equal(msg_get_i64(&r, &i64), 0);
    assert_true(i64 == -42);
    assert_int_equal(msg_get_str(&r, &s1), 0);
    assert_string_equal(s1, "alice");
    assert_int_equal(msg_get_str(&r, &s2), 0);
    assert_null(s2);
    assert_int_equal(msg_get_str(&r, &s3), 0);
    assert_string_equal(s3, "");
    assert_int_equal(msg_get_end(&r), -1); /* the bytes are still unread */
    msg_reader_init(&r, &m);
    r.p += m.len - 7, r.left = 7;
    assert_int_equal(msg_get_bytes(&r, &bp, &bn), 0);
    assert_int_equal(bn, 3);
    assert_memory_equal(bp, "a\0b", 3);
    assert_int_equal(msg_get_end(&r), 0);
    free(s1);
    free(s3);
    msg_free(&m);
    close(p[1]);
    assert_int_equal(msg_recv(p[0], &m, MSG_MAX, 0), 0); /* clean end */
    close(p[0]);
}

static void test_empty_payload_and_short_reader(void **state)
{
    (void)state;
    int p[2];
    make_pipe(p);
    assert_int_equal(msg_send(p[1], MSG_TEST, NULL, 0, -1), 0);
    struct msg m;
    assert_int_equal(msg_recv(p[0], &m, 16, 0), 1);
    assert_int_equal(m.len, 0);
    struct msg_reader r;
    msg_reader_init(&r, &m);
    uint32_t v;
    assert_int_equal(msg_get_u32(&r, &v), -1); /* too short */
    assert_int_equal(msg_get_end(&r), -1);     /* and the reader stays bad */
    msg_free(&m);
    close(p[0]);
    close(p[1]);
}

static void test_string_with_nul_refused(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b);
    msg_put_bytes(&b, "ev\0il", 5);
    struct msg m = {.type = MSG_TEST, .len = b.len, .data = (unsigned char *)b.s, .fd = -1};
    struct msg_reader r;
    msg_reader_init(&r, &m);
    char *s = (char *)"x";
    assert_int_equal(msg_get_str(&r, &s), -1);
    assert_null(s);
    assert_int_equal(msg_get_end(&r), -1);
    /* a string longer than the payload */
    buf_reset(&b);
    msg_put_u32(&b, 100);
    buf_adds(&b, "short");
    m.len = b.len;
    m.data = (unsigned char *)b.s;
    msg_reader_init(&r, &m);
    assert_int_equal(msg_get_str(&r, &s), -1);
    buf_free(&b);
}

/* Write raw bytes, close, and expect msg_recv to fail with err. */
static void expect_refused(const void *raw, size_t n, size_t max, int err)
{
    int p[2];
    make_pipe(p);
    assert_int_equal(write(p[1], raw, n), (ssize_t)n);
    close(p[1]);
    struct msg m;
    errno = 0;
    assert_int_equal(msg_recv(p[0], &m, max, now_ms() + 2000), -1);
    assert_int_equal(errno, err);
    assert_null(m.data);
    close(p[0]);
}

static void test_truncated_header(void **state)
{
    (void)state;
    unsigned char h[8];
    raw_header(h, MSG_VERSION, MSG_TEST, 0);
    expect_refused(h, 5, MSG_MAX, EPROTO);
}

static void test_truncated_payload(void **state)
{
    (void)state;
    unsigned char raw[8 + 3];
    raw_header(raw, MSG_VERSION, MSG_TEST, 10);
    memcpy(raw + 8, "abc", 3);
    expect_refused(raw, sizeof raw, MSG_MAX, EPROTO); /* mid-message end */
}

static void test_wrong_version_and_type(void **state)
{
    (void)state;
    unsigned char h[8];
    raw_header(h, MSG_VERSION + 1, MSG_TEST, 0);
    expect_refused(h, 8, MSG_MAX, EPROTO);
    raw_header(h, MSG_VERSION, MSG_TYPE_END, 0);
    expect_refused(h, 8, MSG_MAX, EPROTO);
    raw_header(h, MSG_VERSION, MSG_NONE, 0);
    expect_refused(h, 8, MSG_MAX, EPROTO);
}

static void test_oversize(void **state)
{
    (void)state;
    unsigned char raw[8 + 20] = {0};
    raw_header(raw, MSG_VERSION, MSG_TEST, 20);
    expect_refused(raw, sizeof raw, 19, EMSGSIZE);
    /* the sender refuses more than MSG_MAX */
    int p[2];
    make_pipe(p);
    static char big[MSG_MAX + 1];
    assert_int_equal(msg_send(p[1], MSG_TEST, big, sizeof big, -1), -1);
    assert_int_equal(errno, EMSGSIZE);
    close(p[0]);
    close(p[1]);
}

static void test_deadline(void **state)
{
    (void)state;
    int p[2];
    make_pipe(p);
    struct msg m;
    long long t0 = now_ms();
    assert_int_equal(msg_recv(p[0], &m, MSG_MAX, t0 + 200), -1);
    assert_int_equal(errno, ETIMEDOUT);
    assert_true(now_ms() - t0 >= 190);
    /* half a message, then silence: still the deadline */
    unsigned char h[8];
    raw_header(h, MSG_VERSION, MSG_TEST, 4);
    assert_int_equal(write(p[1], h, 8), 8);
    assert_int_equal(msg_recv(p[0], &m, MSG_MAX, now_ms() + 100), -1);
    assert_int_equal(errno, ETIMEDOUT);
    close(p[0]);
    close(p[1]);
}

static void test_closed_reader_no_sigpipe(void **state)
{
    (void)state;
    int p[2];
    make_pipe(p);
    close(p[0]);
    /* SIGPIPE would kill the test runner */
    assert_int_equal(msg_send(p[1], MSG_TEST, "x", 1, -1), -1);
    assert_int_equal(errno, EPIPE);
    close(p[1]);
}

static void test_seqpacket_fd_passing(void **state)
{
    (void)state;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
    char path[] = "/tmp/po-test-msg-XXXXXX";
    int f = mkstemp(path);
    assert_true(f >= 0);
    assert_int_equal(write(f, "hello", 5), 5);
    unlink(path);
    struct buf b;
    buf_init(&b);
    msg_put_str(&b, "with fd");
    assert_int_equal(msg_send(sv[0], MSG_TEST, b.s, b.len, f), 0);
    assert_int_equal(msg_send(sv[0], MSG_TEST, b.s, b.len, -1), 0);
    close(f);
    buf_free(&b);

    struct msg m;
    assert_int_equal(msg_recv(sv[1], &m, 64, now_ms() + 2000), 1);
    assert_true(m.fd >= 0);
    assert_true(fcntl(m.fd, F_GETFD) & FD_CLOEXEC);
    char got[6] = {0};
    assert_int_equal(pread(m.fd, got, 5, 0), 5);
    assert_string_equal(got, "hello");
    struct msg_reader r;
    char *s;
    msg_reader_init(&r, &m);
    assert_int_equal(msg_get_str(&r, &s), 0);
    assert_int_equal(msg_get_end(&r), 0);
    assert_string_equal(s, "with fd");
    free(s);
    msg_free(&m);
    assert_int_equal(msg_recv(sv[1], &m, 64, now_ms() + 2000), 1);
    assert_int_equal(m.fd, -1);
    msg_free(&m);

    /* a record longer than the reader's limit; then a short one */
    assert_int_equal(msg_send(sv[0], MSG_TEST, "0123456789", 10, -1), 0);
    assert_int_equal(msg_recv(sv[1], &m, 4, now_ms() + 2000), -1);
    assert_int_equal(errno, EMSGSIZE);
    unsigned char h[8];
    raw_header(h, MSG_VERSION, MSG_TEST, 4);
    assert_int_equal(send(sv[0], h, 6, 0), 6);
    assert_int_equal(msg_recv(sv[1], &m, 64, now_ms() + 2000), -1);
    assert_int_equal(errno, EPROTO);
    /* a record whose header says less than it holds */
    unsigned char raw[8 + 6];
    raw_header(raw, MSG_VERSION, MSG_TEST, 4);
    memcpy(raw + 8, "abcdef", 6);
    assert_int_equal(send(sv[0], raw, sizeof raw, 0), (ssize_t)sizeof raw);
    assert_int_equal(msg_recv(sv[1], &m, 64, now_ms() + 2000), -1);
    assert_int_equal(errno, EPROTO);

    close(sv[0]);
    assert_int_equal(msg_recv(sv[1], &m, 64, now_ms() + 2000), 0); /* clean end */
    close(sv[1]);
}

static void test_stream_socket(void **state)
{
    (void)state;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    assert_int_equal(msg_send(sv[0], MSG_TEST, "abc", 3, 0), 0); /* stdin goes along */
    assert_int_equal(msg_send(sv[0], MSG_TEST, "defg", 4, -1), 0);
    struct msg m;
    assert_int_equal(msg_recv(sv[1], &m, 64, now_ms() + 2000), 1);
    assert_int_equal(m.len, 3);
    assert_memory_equal(m.data, "abc", 3);
    assert_true(m.fd >= 0);
    msg_free(&m);
    assert_int_equal(msg_recv(sv[1], &m, 64, now_ms() + 2000), 1);
    assert_string_equal((char *)m.data, "defg");
    assert_int_equal(m.fd, -1);
    msg_free(&m);
    unsigned char h[8];
    raw_header(h, MSG_VERSION, MSG_TEST, 4);
    assert_int_equal(write(sv[0], h, 8), 8);
    assert_int_equal(write(sv[0], "ab", 2), 2);
    close(sv[0]);
    assert_int_equal(msg_recv(sv[1], &m, 64, now_ms() + 2000), -1); /* mid-message end */
    assert_int_equal(errno, EPROTO);
    close(sv[1]);
}

static void test_fd_over_pipe_refused(void **state)
{
    (void)state;
    int p[2];
    make_pipe(p);
    assert_int_equal(msg_send(p[1], MSG_TEST, "x", 1, 0), -1);
    assert_int_equal(errno, EINVAL);
    close(p[0]);
    close(p[1]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_fields),
        cmocka_unit_test(test_empty_payload_and_short_reader),
        cmocka_unit_test(test_string_with_nul_refused),
        cmocka_unit_test(test_truncated_header),
        cmocka_unit_test(test_truncated_payload),
        cmocka_unit_test(test_wrong_version_and_type),
        cmocka_unit_test(test_oversize),
        cmocka_unit_test(test_deadline),
        cmocka_unit_test(test_closed_reader_no_sigpipe),
        cmocka_unit_test(test_seqpacket_fd_passing),
        cmocka_unit_test(test_stream_socket),
        cmocka_unit_test(test_fd_over_pipe_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
