/* data_fixture.h - a queued message's data for the delivery unit tests
 * (test_mbox, test_maildir, test_message_out): bytes written to a temporary
 * file that is unlinked at once, and the msgdata naming all of it.  After
 * cmocka.h and the header that defines struct msgdata. */
#ifndef PO_TEST_DATA_FIXTURE_H
#define PO_TEST_DATA_FIXTURE_H

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

/* The descriptor of an unlinked file holding p[0..n). */
static inline int fixture_data_file(const void *p, size_t n)
{
    char path[] = "/tmp/po-test-data-XXXXXX"; /* mkstemp's template */
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    assert_int_equal(write_all(fd, p, n), 0);
    return fd;
}

/* The whole of data file fd as a message. */
static inline struct msgdata fixture_md(int fd)
{
    struct stat st;
    assert_int_equal(fstat(fd, &st), 0);
    return (struct msgdata){fd, 0, (long long)st.st_size};
}

#endif
