/* fuzz_vacation.c - vacation_msg.h and vacation_rules.h: the vacation file's
 * parser, the reply composed from it, the rule checker on a header block.
 * The input is a vacation file, then (after the first NUL byte, if any) the
 * original's Subject and Message-ID (split at the next NUL).
 * Invariants: a parsed file has a UTF-8 body without control characters
 * ending in LF (or empty) and a period in range; a composed reply is 7-bit,
 * every line at most 998 bytes, its header block made only of fields (one
 * Auto-Submitted: auto-replied), no control byte but LF and tab; the rules
 * never answer <>, and never a message with Precedence: bulk put first. */
#include "compat.h"

#include "address.h"
#include "fuzz.h"
#include "util.h"
#include "vacation_msg.h"
#include "vacation_rules.h"

static void check_reply(const char *r, size_t n)
{
    int in_head = 1, auto_sub = 0;
    for (size_t i = 0; i < n;) {
        const char *nl = memchr(r + i, '\n', n - i);
        FUZZ_CHECK(nl != NULL, "reply does not end in LF");
        size_t len = (size_t)(nl - (r + i));
        FUZZ_CHECK(len <= 998, "reply line longer than 998 bytes");
        for (size_t k = 0; k < len; k++) {
            unsigned char c = (unsigned char)r[i + k];
            FUZZ_CHECK(c < 0x80, "8-bit byte in the reply");
            FUZZ_CHECK(c >= 0x20 || c == '\t' || c == '\f', "control byte in the reply");
        }
        if (in_head && len == 0) {
            in_head = 0;
        } else if (in_head) {
            int cont = r[i] == ' ' || r[i] == '\t';
            const char *colon = memchr(r + i, ':', len);
            FUZZ_CHECK(cont || (colon && colon > r + i), "header line is not a field");
            auto_sub += len == 28 && !memcmp(r + i, "Auto-Submitted: auto-replied", 28);
        }
        i += len + 1;
    }
    FUZZ_CHECK(!in_head, "reply has no body separator");
    FUZZ_CHECK(auto_sub == 1, "not exactly one Auto-Submitted: auto-replied");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *d = (const char *)data;
    const char *z = memchr(d, '\0', size);
    size_t flen = z ? (size_t)(z - d) : size;
    char *rest = z ? fuzz_str(data + flen + 1, size - flen - 1) : fuzz_str(data, 0);
    struct vac_file f;
    char *err = NULL;
    if (vac_file_parse(d, flen, &f, &err) == 0) {
        FUZZ_CHECK(f.period >= 0 && f.period <= VAC_PERIOD_MAX, "period out of range");
        size_t bl = strlen(f.body);
        FUZZ_CHECK(bl == 0 || f.body[bl - 1] == '\n', "body does not end in LF");
        FUZZ_CHECK(addr_utf8_valid(f.body, bl), "body is not UTF-8");
        for (size_t k = 0; k < bl; k++) {
            unsigned char c = (unsigned char)f.body[k];
            FUZZ_CHECK((c >= 0x20 && c != 0x7f) || c == '\n' || c == '\t' || c == '\f',
                       "control byte in the body");
        }
        struct vac_orig o = {.subject = rest, .msgid = rest, .refs = rest};
        struct buf out;
        buf_init(&out);
        if (vac_compose(&f, &o, "a@b.example", "c@d.example", "h.example", 0, &out, &err) == 0)
            check_reply(out.s, out.len);
        else
            FUZZ_CHECK(err != NULL, "compose failed without a reason");
        buf_free(&out);
        vac_file_free(&f);
    } else {
        FUZZ_CHECK(err != NULL, "parse failed without a reason");
    }
    free(err);
    struct strlist self;
    sl_init(&self);
    sl_add(&self, "a@b.example");
    const char *why = NULL;
    FUZZ_CHECK(vac_rules_check("", d, size, &self, 0, &why) == 0, "answered <>");
    char *bulk = xmalloc(size + 18);
    memcpy(bulk, "Precedence: bulk\n", 17);
    memcpy(bulk + 17, d, size);
    FUZZ_CHECK(vac_rules_check("x@y.example", bulk, size + 17, &self, 0, &why) == 0 &&
                   strstr(why, "Precedence"), "answered bulk mail");
    int r1 = vac_rules_check("x@y.example", d, size, &self, 1, &why);
    int r2 = vac_rules_check("x@y.example", d, size, &self, 1, &why);
    FUZZ_CHECK(r1 == r2, "rules not deterministic");
    free(bulk);
    sl_free(&self);
    free(rest);
    return 0;
}
