/* fuzz_aliases.c - aliases.h: the aliases file and the expansion-list splitter.
 * Invariants: the callback count is the return value; names are non-empty,
 * lower-case irrelevant, one line, no ':' and no control byte; errors name the
 * file; split entries are non-empty and hold no line end; an entry written back
 * as "name: e1, e2" (quoted) parses to the same name and the same entries. */
#include "compat.h"

#include "aliases.h"
#include "fuzz.h"
#include "util.h"

struct st {
    int n;
};

/* The entries of value, re-quoted so the splitter must give them back. */
static void requote(const struct strlist *l, struct buf *out)
{
    for (size_t i = 0; i < l->n; i++) {
        if (i)
            buf_adds(out, ", ");
        buf_addc(out, '"');
        for (const char *p = l->v[i]; *p; p++) {
            if (*p == '"' || *p == '\\')
                buf_addc(out, '\\');
            buf_addc(out, *p);
        }
        buf_addc(out, '"');
    }
}

static int cb2(void *arg, const char *name, const char *value, int line)
{
    struct strlist *got = arg;
    (void)line;
    sl_add(got, name);
    aliases_split_list(value, got);
    return 0;
}

static int cb(void *arg, const char *name, const char *value, int line)
{
    struct st *st = arg;
    st->n++;
    FUZZ_CHECK(line > 0, "entry without a line number");
    FUZZ_CHECK(*name != '\0', "empty alias name");
    FUZZ_CHECK(strlen(name) <= ALIAS_NAME_MAX, "alias name longer than ALIAS_NAME_MAX");
    FUZZ_CHECK(!strchr(name, ':'), "alias name with a colon");
    FUZZ_CHECK(!fuzz_has_ctl(name, strlen(name), 0), "alias name with a control byte");
    FUZZ_CHECK(strlen(value) <= ALIAS_ENTRY_MAX, "alias value longer than ALIAS_ENTRY_MAX");

    struct strlist l;
    sl_init(&l);
    int n = aliases_split_list(value, &l);
    FUZZ_CHECK(n >= 0 && (size_t)n == l.n, "aliases_split_list count differs");
    for (size_t i = 0; i < l.n; i++) {
        FUZZ_CHECK(*l.v[i] != '\0', "empty entry from the splitter");
        FUZZ_CHECK(!strchr(l.v[i], '\n'), "entry holds a line end");
    }
    /* write the entry back and read it again */
    struct buf t;
    buf_init(&t);
    buf_addf(&t, "%s: ", name);
    requote(&l, &t);
    buf_addc(&t, '\n');
    struct strlist got;
    sl_init(&got);
    int k = aliases_parse(t.s, t.len, "again", cb2, &got, NULL);
    if (l.n > 0 && !strchr(name, '#') && !strchr(name, ' ') && !strchr(name, '\t') &&
        t.len <= ALIAS_ENTRY_MAX) {
        FUZZ_CHECK(k == 1, "a written entry does not parse back as one entry");
        FUZZ_CHECK(got.n == l.n + 1 && strcmp(got.v[0], name) == 0, "entry parses back differently");
        for (size_t i = 0; i < l.n; i++)
            FUZZ_CHECK(strcmp(got.v[i + 1], l.v[i]) == 0, "entry value splits differently");
    }
    sl_free(&got);
    buf_free(&t);
    sl_free(&l);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct st st = {0};
    struct strlist errors;
    sl_init(&errors);
    int n = aliases_parse((const char *)data, size, "fuzz", cb, &st, &errors);
    FUZZ_CHECK(n == st.n, "aliases_parse count differs from callbacks");
    for (size_t i = 0; i < errors.n; i++)
        FUZZ_CHECK(strncmp(errors.v[i], "fuzz:", 5) == 0, "error without FILE:LINE");
    sl_free(&errors);

    char *s = fuzz_str(data, size);
    struct strlist l;
    sl_init(&l);
    aliases_split_list(s, &l);
    for (size_t i = 0; i < l.n; i++)
        FUZZ_CHECK(*l.v[i] && !strchr(l.v[i], '\n'), "bad entry from aliases_split_list");
    sl_free(&l);
    free(s);
    return 0;
}
