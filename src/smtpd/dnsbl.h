/* dnsbl.h - DNS block lists (dnsbl=, dnsbl-threshold=) for SMTP clients.
 *
 * An entry is ZONE[=FILTER][*WEIGHT], in the form of Postfix's
 * postscreen_dnsbl_sites:
 *   zen.spamhaus.org                 listed when any A record comes back
 *   zen.spamhaus.org=127.0.0.[2..11] only these answers count; each of the 4
 *                                    parts is a number or [LIST], LIST being
 *                                    numbers and ranges a..b joined by ';'
 *   list.example*2, white.example*-5 the weight the listing adds (default 1;
 *                                    negative: an allow list)
 * A client whose weights add up to dnsbl-threshold= (default 1) or more is
 * listed.  The name asked is the client's address reversed (IPv4 octets, or
 * the 32 IPv6 nibbles) under the zone, its A records compared with the filter;
 * the TXT record of the first list that counted gives the reason.  All lists
 * are asked at once (dns_addrs4_batch); a list that does not answer in time
 * (dns-timeout= x dns-tries=) is skipped with a log line.  The session looks
 * the client up when it starts and applies forbidden= at the first MAIL
 * unless the client authenticated by then (session.c listed_refused).  Runs
 * in the session (user=); answers are parsed by dns.c. */
#ifndef PO_DNSBL_H
#define PO_DNSBL_H

#include "conf.h"
#include "dns.h"
#include "netaddr.h"

/* Is entry well-formed?  1 or 0 (conf.c refuses a bad dnsbl= with it). */
int dnsbl_valid(const char *entry);

/* Look the client up in every dnsbl= list.  1 listed (*reason malloc'd: "ADDR
 * is listed by ZONE: TXT"), 0 not listed (or no lists, or d NULL). */
int dnsbl_check(const struct config *c, struct dns_ctx *d, const struct netaddr *client,
                char **reason);

#endif
