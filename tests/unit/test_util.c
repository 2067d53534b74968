/* test_util.c - read_file: whole files read straight into a struct buf,
 * the size limit (EFBIG), empty files, content appended to what b holds;
 * pread_rest from an offset. */
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
#include <unistd.h>

#include <cmocka.h>

#include "util.h"

/* A temporary file holding n bytes of a repeating pattern; its path in path. */
static void make_file(char *path, size_t pathsz, size_t n)
{
    snprintf(path, pathsz, "/tmp/po-test-util-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    for (size_t i = 0; i < n; i++) {
        char c = (char)('a' + i % 26);
        assert_int_equal(write(fd, &c, 1), 1);
    }
    close(fd);
}

static void check_pattern(const struct buf *b, size_t from, size_t n)
{
    assert_int_equal(b->len, from + n);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(b->s[from + i], (char)('a' + i % 26));
    assert_int_equal(b->s[b->len], '\0');
}

static void test_sizes(void **state)
{
    (void)state;
    /* around the initial capacity, the limit and several growth steps */
    const size_t sizes[] = { 0, 1, 63, 64, 65, 4095, 4096, 4097, 100000 };
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        char path[64];
        struct buf b;
        make_file(path, sizeof path, sizes[k]);
        buf_init(&b);
        assert_int_equal(read_file(path, &b, 100000), 0);
        check_pattern(&b, 0, sizes[k]);
        buf_free(&b);
        unlink(path);
    }
}

static void test_limit(void **state)
{
    (void)state;
    char path[64];
    struct buf b;
    make_file(path, sizeof path, 4097);
    buf_init(&b);
    assert_int_equal(read_file(path, &b, 4097), 0); /* exactly the limit */
    buf_reset(&b);
    errno = 0;
    assert_int_equal(read_file(path, &b, 4096), -1); /* one byte over */
    assert_int_equal(errno, EFBIG);
    buf_free(&b);
    unlink(path);
}

/* Content is appended, and counts toward the limit as before. */
static void test_append(void **state)
{
    (void)state;
    char path[64];
    struct buf b;
    make_file(path, sizeof path, 300);
    buf_init(&b);
    buf_adds(&b, "head:");
    assert_int_equal(read_file(path, &b, 305), 0);
    assert_memory_equal(b.s, "head:", 5);
    check_pattern(&b, 5, 300);
    buf_reset(&b);
    buf_adds(&b, "head:");
    errno = 0;
    assert_int_equal(read_file(path, &b, 304), -1);
    assert_int_equal(errno, EFBIG);
    buf_free(&b);
    unlink(path);
}

/* Files whose size fstat does not tell (here a pipe via /dev/fd) and
 * missing files. */
static void test_pipe_and_missing(void **state)
{
    (void)state;
    int p[2];
    assert_int_equal(pipe(p), 0);
    for (int i = 0; i < 5000; i++) {
        char c = (char)('a' + i % 26);
        assert_int_equal(write(p[1], &c, 1), 1);
    }
    close(p[1]);
    char path[64];
    snprintf(path, sizeof path, "/dev/fd/%d", p[0]);
    struct buf b;
    buf_init(&b);
    assert_int_equal(read_file(path, &b, 10000), 0);
    check_pattern(&b, 0, 5000);
    close(p[0]);
    buf_reset(&b);
    errno = 0;
    assert_int_equal(read_file("/nonexistent/po-test", &b, 100), -1);
    assert_int_equal(errno, ENOENT);
    buf_free(&b);
}

/* pread_rest: from an offset to the end, across its 8 KiB reads; the bound. */
static void test_pread_rest(void **state)
{
    (void)state;
    char path[64];
    make_file(path, sizeof path, 20000);
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    struct buf b;
    buf_init(&b);
    assert_int_equal(pread_rest(fd, 26 * 100, &b, 1 << 20), 0);
    check_pattern(&b, 0, 20000 - 2600);
    buf_reset(&b);
    errno = 0;
    assert_int_equal(pread_rest(fd, 0, &b, 19999), -1);
    assert_int_equal(errno, EFBIG);
    buf_free(&b);
    close(fd);
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sizes),
        cmocka_unit_test(test_limit),
        cmocka_unit_test(test_append),
        cmocka_unit_test(test_pipe_and_missing),
        cmocka_unit_test(test_pread_rest),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
