/* fuzz_greyvalue.c - greylist_db.h: the smtpauth(5) value parser.
 * Invariants: a value that parses formats back to text that parses to the
 * same entry (and, when it was already canonical, to the same text);
 * parsed times are never negative. */
#include "compat.h"

#include "fuzz.h"
#include "greylist_db.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct grey_rec r, again;
    if (grey_rec_parse((const char *)data, size, &r) < 0)
        return 0;
    FUZZ_CHECK(r.allowed >= 0 && r.last >= 0, "negative time parsed");
    FUZZ_CHECK(!r.forbidden || r.allowed == 0, "forbidden entry with an allowed time");
    char out[GREY_VALUE_MAX];
    size_t n = grey_rec_format(&r, out, sizeof out);
    FUZZ_CHECK(n > 0 && n < sizeof out, "formatted value does not fit");
    FUZZ_CHECK(grey_rec_parse(out, n, &again) == 0, "formatted value does not parse");
    if (r.last) /* a value without last seen formats with " 0" */
        FUZZ_CHECK(memcmp(&r, &again, sizeof r) == 0, "value changed in a round trip");
    return 0;
}
