/* dnsbl.c - DNS block lists (dnsbl.h).  Runs unprivileged, in the session. */
#include "compat.h"

#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "dnsbl.h"
#include "log.h"
#include "util.h"

#define DNSBL_TXT_MAX 300

struct site {
    char *zone;
    char *filter; /* NULL: any answer */
    long weight;
};

/* Split "zone[=filter][*weight]".  0 or -1. */
static int site_parse(const char *entry, struct site *s)
{
    char *z = xstrdup(entry), *star = strrchr(z, '*'), *eq;
    s->zone = NULL;
    s->weight = 1;
    s->filter = NULL;
    if (star) {
        char *end;
        *star = '\0';
        s->weight = strtol(star + 1, &end, 10);
        if (end == star + 1 || *end || s->weight < -1000 || s->weight > 1000) {
            free(z);
            return -1;
        }
    }
    if ((eq = strchr(z, '='))) {
        *eq = '\0';
        s->filter = eq + 1;
    }
    if (!dns_valid_name(z) || (s->filter && !*s->filter)) {
        free(z);
        return -1;
    }
    s->zone = z;
    return 0;
}

/* Does octet v match one filter part ("2", "[2..11]", "[2;4;6..8]")?  1, 0,
 * or -1 when the part is malformed. */
static int part_match(const char *p, size_t n, unsigned v)
{
    char *t = xmalloc(n + 1), *tok, *save = NULL;
    memcpy(t, p, n);
    t[n] = '\0';
    int bracket = n >= 2 && t[0] == '[' && t[n - 1] == ']';
    if (bracket)
        t[n - 1] = '\0';
    int hit = 0, bad = !bracket && strpbrk(t, "[];.") != NULL;
    for (tok = strtok_r(t + bracket, ";", &save); tok && !bad; tok = strtok_r(NULL, ";", &save)) {
        unsigned long lo, hi;
        char *dots = strstr(tok, "..");
        if (dots)
            *dots = '\0';
        if (parse_ulong(tok, &lo) < 0 || (dots && parse_ulong(dots + 2, &hi) < 0))
            bad = 1;
        else if (!dots)
            hi = lo;
        if (!bad && (lo > 255 || hi > 255 || lo > hi))
            bad = 1;
        if (!bad && v >= lo && v <= hi)
            hit = 1;
    }
    free(t);
    return bad ? -1 : hit;
}

/* Does answer a (4 bytes) match filter f?  1, 0, -1 malformed. */
static int filter_match(const char *f, const unsigned char *a)
{
    int all = 1;
    const char *p = f;
    for (int part = 0; part < 4; part++) {
        /* a part ends at a '.' outside brackets */
        const char *e = p;
        int depth = 0;
        while (*e && (depth || *e != '.')) {
            depth += *e == '[';
            depth -= *e == ']';
            e++;
        }
        int m = part_match(p, (size_t)(e - p), a[part]);
        if (m < 0 || (part < 3) != (*e == '.'))
            return -1; /* bad part, or not exactly 4 parts */
        all &= m;
        p = e + 1;
    }
    return all;
}

int dnsbl_valid(const char *entry)
{
    struct site s;
    if (site_parse(entry, &s) < 0)
        return 0;
    static const unsigned char zero[4] = {0, 0, 0, 0};
    int ok = !s.filter || filter_match(s.filter, zero) >= 0;
    free(s.zone);
    return ok;
}

/* Is one of the answers a listing under s?  1 or 0. */
static int counts(const struct site *s, const struct sockaddr_storage *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (v[i].ss_family != AF_INET)
            continue;
        const unsigned char *a =
            (const unsigned char *)&((const struct sockaddr_in *)&v[i])->sin_addr;
        if (!s->filter || filter_match(s->filter, a) == 1)
            return 1;
    }
    return 0;
}

/* The first list that counted: its TXT record as the reason. */
static char *reason_of(struct dns_ctx *d, const char *ip, const char *zone, const char *qname)
{
    char *txt = NULL, *r;
    if (dns_txt(d, qname, DNSBL_TXT_MAX, &txt) == DNS_OK && *txt)
        r = xasprintf("%s is listed by %s: %s", ip, zone, txt);
    else
        r = xasprintf("%s is listed by %s", ip, zone);
    free(txt);
    return r;
}

int dnsbl_check(const struct config *c, struct dns_ctx *d, const struct netaddr *client,
                char **reason)
{
    size_t n = c->dnsbl.n;
    char ip[64];
    *reason = NULL;
    if (!d || !n)
        return 0;
    net_format(client, ip, sizeof ip);
    struct site *s = xcalloc(n, sizeof *s);
    char **names = xcalloc(n, sizeof *names);
    enum dns_status *st = xcalloc(n, sizeof *st);
    struct sockaddr_storage **v = xcalloc(n, sizeof *v);
    size_t *nv = xcalloc(n, sizeof *nv);
    for (size_t i = 0; i < n; i++) {
        struct buf q;
        buf_init(&q);
        if (site_parse(c->dnsbl.v[i], &s[i]) == 0) /* conf.c refused bad ones */
            dns_reverse_name(client->family, client->a, s[i].zone, &q);
        names[i] = q.s; /* "" for a bad entry: not asked */
    }
    /* all lists at once: those that do not answer cost one budget together */
    dns_addrs4_batch(d, (const char *const *)names, n, st, v, nv);
    long score = 0;
    for (size_t i = 0; i < n; i++) {
        if (!s[i].zone)
            continue;
        if (st[i] == DNS_TEMPFAIL)
            log_notice("dnsbl %s: no answer for %s in time: list skipped", s[i].zone, ip);
        if (st[i] == DNS_OK && counts(&s[i], v[i], nv[i])) {
            score += s[i].weight;
            if (s[i].weight > 0 && !*reason)
                *reason = reason_of(d, ip, s[i].zone, names[i]);
        }
    }
    int listed = score >= (c->dnsbl_threshold > 0 ? c->dnsbl_threshold : 1) && *reason;
    if (!listed) {
        free(*reason);
        *reason = NULL;
    }
    for (size_t i = 0; i < n; i++) {
        free(s[i].zone);
        free(names[i]);
        free(v[i]);
    }
    free(s);
    free(names);
    free(st);
    free(v);
    free(nv);
    return listed;
}
