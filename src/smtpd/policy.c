/* policy.c - relay decision, trusted hosts, checkhelo, verify-from, recipient
 * checks, free space and load.  Runs unprivileged in the session child. */
#include "compat.h"

#include <netinet/in.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "address.h"
#include "expand.h"
#include "mx.h"
#include "policy.h"
#include "route.h"
#include "spool.h"
#include "vdomain.h"

/* Do the addresses of host (A and AAAA) include a? */
static int host_has_addr(struct dns_ctx *d, const char *host, const struct netaddr *a)
{
    struct sockaddr_storage *ss = NULL;
    size_t n = 0;
    int found = 0;
    if (!d || dns_addrs(d, host, AF_UNSPEC, &ss, &n) != DNS_OK)
        return 0;
    for (size_t i = 0; i < n && !found; i++) {
        struct netaddr x;
        if (net_from_sockaddr((const struct sockaddr *)&ss[i], &x) == 0)
            found = net_equal(&x, a);
    }
    free(ss);
    return found;
}

void policy_lookup_client(struct dns_ctx *d, struct client *cl)
{
    free(cl->ptr);
    cl->ptr = NULL;
    if (!d) {
        cl->ptr_status = DNS_TEMPFAIL;
        return;
    }
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    if (cl->addr.family == AF_INET) {
        struct sockaddr_in *s4 = (struct sockaddr_in *)(void *)&ss;
        s4->sin_family = AF_INET;
        memcpy(&s4->sin_addr, cl->addr.a, 4);
    } else {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)(void *)&ss;
        s6->sin6_family = AF_INET6;
        memcpy(&s6->sin6_addr, cl->addr.a, 16);
    }
    char *name = NULL;
    enum dns_status st = dns_ptr(d, (struct sockaddr *)&ss, &name);
    if (st != DNS_OK) {
        cl->ptr_status = st;
        return;
    }
    /* a PTR name counts only if it resolves back to the client (paranoid) */
    if (host_has_addr(d, name, &cl->addr)) {
        cl->ptr = name;
        cl->ptr_status = DNS_OK;
    } else {
        free(name);
        cl->ptr_status = DNS_NODATA;
    }
}

int policy_trusted(const struct config *c, struct dns_ctx *d, const struct client *cl)
{
    if (cl->local)
        return 0;
    for (size_t i = 0; i < c->trusted.n; i++) {
        const char *t = c->trusted.v[i];
        struct netaddr net;
        int prefix;
        if (net_parse_cidr(t, &net, &prefix) == 0) {
            if (net_in_cidr(&cl->addr, &net, prefix))
                return 1;
        } else if (dns_valid_name(t) && host_has_addr(d, t, &cl->addr)) {
            return 1;
        }
    }
    return 0;
}

int policy_localmx(const struct config *c, struct dns_ctx *d, const struct client *cl)
{
    return c->localmx && cl->ptr && route_name_mx_local(d, cl->ptr);
}

void policy_relay(const struct config *c, struct dns_ctx *d, struct client *cl)
{
    cl->trusted = policy_trusted(c, d, cl);
    if (cl->local || c->relay || cl->trusted || net_is_loopback(&cl->addr) ||
        net_is_local_interface(&cl->addr) == 1 || policy_localmx(c, d, cl))
        cl->relay_ok = 1;
    else
        cl->relay_ok = 0;
}

static int says(struct buf *why, int code, const char *fmt, ...) PO_PRINTF(3, 4);
static int says(struct buf *why, int code, const char *fmt, ...)
{
    va_list ap;
    buf_reset(why);
    va_start(ap, fmt);
    buf_vaddf(why, fmt, ap);
    va_end(ap);
    return code;
}

int policy_helo(const struct config *c, struct dns_ctx *d, const struct client *cl,
                const char *helo, struct buf *why)
{
    if (!c->checkhelo || cl->relay_ok)
        return 0;
    if (!route_host_is_us(c, d, helo))
        return 0;
    return says(why, 554, "5.7.1 HELO/EHLO names this host, but the connection comes from %s",
                cl->ip);
}

/* verify-from: does the sender's domain accept mail at all? */
static int sender_domain_ok(struct dns_ctx *d, const char *dom, struct buf *why)
{
    struct dns_mx *mx = NULL;
    size_t n = 0;
    if (dom[0] == '[')
        return 0;
    if (!d)
        return says(why, 451, "4.4.3 cannot check the sender's domain now (no resolver)");
    enum dns_status st = dns_mx(d, dom, &mx, &n);
    if (st == DNS_OK) {
        int nullmx = n == 1 && mx[0].host[0] == '\0';
        dns_free_mx(mx, n);
        if (nullmx)
            return says(why, 550, "5.7.27 the sender's domain %s accepts no mail (null MX)", dom);
        return 0;
    }
    if (st == DNS_NODATA) {
        struct sockaddr_storage *ss = NULL;
        size_t m = 0;
        st = dns_addrs(d, dom, AF_UNSPEC, &ss, &m);
        free(ss);
        if (st == DNS_OK)
            return 0;
    }
    if (st == DNS_TEMPFAIL)
        return says(why, 451, "4.4.3 cannot resolve the sender's domain %s now; try again later", dom);
    return says(why, 553, "5.1.8 the sender's domain %s does not exist in the DNS", dom);
}

int policy_mail(const struct config *c, struct dns_ctx *d, const struct client *cl,
                const char *sender, struct buf *why)
{
    if (sender[0] == '\0') {
        if (c->nodaemon)
            return says(why, 550, "5.7.1 this server does not accept the null sender <> (nodaemon)");
        return 0;
    }
    /* our own clients (relay_ok) are not checked: like Postfix's
     * permit_mynetworks before reject_unknown_sender_domain */
    if (!c->verify_from || cl->relay_ok)
        return 0;
    const char *dom = addr_domain(sender);
    if (!dom || route_is_local_domain(c, dom))
        return says(why, 550, "5.7.1 a sender in our own domain is accepted only from our clients");
    return sender_domain_ok(d, dom, why);
}

/* A recipient we deliver here: the local part must exist and must not route
 * further. */
static int local_rcpt(const struct config *c, const char *rcpt, const char *local,
                      const char *dom, struct buf *why)
{
    /* the percent hack, UUCP bang paths and quoted "a@b" local parts would
     * route on to another host: never through us */
    if (strpbrk(local, "%!@"))
        return says(why, 550, "5.7.1 <%s>: routing in the local part is not supported", rcpt);
    /* a virtual domain's names are its own (vhosts(7)) */
    char *vd = dom ? vdomain_name(c, dom) : NULL;
    int ex = vd ? expand_virtual_exists(c, local, vd) : expand_local_exists(c, local);
    free(vd);
    if (ex == 0)
        return says(why, 550, "5.1.1 <%s>: no such user here", rcpt);
    if (ex < 0)
        return says(why, 451, "4.3.0 <%s>: cannot look up this user now; try again later", rcpt);
    return 0;
}

static int relay_denied(const char *rcpt, struct buf *why)
{
    return says(why, 554, "5.7.1 <%s>: relaying denied; this server accepts mail only for its own domains",
                rcpt);
}

int policy_rcpt(const struct config *c, const struct client *cl, const char *rcpt,
                struct buf *why)
{
    char *local = NULL, *dom = NULL;
    int code = 0;
    addr_split(rcpt, &local, &dom);
    if (!dom || route_is_local_domain(c, dom))
        code = local_rcpt(c, rcpt, local, dom, why);
    else if (!cl->relay_ok)
        code = relay_denied(rcpt, why);
    free(local);
    free(dom);
    return code;
}

/* Our part in dom's MX list: 2 we deliver its mail here (an MX of it; with
 * mxpool a most preferred one), 1 a backup MX that queues it for a better
 * one (mxpool), 0 none, -1 DNS failed temporarily.  Mirrors the queue
 * runner, which delivers locally exactly when route_mx_here() says so. */
static int mx_role(const struct config *c, struct dns_ctx *d, const char *dom)
{
    int listed = route_mx_listed(d, c, dom);
    if (listed != 1)
        return listed;
    if (!c->mxpool)
        return 2;
    int best = route_mx_here(d, c, dom);
    return best == 1 ? 2 : best == 0 ? 1 : -1;
}

int policy_rcpt_dns(const struct config *c, struct dns_ctx *d, const struct client *cl,
                    const char *rcpt, struct buf *why)
{
    char *local = NULL, *dom = NULL;
    int code = 0;
    addr_split(rcpt, &local, &dom);
    if (!dom || cl->relay_ok || route_is_local_domain(c, dom)) {
        code = policy_rcpt(c, cl, rcpt, why);
    } else if (!d) {
        code = says(why, 451, "4.4.3 <%s>: cannot tell now whether this server is an MX host "
                    "of %s (no resolver); try again later", rcpt, dom);
    } else {
        switch (mx_role(c, d, dom)) {
        case 2:
            if (vdomain_switched_off(c, dom))
                code = says(why, 451, "4.3.0 <%s>: the virtual domain %s is switched off "
                            "here; try again later", rcpt, dom);
            else
                code = local_rcpt(c, rcpt, local, NULL, why);
            break;
        case 1: code = 0; break;
        case 0: code = relay_denied(rcpt, why); break;
        default:
            code = says(why, 451, "4.4.3 <%s>: cannot tell now whether this server is an MX "
                        "host of %s (DNS failed); try again later", rcpt, dom);
        }
    }
    free(local);
    free(dom);
    return code;
}

int policy_minfree(const struct config *c, struct buf *why)
{
    int below = spool_below_minfree(c);
    if (below < 0)
        return says(why, 452, "4.3.1 cannot check the queue's free space now; try again later");
    if (below)
        return says(why, 452, "4.3.1 insufficient system storage; try again later");
    return 0;
}

int policy_overloaded(const struct config *c, double *load)
{
    double l[1];
    *load = 0;
    if (c->load <= 0)
        return 0;
    if (getloadavg(l, 1) < 1)
        return 1;
    *load = l[0];
    return l[0] > c->load;
}
