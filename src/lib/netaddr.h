/* netaddr.h - IP addresses of SMTP clients: parsing, CIDR matching, our own
 * interface addresses.  Pure functions over untrusted text, no DNS. */
#ifndef PO_NETADDR_H
#define PO_NETADDR_H

#include <stddef.h>
#include <sys/socket.h>

/* An IPv4 or IPv6 address.  IPv4-mapped IPv6 addresses (::ffff:a.b.c.d) are
 * stored as IPv4 so that "127.0.0.1" matches a v4 client on a v6 socket. */
struct netaddr {
    int family;            /* AF_INET or AF_INET6 */
    unsigned char a[16];   /* 4 or 16 bytes used */
};

/* From a socket address.  0, or -1 for another family. */
int net_from_sockaddr(const struct sockaddr *sa, struct netaddr *out);
/* Parse "1.2.3.4", "::1", "[1.2.3.4]", "[IPv6:::1]" or "[::1]".  0 or -1. */
int net_parse(const char *s, struct netaddr *out);
/* Parse "ADDR/PREFIX" (ADDR as net_parse) or a bare ADDR (full-length prefix).
 * 0 or -1 (bad address, prefix out of range). */
int net_parse_cidr(const char *s, struct netaddr *net, int *prefix);
/* Does a lie in net/prefix?  1 or 0 (different families never match). */
int net_in_cidr(const struct netaddr *a, const struct netaddr *net, int prefix);
int net_equal(const struct netaddr *a, const struct netaddr *b);
/* Numeric text form ("1.2.3.4", "2001:db8::1"). */
void net_format(const struct netaddr *a, char *out, size_t n);
/* 127.0.0.0/8 or ::1. */
int net_is_loopback(const struct netaddr *a);
/* Is a one of this host's interface addresses (getifaddrs)?  1, 0, or -1 if
 * the interfaces cannot be listed. */
int net_is_local_interface(const struct netaddr *a);

#endif
