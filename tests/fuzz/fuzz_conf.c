/* fuzz_conf.c - conf.h: postoffice.cf read from a file, tagged numbers.
 * Invariants: loading is deterministic (the same text twice gives the same
 * config_dump); every dumped option is one "name=value" line, and hostname=
 * (in every greeting and Received: field) has no control byte; tagged
 * numbers are never negative and agree with their plain-number meaning. */
#include "compat.h"

#include <sysexits.h>

#include "conf.h"
#include "fuzz.h"
#include "util.h"

static char path[64];

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    snprintf(path, sizeof path, "/tmp/po-fuzz-conf-%ld.cf", (long)getpid());
    return 0;
}

static int load(const uint8_t *data, size_t size, struct buf *dump)
{
    FILE *f = fopen(path, "w");
    if (!f || fwrite(data, 1, size, f) != size || fclose(f) != 0)
        abort();
    struct config c;
    struct config_ctx ctx = {1, 0}; /* root, no ownership check on /tmp */
    config_defaults(&c);
    int rc = config_load(&c, path, 1, &ctx);
    config_dump(&c, dump);
    config_free(&c);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct buf d1, d2;
    buf_init(&d1);
    buf_init(&d2);
    int r1 = load(data, size, &d1);
    int r2 = load(data, size, &d2);
    unlink(path);
    FUZZ_CHECK(r1 == r2, "config_load result not deterministic");
    FUZZ_CHECK(r1 == 0 || r1 == EX_CONFIG || r1 == EX_NOPERM || r1 == EX_NOINPUT ||
                   r1 == EX_OSFILE, "config_load returned an undocumented code");
    FUZZ_CHECK(d1.len == d2.len && memcmp(d1.s, d2.s, d1.len) == 0,
               "config_dump differs for the same text");
    /* every dumped line is name=value, no control byte */
    for (size_t i = 0, st = 0; i < d1.len; i++) {
        if (d1.s[i] != '\n')
            continue;
        /* root's file may hold odd bytes in a path; the host name we
         * announce in every greeting and Received: field may not */
        if (strncmp(d1.s + st, "hostname=", 9) == 0)
            FUZZ_CHECK(!fuzz_has_ctl(d1.s + st, i - st, 0), "hostname= holds a control byte");
        FUZZ_CHECK(memchr(d1.s + st, '=', i - st) != NULL, "dumped line without '='");
        st = i + 1;
    }
    buf_free(&d1);
    buf_free(&d2);

    char *s = fuzz_str(data, size);
    long t, t60;
    long long z;
    if (config_parse_time(s, 1, &t) == 0) {
        FUZZ_CHECK(t >= 0, "config_parse_time gave a negative time");
        if (config_parse_time(s, 60, &t60) == 0 && t60 != t)
            FUZZ_CHECK(t60 == t * 60, "bare minutes are not 60 times bare seconds");
    }
    if (config_parse_size(s, &z) == 0)
        FUZZ_CHECK(z >= 0, "config_parse_size gave a negative size");
    free(s);
    return 0;
}
