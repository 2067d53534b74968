/* queue_file.c - the queue file format (postoffice-queue(5)): header, data,
 * control records, end line with checksum, status records.
 *
 * The same reader checks the queue's own files and the untrusted ones of the
 * maildrop: every length is checked against the file before it is used, the
 * control part is read into memory only up to a bound, and the records are
 * parsed by queue_records.c's strict parser. */
#include "compat.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <unistd.h>

#include <xxhash.h>

#include "log.h"
#include "queue_records.h"
#include "queue_file.h"
#include "util.h"

#define QF_MAGIC "POQ2 "
#define QF_MAGIC_V1 "POQ1 " /* FNV-1a 64 over the data too */
#define QF_MAGIC_LEN 5
#define QF_CHUNK 65536

struct qf_datasum {
    XXH64_state_t *x;
};

struct qf_datasum *qf_datasum_new(void)
{
    struct qf_datasum *s = xmalloc(sizeof *s);
    s->x = XXH64_createState();
    if (s->x == NULL)
        die(EX_OSERR, "out of memory");
    XXH64_reset(s->x, 0);
    return s;
}

void qf_datasum_add(struct qf_datasum *s, const void *p, size_t n)
{
    XXH64_update(s->x, p, n);
}

uint64_t qf_datasum_value(const struct qf_datasum *s)
{
    return XXH64_digest(s->x);
}

void qf_datasum_free(struct qf_datasum *s)
{
    if (s) {
        XXH64_freeState(s->x);
        free(s);
    }
}

uint64_t qf_datasum_of(const void *p, size_t n)
{
    return XXH64(p, n, 0);
}

void qf_header(long long len, char out[QF_HDR_LEN + 1])
{
    snprintf(out, QF_HDR_LEN + 1, QF_MAGIC "%016llx\n", (unsigned long long)len);
}

void qf_seal(const struct envelope *e, uint64_t datasum, long long len, struct buf *out)
{
    char hdr[QF_HDR_LEN + 1];
    size_t start = out->len;
    ctl_format(e, out);
    buf_truncate(out, out->len - 2); /* ctl's ".\n": the end line takes its place */
    uint64_t h = fnv1a64(datasum, out->s + start, out->len - start);
    qf_header(len, hdr);
    h = fnv1a64(h, hdr, QF_HDR_LEN);
    buf_addf(out, ". %016llx\n", (unsigned long long)h);
}

/* 16 lowercase hex digits into *v. */
static int hex16(const char *s, unsigned long long *v)
{
    *v = 0;
    for (int i = 0; i < 16; i++) {
        char c = s[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (d < 0)
            return -1;
        *v = *v << 4 | (unsigned)d;
    }
    return 0;
}

/* pread exactly n bytes at off; 1 short (end of file), 0, -1 error. */
static int pread_exact(int fd, void *p, size_t n, off_t off)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = pread(fd, (char *)p + got, n - got, off + (off_t)got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        if (r == 0)
            return 1;
        got += (size_t)r;
    }
    return 0;
}

/* Hash len data bytes at off into *h (v1: FNV-1a 64 from *h, else XXH64).
 * 1 if the file is shorter. */
static int hash_range(int fd, off_t off, long long len, int v1, uint64_t *h)
{
    char *chunk = xmalloc(QF_CHUNK);
    struct qf_datasum *s = v1 ? NULL : qf_datasum_new();
    int r = 0;
    while (len > 0 && r == 0) {
        size_t n = len > QF_CHUNK ? QF_CHUNK : (size_t)len;
        r = pread_exact(fd, chunk, n, off);
        if (r == 0 && v1)
            *h = fnv1a64(*h, chunk, n);
        else if (r == 0)
            qf_datasum_add(s, chunk, n);
        off += (off_t)n;
        len -= (long long)n;
    }
    if (s)
        *h = qf_datasum_value(s);
    qf_datasum_free(s);
    free(chunk);
    return r;
}

/* A file read whole into all (r bytes: at most QF_CHUNK): the data (len
 * bytes after the header) hashed into *h when verify, what follows it into t
 * (at most ctl_max bytes).  A status record appended after the read is not
 * seen: the same as reading a moment earlier.  0 or -1 (errno). */
static int take_small(const struct buf *all, long long len, size_t ctl_max, int verify,
                      int v1, uint64_t *h, struct buf *t)
{
    if ((long long)all->len < QF_HDR_LEN + len) {
        errno = EIO; /* shrank under us: read it the long way next time */
        return -1;
    }
    if (verify)
        *h = v1 ? fnv1a64(*h, all->s + QF_HDR_LEN, (size_t)len)
                : qf_datasum_of(all->s + QF_HDR_LEN, (size_t)len);
    size_t ctl = all->len - QF_HDR_LEN - (size_t)len;
    if (ctl > ctl_max) {
        errno = EFBIG;
        return -1;
    }
    buf_add(t, all->s + QF_HDR_LEN + len, ctl);
    return 0;
}

/* Read the whole file (fsize bytes, at most QF_CHUNK) in one pread: a queue
 * listing or run opens every file, so one read per file matters. */
static int read_whole(int fd, long long fsize, struct buf *all)
{
    buf_reserve(all, (size_t)fsize + 1);
    ssize_t r;
    do
        r = pread(fd, all->s, (size_t)fsize, 0);
    while (r < 0 && errno == EINTR);
    if (r < 0)
        return -1;
    all->len = (size_t)r;
    return 0;
}

/* Offset of the end line in the control part t, or -1.  No record value can
 * hold a LF, so the first line that starts with '.' is the end line. */
static long find_end(const struct buf *t)
{
    size_t off = 0;
    while (off < t->len) {
        const char *nl = memchr(t->s + off, '\n', t->len - off);
        if (!nl)
            return -1;
        if (t->s[off] == '.')
            return (long)off;
        off = (size_t)(nl - t->s) + 1;
    }
    return -1;
}

static int invalid(const char **why, const char *reason)
{
    *why = reason;
    errno = EINVAL;
    return -1;
}

/* Check a header: hdr holds the first QF_HDR_LEN bytes of a file of fsize
 * bytes (short: fewer were there).  The data length into *len, whether it is
 * a first-version file into *v1. */
static int parse_header(char hdr[QF_HDR_LEN + 1], int short_read, long long fsize,
                        long long *len, int *v1, const char **why)
{
    unsigned long long v;
    hdr[QF_HDR_LEN] = '\0';
    *v1 = !short_read && memcmp(hdr, QF_MAGIC_V1, QF_MAGIC_LEN) == 0;
    if (short_read || (!*v1 && memcmp(hdr, QF_MAGIC, QF_MAGIC_LEN) != 0)
        || hex16(hdr + QF_MAGIC_LEN, &v) < 0 || hdr[QF_HDR_LEN - 1] != '\n')
        return invalid(why, "no queue file header (torn or not a queue file)");
    if (v > (unsigned long long)fsize - QF_HDR_LEN)
        return invalid(why, "shorter than its header says (torn)");
    *len = (long long)v;
    return 0;
}

/* The header at the start of fd, read from the file (parse_header). */
static int check_header(int fd, char hdr[QF_HDR_LEN + 1], long long *len, int *v1,
                        long long fsize, const char **why)
{
    int r = pread_exact(fd, hdr, QF_HDR_LEN, 0);
    if (r < 0)
        return -1;
    return parse_header(hdr, r > 0, fsize, len, v1, why);
}

int qf_load(int fd, size_t ctl_max, int verify, struct envelope *e, struct qf_info *qi,
            const char **why)
{
    char hdr[QF_HDR_LEN + 1];
    long long len;
    uint64_t h = FNV1A64_INIT;
    struct buf t;
    int r = -1, v1;

    struct stat st;
    *why = NULL;
    if (fstat(fd, &st) < 0)
        return -1;
    long long fsize = (long long)st.st_size;
    buf_init(&t);
    int hr;
    long end = -1;
    if (fsize <= QF_CHUNK) {
        /* most messages: the whole file in one read, header included */
        struct buf all;
        buf_init(&all);
        int rc = read_whole(fd, fsize, &all);
        if (rc == 0) {
            size_t n = all.len < QF_HDR_LEN ? all.len : QF_HDR_LEN;
            memcpy(hdr, all.s, n);
            rc = parse_header(hdr, n < QF_HDR_LEN, fsize, &len, &v1, why);
        }
        if (rc == 0)
            rc = take_small(&all, len, ctl_max, verify, v1, &h, &t);
        buf_free(&all);
        if (rc < 0)
            goto out;
        hr = 0;
    } else {
        if (check_header(fd, hdr, &len, &v1, fsize, why) < 0)
            goto out;
        hr = verify ? hash_range(fd, QF_HDR_LEN, len, v1, &h) : 0;
        if (hr < 0 || pread_rest(fd, (off_t)(QF_HDR_LEN + len), &t, ctl_max) < 0)
            goto out;
    }
    if (hr > 0)
        invalid(why, "shorter than its header says (torn)");
    else if ((end = find_end(&t)) < 0 || t.len - (size_t)end < QF_END_LEN
             || t.s[end + 1] != ' ' || t.s[end + QF_END_LEN - 1] != '\n')
        invalid(why, "no end line (torn or incomplete)");
    else if (verify) {
        unsigned long long want;
        h = fnv1a64(h, t.s, (size_t)end);
        h = fnv1a64(h, hdr, QF_HDR_LEN);
        if (hex16(t.s + end + 2, &want) < 0 || want != h)
            invalid(why, "checksum mismatch (torn or damaged)");
    }
    if (*why)
        goto out;
    /* give ctl_parse its own layout: the end line becomes the "." marker */
    size_t tail = t.len - (size_t)end - QF_END_LEN, valid, bad;
    memmove(t.s + end + 2, t.s + end + QF_END_LEN, tail);
    t.s[end + 1] = '\n';
    buf_truncate(&t, (size_t)end + 2 + tail);
    if (ctl_parse_ex(t.s, t.len, e, why, &valid, &bad) < 0) {
        errno = EINVAL;
        goto out;
    }
    qi->data_off = QF_HDR_LEN;
    qi->data_len = len;
    qi->valid_end = QF_HDR_LEN + len + (long long)valid + (QF_END_LEN - 2);
    qi->bad_records = bad;
    r = 0;
out:
    if (r < 0 && !*why && errno == EINVAL)
        *why = "cannot read the queue file";
    buf_free(&t);
    return r;
}
