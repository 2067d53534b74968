/* mx.c - the route for a domain: literal, relay-host, MX hosts or A/AAAA,
 * minus ourselves.  Runs unprivileged (queue runner child, SMTP session). */
#include "compat.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "conf.h"
#include "dns.h"
#include "log.h"
#include "mx.h"
#include "relay_map.h"
#include "route.h"
#include "util.h"

#define MX_HOSTS_MAX 32      /* more MX hosts than this are ignored (hostile zones) */
#define ROUTE_DNS_MS 120000 /* address lookups for one route stop after this */

/* ---- parsing ---- */

int mx_parse_literal(const char *s, struct sockaddr_storage *ss)
{
    size_t len = strlen(s);
    if (len < 3 || s[0] != '[' || s[len - 1] != ']' || len > 80)
        return -1;
    char *in = xstrndup(s + 1, len - 2);
    const char *a = in;
    int v6 = 0;
    if (str_has_prefix_ci(a, "IPv6:")) {
        a += 5;
        v6 = 1;
    }
    memset(ss, 0, sizeof *ss);
    int ok = -1;
    struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
    if (!v6 && inet_pton(AF_INET, a, &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET;
        ok = 0;
    } else if (inet_pton(AF_INET6, a, &s6->sin6_addr) == 1) {
        s6->sin6_family = AF_INET6;
        ok = 0;
    }
    free(in);
    return ok;
}

/* ---- who we are ---- */

int mx_our_addrs(struct sockaddr_storage **out, size_t *n)
{
    struct ifaddrs *ifa, *i;
    *out = NULL;
    *n = 0;
    if (getifaddrs(&ifa) < 0)
        return -1;
    size_t cap = 0;
    for (i = ifa; i; i = i->ifa_next) {
        if (!i->ifa_addr)
            continue;
        int f = i->ifa_addr->sa_family;
        if (f != AF_INET && f != AF_INET6)
            continue;
        if (*n == cap) {
            cap = cap ? cap * 2 : 8;
            *out = xreallocarray(*out, cap, sizeof **out);
        }
        memset(&(*out)[*n], 0, sizeof **out);
        memcpy(&(*out)[*n], i->ifa_addr,
               f == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6));
        (*n)++;
    }
    freeifaddrs(ifa);
    return 0;
}

int mx_ours_get(struct mx_ours *o, long long now)
{
    if (o->at_ms && now - o->at_ms >= 0 && now - o->at_ms < MX_OURS_MAX_AGE_MS)
        return 0;
    free(o->a);
    o->a = NULL;
    o->n = 0;
    o->at_ms = 0;
    if (mx_our_addrs(&o->a, &o->n) < 0)
        return -1; /* at_ms stays 0: asked again next time */
    o->at_ms = now ? now : 1;
    return 0;
}

void mx_ours_free(struct mx_ours *o)
{
    free(o->a);
    o->a = NULL;
    o->n = 0;
    o->at_ms = 0;
}

static int same_addr(const struct sockaddr *a, const struct sockaddr *b)
{
    if (a->sa_family != b->sa_family)
        return 0;
    if (a->sa_family == AF_INET)
        return memcmp(&((const struct sockaddr_in *)a)->sin_addr,
                      &((const struct sockaddr_in *)b)->sin_addr, 4) == 0;
    return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
                  &((const struct sockaddr_in6 *)b)->sin6_addr, 16) == 0;
}

int mx_addr_is_self(const struct sockaddr *sa, const struct sockaddr_storage *ours, size_t nours)
{
    if (sa->sa_family == AF_INET) {
        const unsigned char *b = (const unsigned char *)&((const struct sockaddr_in *)sa)->sin_addr;
        if (b[0] == 127 || (b[0] | b[1] | b[2] | b[3]) == 0)
            return 1; /* loopback net, 0.0.0.0 */
    } else if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        if (IN6_IS_ADDR_LOOPBACK(a) || IN6_IS_ADDR_UNSPECIFIED(a))
            return 1;
        if (IN6_IS_ADDR_V4MAPPED(a)) {
            struct sockaddr_in s4;
            memset(&s4, 0, sizeof s4);
            s4.sin_family = AF_INET;
            memcpy(&s4.sin_addr, a->s6_addr + 12, 4);
            return mx_addr_is_self((struct sockaddr *)&s4, ours, nours);
        }
    }
    for (size_t i = 0; i < nours; i++)
        if (same_addr(sa, (const struct sockaddr *)&ours[i]))
            return 1;
    return 0;
}

/* ---- hosts ---- */

void mx_host_free(struct mx_host *h)
{
    free(h->name);
    free(h->addrs);
    h->name = NULL;
    h->addrs = NULL;
    h->naddrs = 0;
}

void mx_route_free(struct mx_route *r)
{
    for (size_t i = 0; i < r->n; i++)
        mx_host_free(&r->hosts[i]);
    free(r->hosts);
    r->hosts = NULL;
    r->n = 0;
}

size_t mx_prune_self(struct mx_host *h, size_t n, int *had_self)
{
    int best = -1;
    for (size_t i = 0; i < n; i++)
        if (h[i].self && (best < 0 || h[i].pref < best))
            best = h[i].pref;
    *had_self = best >= 0;
    if (best < 0)
        return n;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (h[i].pref >= best)
            mx_host_free(&h[i]);
        else
            h[k++] = h[i];
    }
    return k;
}

static void set_port(struct sockaddr_storage *ss, int port)
{
    if (ss->ss_family == AF_INET)
        ((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)port);
    else
        ((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)port);
}

/* Resolve h's addresses and decide whether it is us. */
static void resolve_host(struct dns_ctx *d, const struct config *c, struct mx_host *h,
                         const struct sockaddr_storage *ours, size_t nours, int check_addr)
{
    if (h->name[0] != '[') {
        enum dns_status st = dns_addrs(d, h->name, AF_UNSPEC, &h->addrs, &h->naddrs);
        h->tempfail = st == DNS_TEMPFAIL;
        if (route_is_our_host(c, h->name))
            h->self = 1;
    }
    for (size_t i = 0; check_addr && i < h->naddrs; i++)
        if (mx_addr_is_self((struct sockaddr *)&h->addrs[i], ours, nours))
            h->self = 1;
}

static char *dns_why(enum dns_status st, const char *what, const char *name)
{
    switch (st) {
    case DNS_NXDOMAIN:
        return xasprintf("5.1.2 %s %s does not exist", what, name);
    case DNS_NODATA:
        return xasprintf("5.4.4 %s %s has no MX and no address records", what, name);
    default:
        return xasprintf("4.4.3 DNS lookup for %s %s failed temporarily", what, name);
    }
}

/* The candidate hosts of name (MX, or the name itself), unresolved. */
static enum mx_status candidates(struct dns_ctx *d, const char *name, const char *what,
                                 struct mx_host **out, size_t *n, char **why)
{
    struct dns_mx *mx;
    size_t nmx;
    *out = NULL;
    *n = 0;
    enum dns_status st = dns_mx(d, name, &mx, &nmx);
    if (st == DNS_NODATA) { /* RFC 5321 5.1: the name itself is an implicit MX */
        *out = xcalloc(1, sizeof **out);
        (*out)->name = xstrdup(name);
        *n = 1;
        return MX_OK;
    }
    if (st != DNS_OK) {
        *why = dns_why(st, what, name);
        return st == DNS_TEMPFAIL ? MX_TEMPFAIL : MX_PERMFAIL;
    }
    if (nmx == 1 && mx[0].host[0] == '\0') {
        *why = xasprintf("5.1.10 %s %s accepts no mail (null MX)", what, name);
        dns_free_mx(mx, nmx);
        return MX_PERMFAIL;
    }
    if (nmx > MX_HOSTS_MAX)
        log_warn("%s %s has %zu MX hosts; trying the first %d", what, name, nmx, MX_HOSTS_MAX);
    size_t k = nmx > MX_HOSTS_MAX ? MX_HOSTS_MAX : nmx;
    *out = xcalloc(k, sizeof **out);
    for (size_t i = 0; i < k; i++) {
        (*out)[i].name = mx[i].host;
        (*out)[i].pref = mx[i].pref;
        mx[i].host = NULL;
    }
    *n = k;
    dns_free_mx(mx, nmx);
    return MX_OK;
}

static int same_name(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la && a[la - 1] == '.')
        la--;
    if (lb && b[lb - 1] == '.')
        lb--;
    return la == lb && strncasecmp(a, b, la) == 0;
}

/* The unresolved hosts for target: the literal itself, or candidates(). */
static enum mx_status target_hosts(struct dns_ctx *d, const char *target, const char *what,
                                   struct mx_host **h, size_t *n, char **why)
{
    struct sockaddr_storage lit;
    *h = NULL;
    *n = 0;
    if (target[0] == '[') {
        if (mx_parse_literal(target, &lit) < 0) {
            *why = xasprintf("5.1.2 bad address literal %s", target);
            return MX_PERMFAIL;
        }
        *h = xcalloc(1, sizeof **h);
        (*h)->name = xstrdup(target);
        (*h)->addrs = xmalloc(sizeof lit);
        (*h)->addrs[0] = lit;
        (*h)->naddrs = 1;
        *n = 1;
        return MX_OK;
    }
    if (!dns_valid_name(target)) {
        *why = xasprintf("5.1.2 %s is not a valid domain name", target);
        return MX_PERMFAIL;
    }
    return candidates(d, target, what, h, n, why);
}

/* Resolve every host (within ROUTE_DNS_MS) and mark the ones that are us.
 * Returns whether some lookup failed temporarily. */
static int resolve_all(struct dns_ctx *d, const struct config *c, struct mx_host *h, size_t n,
                       const char *target, int is_relay, int check_addr, struct mx_ours *kept)
{
    struct mx_ours own = {0};
    struct mx_ours *o = kept ? kept : &own;
    int tempfail = 0;
    if (mx_ours_get(o, now_ms()) < 0)
        log_warn("cannot list this machine's addresses; only loopback counts as us");
    const struct sockaddr_storage *ours = o->a;
    size_t nours = o->n;
    /* a slow or hostile DNS must not hold a delivery for (MX hosts x budget):
     * hosts not resolved in time are left out of this attempt */
    long long deadline = now_ms() + ROUTE_DNS_MS;
    for (size_t i = 0; i < n; i++) {
        if (h[i].name[0] != '[' && ms_left(deadline) == 0) {
            h[i].tempfail = 1;
            tempfail = 1;
            continue;
        }
        resolve_host(d, c, &h[i], ours, nours, check_addr);
        tempfail |= h[i].tempfail;
        if (!is_relay && same_name(h[i].name, target) && route_is_our_host(c, target))
            h[i].self = 1;
    }
    mx_ours_free(&own);
    return tempfail;
}

/* Keep the hosts that have addresses, setting port on each.  New count. */
static size_t usable_hosts(struct mx_host *h, size_t n, int port)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (h[i].naddrs == 0) {
            mx_host_free(&h[i]);
            continue;
        }
        for (size_t j = 0; j < h[i].naddrs; j++)
            set_port(&h[i].addrs[j], port);
        h[k++] = h[i];
    }
    return k;
}

enum mx_status mx_route(struct dns_ctx *d, const struct config *c, const char *domain,
                        struct mx_route *r, char **why)
{
    return mx_route_ours(d, c, domain, NULL, r, why);
}

/* The hosts of target: a literal, [name] (no_mx: the name alone), or MX. */
static enum mx_status via_hosts(struct dns_ctx *d, const char *target, const char *what,
                                int no_mx, struct mx_host **h, size_t *n, char **why)
{
    if (!no_mx || target[0] == '[')
        return target_hosts(d, target, what, h, n, why);
    if (!dns_valid_name(target)) {
        *why = xasprintf("5.1.2 %s is not a valid host name", target);
        return MX_PERMFAIL;
    }
    *h = xcalloc(1, sizeof **h);
    (*h)->name = xstrdup(target);
    *n = 1;
    return MX_OK;
}

enum mx_status mx_route_via(struct dns_ctx *d, const struct config *c, const char *domain,
                            const struct relay_dest *dst, struct mx_ours *ours,
                            struct mx_route *r, char **why)
{
    const char *relay = dst->host;
    const char *target = relay ? relay : domain, *what = "domain";
    int port = relay ? dst->port : 25;
    char *what_buf = NULL;
    r->hosts = NULL;
    r->n = 0;
    *why = NULL;
    if (relay)
        what = dst->line ? (what_buf = xasprintf("next hop (%s)", dst->origin)) : "relay-host";
    struct mx_host *h;
    size_t n;
    enum mx_status ms = via_hosts(d, target, what, relay && dst->no_mx, &h, &n, why);
    if (ms == MX_OK) {
        int tempfail = resolve_all(d, c, h, n, target, relay != NULL, !relay || port == 25,
                                   ours);
        int had_self;
        n = mx_prune_self(h, n, &had_self);
        n = usable_hosts(h, n, port);
        if (n == 0) {
            if (had_self)
                *why = xasprintf("5.4.6 mail for %s loops back to myself (%s points here)",
                                 target, what);
            else if (tempfail)
                *why = xasprintf("4.4.3 DNS address lookup for the hosts of %s failed "
                                 "temporarily", target);
            else
                *why = xasprintf("5.4.4 no mail host of %s %s has an address", what, target);
            ms = had_self || !tempfail ? MX_PERMFAIL : MX_TEMPFAIL;
            free(h);
            h = NULL;
        }
    }
    if (ms == MX_PERMFAIL && relay) {
        /* a broken next hop is the administrator's to fix: defer, never bounce */
        const char *sp = strchr(*why, ' ');
        char *t = xasprintf("4.4.4 %s: %s", dst->origin ? dst->origin : "relay-host",
                            sp ? sp + 1 : *why);
        free(*why);
        *why = t;
        ms = MX_TEMPFAIL;
    }
    if (ms == MX_OK) {
        r->hosts = h;
        r->n = n;
    }
    free(what_buf);
    return ms;
}

enum mx_status mx_route_ours(struct dns_ctx *d, const struct config *c, const char *domain,
                             struct mx_ours *ours, struct mx_route *r, char **why)
{
    struct relay_dest dst;
    r->hosts = NULL;
    r->n = 0;
    if (relay_dest_get(c, domain, &dst, why) < 0)
        return MX_TEMPFAIL;
    enum mx_status ms = mx_route_via(d, c, domain, &dst, ours, r, why);
    relay_dest_free(&dst);
    return ms;
}

/* Does an MX host of domain (or, without MX, the domain itself) point at us?
 * best_only: only the most preferred hosts count. */
static int points_here(struct dns_ctx *d, const struct config *c, const char *domain,
                       int best_only)
{
    struct mx_host *h;
    size_t n;
    char *why = NULL;
    if (domain[0] == '[') {
        struct sockaddr_storage lit, *ours = NULL;
        size_t nours = 0;
        if (mx_parse_literal(domain, &lit) < 0)
            return 0;
        mx_our_addrs(&ours, &nours);
        int r = mx_addr_is_self((struct sockaddr *)&lit, ours, nours);
        free(ours);
        return r;
    }
    enum mx_status ms = candidates(d, domain, "domain", &h, &n, &why);
    free(why);
    if (ms != MX_OK)
        return ms == MX_TEMPFAIL ? -1 : 0;
    struct sockaddr_storage *ours = NULL;
    size_t nours = 0;
    mx_our_addrs(&ours, &nours);
    int here = 0, best = n ? h[0].pref : 0, temp = 0;
    for (size_t i = 0; i < n && !here; i++) {
        if (best_only && h[i].pref != best)
            break;
        resolve_host(d, c, &h[i], ours, nours, 1);
        temp |= h[i].tempfail;
        here |= h[i].self;
    }
    for (size_t i = 0; i < n; i++)
        mx_host_free(&h[i]);
    free(h);
    free(ours);
    return here ? 1 : temp ? -1 : 0;
}

int mx_points_at_us(struct dns_ctx *d, const struct config *c, const char *domain,
                    int best_only)
{
    return points_here(d, c, domain, best_only);
}
