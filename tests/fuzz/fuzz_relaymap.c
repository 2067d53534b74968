/* fuzz_relaymap.c - relay_map.h: the relay-map= file parser.  Invariants:
 * success gives entries whose patterns are lower case, without a trailing
 * dot, "*" or a (.)domain, each once; next hops are NULL ("-"), an address
 * literal or a valid name, ports 1-65535; ca= and auth= absolute without
 * blanks or control bytes; line numbers rising.  Each entry written back as
 * a line parses to the same entry, and relay_map_find gives a domain
 * pattern's own entry.  Failure gives a "line N ..." reason and no entries. */
#include "compat.h"

#include "dns.h"
#include "fuzz.h"
#include "relay_map.h"
#include "util.h"

static void check_path(const char *p)
{
    if (!p)
        return;
    FUZZ_CHECK(p[0] == '/', "ca= or auth= not absolute");
    for (; *p; p++)
        FUZZ_CHECK((unsigned char)*p > 0x20 && *p != 0x7f, "blank or control byte in a path");
}

static char *entry_line(const struct relay_entry *e)
{
    char *hop = !e->host ? xstrdup("-")
                : e->no_mx ? xasprintf("[%s]:%d", e->host, e->port)
                           : xasprintf("%s:%d", e->host, e->port);
    char *l = xasprintf("%s %s%s%s%s%s%s%s\n", e->pattern, hop, e->tls ? " tls=" : "",
                        e->tls ? relay_tls_name(e->tls) : "", e->ca ? " ca=" : "",
                        e->ca ? e->ca : "", e->auth ? " auth=" : "", e->auth ? e->auth : "");
    free(hop);
    return l;
}

static int same_str(const char *a, const char *b)
{
    return a && b ? strcmp(a, b) == 0 : a == b;
}

static void round_trip(const struct relay_entry *e)
{
    char *l = entry_line(e);
    struct relay_map m;
    char *why = NULL;
    FUZZ_CHECK(relay_map_parse(l, strlen(l), &m, &why) == 0 && m.n == 1,
               "an entry written back does not parse");
    const struct relay_entry *f = &m.v[0];
    FUZZ_CHECK(strcmp(f->pattern, e->pattern) == 0 && same_str(f->host, e->host) &&
                   (!e->host || f->port == e->port) && f->no_mx == e->no_mx &&
                   f->tls == e->tls && same_str(f->ca, e->ca) && same_str(f->auth, e->auth),
               "an entry written back parses differently");
    relay_map_free(&m);
    free(l);
}

static void check_entry(const struct relay_map *m, size_t i)
{
    const struct relay_entry *e = &m->v[i];
    const char *p = e->pattern;
    size_t n = strlen(p);
    FUZZ_CHECK(n > 0 && p[n - 1] != '.', "pattern empty or with a trailing dot");
    for (const char *q = p; *q; q++)
        FUZZ_CHECK(*q < 'A' || *q > 'Z', "pattern not lower case");
    FUZZ_CHECK(strcmp(p, "*") == 0 || dns_valid_name(p[0] == '.' ? p + 1 : p),
               "pattern not *, domain or .domain");
    for (size_t j = 0; j < i; j++) {
        FUZZ_CHECK(strcmp(m->v[j].pattern, p) != 0, "a pattern twice");
        FUZZ_CHECK(m->v[j].line < e->line, "line numbers not rising");
    }
    FUZZ_CHECK(e->port >= 1 && e->port <= 65535, "port out of range");
    FUZZ_CHECK(!e->host || e->host[0] == '[' || dns_valid_name(e->host), "bad next hop");
    FUZZ_CHECK(!e->no_mx || (e->host && e->host[0] != '['), "no_mx on a literal or -");
    FUZZ_CHECK(e->tls >= RELAY_TLS_DEFAULT && e->tls <= RELAY_TLS_SMTPS, "tls out of range");
    check_path(e->ca);
    check_path(e->auth);
    if (p[0] != '.' && p[0] != '*')
        FUZZ_CHECK(relay_map_find(m, p) == e, "a domain does not find its own entry");
    round_trip(e);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct relay_map m;
    char *why = NULL;
    int rc = relay_map_parse((const char *)data, size, &m, &why);
    if (rc == 0) {
        FUZZ_CHECK(!why, "success with a reason");
        for (size_t i = 0; i < m.n; i++)
            check_entry(&m, i);
        relay_map_free(&m);
        return 0;
    }
    FUZZ_CHECK(rc == -1 && why && strncmp(why, "line ", 5) == 0, "failure without a line");
    FUZZ_CHECK(m.n == 0 && !m.v, "failure with entries");
    free(why);
    return 0;
}
