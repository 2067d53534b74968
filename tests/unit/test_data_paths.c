/* test_data_paths.c - differential test of the two byte paths of a message:
 * the DATA decoder (io_read_data) and the output encoder (msgout_write) work
 * on runs of bytes; this file keeps their previous byte-at-a-time versions as
 * the reference and checks that random bodies come out the same to the byte.
 *
 * Bodies mix every byte value with the bytes that matter (CR, LF, NUL, ".",
 * "From ", ":"), every line-end mix (CRLF, bare LF, bare CR, ".\r" pairs), and
 * put them on both sides of every read boundary: the decoder is fed through a
 * SOCK_SEQPACKET socket, one read per record, records of random (often tiny)
 * sizes; the encoder reads 64 KB chunks, so bodies cross that boundary with
 * the patterns placed at every offset around it. */
#include "compat.h"

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "message_out.h"
#include "smtpd_io.h"
#include "util.h"

/* ---- a small deterministic generator (xorshift64*) ---- */
static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;
static uint64_t rnd(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717ULL;
}
static size_t rndn(size_t n) { return n ? (size_t)(rnd() % n) : 0; }

static const char *const tokens[] = {
    "\r\n", "\n", "\r", ".", "\r\n.", "\r\n.\r", "\r\n..", ".\r\n", "From ", "\nFrom ",
    "\r\nFrom ", "From", ":", "\0", "\r\0\n", "\n.\n", ".\r.", "\r\r\n", "\n\n", "X-H: v\n",
};
static const size_t token_len[] = { 2, 1, 1, 1, 3, 4, 4, 3, 5, 6, 7, 4, 1, 1, 3, 3, 3, 3, 2, 7 };

/* Append one random piece: a token, a random byte, or a run of letters. */
static void add_piece(struct buf *b)
{
    size_t k = rndn(10);
    if (k < 5) {
        size_t t = rndn(sizeof tokens / sizeof tokens[0]);
        buf_add(b, tokens[t], token_len[t]);
    } else if (k < 7) {
        buf_addc(b, (int)rndn(256));
    } else {
        size_t n = 1 + rndn(k == 9 ? 300 : 20);
        for (size_t i = 0; i < n; i++)
            buf_addc(b, 'a' + (int)rndn(26));
    }
}

/* A random body of about len bytes. */
static void make_body(struct buf *b, size_t len)
{
    buf_reset(b);
    while (b->len < len)
        add_piece(b);
}

/* ==== the reference decoder: io_read_data's byte state machine before the
 * run-based version, over a whole input held in memory ==== */
enum rstate { R_BOL, R_DOT, R_DOTCR, R_MID, R_CR };
struct rdec {
    enum rstate st;
    struct buf out;
    int bare_lf, bare_cr, nul;
};

static void r_mid(struct rdec *d, char c)
{
    if (c == '\r') {
        d->st = R_CR;
    } else if (c == '\n') {
        d->bare_lf = 1;
        buf_addc(&d->out, '\n');
        d->st = R_MID;
    } else {
        buf_addc(&d->out, c);
        d->st = R_MID;
    }
}

static int r_byte(struct rdec *d, char c)
{
    if (c == '\0')
        d->nul = 1;
    switch (d->st) {
    case R_BOL:
        if (c == '.') {
            d->st = R_DOT;
            return 0;
        }
        r_mid(d, c);
        return 0;
    case R_DOT:
        if (c == '\r') {
            d->st = R_DOTCR;
            return 0;
        }
        r_mid(d, c);
        return 0;
    case R_DOTCR:
        if (c == '\n')
            return 1;
        d->bare_cr = 1;
        buf_addc(&d->out, '\r');
        d->st = R_MID;
        if (c == '\r')
            d->st = R_CR;
        else
            r_mid(d, c);
        return 0;
    case R_CR:
        if (c == '\n') {
            buf_addc(&d->out, '\n');
            d->st = R_BOL;
            return 0;
        }
        d->bare_cr = 1;
        buf_addc(&d->out, '\r');
        d->st = R_MID;
        r_mid(d, c);
        return 0;
    case R_MID:
        r_mid(d, c);
        return 0;
    }
    return 0;
}

/* 1 at the end mark (*end = the offset just past it), 0 without one. */
static int ref_decode(const char *p, size_t len, struct rdec *d, size_t *end)
{
    memset(d, 0, sizeof *d);
    d->st = R_BOL;
    buf_init(&d->out);
    for (size_t i = 0; i < len; i++)
        if (r_byte(d, p[i])) {
            *end = i + 1;
            return 1;
        }
    *end = len;
    return 0;
}

/* ==== the reference encoder: msgout's byte state machine before the
 * run-based version ==== */
#define FROM_LEN 5
struct rmo {
    int flags, col, cr, at_body, done;
    char hold[FROM_LEN];
    int nhold;
    struct buf *out;
};

static void rmo_flush_hold(struct rmo *st)
{
    if (st->nhold == FROM_LEN && memcmp(st->hold, "From ", FROM_LEN) == 0)
        buf_addc(st->out, '>');
    buf_add(st->out, st->hold, (size_t)st->nhold);
    st->nhold = 0;
}

static void rmo_content(struct rmo *st, char c)
{
    if (st->col == 0 && (st->flags & MO_SMTP) && c == '.')
        buf_addc(st->out, '.');
    if ((st->flags & MO_ESCAPE_FROM) && st->col < FROM_LEN) {
        st->hold[st->nhold++] = c;
        if (st->nhold == FROM_LEN)
            rmo_flush_hold(st);
    } else {
        buf_addc(st->out, c);
    }
    st->col++;
}

static void rmo_line_end(struct rmo *st)
{
    if (st->col == 0 && !st->at_body) {
        st->at_body = 1;
        if (st->flags & MO_HDRS_ONLY) {
            st->done = 1;
            return;
        }
    }
    rmo_flush_hold(st);
    buf_adds(st->out, (st->flags & MO_SMTP) ? "\r\n" : "\n");
    st->col = 0;
}

static void rmo_feed(struct rmo *st, const char *p, size_t n)
{
    for (size_t i = 0; i < n && !st->done; i++) {
        char c = p[i];
        if (!(st->flags & MO_SMTP)) {
            if (c == '\n')
                rmo_line_end(st);
            else
                rmo_content(st, c);
            continue;
        }
        if (c == '\0')
            continue;
        if (st->cr) {
            st->cr = 0;
            rmo_line_end(st);
            if (c == '\n' || st->done)
                continue;
        }
        if (c == '\r')
            st->cr = 1;
        else if (c == '\n')
            rmo_line_end(st);
        else
            rmo_content(st, c);
    }
}

static void rmo_finish(struct rmo *st)
{
    if (st->done)
        return;
    if (st->cr) {
        st->cr = 0;
        rmo_line_end(st);
    }
    if (st->col > 0 || st->nhold > 0)
        rmo_line_end(st);
}

static int rmo_starts_with_header(const char *p, size_t n)
{
    if (n == 0 || p[0] == '\n')
        return 1;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c == ':')
            return i > 0;
        if (c <= ' ' || c >= 0x7f)
            return 0;
    }
    return 0;
}

/* The whole message in memory; the header test looked at the first 64 KB. */
static void ref_encode(const char *p, size_t len, int flags, const char *prepend,
                       struct buf *out)
{
    struct rmo st;
    memset(&st, 0, sizeof st);
    st.flags = flags;
    st.out = out;
    if (prepend) {
        rmo_feed(&st, prepend, strlen(prepend));
        rmo_finish(&st);
    }
    if (!rmo_starts_with_header(p, len > 65536 ? 65536 : len))
        rmo_line_end(&st);
    rmo_feed(&st, p, len);
    rmo_finish(&st);
    if ((flags & MO_BLANK_END) && !(flags & MO_HDRS_ONLY))
        buf_adds(out, (flags & MO_SMTP) ? "\r\n" : "\n");
}

/* ==== the encoder: msgout_write on a file against ref_encode ==== */

static void read_all_fd(int fd, struct buf *b)
{
    char tmp[65536];
    ssize_t r;
    buf_reset(b);
    assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
    while ((r = read(fd, tmp, sizeof tmp)) > 0)
        buf_add(b, tmp, (size_t)r);
    assert_true(r == 0);
}

static void check_encode(const struct buf *body, int flags, const char *prepend)
{
    char in_path[] = "/tmp/po-dp-in-XXXXXX", out_path[] = "/tmp/po-dp-out-XXXXXX";
    int in = mkstemp(in_path), out = mkstemp(out_path);
    assert_true(in >= 0 && out >= 0);
    unlink(in_path);
    unlink(out_path);
    size_t skip = rndn(100); /* the data sits at an offset, as in a queue file */
    for (size_t i = 0; i < skip; i++)
        assert_int_equal(write(in, "#", 1), 1);
    assert_int_equal(write(in, body->s, body->len), (ssize_t)body->len);
    assert_int_equal(write(in, "trailer", 7), 7);

    struct msgdata d = { .fd = in, .off = (long long)skip, .len = (long long)body->len };
    struct msgout mo = { .flags = flags, .sender = "a@b", .prepend = prepend };
    assert_int_equal(msgout_write(&d, out, &mo), 0);

    struct buf got, want;
    buf_init(&got);
    buf_init(&want);
    read_all_fd(out, &got);
    ref_encode(body->s, body->len, flags, prepend, &want);
    if (got.len != want.len || memcmp(got.s, want.s, got.len) != 0) {
        size_t i = 0;
        while (i < got.len && i < want.len && got.s[i] == want.s[i])
            i++;
        fail_msg("encoder differs: flags %#x, body %zu bytes, output %zu vs %zu, first "
                 "difference at %zu", flags, body->len, got.len, want.len, i);
    }
    buf_free(&got);
    buf_free(&want);
    close(in);
    close(out);
}

static const int enc_flags[] = {
    0, MO_ESCAPE_FROM, MO_SMTP, MO_SMTP | MO_ESCAPE_FROM, MO_ESCAPE_FROM | MO_BLANK_END,
    MO_SMTP | MO_BLANK_END, MO_HDRS_ONLY, MO_SMTP | MO_HDRS_ONLY,
    MO_ESCAPE_FROM | MO_HDRS_ONLY | MO_BLANK_END, MO_SMTP | MO_ESCAPE_FROM | MO_HDRS_ONLY,
};

static void test_encoder_random(void **state)
{
    (void)state;
    struct buf body;
    buf_init(&body);
    for (int round = 0; round < 400; round++) {
        make_body(&body, rndn(round < 300 ? 600 : 4000));
        for (size_t f = 0; f < sizeof enc_flags / sizeof enc_flags[0]; f++)
            check_encode(&body, enc_flags[f], (round & 3) == 0 ? "Return-Path: <a@b>\n" : NULL);
    }
    buf_free(&body);
}

/* The 64 KB read boundary: a dense piece of specials put at every offset
 * around it, inside a body of plain lines. */
static void test_encoder_chunk_boundary(void **state)
{
    (void)state;
    struct buf body, dense;
    buf_init(&body);
    buf_init(&dense);
    for (int k = 0; k < 24; k++) {
        make_body(&dense, 40);
        buf_reset(&body);
        buf_adds(&body, "Subject: x\n\n");
        while (body.len < 65536 - 16 + (size_t)k)
            buf_adds(&body, body.len % 7 ? "abcdefghij" : "\n");
        buf_add(&body, dense.s, dense.len);
        for (int i = 0; i < 50; i++)
            buf_adds(&body, "line of text\n");
        for (size_t f = 0; f < sizeof enc_flags / sizeof enc_flags[0]; f++)
            check_encode(&body, enc_flags[f], NULL);
    }
    /* a line longer than a chunk, then "From " and a dot right after it */
    buf_reset(&body);
    buf_adds(&body, "H: v\n\n");
    while (body.len < 3 * 65536 + 11)
        buf_addc(&body, 'x');
    buf_adds(&body, "\nFrom x\r\n.\r\n.\n\r\0\rend");
    for (size_t f = 0; f < sizeof enc_flags / sizeof enc_flags[0]; f++)
        check_encode(&body, enc_flags[f], NULL);
    buf_free(&body);
    buf_free(&dense);
}

/* ==== the decoder: io_read_data over a SOCK_SEQPACKET socket (one read
 * per record, so the test decides every read boundary) ==== */

static int collect(void *arg, const char *p, size_t n)
{
    buf_add((struct buf *)arg, p, n);
    return 0;
}

/* Write input as records of random sizes; tiny ones where tiny is set. */
static void write_records(int fd, const char *p, size_t len, int tiny)
{
    size_t off = 0;
    while (off < len) {
        size_t n = tiny ? 1 + rndn(4) : 1 + rndn(rndn(3) ? 64 : 4096);
        if (n > len - off)
            n = len - off;
        ssize_t w = send(fd, p + off, n, 0);
        if (w < 0 && errno == EINTR)
            continue;
        if (w != (ssize_t)n)
            _exit(1);
        off += n;
    }
}

static void check_decode(const struct buf *input, int tiny)
{
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(sv[0]);
        write_records(sv[1], input->s, input->len, tiny);
        _exit(0);
    }
    close(sv[1]);

    struct smtpio io;
    struct io_data_result res;
    struct buf got, rest;
    buf_init(&got);
    buf_init(&rest);
    io_init(&io, sv[0], sv[0], 10000, 0);
    enum io_status st = io_read_data(&io, collect, &got, &res);

    /* what follows the end mark: the rest of our buffer, then the socket */
    if (st == IO_OK)
        buf_add(&rest, io.in.s + io.in_off, io.in.len - io.in_off);
    int fl = fcntl(sv[0], F_GETFL);
    fcntl(sv[0], F_SETFL, fl & ~O_NONBLOCK);
    char tmp[8192];
    ssize_t r;
    while ((r = read(sv[0], tmp, sizeof tmp)) > 0)
        if (st == IO_OK)
            buf_add(&rest, tmp, (size_t)r);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);

    struct rdec ref;
    size_t end;
    int ends = ref_decode(input->s, input->len, &ref, &end);
    assert_int_equal(st, ends ? IO_OK : IO_EOF);
    if (ends) {
        assert_int_equal(res.bytes, (long long)ref.out.len);
        assert_int_equal(res.bare_lf, ref.bare_lf);
        assert_int_equal(res.bare_cr, ref.bare_cr);
        assert_int_equal(res.nul, ref.nul);
        assert_int_equal(rest.len, input->len - end);
        assert_memory_equal(rest.s, input->s + end, rest.len);
    }
    /* at EOF the decoder gives what it had decoded by then: a prefix */
    if (got.len != ref.out.len || memcmp(got.s, ref.out.s, got.len) != 0) {
        if (!ends && got.len <= ref.out.len && memcmp(got.s, ref.out.s, got.len) == 0) {
            /* a pending CR or dot not yet decided: allowed at EOF */
        } else {
            size_t i = 0;
            while (i < got.len && i < ref.out.len && got.s[i] == ref.out.s[i])
                i++;
            fail_msg("decoder differs: input %zu bytes, output %zu vs %zu, first difference at %zu",
                     input->len, got.len, ref.out.len, i);
        }
    }
    buf_free(&ref.out);
    buf_free(&got);
    buf_free(&rest);
    io_free(&io);
    close(sv[0]);
}

static void test_decoder_random(void **state)
{
    (void)state;
    struct buf in;
    buf_init(&in);
    for (int round = 0; round < 600; round++) {
        make_body(&in, rndn(round < 400 ? 300 : 20000));
        /* usually ends with the end mark and a pipelined command after it */
        if (round % 5)
            buf_add(&in, "\r\n.\r\nQUIT\r\n", 11);
        check_decode(&in, round % 3 == 0);
    }
    buf_free(&in);
}

/* A dot line, a bare CR and "CR LF . CR LF" split at every read boundary. */
static void test_decoder_every_split(void **state)
{
    (void)state;
    static const char *const cases[] = {
        "a\r\n..b\r\n.\r\nNEXT\r\n", "x\r\r\n.\r\n", "x\r\n.\rY\r\n.\r\n",
        "From x\r\n\0.\r\n.\r\n", "a\n.\r\n\r\n.\r\n", ".\r\n", "\r\n.\r\n",
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        size_t len = strlen(cases[c]);
        if (c == 3)
            len = 15; /* holds a NUL */
        struct buf in;
        buf_init(&in);
        buf_add(&in, cases[c], len);
        for (int k = 0; k < 40; k++)
            check_decode(&in, 1);
        buf_free(&in);
    }
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_encoder_random),
        cmocka_unit_test(test_encoder_chunk_boundary),
        cmocka_unit_test(test_decoder_random),
        cmocka_unit_test(test_decoder_every_split),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
