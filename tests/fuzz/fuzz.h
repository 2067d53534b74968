/* fuzz.h - helpers shared by the libFuzzer harnesses in tests/fuzz/.
 *
 * Each harness checks its module's contract (include/NAME.h), not just "no
 * crash": a broken invariant calls fuzz_fail(), which aborts so libFuzzer
 * records the input as a crash. */
#ifndef PO_FUZZ_H
#define PO_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static inline void fuzz_failed(const char *file, int line, const char *what)
{
    fprintf(stderr, "%s:%d: invariant broken: %s\n", file, line, what);
    abort();
}
#define FUZZ_CHECK(cond, what) \
    do { if (!(cond)) fuzz_failed(__FILE__, __LINE__, (what)); } while (0)

/* A NUL-terminated copy of n bytes (stops at an embedded NUL for C-string APIs). */
static inline char *fuzz_str(const uint8_t *p, size_t n)
{
    char *s = malloc(n + 1);
    if (!s)
        abort();
    memcpy(s, p, n);
    s[n] = '\0';
    return s;
}

/* Does s (n bytes) hold a control byte (< 0x20 or 0x7f), tab allowed if tab_ok? */
static inline int fuzz_has_ctl(const char *s, size_t n, int tab_ok)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c < 0x20 && !(tab_ok && c == '\t')) || c == 0x7f)
            return 1;
    }
    return 0;
}

/* An anonymous file holding n bytes, offset 0. */
static inline int fuzz_memfd(const void *p, size_t n)
{
    int fd = memfd_create("fuzz", MFD_CLOEXEC);
    if (fd < 0)
        abort();
    const char *c = p;
    while (n) {
        ssize_t w = write(fd, c, n);
        if (w <= 0)
            abort();
        c += w;
        n -= (size_t)w;
    }
    if (lseek(fd, 0, SEEK_SET) != 0)
        abort();
    return fd;
}

/* The whole content of fd (malloc'd, NUL-terminated), length in *n. */
static inline char *fuzz_slurp(int fd, size_t *n)
{
    off_t end = lseek(fd, 0, SEEK_END);
    if (end < 0)
        abort();
    char *s = malloc((size_t)end + 1);
    if (!s || pread(fd, s, (size_t)end, 0) != (ssize_t)end)
        abort();
    s[end] = '\0';
    *n = (size_t)end;
    return s;
}

#endif
