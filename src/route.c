/* route.c - is a domain ours?  Our names (self=, hostname=, localhost) and
 * address literals of our own interface addresses ([192.0.2.1], [IPv6:::1]).
 * Declared in expand.h.  Never runs anything privileged. */
#include "compat.h"

#include "conf.h"
#include "expand.h"
#include "netaddr.h"

int expand_is_local_domain(const struct config *c, const char *domain)
{
    if (!domain)
        return 1;
    if (*domain == '\0')
        return 0;
    if (*domain == '[') {
        /* an address literal is ours when it names one of our interfaces */
        struct netaddr a;
        return net_parse(domain, &a) == 0 && net_is_local_interface(&a) == 1;
    }
    return config_is_self(c, domain);
}
