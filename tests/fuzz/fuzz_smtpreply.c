/* fuzz_smtpreply.c - smtp_client.h: the SMTP reply parser (hostile servers).
 * The input is split into lines at LF (a CR before it dropped) and fed reply
 * by reply.  Invariants: codes are 200-559 and the same on every line; kept
 * text is printable ASCII; at most SMTPC_LINES_MAX lines; a failure has a
 * reason; the status of a complete reply is "C.X.Y text" with C the code's
 * class, printable, at most SMTPC_TEXT_MAX bytes of text. */
#include "compat.h"

#include "fuzz.h"
#include "smtp_client.h"
#include "util.h"

static void check_reply(const struct smtp_reply *r)
{
    FUZZ_CHECK(r->code >= 200 && r->code <= 559, "reply code out of range");
    FUZZ_CHECK(r->lines.n >= 1 && r->lines.n <= SMTPC_LINES_MAX, "reply line count out of range");
    for (size_t i = 0; i < r->lines.n; i++)
        for (const unsigned char *p = (const unsigned char *)r->lines.v[i]; *p; p++)
            FUZZ_CHECK(*p >= 0x20 && *p < 0x7f, "reply text not printable ASCII");
    if (!r->done)
        return;
    char *st = smtp_reply_status(r);
    size_t n = strlen(st);
    for (size_t i = 0; i < n; i++)
        FUZZ_CHECK((unsigned char)st[i] >= 0x20 && (unsigned char)st[i] < 0x7f,
                   "reply status not printable ASCII");
    FUZZ_CHECK(n >= 5 && st[0] == '0' + r->code / 100 && st[1] == '.', "status lacks C.X.Y");
    const char *sp = strchr(st, ' ');
    size_t enh = sp ? (size_t)(sp - st) : n;
    FUZZ_CHECK(enh <= 9, "enhanced code too long");
    FUZZ_CHECK(n - enh <= SMTPC_TEXT_MAX + 1 + 3, "status text longer than SMTPC_TEXT_MAX");
    free(st);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p = (const char *)data, *end = p + size;
    struct smtp_reply r;
    smtp_reply_init(&r);
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t raw = nl ? (size_t)(nl - p) : (size_t)(end - p), len = raw;
        if (len && p[len - 1] == '\r')
            len--;
        const char *why = NULL;
        int rc = smtp_reply_line(&r, p, len, &why);
        p += raw + (nl ? 1 : 0);
        if (rc < 0) {
            FUZZ_CHECK(why != NULL, "protocol violation without a reason");
            smtp_reply_free(&r);
            smtp_reply_init(&r);
            continue;
        }
        check_reply(&r);
        FUZZ_CHECK(rc == (r.done ? 0 : 1), "return value and done disagree");
        if (rc == 0) {
            smtp_reply_free(&r);
            smtp_reply_init(&r);
        }
    }
    smtp_reply_free(&r);
    return 0;
}
