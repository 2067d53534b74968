/* test_spare.c - the connection hand-over (master -> spare session): what
 * the master sends arrives whole with its descriptor, and every malformed
 * hand-over is refused; the listener's admission decisions and listen=
 * parsing. */
#include "compat.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "listener.h"
#include "msg.h"
#include "spare.h"
#include "util.h"

static void round_trip(const char *ip, int submission, int implicit_tls)
{
    int sv[2], p[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
    assert_int_equal(pipe(p), 0);
    struct netaddr a, got;
    assert_int_equal(net_parse(ip, &a), 0);
    assert_int_equal(spare_handover_send(sv[0], p[1], &a, submission, implicit_tls), 0);
    struct msg m;
    assert_int_equal(msg_recv(sv[1], &m, 256, now_ms() + 5000), 1);
    int sub = -1, itls = -1;
    assert_int_equal(spare_handover_decode(&m, &got, &sub, &itls), 0);
    assert_true(net_equal(&a, &got));
    assert_int_equal(sub, submission || implicit_tls); /* smtps is a submission port */
    assert_int_equal(itls, implicit_tls);
    /* the descriptor that came is the pipe's write end */
    assert_true(m.fd >= 0);
    assert_int_equal(write(m.fd, "x", 1), 1);
    char c = 0;
    assert_int_equal(read(p[0], &c, 1), 1);
    assert_int_equal(c, 'x');
    msg_free(&m);
    close(p[0]);
    close(p[1]);
    close(sv[0]);
    close(sv[1]);
}

static void test_handover_round_trip(void **state)
{
    (void)state;
    round_trip("203.0.113.7", 0, 0);
    round_trip("2001:db8::25", 1, 0);
    round_trip("198.51.100.4", 1, 1);
}

/* A message as a (broken) master might build it: type, payload, fd. */
static int decode_raw(enum msg_type type, const struct buf *b, int with_fd)
{
    struct msg m = { .type = (uint16_t)type, .len = b->len, .fd = -1 };
    m.data = xmalloc(b->len + 1);
    memcpy(m.data, b->s ? b->s : "", b->len);
    m.data[b->len] = '\0';
    if (with_fd)
        m.fd = dup(0);
    struct netaddr a;
    int sub, itls;
    errno = 0;
    int rc = spare_handover_decode(&m, &a, &sub, &itls);
    if (rc < 0)
        assert_int_equal(errno, EPROTO);
    msg_free(&m);
    return rc;
}

static void test_handover_refusals(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b);
    struct netaddr a;
    assert_int_equal(net_parse("198.51.100.1", &a), 0);
    spare_handover_encode(&b, &a, 1, 1);
    assert_int_equal(decode_raw(MSG_SESSION_CONN, &b, 1), 0); /* the good one */
    assert_int_equal(decode_raw(MSG_SESSION_CONN, &b, 0), -1); /* no descriptor */
    assert_int_equal(decode_raw(MSG_QUEUED, &b, 1), -1);       /* wrong type */
    buf_addc(&b, 0);
    assert_int_equal(decode_raw(MSG_SESSION_CONN, &b, 1), -1); /* trailing byte */
    buf_reset(&b);
    msg_put_str(&b, "198.51.100.1");
    assert_int_equal(decode_raw(MSG_SESSION_CONN, &b, 1), -1); /* no flag */
    msg_put_u32(&b, 2);
    assert_int_equal(decode_raw(MSG_SESSION_CONN, &b, 1), -1); /* implicit TLS, not submission */
    buf_reset(&b);
    msg_put_str(&b, "198.51.100.1");
    msg_put_u32(&b, 4);
    assert_int_equal(decode_raw(MSG_SESSION_CONN, &b, 1), -1); /* an unknown flag */
    buf_reset(&b);
    msg_put_str(&b, "mail.example.org"); /* not a numeric address */
    msg_put_u32(&b, 0);
    assert_int_equal(decode_raw(MSG_SESSION_CONN, &b, 1), -1);
    buf_reset(&b);
    msg_put_str(&b, NULL); /* absent */
    msg_put_u32(&b, 0);
    assert_int_equal(decode_raw(MSG_SESSION_CONN, &b, 1), -1);
    buf_free(&b);
}

static void test_admission(void **state)
{
    (void)state;
    struct config c;
    config_defaults(&c);
    c.load = 0;
    c.clients = 3;
    c.clients_per_host = 2;
    double load = 0;
    assert_null(listener_admit(&c, 2, 1, &load));
    assert_non_null(strstr(listener_admit(&c, 3, 0, &load), "421 4.3.2 too many connections;"));
    assert_non_null(strstr(listener_admit(&c, 2, 2, &load), "from your address"));
    c.clients = 0; /* no limit */
    c.clients_per_host = 0;
    assert_null(listener_admit(&c, 1000, 1000, &load));
    config_free(&c);
}

static void test_parse_listen(void **state)
{
    (void)state;
    char *h;
    int port;
    assert_int_equal(listener_parse("127.0.0.1:2525", &h, &port), 0);
    assert_string_equal(h, "127.0.0.1");
    assert_int_equal(port, 2525);
    free(h);
    assert_int_equal(listener_parse("[::1]:26", &h, &port), 0);
    assert_string_equal(h, "::1");
    assert_int_equal(port, 26);
    free(h);
    assert_int_equal(listener_parse("*:25", &h, &port), 0);
    assert_string_equal(h, "");
    free(h);
    assert_int_equal(listener_parse("587", &h, &port), 0);
    assert_string_equal(h, "");
    assert_int_equal(port, 587);
    free(h);
    assert_int_equal(listener_parse("2001:db8::1", &h, &port), 0);
    assert_int_equal(port, 25);
    free(h);
    assert_int_equal(listener_parse("127.0.0.1:0", &h, &port), -1);
    assert_int_equal(listener_parse("127.0.0.1:65536", &h, &port), -1);
    assert_int_equal(listener_parse("mail.example:25", &h, &port), -1);
    assert_int_equal(listener_parse("[::1", &h, &port), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_handover_round_trip),
        cmocka_unit_test(test_handover_refusals),
        cmocka_unit_test(test_admission),
        cmocka_unit_test(test_parse_listen),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
