/* fuzz_hqualify.c - header_qualify.h: "@domain" for unqualified addresses.
 * Invariants: the output is the input with exactly n insertions of
 * "@domain" (nothing else changes, so removing them gives the input back);
 * a second pass qualifies nothing and changes nothing (every address now
 * has its domain). */
#include "compat.h"

#include "fuzz.h"
#include "header_qualify.h"
#include "util.h"

#define DOM "fuzz.example"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = (const char *)data;
    const size_t add = strlen("@" DOM);
    struct buf out, again;
    buf_init(&out);
    buf_init(&again);
    size_t n = hq_headers(in, size, DOM, &out);
    FUZZ_CHECK(out.len == size + n * add, "output is not the input plus the insertions");
    /* take the insertions out again: the input, byte for byte */
    size_t i = 0, j = 0, found = 0;
    while (j < out.len) {
        if (found < n && out.len - j >= add && memcmp(out.s + j, "@" DOM, add) == 0 &&
            (i >= size || in[i] != '@' || size - i < add || memcmp(in + i, "@" DOM, add))) {
            j += add;
            found++;
            continue;
        }
        FUZZ_CHECK(i < size && in[i] == out.s[j], "a byte of the input changed");
        i++;
        j++;
    }
    FUZZ_CHECK(i == size, "input bytes lost");
    size_t m = hq_headers(out.s, out.len, DOM, &again);
    FUZZ_CHECK(m == 0, "a second pass qualified again");
    FUZZ_CHECK(again.len == out.len && memcmp(again.s, out.s, out.len) == 0,
               "a second pass changed the text");
    buf_free(&out);
    buf_free(&again);
    return 0;
}
