/* fuzz_logline.c - logfmt.h and syslog_prefix.h: the event log's writer and
 * readers, and the -bS summary over hostile log lines.  Invariants: a prefix
 * found lies inside the line, with a one-word ident and dates in range; a line
 * lf_parse accepts, written again field by field, parses to the same fields;
 * any value written (as text or as an address) reads back unchanged from a
 * line of printable ASCII; the summary takes any line. */
#include "compat.h"

#include "fuzz.h"
#include "logfmt.h"
#include "logsum.h"
#include "syslog_prefix.h"
#include "util.h"

static void check_prefix(const char *line)
{
    struct syslog_prefix p;
    if (syslog_prefix_parse(line, &p) < 0)
        return;
    FUZZ_CHECK(p.msg >= line && p.msg <= line + strlen(line), "message outside the line");
    FUZZ_CHECK(p.ident[0] && !strchr(p.ident, ' '), "ident not one word");
    if (p.have_date)
        FUZZ_CHECK(p.mon >= 1 && p.mon <= 12 && p.mday >= 1 && p.mday <= 31 && p.hour >= 0 &&
                   p.hour <= 23, "date out of range");
}

static void ascii_line(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        FUZZ_CHECK(*p >= 0x20 && *p < 0x7f, "a written line is not printable ASCII");
}

/* A parsed line, written again, parses to the same fields. */
static void check_roundtrip(const char *msg)
{
    struct lf_rec r, again;
    if (lf_parse(msg, &r) < 0)
        return;
    struct logfmt l;
    lf_begin(&l, r.qid, r.event);
    int cut = 0;
    for (size_t i = 0; i < r.n; i++) {
        cut |= strlen(r.f[i].val) > LF_VALUE_MAX;
        if (r.f[i].addr)
            lf_addr(&l, r.f[i].key, r.f[i].val);
        else
            lf_str(&l, r.f[i].key, r.f[i].val);
    }
    ascii_line(lf_line(&l));
    FUZZ_CHECK(lf_parse(lf_line(&l), &again) == 0, "a written line does not parse");
    FUZZ_CHECK(again.n == r.n && !strcmp(again.qid, r.qid) && !strcmp(again.event, r.event),
               "fields lost");
    for (size_t i = 0; i < r.n && !cut; i++)
        FUZZ_CHECK(!strcmp(again.f[i].key, r.f[i].key) && !strcmp(again.f[i].val, r.f[i].val)
                   && again.f[i].addr == r.f[i].addr, "a field changed");
    lf_rec_free(&again);
    lf_rec_free(&r);
    lf_free(&l);
}

/* Any value reads back as written. */
static void check_values(const char *v)
{
    if (strlen(v) > LF_VALUE_MAX)
        return;
    struct logfmt l;
    lf_begin(&l, "Q1", "delivery");
    lf_addr(&l, "to", v);
    lf_str(&l, "reason", v);
    lf_num(&l, "delay", 3);
    ascii_line(lf_line(&l));
    struct lf_rec r;
    FUZZ_CHECK(lf_parse(lf_line(&l), &r) == 0, "a written line does not parse");
    FUZZ_CHECK(r.n == 3 && !strcmp(lf_get(&r, "to"), v) && !strcmp(lf_get(&r, "reason"), v),
               "a value did not read back");
    lf_rec_free(&r);
    lf_free(&l);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *line = fuzz_str(data, size);
    check_prefix(line);
    struct syslog_prefix p;
    check_roundtrip(syslog_prefix_parse(line, &p) == 0 ? p.msg : line);
    check_values(line);
    struct logsum *s = ls_new();
    ls_line(s, line);
    FILE *f = fopen("/dev/null", "w");
    if (f) {
        ls_report(s, f, 3);
        fclose(f);
    }
    ls_free(s);
    free(line);
    return 0;
}
