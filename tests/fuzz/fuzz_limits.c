/* fuzz_limits.c - mailbox_limits.h and maildir.h's maildirsize parser, the
 * two formats a mailbox limit is read from.  The first byte picks one.
 * Invariants: a limits file gives 1 with a limit >= 0, 0 with no reason, or
 * -1 with a reason naming the file and a line; the lookup is deterministic
 * and ignores case; a maildirsize text parses only when it starts with the
 * limit's "NS" line, to a sum never below 0, and parsing it again with that
 * line removed fails. */
#include "compat.h"

#include <ctype.h>

#include "fuzz.h"
#include "mailbox_limits.h"
#include "maildir.h"
#include "util.h"

static void limits(const char *text, size_t len)
{
    long long v = -1, v2 = -1;
    char *why = NULL, *why2 = NULL;
    int rc = mlimit_lookup_text(text, len, "limits", "alice", "mx.example", &v, &why);
    FUZZ_CHECK(rc >= -1 && rc <= 1, "result out of range");
    if (rc == 1)
        FUZZ_CHECK(v >= 0 && why == NULL, "a found limit below 0, or with a reason");
    if (rc == 0)
        FUZZ_CHECK(why == NULL, "not found, with a reason");
    if (rc < 0)
        FUZZ_CHECK(why && strncmp(why, "limits line ", 12) == 0 && isdigit((unsigned char)why[12]),
                   "an error without the file and line");
    int rc2 = mlimit_lookup_text(text, len, "limits", "ALICE", "MX.Example", &v2, &why2);
    FUZZ_CHECK(rc2 == rc && (rc != 1 || v2 == v), "case changed the answer");
    free(why);
    free(why2);
}

static void sizefile(const char *text, size_t len)
{
    long long bytes = -1;
    const long long limit = 1000;
    int rc = maildirsize_parse(text, len, limit, &bytes);
    FUZZ_CHECK(rc == 0 || rc == -1, "result out of range");
    if (rc < 0)
        return;
    FUZZ_CHECK(bytes >= 0, "a sum below 0");
    FUZZ_CHECK(len >= 6 && memcmp(text, "1000S\n", 6) == 0, "parsed without the limit line");
    long long again = -1;
    FUZZ_CHECK(maildirsize_parse(text, len, limit, &again) == 0 && again == bytes,
               "not deterministic");
    FUZZ_CHECK(maildirsize_parse(text + 6, len - 6, limit, &again) == -1 ||
                   (len - 6 >= 6 && memcmp(text + 6, "1000S\n", 6) == 0),
               "parsed without its first line");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    if (data[0] & 1)
        limits((const char *)data + 1, size - 1);
    else
        sizefile((const char *)data + 1, size - 1);
    return 0;
}
