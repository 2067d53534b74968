/* route.h - every routing decision in one place: is a domain ours, does its
 * MX point here, which way a recipient goes.
 *
 * route_is_local_domain() is the only function that answers "is this domain
 * ours"; the SMTP server, the expansion, the MX router and the queue runner
 * all ask it, for virtual domains too.  The DNS questions
 * (route_mx_here, route_mx_listed, route_name_mx_local) are asked by the
 * caller's process: the queue runner runs them in an unprivileged child and
 * gives route_recipient() the answer through a lookup function, so the
 * decision itself never touches the network and is tested on its own.
 * Never runs anything privileged. */
#ifndef PO_ROUTE_H
#define PO_ROUTE_H

#include "conf.h"
#include "dns.h"
#include "util.h"

/* Is domain one of ours: self=, hostname=, localhost, an active virtual
 * domain of VHOSTDIR/domains.cf (vdomain.h; any case, a trailing dot
 * ignored), or an address literal ([192.0.2.1], [IPv6:::1]) of one of
 * this machine's interfaces?  A NULL domain (a bare user name) is ours; ""
 * is not.  1 or 0. */
int route_is_local_domain(const struct config *c, const char *domain);

/* The same without the virtual domains: is name (a host name, not a mail
 * domain) this host?  A virtual domain's name is no host of ours: another
 * domain's MX, or a client's HELO, may name it and mean a machine elsewhere.
 * What the MX router asks of MX host names.  1 or 0. */
int route_is_our_host(const struct config *c, const char *name);

/* Is mail for domain ours because its MX (or, without MX, its address)
 * points at us (localmx)?  With mxpool only when we are among the most
 * preferred MX hosts.  1 yes, 0 no, -1 DNS failed temporarily. */
int route_mx_here(struct dns_ctx *d, const struct config *c, const char *domain);

/* Are we one of domain's MX hosts at all (any preference; without MX, does
 * its address point at us)?  What the SMTP server asks before it takes mail
 * for a domain that is not ours from a client that may not relay (a backup
 * MX queues it for the better one).  1 yes, 0 no, -1 DNS failed temporarily. */
int route_mx_listed(struct dns_ctx *d, const struct config *c, const char *domain);

/* Does host name have an MX record naming a host with one of this machine's
 * addresses (the localmx relay permission for a client by its PTR name)?
 * 1 or 0 (a failed lookup is 0: no permission). */
int route_name_mx_local(struct dns_ctx *d, const char *name);

/* Does name (a HELO argument: an address literal or a host name) name this
 * host: one of our addresses, one of our host names (route_is_our_host), or
 * a name whose A/AAAA records are ours (d may be NULL: no lookup)?  1 or 0
 * (a failed lookup is 0). */
int route_host_is_us(const struct config *c, struct dns_ctx *d, const char *name);

/* Which way a recipient goes. */
enum route_way {
    ROUTE_LOCAL = 0, /* one of our domains (or a bare user): expand it */
    ROUTE_LOCAL_MX,  /* ours only because its MX points here: expand the local part */
    ROUTE_RELAY,     /* remote, through relay-host or a relay-map next hop */
    ROUTE_MX,        /* remote, to the domain's MX hosts (or an address literal) */
    ROUTE_UNSURE,    /* DNS failed: cannot tell yet whether it is ours (4.4.3) */
    ROUTE_OFF        /* a virtual domain switched off here (domains.cf) whose MX
                        still points here: neither local nor remote; wait */
};

/* The question route_recipient asks about a remote domain's MX: as
 * route_mx_here (1, 0, -1).  arg is the caller's. */
typedef int (*route_mx_fn)(void *arg, const char *domain);

/* The way of a recipient whose domain is domain (addr_domain(): NULL for a
 * bare user).  A relay-map= entry with a next hop makes it ROUTE_RELAY (as
 * does an unusable map: the delivery waits with the reason), one with "-"
 * the domain's own MX hosts (relay_map.h).  mx_here is called only for a
 * domain that is neither ours by name nor an address literal nor sent to a
 * next hop, and only without relay-host (everything remote then goes there,
 * whatever the MX says) unless the map says "-".  A NULL mx_here counts as
 * "not here" (remote).  A domain switched off in domains.cf whose MX points
 * here is ROUTE_OFF: its users are not local accounts. */
enum route_way route_recipient(const struct config *c, const char *domain,
                               route_mx_fn mx_here, void *arg);

/* Is the way remote (ROUTE_RELAY or ROUTE_MX)? */
int route_is_remote(enum route_way w);

/* Remembered route_mx_fn answers, one per domain (any case) for the life of
 * the cache: route_mx_cached is itself a route_mx_fn (arg: the cache) that
 * asks fn only once per domain; a temporary failure is not remembered. */
struct route_cache {
    struct strlist answers; /* "1domain" / "0domain" */
    route_mx_fn fn;
    void *arg;
};
void route_cache_init(struct route_cache *rc, route_mx_fn fn, void *arg);
int route_mx_cached(void *cache, const char *domain);
void route_cache_free(struct route_cache *rc);

#endif
