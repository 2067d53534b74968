/* fuzz_dns.c - dns.c: parsing of DNS answers (hostile input) and MX sorting.
 * The answer parser is internal to dns.c (static), so this harness includes
 * dns.c itself and feeds the input as an answer packet to what lookup() does
 * with one: parse_rrs, follow_cnames, then the MX / address / PTR visitors.
 * Invariants: records' rdata lies inside the packet; a followed CNAME chain
 * ends at a valid name within CNAME_MAX hops; every MX host is "" (null MX)
 * or a valid host name, every PTR name valid; addresses are not repeated;
 * dns_sort_mx orders by preference and keeps the same records.  TXT text
 * (dnsbl= reasons) is printable and bounded. */
#include "../../src/route/dns.c"

#include "fuzz.h"

struct rnd {
    const uint8_t *p;
    size_t n, i;
};

static uint32_t fuzz_rnd(void *arg)
{
    struct rnd *r = arg;
    uint32_t v = 0;
    for (int k = 0; k < 4; k++)
        v = v << 8 | (r->n ? r->p[r->i++ % r->n] : 0x5a);
    return v;
}

static int mx_full_cmp(const void *a, const void *b)
{
    const struct dns_mx *x = a, *y = b;
    if (x->pref != y->pref)
        return x->pref < y->pref ? -1 : 1;
    return strcmp(x->host, y->host);
}

static void check_mx(struct mxacc *m, const uint8_t *data, size_t size)
{
    for (size_t i = 0; i < m->n; i++) {
        const char *h = m->v[i].host;
        FUZZ_CHECK(*h == '\0' || dns_valid_name(h), "MX host name not valid");
        FUZZ_CHECK(!fuzz_has_ctl(h, strlen(h), 0), "MX host name with a control byte");
        FUZZ_CHECK(m->v[i].pref >= 0 && m->v[i].pref <= 65535, "MX preference out of range");
    }
    struct dns_mx *a = xcalloc(m->n ? m->n : 1, sizeof *a), *b = xcalloc(m->n ? m->n : 1, sizeof *b);
    if (m->n)
        memcpy(a, m->v, m->n * sizeof *a);
    struct rnd r = {data, size, 0};
    if (m->n) /* dns_mx never sorts an empty list (qsort(NULL, 0) is UB) */
        dns_sort_mx(m->v, m->n, fuzz_rnd, &r);
    for (size_t i = 1; i < m->n; i++)
        FUZZ_CHECK(m->v[i - 1].pref <= m->v[i].pref, "dns_sort_mx did not sort by preference");
    if (m->n)
        memcpy(b, m->v, m->n * sizeof *b);
    qsort(a, m->n, sizeof *a, mx_full_cmp);
    qsort(b, m->n, sizeof *b, mx_full_cmp);
    for (size_t i = 0; i < m->n; i++)
        FUZZ_CHECK(a[i].host == b[i].host || mx_full_cmp(&a[i], &b[i]) == 0,
                   "dns_sort_mx changed the records");
    free(a);
    free(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 65535)
        return 0;
    const unsigned char *ab = data;
    int alen = (int)size;
    struct rr *v;
    size_t n;
    if (parse_rrs(ab, alen, &v, &n) < 0)
        return 0;
    for (size_t i = 0; i < n; i++) {
        FUZZ_CHECK(v[i].owner != NULL, "record without an owner");
        FUZZ_CHECK(v[i].rdata >= ab && v[i].rdata + v[i].rdlen <= ab + size, "rdata outside the packet");
    }
    /* the name asked for: the first record's owner (what a real answer echoes) */
    char *cur = xstrdup(n ? v[0].owner : "example.org");
    int hops = 0;
    if (follow_cnames(ab, alen, v, n, &cur, &hops) == 0) {
        FUZZ_CHECK(hops <= CNAME_MAX, "CNAME chain longer than CNAME_MAX");
        if (hops)
            FUZZ_CHECK(dns_valid_name(cur), "CNAME chain ends at an invalid name");
        struct mxacc m = {NULL, 0, 0, 0};
        struct addracc a = {NULL, 0, 0};
        struct txtacc t;
        buf_init(&t.b);
        t.max = 300;
        t.seen = 0;
        char *ptr = NULL;
        size_t naddr = 0;
        for (size_t i = 0; i < n; i++) {
            if (strcasecmp(v[i].owner, cur) != 0)
                continue;
            if (v[i].type == T_MX)
                mx_fn(ab, alen, &v[i], &m);
            if (v[i].type == T_A || v[i].type == T_AAAA) {
                addr_fn(ab, alen, &v[i], &a);
                naddr++;
            }
            if (v[i].type == T_PTR)
                ptr_fn(ab, alen, &v[i], &ptr);
            if (v[i].type == T_TXT)
                txt_fn(ab, alen, &v[i], &t);
        }
        /* dns_txt's contract: printable ASCII only, at most max bytes */
        FUZZ_CHECK(t.b.len <= t.max, "TXT longer than its limit");
        for (size_t i = 0; i < t.b.len; i++)
            FUZZ_CHECK(t.b.s[i] >= 0x20 && t.b.s[i] < 0x7f, "TXT byte not printable");
        buf_free(&t.b);
        check_mx(&m, data, size);
        FUZZ_CHECK(a.n <= naddr, "more addresses than address records");
        for (size_t i = 0; i < a.n; i++) {
            int fam = a.v[i].ss_family;
            FUZZ_CHECK(fam == AF_INET || fam == AF_INET6, "address of another family");
            for (size_t j = 0; j < i; j++)
                FUZZ_CHECK(memcmp(&a.v[i], &a.v[j], sizeof a.v[i]) != 0, "address repeated");
        }
        if (ptr)
            FUZZ_CHECK(dns_valid_name(ptr), "PTR name not valid");
        free(ptr);
        free(a.v);
        dns_free_mx(m.v, m.n);
    }
    free(cur);
    free_rrs(v, n);
    return 0;
}
