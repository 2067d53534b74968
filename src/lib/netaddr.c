/* netaddr.c - client IP addresses: parse, compare, CIDR, our interfaces. */
#include "compat.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <string.h>
#include <stdlib.h>

#include "netaddr.h"
#include "util.h"

static const unsigned char v4mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

int net_from_sockaddr(const struct sockaddr *sa, struct netaddr *out)
{
    memset(out, 0, sizeof *out);
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)(const void *)sa;
        out->family = AF_INET;
        memcpy(out->a, &s4->sin_addr, 4);
        return 0;
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)(const void *)sa;
        const unsigned char *b = s6->sin6_addr.s6_addr;
        if (memcmp(b, v4mapped, 12) == 0) {
            out->family = AF_INET;
            memcpy(out->a, b + 12, 4);
        } else {
            out->family = AF_INET6;
            memcpy(out->a, b, 16);
        }
        return 0;
    }
    return -1;
}

int net_parse(const char *s, struct netaddr *out)
{
    char tmp[64];
    size_t n = strlen(s);
    memset(out, 0, sizeof *out);
    if (n && s[0] == '[') {
        if (n < 3 || s[n - 1] != ']')
            return -1;
        s++;
        n -= 2;
        if (n > 5 && str_has_prefix_ci(s, "IPv6:")) {
            s += 5;
            n -= 5;
        }
    }
    if (n == 0 || n >= sizeof tmp)
        return -1;
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    if (inet_pton(AF_INET, tmp, out->a) == 1) {
        out->family = AF_INET;
        return 0;
    }
    if (inet_pton(AF_INET6, tmp, out->a) == 1) {
        out->family = AF_INET6;
        if (memcmp(out->a, v4mapped, 12) == 0) {
            memmove(out->a, out->a + 12, 4);
            memset(out->a + 4, 0, 12);
            out->family = AF_INET;
        }
        return 0;
    }
    return -1;
}

int net_parse_cidr(const char *s, struct netaddr *net, int *prefix)
{
    const char *slash = strrchr(s, '/');
    char *addr = slash ? xstrndup(s, (size_t)(slash - s)) : xstrdup(s);
    int r = net_parse(addr, net);
    free(addr);
    if (r < 0)
        return -1;
    int max = net->family == AF_INET ? 32 : 128;
    if (!slash) {
        *prefix = max;
        return 0;
    }
    unsigned long p;
    if (parse_ulong(slash + 1, &p) < 0 || p > (unsigned long)max)
        return -1;
    *prefix = (int)p;
    return 0;
}

int net_in_cidr(const struct netaddr *a, const struct netaddr *net, int prefix)
{
    if (a->family != net->family || prefix < 0)
        return 0;
    int full = prefix / 8, rest = prefix % 8;
    if (memcmp(a->a, net->a, (size_t)full) != 0)
        return 0;
    if (rest) {
        unsigned char mask = (unsigned char)(0xff << (8 - rest));
        if ((a->a[full] & mask) != (net->a[full] & mask))
            return 0;
    }
    return 1;
}

int net_equal(const struct netaddr *a, const struct netaddr *b)
{
    return net_in_cidr(a, b, a->family == AF_INET ? 32 : 128);
}

void net_format(const struct netaddr *a, char *out, size_t n)
{
    if (!inet_ntop(a->family, a->a, out, (socklen_t)n))
        str_copy(out, "?", n);
}

int net_is_loopback(const struct netaddr *a)
{
    static const unsigned char one6[16] = { [15] = 1 };
    if (a->family == AF_INET)
        return a->a[0] == 127;
    return memcmp(a->a, one6, 16) == 0;
}

int net_is_local_interface(const struct netaddr *a)
{
    struct ifaddrs *ifs, *i;
    if (getifaddrs(&ifs) < 0)
        return -1;
    int found = 0;
    for (i = ifs; i && !found; i = i->ifa_next) {
        struct netaddr x;
        if (i->ifa_addr && net_from_sockaddr(i->ifa_addr, &x) == 0)
            found = net_equal(a, &x);
    }
    freeifaddrs(ifs);
    return found;
}
