/* test_smtpd_io.c - line reading, the line limit, the DATA end mark (SMTP
 * smuggling: bare LF, bare CR and NUL variants of the end mark), dot-unstuffing, timeouts, replies. */
#include "compat.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "smtpd_io.h"

struct fix {
    int in[2], out[2];
    struct smtpio io;
};

/* An io reading `input` (then EOF unless keep_open) and writing to a pipe. */
static void fix_open(struct fix *f, const char *input, size_t n, int keep_open, long idle_ms)
{
    assert_int_equal(pipe(f->in), 0);
    assert_int_equal(pipe(f->out), 0);
    assert_int_equal(write(f->in[1], input, n), (ssize_t)n);
    if (!keep_open) {
        close(f->in[1]);
        f->in[1] = -1;
    }
    io_init(&f->io, f->in[0], f->out[1], idle_ms, 0);
}

static void fix_close(struct fix *f)
{
    io_free(&f->io);
    close(f->in[0]);
    if (f->in[1] >= 0)
        close(f->in[1]);
    close(f->out[0]);
    close(f->out[1]);
}

static int collect(void *arg, const char *p, size_t n)
{
    buf_add(arg, p, n);
    return 0;
}

static void test_lines(void **state)
{
    (void)state;
    struct fix f;
    const char in[] = "HELO a\r\nNOOP\nMAIL x\ry\r\nlast";
    fix_open(&f, in, sizeof in - 1, 0, 1000);
    struct buf l;
    buf_init(&l);
    int cr;
    assert_int_equal(io_getline(&f.io, &l, 100, &cr), IO_OK);
    assert_string_equal(l.s, "HELO a");
    assert_int_equal(cr, 0);
    assert_int_equal(io_getline(&f.io, &l, 100, &cr), IO_OK);
    assert_string_equal(l.s, "NOOP");
    assert_int_equal(io_getline(&f.io, &l, 100, &cr), IO_OK);
    assert_string_equal(l.s, "MAIL x\ry");
    assert_int_equal(cr, 1);
    /* a last line without LF is not a command */
    assert_int_equal(io_getline(&f.io, &l, 100, &cr), IO_EOF);
    buf_free(&l);
    fix_close(&f);
}

/* A long line is answered once and never split into two commands. */
static void test_toolong(void **state)
{
    (void)state;
    struct buf in, l;
    buf_init(&in);
    buf_init(&l);
    for (int i = 0; i < 3000; i++)
        buf_addc(&in, i % 100 == 0 ? ' ' : 'x');
    buf_adds(&in, "RSET\r\nQUIT\r\n");
    struct fix f;
    fix_open(&f, in.s, in.len, 0, 1000);
    int cr;
    assert_int_equal(io_getline(&f.io, &l, 512, &cr), IO_TOOLONG);
    assert_int_equal(io_getline(&f.io, &l, 512, &cr), IO_OK);
    assert_string_equal(l.s, "QUIT");
    /* exactly at the limit is fine, one more is not */
    buf_free(&in);
    buf_free(&l);
    fix_close(&f);
}

static void test_limit_boundary(void **state)
{
    (void)state;
    struct fix f;
    const char in[] = "12345\r\n123456\r\nok\r\n";
    fix_open(&f, in, sizeof in - 1, 0, 1000);
    struct buf l;
    buf_init(&l);
    int cr;
    assert_int_equal(io_getline(&f.io, &l, 5, &cr), IO_OK);
    assert_string_equal(l.s, "12345");
    assert_int_equal(io_getline(&f.io, &l, 5, &cr), IO_TOOLONG);
    assert_int_equal(io_getline(&f.io, &l, 5, &cr), IO_OK);
    assert_string_equal(l.s, "ok");
    buf_free(&l);
    fix_close(&f);
}

/* Read DATA from input; returns the status, fills out and res, and the next
 * line after the data into next (if any). */
static enum io_status data(const char *input, size_t n, struct buf *out,
                           struct io_data_result *res, struct buf *next)
{
    struct fix f;
    fix_open(&f, input, n, 0, 1000);
    enum io_status st = io_read_data(&f.io, collect, out, res);
    if (next) {
        int cr;
        if (io_getline(&f.io, next, 1000, &cr) != IO_OK)
            buf_adds(next, "<none>");
    }
    fix_close(&f);
    return st;
}

static void test_data_plain(void **state)
{
    (void)state;
    struct buf out, next;
    buf_init(&out);
    buf_init(&next);
    struct io_data_result r;
    const char in[] = "Subject: x\r\n\r\n..dot\r\n.\r\nQUIT\r\n";
    assert_int_equal(data(in, sizeof in - 1, &out, &r, &next), IO_OK);
    assert_string_equal(out.s, "Subject: x\n\n.dot\n");
    assert_int_equal(r.bare_lf, 0);
    assert_int_equal(r.bare_cr, 0);
    assert_int_equal(r.bytes, (long long)out.len);
    assert_string_equal(next.s, "QUIT");
    buf_free(&out);
    buf_free(&next);
}

static void test_data_empty(void **state)
{
    (void)state;
    struct buf out, next;
    buf_init(&out);
    buf_init(&next);
    struct io_data_result r;
    const char in[] = ".\r\nQUIT\r\n";
    assert_int_equal(data(in, sizeof in - 1, &out, &r, &next), IO_OK);
    assert_int_equal(out.len, 0);
    assert_string_equal(next.s, "QUIT");
    buf_free(&out);
    buf_free(&next);
}

/* Every smuggling variant: none of them may end the data; each is flagged. */
static void test_data_smuggling(void **state)
{
    (void)state;
    static const struct {
        const char *seq;
        int lf, cr;
    } v[] = {
        { "\n.\n", 1, 0 },      /* LF . LF */
        { "\n.\r\n", 1, 0 },    /* LF . CR LF */
        { "\r\n.\n", 1, 0 },    /* CR LF . LF */
        { "\r.\r", 0, 1 },      /* CR . CR */
        { "\r.\r\n", 0, 1 },    /* CR . CR LF */
        { "\r\n.\r", 0, 1 },    /* CR LF . CR */
        { "\n..\n", 1, 0 },
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        struct buf in, out, next;
        buf_init(&in);
        buf_init(&out);
        buf_init(&next);
        buf_addf(&in, "first%sMAIL FROM:<evil@x>\r\nbody\r\n.\r\nNOOP\r\n", v[i].seq);
        struct io_data_result r;
        assert_int_equal(data(in.s, in.len, &out, &r, &next), IO_OK);
        /* the smuggled command stayed inside the message */
        assert_non_null(strstr(out.s, "MAIL FROM:<evil@x>"));
        assert_string_equal(next.s, "NOOP");
        assert_int_equal(r.bare_lf, v[i].lf);
        assert_int_equal(r.bare_cr, v[i].cr);
        buf_free(&in);
        buf_free(&out);
        buf_free(&next);
    }
}

/* NUL bytes: data (never an end mark, never dropped here), flagged so the
 * session refuses the message; "CR LF NUL . CR LF" does not end the data. */
static void test_data_nul(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        size_t n;
        int nul;
    } v[] = {
#define WITH_LEN(s) s, sizeof s - 1
        { WITH_LEN("a\r\n\0.\r\nMAIL FROM:<e@x>\r\n.\r\nNOOP\r\n"), 1 },
        { WITH_LEN("\0\r\n.\r\nNOOP\r\n"), 1 },
        { WITH_LEN(".\0\r\n.\r\nNOOP\r\n"), 1 },
        { WITH_LEN("a\r\n.\r\nNOOP\r\n"), 0 },
#undef WITH_LEN
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        struct buf out, next;
        buf_init(&out);
        buf_init(&next);
        struct io_data_result r;
        assert_int_equal(data(v[i].in, v[i].n, &out, &r, &next), IO_OK);
        assert_int_equal(r.nul, v[i].nul);
        assert_int_equal(r.bare_lf, 0);
        assert_int_equal(r.bare_cr, 0);
        assert_string_equal(next.s, "NOOP");
        assert_int_equal(memchr(out.s, '\0', out.len) != NULL, v[i].nul);
        buf_free(&out);
        buf_free(&next);
    }
}

static void test_data_eof(void **state)
{
    (void)state;
    struct buf out;
    buf_init(&out);
    struct io_data_result r;
    const char in[] = "line\r\n.";
    assert_int_equal(data(in, sizeof in - 1, &out, &r, NULL), IO_EOF);
    buf_free(&out);
}

static void test_timeout(void **state)
{
    (void)state;
    struct fix f;
    fix_open(&f, "NOOP", 4, 1, 50);
    struct buf l;
    buf_init(&l);
    int cr;
    assert_int_equal(io_getline(&f.io, &l, 100, &cr), IO_TIMEOUT);
    assert_int_equal(f.io.timed_out_session, 0);
    buf_free(&l);
    fix_close(&f);
}

/* Replies wait until the input buffer is empty (PIPELINING). */
static void test_pipelined_flush(void **state)
{
    (void)state;
    struct fix f;
    const char in[] = "A\r\nB\r\n";
    fix_open(&f, in, sizeof in - 1, 1, 1000);
    struct buf l;
    buf_init(&l);
    int cr;
    assert_int_equal(io_getline(&f.io, &l, 100, &cr), IO_OK);
    io_printf(&f.io, "250 a\r\n");
    assert_int_equal(io_getline(&f.io, &l, 100, &cr), IO_OK);
    /* B was already buffered: nothing sent yet */
    assert_int_equal(f.io.out.len, 7);
    io_printf(&f.io, "250 b\r\n");
    close(f.in[1]);
    f.in[1] = -1;
    assert_int_equal(io_getline(&f.io, &l, 100, &cr), IO_EOF);
    char got[64] = "";
    assert_int_equal(read(f.out[0], got, sizeof got - 1), 14);
    assert_string_equal(got, "250 a\r\n250 b\r\n");
    buf_free(&l);
    fix_close(&f);
}

/* After a large message the input buffer shrinks back to command size (an
 * idle session keeps little private memory), and commands pipelined behind
 * the end mark survive that. */
static void test_data_then_commands(void **state)
{
    (void)state;
    struct buf in, out, l;
    buf_init(&in);
    buf_init(&out);
    buf_init(&l);
    for (int i = 0; i < 800; i++)
        buf_adds(&in, "0123456789012345678901234567890123456789012345678901234567890123456\r\n");
    buf_adds(&in, ".\r\nRSET\r\nQUIT\r\n");
    struct fix f;
    fix_open(&f, in.s, in.len, 0, 1000);
    struct io_data_result res;
    assert_int_equal(io_read_data(&f.io, collect, &out, &res), IO_OK);
    assert_int_equal(out.len, 800 * 68);
    assert_true(f.io.in.cap <= 2048);
    int cr;
    assert_int_equal(io_getline(&f.io, &l, 512, &cr), IO_OK);
    assert_string_equal(l.s, "RSET");
    assert_int_equal(io_getline(&f.io, &l, 512, &cr), IO_OK);
    assert_string_equal(l.s, "QUIT");
    assert_int_equal(io_getline(&f.io, &l, 512, &cr), IO_EOF);
    buf_free(&in);
    buf_free(&out);
    buf_free(&l);
    fix_close(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lines),
        cmocka_unit_test(test_toolong),
        cmocka_unit_test(test_limit_boundary),
        cmocka_unit_test(test_data_plain),
        cmocka_unit_test(test_data_empty),
        cmocka_unit_test(test_data_smuggling),
        cmocka_unit_test(test_data_nul),
        cmocka_unit_test(test_data_eof),
        cmocka_unit_test(test_timeout),
        cmocka_unit_test(test_pipelined_flush),
        cmocka_unit_test(test_data_then_commands),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
