/* fuzz_qfile.c - queue_records.h and queue_file.h: control records and the queue file.
 * Invariants: ctl_parse -> ctl_format -> ctl_parse -> ctl_format is a fixed
 * point (and holds no control byte but LF); validlen lies within the text;
 * a loaded queue file's data and valid end lie within the file, and the
 * envelope resealed with qf_seal over the same data loads (verified) to the
 * same envelope. */
#include "compat.h"

#include <errno.h>

#include "queue_records.h"
#include "envelope.h"
#include "fuzz.h"
#include "queue_file.h"
#include "util.h"

/* Decoded values may hold any byte but NUL (%XX escapes); the text form of
 * each must not, which the ctl_format round trip below checks. */
static void check_str(const char *s)
{
    (void)s;
}

static void check_env(const struct envelope *e, struct buf *fmt)
{
    check_str(e->sender);
    check_str(e->client_name);
    check_str(e->client_addr);
    check_str(e->helo);
    check_str(e->local_user);
    for (size_t i = 0; i < e->nrcpts; i++) {
        check_str(e->rcpts[i].addr);
        check_str(e->rcpts[i].orig);
        check_str(e->rcpts[i].owner);
        check_str(e->rcpts[i].status);
        check_str(e->rcpts[i].remote_mta);
    }
    ctl_format(e, fmt);
    for (size_t i = 0; i < fmt->len; i++)
        FUZZ_CHECK(fmt->s[i] == '\n' || !fuzz_has_ctl(fmt->s + i, 1, 0), "ctl_format wrote a control byte");
    FUZZ_CHECK(e->nrcpts == 0 || e->rcpts[0].addr != NULL, "recipient without an address");
    struct envelope e2;
    const char *why = NULL;
    env_init(&e2);
    FUZZ_CHECK(ctl_parse(fmt->s, fmt->len, &e2, &why) == 0, "ctl_format output does not parse");
    struct buf f2;
    buf_init(&f2);
    ctl_format(&e2, &f2);
    FUZZ_CHECK(f2.len == fmt->len && memcmp(f2.s, fmt->s, f2.len) == 0,
               "ctl_format(ctl_parse(ctl_format(e))) differs");
    buf_free(&f2);
    env_free(&e2);
}

static void fuzz_ctl(const char *text, size_t len)
{
    struct envelope e;
    const char *why = NULL;
    size_t valid = (size_t)-1;
    env_init(&e);
    size_t badrecs = 0;
    if (ctl_parse_ex(text, len, &e, &why, &valid, &badrecs) == 0) {
        FUZZ_CHECK(valid <= len, "validlen past the text");
        struct buf f;
        buf_init(&f);
        check_env(&e, &f);
        buf_free(&f);
    } else {
        FUZZ_CHECK(why != NULL, "ctl_parse failed without a reason");
    }
    env_free(&e);
}

static void fuzz_qf(const uint8_t *data, size_t size, int verify)
{
    int fd = fuzz_memfd(data, size);
    struct envelope e;
    struct qf_info qi;
    const char *why = NULL;
    env_init(&e);
    if (qf_load(fd, 1 << 20, verify, &e, &qi, &why) == 0) {
        FUZZ_CHECK(qi.data_off == QF_HDR_LEN && qi.data_len >= 0 &&
                       qi.data_off + qi.data_len <= (long long)size,
                   "message data outside the file");
        FUZZ_CHECK(qi.valid_end <= (long long)size && qi.valid_end >= qi.data_off + qi.data_len,
                   "valid_end outside the file");
        struct buf f, q;
        buf_init(&f);
        buf_init(&q);
        check_env(&e, &f);
        /* reseal: header, the same data, the envelope's records, end line */
        char hdr[QF_HDR_LEN + 1];
        qf_header(qi.data_len, hdr);
        buf_add(&q, hdr, QF_HDR_LEN);
        buf_add(&q, data + qi.data_off, (size_t)qi.data_len);
        qf_seal(&e, qf_datasum_of(data + qi.data_off, (size_t)qi.data_len),
                qi.data_len, &q);
        int fd2 = fuzz_memfd(q.s, q.len);
        struct envelope e2;
        struct qf_info q2;
        env_init(&e2);
        FUZZ_CHECK(qf_load(fd2, 1 << 20, 1, &e2, &q2, &why) == 0, "resealed queue file does not load");
        FUZZ_CHECK(q2.data_len == qi.data_len && q2.valid_end == (long long)q.len,
                   "resealed queue file has other bounds");
        struct buf f2;
        buf_init(&f2);
        ctl_format(&e2, &f2);
        FUZZ_CHECK(f2.len == f.len && memcmp(f.s, f2.s, f.len) == 0,
                   "resealed queue file gives another envelope");
        buf_free(&f2);
        env_free(&e2);
        close(fd2);
        buf_free(&f);
        buf_free(&q);
    } else {
        FUZZ_CHECK(why != NULL || errno != EINVAL, "torn queue file without a reason");
    }
    env_free(&e);
    close(fd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    /* first byte: 'C' control text, else a queue file (odd: checksum verified) */
    if (data[0] == 'C')
        fuzz_ctl((const char *)data + 1, size - 1);
    else
        fuzz_qf(data + 1, size - 1, data[0] & 1);
    return 0;
}
