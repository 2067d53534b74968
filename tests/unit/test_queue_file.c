/* test_queue_file.c - the queue file's checksum versions: files written today
 * (POQ2, XXH64 over the data) and files of the first version (POQ1, FNV-1a 64
 * throughout) are both read and verified; a flipped byte fails either. */
#include "compat.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "envelope.h"
#include "queue_file.h"
#include "queue_records.h"
#include "util.h"

static const char body[] = "Subject: hi\n\nbody line\nanother line, longer than 32 bytes\n";

static void make_env(struct envelope *e)
{
    env_init(e);
    free(e->sender);
    e->sender = xstrdup("a@example.org");
    e->ctime = 1795303503;
    str_copy(e->qid, "1xUubn3sV0062T3FLW", QID_MAX);
    env_add_rcpt(e, "b@example.org", NULL, NULL);
}

/* A queue file as the current writer makes it. */
static void build_v2(struct buf *f, const char *data, size_t n)
{
    struct envelope e;
    char hdr[QF_HDR_LEN + 1];
    make_env(&e);
    qf_header((long long)n, hdr);
    buf_add(f, hdr, QF_HDR_LEN);
    buf_add(f, data, n);
    qf_seal(&e, qf_datasum_of(data, n), (long long)n, f);
    env_free(&e);
}

/* A queue file of the first version, built by hand as that writer did. */
static void build_v1(struct buf *f, const char *data, size_t n)
{
    struct envelope e;
    struct buf ctl;
    char hdr[QF_HDR_LEN + 1];
    make_env(&e);
    buf_init(&ctl);
    ctl_format(&e, &ctl);
    buf_truncate(&ctl, ctl.len - 2); /* without ".\n" */
    snprintf(hdr, sizeof hdr, "POQ1 %016llx\n", (unsigned long long)n);
    uint64_t h = fnv1a64(FNV1A64_INIT, data, n);
    h = fnv1a64(h, ctl.s, ctl.len);
    h = fnv1a64(h, hdr, QF_HDR_LEN);
    buf_add(f, hdr, QF_HDR_LEN);
    buf_add(f, data, n);
    buf_add(f, ctl.s, ctl.len);
    buf_addf(f, ". %016llx\n", (unsigned long long)h);
    buf_free(&ctl);
    env_free(&e);
}

/* qf_load on the bytes of f: 0, or -1 with *why. */
static int load(const struct buf *f, const char **why)
{
    int fd = memfd_create("qf", 0);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, f->s, f->len), (ssize_t)f->len);
    struct envelope e;
    struct qf_info qi;
    env_init(&e);
    int r = qf_load(fd, 1 << 20, 1, &e, &qi, why);
    if (r == 0) {
        assert_string_equal(e.sender, "a@example.org");
        assert_int_equal(e.nrcpts, 1);
        assert_int_equal(qi.data_off, QF_HDR_LEN);
        assert_int_equal(qi.data_len, (long long)strlen(body));
    }
    env_free(&e);
    close(fd);
    return r;
}

static void test_xxh64_vectors(void **state)
{
    (void)state;
    /* the published XXH64 values (seed 0) */
    assert_true(qf_datasum_of("", 0) == 0xEF46DB3751D8E999ULL);
    assert_true(qf_datasum_of("a", 1) == 0xD24EC4F1A98C6E5BULL);
    /* fed in pieces of every size, the same value as in one call */
    char big[1000];
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = (char)(i * 7 + 3);
    uint64_t want = qf_datasum_of(big, sizeof big);
    for (size_t step = 1; step < 70; step++) {
        struct qf_datasum *s = qf_datasum_new();
        for (size_t off = 0; off < sizeof big; off += step)
            qf_datasum_add(s, big + off, off + step > sizeof big ? sizeof big - off : step);
        assert_true(qf_datasum_value(s) == want);
        qf_datasum_free(s);
    }
}

static void test_current_format(void **state)
{
    (void)state;
    struct buf f;
    const char *why = NULL;
    buf_init(&f);
    build_v2(&f, body, strlen(body));
    assert_memory_equal(f.s, "POQ2 ", 5);
    assert_int_equal(load(&f, &why), 0);
    f.s[QF_HDR_LEN + 3] ^= 1; /* one bit of the data */
    assert_int_equal(load(&f, &why), -1);
    assert_string_equal(why, "checksum mismatch (torn or damaged)");
    buf_free(&f);
}

static void test_first_version_still_read(void **state)
{
    (void)state;
    struct buf f;
    const char *why = NULL;
    buf_init(&f);
    build_v1(&f, body, strlen(body));
    assert_int_equal(load(&f, &why), 0);
    f.s[QF_HDR_LEN + 3] ^= 1;
    assert_int_equal(load(&f, &why), -1);
    assert_string_equal(why, "checksum mismatch (torn or damaged)");
    f.s[QF_HDR_LEN + 3] ^= 1;
    /* the version decides the algorithm: the same file called POQ2 fails */
    f.s[3] = '2';
    assert_int_equal(load(&f, &why), -1);
    assert_string_equal(why, "checksum mismatch (torn or damaged)");
    f.s[3] = '3';
    assert_int_equal(load(&f, &why), -1);
    assert_string_equal(why, "no queue file header (torn or not a queue file)");
    buf_free(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_xxh64_vectors),
        cmocka_unit_test(test_current_format),
        cmocka_unit_test(test_first_version_still_read),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
