/* dns.h - every DNS lookup, through c-ares.
 *
 * Servers come from resolver= (host[:port],...) or the system's resolv.conf;
 * /etc/hosts is never consulted.  Every name in an answer is validated before
 * it is returned (hostile input).  Results:
 *   DNS_OK        answer(s) returned
 *   DNS_NODATA    the name exists but has no record of that type (permanent)
 *   DNS_NXDOMAIN  no such name (permanent)
 *   DNS_TEMPFAIL  SERVFAIL, REFUSED, timeout, bad answer: try again later */
#ifndef PO_DNS_H
#define PO_DNS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "conf.h"
#include "util.h"

enum dns_status { DNS_OK = 0, DNS_NODATA = 1, DNS_NXDOMAIN = 2, DNS_TEMPFAIL = -1 };

struct dns_ctx;

/* NULL with a message logged if c-ares cannot be set up. */
struct dns_ctx *dns_open(const struct config *c);
void dns_close(struct dns_ctx *d);

struct dns_mx {
    char *host;     /* validated host name, no trailing dot; "" for a null MX (RFC 7505) */
    int pref;
};
/* MX records of domain (CNAMEs followed), sorted by preference with equal
 * preferences shuffled.  *out is malloc'd (dns_free_mx). */
enum dns_status dns_mx(struct dns_ctx *d, const char *domain, struct dns_mx **out,
                       size_t *n);
void dns_free_mx(struct dns_mx *mx, size_t n);

/* Sort mx by preference and shuffle each run of equal preferences
 * (Fisher-Yates).  rnd returns uniform 32-bit values; NULL = getrandom(2).
 * (Tests inject rnd.)  n may be 0, with mx NULL
 * (an empty answer): nothing is done and rnd is not called. */
void dns_sort_mx(struct dns_mx *mx, size_t n, uint32_t (*rnd)(void *), void *arg);

/* A and/or AAAA addresses of host (family AF_INET, AF_INET6 or AF_UNSPEC for
 * both, IPv6 first).  *out is malloc'd; ports are 0. */
enum dns_status dns_addrs(struct dns_ctx *d, const char *host, int family,
                          struct sockaddr_storage **out, size_t *n);

/* IPv4 addresses of several names at once (dnsbl=): all queries are sent
 * together and answered within one query's time budget, so n lists that do
 * not answer cost the time of one.  CNAMEs are followed inside each answer
 * only.  st[i], addrs[i] (malloc'd, free each) and naddrs[i] for names[i]. */
void dns_addrs4_batch(struct dns_ctx *d, const char *const *names, size_t n,
                      enum dns_status *st, struct sockaddr_storage **addrs, size_t *naddrs);
/* PTR name of an address (validated, no trailing dot), malloc'd. */
enum dns_status dns_ptr(struct dns_ctx *d, const struct sockaddr *sa, char **name);

/* The reverse-lookup name of address a (family AF_INET: 4 bytes, AF_INET6: 16
 * bytes; an IPv4-mapped IPv6 address counts as IPv4) under zone: "4.3.2.1.ZONE"
 * or the 32 nibbles, lowest first, then ZONE.  Appended to out.  zone NULL:
 * in-addr.arpa / ip6.arpa. */
void dns_reverse_name(int family, const unsigned char *a, const char *zone, struct buf *out);
/* TXT record of name: the character-strings of the first record joined,
 * every byte outside printable ASCII made a space, at most max bytes;
 * malloc'd in *out. */
enum dns_status dns_txt(struct dns_ctx *d, const char *name, size_t max, char **out);
/* Is name a syntactically acceptable host name (LDH labels, <= 253 chars)? */
int dns_valid_name(const char *name);

#endif
