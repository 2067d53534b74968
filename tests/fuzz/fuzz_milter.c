/* fuzz_milter.c - the parsers of the mail filter modules: filter= socket
 * specifications (milter_conf.h) and the header block split and header
 * changes of milter_mods.h.
 * Invariants: a parsed spec has an absolute Unix path or a port in 1..65535
 * and a host without spaces or '/'; the header fields written back
 * ("name:value\n" each) are exactly the header block, and the body offset
 * is within the message; a filter's header value, once recorded, holds no CR
 * or NUL and every line after the first starts with white space. */
#include "compat.h"

#include "fuzz.h"
#include "milter_conf.h"
#include "milter_mods.h"
#include "util.h"

struct mem {
    const uint8_t *p;
    size_t n;
};

static ssize_t mem_read(void *arg, void *p, size_t n, long long off)
{
    struct mem *m = arg;
    if ((size_t)off >= m->n)
        return 0;
    if (n > m->n - (size_t)off)
        n = m->n - (size_t)off;
    memcpy(p, m->p + off, n);
    return (ssize_t)n;
}

static void spec(const uint8_t *data, size_t size)
{
    char *s = fuzz_str(data, size);
    struct mconf_addr a;
    const char *why = NULL;
    if (mconf_parse(s, &a, &why) == 0) {
        if (a.family == MCONF_UNIX) {
            FUZZ_CHECK(a.path && a.path[0] == '/', "unix socket not absolute");
        } else {
            FUZZ_CHECK(a.port >= 1 && a.port <= 65535, "port out of range");
            FUZZ_CHECK(a.host && *a.host && !strpbrk(a.host, " /\t"), "bad host");
        }
        mconf_free(&a);
    } else {
        FUZZ_CHECK(why != NULL, "refused without a reason");
    }
    free(s);
}

static void headers(const uint8_t *data, size_t size)
{
    struct mem m = { data, size };
    struct mhdrs h;
    FUZZ_CHECK(mmods_read_headers(mem_read, &m, (long long)size, size + 1, &h) == 0,
               "reading from memory failed");
    FUZZ_CHECK(h.body_off >= 0 && (size_t)h.body_off <= size, "body offset out of range");
    struct buf b;
    buf_init(&b);
    for (size_t i = 0; i < h.n; i++) {
        FUZZ_CHECK(*h.v[i].name && !strpbrk(h.v[i].name, ": \t\r\n"), "bad header name");
        buf_addf(&b, "%s:%s\n", h.v[i].name, h.v[i].value);
    }
    size_t block = (size_t)h.body_off;
    if (block && data[block - 1] == '\n' && (block == 1 || data[block - 2] == '\n'))
        block--; /* the empty line that ended the block */
    FUZZ_CHECK(b.len == block && (!b.len || memcmp(b.s, data, b.len) == 0),
               "fields written back differ from the header block");
    buf_free(&b);
    mmods_free_headers(&h);
}

static void header_change(const uint8_t *data, size_t size)
{
    size_t cut = size ? data[0] % (size + 1) : 0;
    char *name = fuzz_str(data, cut > size ? size : cut);
    char *value = fuzz_str(data + cut, size - cut);
    struct mmods m;
    mmods_init(&m, 0);
    if (mmods_add_header(&m, MM_ADDHDR, 0, name, value) == 0) {
        const char *v = m.v[0].b;
        FUZZ_CHECK(!strchr(v, '\r'), "CR in a recorded value");
        for (const char *p = strchr(v, '\n'); p; p = strchr(p + 1, '\n'))
            FUZZ_CHECK(p[1] == ' ' || p[1] == '\t', "a folded line without white space");
    }
    mmods_free(&m);
    free(name);
    free(value);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    switch (data[0] % 3) {
    case 0: spec(data + 1, size - 1); break;
    case 1: headers(data + 1, size - 1); break;
    default: header_change(data + 1, size - 1); break;
    }
    return 0;
}
