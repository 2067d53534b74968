/* route.c - every routing decision (route.h): is a domain ours (our names and
 * our interface address literals, the active virtual domains), does its MX
 * point here, which way a recipient goes.  The DNS mechanics are mx.c's and
 * dns.c's; the decisions are here.  Never runs anything privileged. */
#include "compat.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "conf.h"
#include "dns.h"
#include "mx.h"
#include "netaddr.h"
#include "relay_map.h"
#include "route.h"
#include "vdomain.h"

/* name (n bytes) is s, ignoring case */
static int same(const char *name, size_t n, const char *s)
{
    return strlen(s) == n && strncasecmp(name, s, n) == 0;
}

/* One of our names: localhost, hostname=, self=.  A trailing dot is ignored. */
static int our_name(const struct config *c, const char *domain)
{
    size_t n = strlen(domain);
    if (n && domain[n - 1] == '.')
        n--;
    if (same(domain, n, "localhost") || same(domain, n, c->hostname))
        return 1;
    for (size_t i = 0; i < c->self_names.n; i++)
        if (same(domain, n, c->self_names.v[i]))
            return 1;
    return 0;
}

int route_is_our_host(const struct config *c, const char *name)
{
    if (!name)
        return 1;
    if (*name == '\0')
        return 0;
    if (*name == '[') {
        /* an address literal is ours when it names one of our interfaces */
        struct netaddr a;
        return net_parse(name, &a) == 0 && net_is_local_interface(&a) == 1;
    }
    return our_name(c, name);
}

int route_is_local_domain(const struct config *c, const char *domain)
{
    /* an active virtual domain is ours whatever its MX says (vhosts(7)) */
    return route_is_our_host(c, domain) ||
           (*domain != '[' && vdomain_active(c, domain));
}

int route_mx_here(struct dns_ctx *d, const struct config *c, const char *domain)
{
    /* mxpool: local only when we are a most-preferred MX */
    return mx_points_at_us(d, c, domain, c->mxpool);
}

int route_mx_listed(struct dns_ctx *d, const struct config *c, const char *domain)
{
    return mx_points_at_us(d, c, domain, 0);
}

static int any_local(const struct sockaddr_storage *ss, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        struct netaddr a;
        if (net_from_sockaddr((const struct sockaddr *)&ss[i], &a) == 0 &&
            (net_is_loopback(&a) || net_is_local_interface(&a) == 1))
            return 1;
    }
    return 0;
}

int route_host_is_us(const struct config *c, struct dns_ctx *d, const char *name)
{
    struct netaddr a;
    if (net_parse(name, &a) == 0)
        return net_is_loopback(&a) || net_is_local_interface(&a) == 1;
    if (route_is_our_host(c, name))
        return 1;
    if (d == NULL || !dns_valid_name(name))
        return 0;
    struct sockaddr_storage *ss = NULL;
    size_t n = 0;
    int ours = dns_addrs(d, name, AF_UNSPEC, &ss, &n) == DNS_OK && any_local(ss, n);
    free(ss);
    return ours;
}

int route_name_mx_local(struct dns_ctx *d, const char *name)
{
    struct dns_mx *mx = NULL;
    size_t n = 0;
    int ok = 0;
    if (!d || !name || dns_mx(d, name, &mx, &n) != DNS_OK)
        return 0;
    for (size_t i = 0; i < n && !ok; i++) {
        struct sockaddr_storage *ss = NULL;
        size_t m = 0;
        if (mx[i].host[0] && dns_addrs(d, mx[i].host, AF_UNSPEC, &ss, &m) == DNS_OK)
            ok = any_local(ss, m);
        free(ss);
    }
    dns_free_mx(mx, n);
    return ok;
}

enum route_way route_recipient(const struct config *c, const char *domain,
                               route_mx_fn mx_here, void *arg)
{
    if (route_is_local_domain(c, domain))
        return ROUTE_LOCAL;
    int mapped = relay_map_way(c, domain); /* relay-map= entries come first */
    if (mapped == 1)
        return ROUTE_RELAY;
    if (c->relay_host && mapped < 0)
        return ROUTE_RELAY; /* everything remote goes there: no lookup */
    if (domain[0] == '[' || !mx_here)
        return ROUTE_MX;
    int r = mx_here(arg, domain);
    if (r == 1 && vdomain_switched_off(c, domain))
        return ROUTE_OFF;
    return r == 1 ? ROUTE_LOCAL_MX : r == 0 ? ROUTE_MX : ROUTE_UNSURE;
}

int route_is_remote(enum route_way w)
{
    return w == ROUTE_RELAY || w == ROUTE_MX;
}

void route_cache_init(struct route_cache *rc, route_mx_fn fn, void *arg)
{
    sl_init(&rc->answers);
    rc->fn = fn;
    rc->arg = arg;
}

int route_mx_cached(void *cache, const char *domain)
{
    struct route_cache *rc = cache;
    for (size_t k = 0; k < rc->answers.n; k++)
        if (strcasecmp(rc->answers.v[k] + 1, domain) == 0)
            return rc->answers.v[k][0] == '1';
    int r = rc->fn(rc->arg, domain);
    if (r == 0 || r == 1)
        sl_add_owned(&rc->answers, xasprintf("%d%s", r, domain));
    return r;
}

void route_cache_free(struct route_cache *rc)
{
    sl_free(&rc->answers);
}
