/* route.c - is a domain ours?  Our names (self=, hostname=, localhost) and
 * address literals of our own interface addresses ([192.0.2.1], [IPv6:::1]).
 * Declared in expand.h.  Never runs anything privileged. */
#include "compat.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

#include "address.h"
#include "conf.h"
#include "expand.h"
#include "log.h"
#include "util.h"

/* "[1.2.3.4]" or "[IPv6:...]" as a binary address: AF_INET, AF_INET6, or 0
 * when domain is not a valid literal. */
static int parse_literal(const char *domain, unsigned char *addr)
{
    char text[INET6_ADDRSTRLEN + 8];
    switch (addr_literal(domain, text, sizeof text)) {
    case 4: return inet_pton(AF_INET, text, addr) == 1 ? AF_INET : 0;
    case 6: return inet_pton(AF_INET6, text, addr) == 1 ? AF_INET6 : 0;
    default: return 0;
    }
}

/* Is the address one of our interfaces' addresses? */
static int is_our_address(int family, const unsigned char *addr)
{
    struct ifaddrs *ifa, *i;
    int found = 0;
    if (getifaddrs(&ifa) < 0) {
        log_warn("cannot list interface addresses: %m");
        return 0;
    }
    for (i = ifa; i && !found; i = i->ifa_next) {
        if (!i->ifa_addr || i->ifa_addr->sa_family != family)
            continue;
        if (family == AF_INET) {
            const struct sockaddr_in *sin = (const void *)i->ifa_addr;
            found = memcmp(&sin->sin_addr, addr, 4) == 0;
        } else {
            const struct sockaddr_in6 *sin6 = (const void *)i->ifa_addr;
            found = memcmp(&sin6->sin6_addr, addr, 16) == 0;
        }
    }
    freeifaddrs(ifa);
    return found;
}

int expand_is_local_domain(const struct config *c, const char *domain)
{
    if (!domain)
        return 1;
    if (*domain == '\0')
        return 0;
    if (*domain == '[') {
        unsigned char addr[16];
        int family = parse_literal(domain, addr);
        return family ? is_our_address(family, addr) : 0;
    }
    return config_is_self(c, domain);
}
