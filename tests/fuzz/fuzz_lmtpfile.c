/* fuzz_lmtpfile.c - lmtp.h: lmtp_file_value, the parser of a virtual
 * domain's lmtp file.  Invariants: success gives one value, without line
 * ends, control bytes or blanks, that is in the input and parses
 * (mailbox_spec.h) as an LMTP server; failure gives a reason and no value. */
#include "compat.h"

#include "fuzz.h"
#include "lmtp.h"
#include "mailbox_spec.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *why = (char *)"unset";
    char *v = lmtp_file_value((const char *)data, size, &why);
    if (v == NULL) {
        FUZZ_CHECK(why != NULL && *why, "failure without a reason");
        free(why);
        return 0;
    }
    FUZZ_CHECK(why == NULL, "a value and a reason");
    size_t n = strlen(v);
    FUZZ_CHECK(n > 0, "an empty value");
    for (size_t i = 0; i < n; i++)
        FUZZ_CHECK((unsigned char)v[i] > ' ' && v[i] != 0x7f, "a blank or control byte in the value");
    FUZZ_CHECK(memmem(data, size, v, n) != NULL, "the value is not in the input");
    struct mailbox_spec s;
    char *perr = NULL;
    FUZZ_CHECK(mailbox_spec_parse(v, &s, &perr) == 0 && s.kind == MB_LMTP,
               "the value is not an LMTP server");
    FUZZ_CHECK((s.lmtp_unix != NULL) != (s.lmtp_host != NULL), "neither or both of unix and host");
    mailbox_spec_free(&s);
    free(v);
    return 0;
}
