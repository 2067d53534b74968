/* fuzz_netaddr.c - netaddr.h: address and CIDR parsing.
 * Invariants: parse -> net_format -> parse gives the same address; a parsed
 * CIDR's prefix is in range and the network contains itself; the socket
 * address form converts back to the same address (v4-mapped v6 as v4). */
#include "compat.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include "fuzz.h"
#include "netaddr.h"
#include "util.h"

static void check_addr(const struct netaddr *a)
{
    FUZZ_CHECK(a->family == AF_INET || a->family == AF_INET6, "parsed address of another family");
    char txt[128];
    net_format(a, txt, sizeof txt);
    struct netaddr b;
    FUZZ_CHECK(net_parse(txt, &b) == 0, "net_format output does not parse");
    FUZZ_CHECK(net_equal(a, &b), "parse(format(a)) != a");
    FUZZ_CHECK(!fuzz_has_ctl(txt, strlen(txt), 0), "net_format wrote a control byte");

    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    if (a->family == AF_INET) {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
        s4->sin_family = AF_INET;
        memcpy(&s4->sin_addr, a->a, 4);
    } else {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
        s6->sin6_family = AF_INET6;
        memcpy(&s6->sin6_addr, a->a, 16);
    }
    struct netaddr c;
    FUZZ_CHECK(net_from_sockaddr((struct sockaddr *)&ss, &c) == 0, "net_from_sockaddr refused");
    FUZZ_CHECK(net_equal(a, &c), "sockaddr round trip changed the address");
    if (a->family == AF_INET) { /* the same client on a v6 socket */
        struct sockaddr_in6 m;
        memset(&m, 0, sizeof m);
        m.sin6_family = AF_INET6;
        m.sin6_addr.s6_addr[10] = m.sin6_addr.s6_addr[11] = 0xff;
        memcpy(&m.sin6_addr.s6_addr[12], a->a, 4);
        FUZZ_CHECK(net_from_sockaddr((struct sockaddr *)&m, &c) == 0 && net_equal(a, &c),
                   "v4-mapped v6 socket address is not the v4 address");
    }
    (void)net_is_loopback(a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = fuzz_str(data, size);
    struct netaddr a, n;
    int prefix = -1;

    if (net_parse(s, &a) == 0)
        check_addr(&a);
    if (net_parse_cidr(s, &n, &prefix) == 0) {
        check_addr(&n);
        int max = n.family == AF_INET ? 32 : 128;
        FUZZ_CHECK(prefix >= 0 && prefix <= max, "CIDR prefix out of range");
        FUZZ_CHECK(net_in_cidr(&n, &n, prefix) == 1, "a network does not contain itself");
        char txt[160], tmp[128];
        net_format(&n, tmp, sizeof tmp);
        snprintf(txt, sizeof txt, "%s/%d", tmp, prefix);
        struct netaddr n2;
        int p2;
        FUZZ_CHECK(net_parse_cidr(txt, &n2, &p2) == 0 && p2 == prefix,
                   "formatted CIDR does not parse back");
        FUZZ_CHECK(net_in_cidr(&n, &n2, p2) == 1 && net_in_cidr(&n2, &n, prefix) == 1,
                   "formatted CIDR is another network");
        if (net_parse(s, &a) == 0)
            FUZZ_CHECK(prefix == max && net_equal(&a, &n), "bare address is not a full-length CIDR");
    }
    free(s);
    return 0;
}
