/* route.c - is a domain ours?  Our names (self=, hostname=, localhost) and
 * address literals of our own interface addresses ([192.0.2.1], [IPv6:::1]).
 * Declared in expand.h.  Never runs anything privileged. */
#include "compat.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "conf.h"
#include "expand.h"
#include "log.h"
#include "util.h"

/* Parse "[1.2.3.4]" or "[IPv6:...]" into a binary address.  Returns AF_INET,
 * AF_INET6, or 0 when domain is not a valid literal. */
static int parse_literal(const char *domain, unsigned char *addr)
{
    size_t n = strlen(domain);
    if (n < 3 || domain[0] != '[' || domain[n - 1] != ']' || n > 64)
        return 0;
    char inner[64];
    memcpy(inner, domain + 1, n - 2);
    inner[n - 2] = '\0';
    if (str_has_prefix_ci(inner, "IPv6:"))
        return inet_pton(AF_INET6, inner + 5, addr) == 1 ? AF_INET6 : 0;
    return inet_pton(AF_INET, inner, addr) == 1 ? AF_INET : 0;
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
