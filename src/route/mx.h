/* mx.h - where mail for a domain goes: address literal, relay-host, MX hosts
 * (by preference, equal preferences shuffled) or the domain's own A/AAAA.
 *
 * We never send to ourselves: a host whose name is one of ours (route_is_local_domain)
 * or whose address is one of this machine's (interfaces, 127/8, ::1) is "us";
 * every MX host with a preference equal to or worse than ours is dropped (RFC
 * 5321 5.1).  If nothing is left, the mail would loop: 5.4.6.  An explicit
 * relay-host port other than 25 is another service on this machine (a content
 * filter), so its address is not checked against ours; its name still is. */
#ifndef PO_MX_H
#define PO_MX_H

#include <stddef.h>
#include <sys/socket.h>

#include "conf.h"
#include "dns.h"

struct mx_host {
    char *name;                     /* host name, or "[address]" for a literal */
    int pref;                       /* MX preference (0 for implicit MX / literal) */
    int self;                       /* this host is us */
    int tempfail;                   /* its address lookup failed temporarily */
    struct sockaddr_storage *addrs; /* IPv6 first, then IPv4; ports set */
    size_t naddrs;
};

struct mx_route {
    struct mx_host *hosts; /* in the order to try them */
    size_t n;
};

enum mx_status { MX_OK = 0, MX_PERMFAIL = 1, MX_TEMPFAIL = -1 };

/* The hosts to try for mail to domain (the part after '@': a name, or an
 * address literal "[192.0.2.1]" / "[IPv6:2001:db8::1]"), or the next hop
 * relay-map= or relay-host= gives it (relay_map.h).  MX_OK with r filled (r->n >= 1, every host has an
 * address); otherwise *why is a malloc'd "X.Y.Z text" (printable ASCII):
 *   5.1.2  no such domain             5.1.10 null MX (RFC 7505)
 *   5.4.4  no MX and no address, or no MX host has an address
 *   5.4.6  mail would loop back to us 4.4.3  DNS failed temporarily
 *   4.4.4  relay-host unusable (a configuration problem never bounces mail) */
enum mx_status mx_route(struct dns_ctx *d, const struct config *c, const char *domain,
                        struct mx_route *r, char **why);

/* This machine's interface addresses, kept by a process that routes many
 * messages (a remote worker of a queue run: remote_session.c) so it does not
 * ask the kernel for every interface once per message (getifaddrs is a
 * netlink dump: a fifth of a 100,000-message queue run's time, issue 14).
 * An explicit cache owned by its caller, no global: zero-initialise it, pass
 * it to mx_route_ours, mx_ours_free it at the end.  The list is taken again
 * when older than MX_OURS_MAX_AGE_MS, so an address added meanwhile counts
 * as ours within that time. */
#define MX_OURS_MAX_AGE_MS 30000
struct mx_ours {
    struct sockaddr_storage *a;
    size_t n;
    long long at_ms; /* now_ms() when listed; 0 = never */
};
/* Refresh o if it was never listed or is older than MX_OURS_MAX_AGE_MS at
 * now (now_ms()).  0, or -1 when the interfaces cannot be listed (o then
 * holds no addresses: only loopback counts as us; retried at the next call). */
int mx_ours_get(struct mx_ours *o, long long now);
void mx_ours_free(struct mx_ours *o);
/* mx_route with the caller's address list (NULL: listed afresh for this call). */
enum mx_status mx_route_ours(struct dns_ctx *d, const struct config *c, const char *domain,
                             struct mx_ours *ours, struct mx_route *r, char **why);
void mx_route_free(struct mx_route *r);

/* The route through dst (relay_map.h's relay_dest_get: a next hop, or NULL
 * host for domain's own MX hosts), as mx_route_ours; a next hop that is
 * unusable is 4.4.4 (deferred, never bounced), its reason naming dst->origin.
 * mx_route_ours is relay_dest_get and then this. */
struct relay_dest;
enum mx_status mx_route_via(struct dns_ctx *d, const struct config *c, const char *domain,
                            const struct relay_dest *dst, struct mx_ours *ours,
                            struct mx_route *r, char **why);

/* The DNS half of route_mx_here/route_mx_listed (route.h, which decide what
 * it means): does domain's MX (without MX, its address; for an address
 * literal, the literal) point at this machine?  best_only: only the most
 * preferred MX hosts count.  1 yes, 0 no, -1 DNS failed temporarily. */
int mx_points_at_us(struct dns_ctx *d, const struct config *c, const char *domain,
                    int best_only);

/* ---- pieces, exposed for tests ---- */

/* "[192.0.2.1]", "[IPv6:2001:db8::1]" (also "[2001:db8::1]") -> ss (port 0).
 * 0 or -1. */
int mx_parse_literal(const char *s, struct sockaddr_storage *ss);

/* Is sa one of this machine's addresses (ours: from mx_our_addrs)? */
int mx_addr_is_self(const struct sockaddr *sa, const struct sockaddr_storage *ours,
                    size_t nours);
/* This machine's interface addresses (getifaddrs), malloc'd.  0 or -1. */
int mx_our_addrs(struct sockaddr_storage **out, size_t *n);

/* Drop (and free) every host whose preference is >= the best preference of a
 * host marked self; hosts stay in order.  Returns the new count; *had_self
 * says whether any host was us. */
size_t mx_prune_self(struct mx_host *h, size_t n, int *had_self);

void mx_host_free(struct mx_host *h);

#endif
