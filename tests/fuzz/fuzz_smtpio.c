/* fuzz_smtpio.c - smtpd_io.h: command lines and the DATA reader, on a stream.
 * The input is what a client sends: command lines; after a line "DATA" the
 * message data up to the end mark, then more commands.
 * Invariants: a command line holds no LF, is at most max bytes, and *bare_cr
 * says exactly whether it holds a CR; io_read_data gives what an independent
 * reference decoder gives (end mark CR LF "." CR LF only, dot-unstuffing at
 * CR LF line starts, CR LF -> LF, bare CR/LF passed through and flagged), and
 * res->bytes is what the sink got. */
#include "compat.h"

#include <fcntl.h>
#include <strings.h>

#include "address.h"
#include "fuzz.h"
#include "smtpd_io.h"
#include "util.h"

static int sink(void *arg, const char *p, size_t n)
{
    buf_add(arg, p, n);
    return 0;
}

/* The reference decoder over s[0..n): returns the length of the data part
 * including the end mark (0 if there is none) and fills out and flags. */
static size_t ref_decode(const char *s, size_t n, struct buf *out, int *bare_lf, int *bare_cr)
{
    size_t end; /* offset of the end mark's "." */
    if (n >= 3 && memcmp(s, ".\r\n", 3) == 0) {
        end = 0;
    } else {
        const char *m = memmem(s, n, "\r\n.\r\n", 5);
        if (!m)
            return 0;
        end = (size_t)(m - s) + 2;
    }
    *bare_lf = *bare_cr = 0;
    for (size_t i = 0, bol = 1; i < end; i++) {
        if (bol && s[i] == '.') {
            bol = 0;
            continue; /* a stuffed dot */
        }
        bol = 0;
        if (s[i] == '\r' && i + 1 < end && s[i + 1] == '\n') {
            buf_addc(out, '\n');
            i++;
            bol = 1;
            continue;
        }
        if (s[i] == '\r')
            *bare_cr = 1;
        if (s[i] == '\n')
            *bare_lf = 1;
        buf_addc(out, s[i]);
    }
    return end + 3;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t max = 8 + data[0]; /* line limit: make IO_TOOLONG reachable */
    const char *in = (const char *)data + 1;
    size_t n = size - 1;
    int fd = fuzz_memfd(in, n);
    int out = open("/dev/null", O_WRONLY | O_CLOEXEC);
    struct smtpio io;
    io_init(&io, fd, out, 0, 0);
    struct buf line;
    buf_init(&line);
    size_t pos = 0; /* where the reference thinks the stream is */
    for (;;) {
        int bare_cr = -1;
        enum io_status st = io_getline(&io, &line, max, &bare_cr);
        if (st == IO_EOF)
            break;
        FUZZ_CHECK(st == IO_OK || st == IO_TOOLONG, "io_getline failed on a file");
        const char *lf = memchr(in + pos, '\n', n - pos);
        FUZZ_CHECK(lf != NULL, "io_getline returned a line without its LF");
        size_t raw = (size_t)(lf - (in + pos)), body = raw;
        if (body && in[pos + body - 1] == '\r')
            body--;
        if (st == IO_TOOLONG) {
            FUZZ_CHECK(body > max, "IO_TOOLONG for a line within the limit");
        } else {
            FUZZ_CHECK(body <= max, "a line longer than max was returned");
            FUZZ_CHECK(line.len == body && memcmp(line.s, in + pos, body) == 0,
                       "io_getline returned other bytes than the line");
            FUZZ_CHECK(bare_cr == (memchr(line.s, '\r', line.len) != NULL),
                       "bare_cr does not say whether the line holds a CR");
        }
        pos += raw + 1;
        if (st == IO_OK && line.len >= 4 && strncasecmp(line.s, "DATA", 4) == 0) {
            struct buf got, want;
            struct io_data_result res;
            int blf = 0, bcr = 0;
            buf_init(&got);
            buf_init(&want);
            size_t used = ref_decode(in + pos, n - pos, &want, &blf, &bcr);
            enum io_status ds = io_read_data(&io, sink, &got, &res);
            FUZZ_CHECK(res.bytes == (long long)got.len, "res.bytes is not what the sink got");
            if (used == 0) {
                FUZZ_CHECK(ds == IO_EOF, "end of data found where there is no end mark");
                buf_free(&got);
                buf_free(&want);
                break;
            }
            FUZZ_CHECK(ds == IO_OK, "end mark not found");
            FUZZ_CHECK(got.len == want.len && memcmp(got.s, want.s, got.len) == 0,
                       "io_read_data differs from the reference decoder");
            FUZZ_CHECK(res.bare_lf == blf && res.bare_cr == bcr, "bare CR/LF flags differ");
            pos += used;
            buf_free(&got);
            buf_free(&want);
        } else if (st == IO_OK && line.len > 10 && strncasecmp(line.s, "MAIL FROM:", 10) == 0) {
            char *a = NULL;
            const char *rest, *why;
            if (addr_parse_path(line.s + 10, 1, &a, &rest, &why) == 0)
                FUZZ_CHECK(!fuzz_has_ctl(a, strlen(a), 0), "MAIL FROM path with a control byte");
            free(a);
        }
    }
    buf_free(&line);
    io_free(&io);
    close(fd);
    close(out);
    return 0;
}
