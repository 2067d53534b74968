/* fuzz_msgout.c - message_out.h / mbox.h: the mbox and SMTP encoders.
 * The input is a queued message (LF lines).  Invariants:
 *  mbox (From_ line, ">From " escaping, blank end): the output is exactly the
 *    From_ line, the prepended lines, an empty line if the message starts with
 *    no header field, every message line with "From " lines escaped as ">From ",
 *    the last line terminated, and the blank separator; so no line after the
 *    separator starts with "From ";
 *  SMTP: every line ends in CR LF, no bare CR or LF, no line is a lone "."; the
 *    output with the end mark read back by io_read_data (the server's decoder)
 *    is the message with CR LF / lone CR made LF line ends, the same as the
 *    mbox body without escaping;
 *  mbox_prepend and msgout_from_line write header/separator lines with no
 *    control byte inside a line. */
#include "compat.h"

#include <fcntl.h>

#include "fuzz.h"
#include "mbox.h"
#include "message_out.h"
#include "smtpd_io.h"
#include "util.h"

/* msgout's own rule for "starts with a header field". */
static int starts_with_header(const char *p, size_t n)
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

/* The expected text: lines ended by LF (smtp: also CR LF and a lone CR),
 * "From " lines escaped when escape is set. */
static void model_lines(const char *p, size_t n, int smtp, int escape, struct buf *out);

/* The header test looks at the message as stored; SMTP output then leaves
 * NUL bytes out (message_out.h) before anything else. */
static void model(const char *p, size_t n, int smtp, int escape, struct buf *out)
{
    if (!starts_with_header(p, n))
        buf_addc(out, '\n');
    if (!smtp) {
        model_lines(p, n, smtp, escape, out);
        return;
    }
    struct buf clean;
    buf_init(&clean);
    for (size_t i = 0; i < n; i++)
        if (p[i] != '\0')
            buf_addc(&clean, p[i]);
    model_lines(clean.s ? clean.s : "", clean.len, smtp, escape, out);
    buf_free(&clean);
}

static void model_lines(const char *p, size_t n, int smtp, int escape, struct buf *out)
{
    struct buf line;
    buf_init(&line);
    for (size_t i = 0; i < n; i++) {
        int eol = p[i] == '\n' || (smtp && p[i] == '\r');
        if (!eol) {
            buf_addc(&line, p[i]);
            if (i + 1 < n)
                continue;
        }
        if (escape && line.len >= 5 && memcmp(line.s, "From ", 5) == 0)
            buf_addc(out, '>');
        buf_add(out, line.s, line.len);
        buf_addc(out, '\n');
        buf_reset(&line);
        if (smtp && p[i] == '\r' && i + 1 < n && p[i + 1] == '\n')
            i++;
    }
    buf_free(&line);
}

static int sink(void *arg, const char *p, size_t n)
{
    buf_add(arg, p, n);
    return 0;
}

static void check_mbox(int fd, const char *msg, size_t n, const char *sender, int escape)
{
    char *prep = mbox_prepend(sender, "rcpt@example.org");
    struct msgout mo = {MO_FROM_LINE | MO_BLANK_END | (escape ? MO_ESCAPE_FROM : 0), sender, prep};
    struct msgdata d = {fd, 0, (long long)n};
    int out = memfd_create("out", MFD_CLOEXEC);
    FUZZ_CHECK(msgout_write(&d, out, &mo) == 0, "msgout_write failed");
    size_t len;
    char *o = fuzz_slurp(out, &len);
    close(out);
    char *nl = memchr(o, '\n', len);
    FUZZ_CHECK(nl && len >= 5 && memcmp(o, "From ", 5) == 0, "no From_ line first");
    FUZZ_CHECK(!fuzz_has_ctl(o, (size_t)(nl - o), 0), "From_ line holds a control byte");
    struct buf want;
    buf_init(&want);
    buf_add(&want, o, (size_t)(nl - o) + 1);
    buf_adds(&want, prep);
    model(msg, n, 0, escape, &want);
    buf_addc(&want, '\n');
    FUZZ_CHECK(want.len == len && memcmp(want.s, o, len) == 0, "mbox output differs from the model");
    if (escape)
        for (size_t i = (size_t)(nl - o) + 1; i + 5 <= len; i++)
            FUZZ_CHECK(!(o[i - 1] == '\n' && memcmp(o + i, "From ", 5) == 0),
                       "a line starting \"From \" left unescaped in the mbox");
    buf_free(&want);
    free(o);
    free(prep);
}

static void check_smtp(int fd, const char *msg, size_t n, int escape)
{
    struct msgout mo = {MO_SMTP | (escape ? MO_ESCAPE_FROM : 0), "", NULL};
    struct msgdata d = {fd, 0, (long long)n};
    int out = memfd_create("out", MFD_CLOEXEC);
    FUZZ_CHECK(msgout_write(&d, out, &mo) == 0, "msgout_write failed");
    size_t len;
    char *o = fuzz_slurp(out, &len);
    for (size_t i = 0; i < len; i++) {
        if (o[i] == '\r')
            FUZZ_CHECK(i + 1 < len && o[i + 1] == '\n', "bare CR in SMTP output");
        if (o[i] == '\n')
            FUZZ_CHECK(i > 0 && o[i - 1] == '\r', "bare LF in SMTP output");
        if ((i == 0 || o[i - 1] == '\n') && i + 2 < len)
            FUZZ_CHECK(memcmp(o + i, ".\r\n", 3) != 0, "lone \".\" line in SMTP output");
    }
    FUZZ_CHECK(len == 0 || (len >= 2 && o[len - 1] == '\n'), "SMTP output not line-terminated");
    /* the receiving side: what an SMTP server reads back */
    if (write(out, ".\r\n", 3) != 3 || lseek(out, 0, SEEK_SET) != 0)
        abort();
    int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
    struct smtpio io;
    io_init(&io, out, null, 0, 0);
    struct buf got, want;
    buf_init(&got);
    buf_init(&want);
    struct io_data_result res;
    FUZZ_CHECK(io_read_data(&io, sink, &got, &res) == IO_OK, "server found no end of data");
    FUZZ_CHECK(!res.bare_cr && !res.bare_lf, "server saw bare CR/LF in our SMTP output");
    FUZZ_CHECK(io.in.len == io.in_off, "data after the end mark");
    model(msg, n, 1, escape, &want);
    FUZZ_CHECK(got.len == want.len && memcmp(got.s, want.s, got.len) == 0,
               "SMTP round trip differs from the message");
    buf_free(&got);
    buf_free(&want);
    io_free(&io);
    close(null);
    close(out);
    free(o);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    /* first byte: escaping on/off, and how much of the rest is the sender */
    int escape = data[0] & 1;
    size_t slen = (size_t)(data[0] >> 1) % 16;
    if (slen > size - 1)
        slen = size - 1;
    char *sender = fuzz_str(data + 1, slen);
    const char *msg = (const char *)data + 1 + slen;
    size_t n = size - 1 - slen;

    char *prep = mbox_prepend(sender, sender);
    size_t pl = strlen(prep), lines = 0;
    for (size_t i = 0; i < pl; i++)
        lines += prep[i] == '\n';
    FUZZ_CHECK(lines == 2 && prep[pl - 1] == '\n', "mbox_prepend is not two lines");
    FUZZ_CHECK(strncmp(prep, "Return-Path: <", 14) == 0, "mbox_prepend lacks Return-Path");
    for (size_t i = 0; i < pl; i++)
        FUZZ_CHECK(prep[i] == '\n' || prep[i] == '\t' || !fuzz_has_ctl(prep + i, 1, 0),
                   "mbox_prepend holds a control byte");
    free(prep);
    char *from = msgout_from_line(sender, (time_t)0);
    size_t fl = strlen(from);
    FUZZ_CHECK(fl > 6 && from[fl - 1] == '\n' && !fuzz_has_ctl(from, fl - 1, 0),
               "From_ line is not one clean line");
    FUZZ_CHECK(strchr(from + 5, ' ') - from - 5 >= 1, "From_ sender is not one word");
    free(from);

    int fd = fuzz_memfd(msg, n);
    check_mbox(fd, msg, n, sender, escape);
    check_smtp(fd, msg, n, escape);
    close(fd);
    free(sender);
    return 0;
}
