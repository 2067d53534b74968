/* relay_map.h - relay-map=FILE: per-destination relay settings (relay-map(5)),
 * and the one answer to "how does mail for this domain leave": the map's
 * entry, else relay-host= with relay-tls=, relay-tls-ca= and relay-auth=,
 * else the domain's own MX hosts with opportunistic TLS.
 *
 * The file: one entry a line, "PATTERN NEXTHOP [tls=LEVEL] [ca=FILE]
 * [auth=FILE]", fields separated by blanks; '#' starts a comment line.
 *   PATTERN  example.com (that domain), .example.com (its subdomains, not
 *            itself), * (every other domain).  The exact domain wins, then
 *            the longest matching .parent, then *.
 *   NEXTHOP  [host]:port or [host] (that host's addresses, no MX lookup),
 *            host:port or host (MX lookup of host, as relay-host=),
 *            [address]:port (an address literal), or - (the domain's own MX
 *            hosts, even with relay-host= set).  Port 25 unless given.
 *   tls=     none, may, require (or verify: the same), smtps.  The default:
 *            require with auth=, else may; port 465 means TLS from the first
 *            byte.  require and smtps verify the certificate against ca= (the
 *            system store when unset) and the next hop's name as written (for
 *            "-": each MX host's name).
 *   ca=      a CA file, readable by user= (delivery verifies as user=).
 *   auth=    a file in relay-auth= format (user:password, root's, mode 600),
 *            read as root before the delivery process starts (relay_auth.h).
 * Any error (a bad line, a duplicate pattern, an insecure or unreadable file)
 * makes the whole map unusable: every remote delivery then waits (4.3.5) with
 * the file, line and reason, so mail never goes a way the admin did not mean
 * (to plaintext where TLS was wanted).  At most RELAY_MAP_LINE_MAX bytes a
 * line, RELAY_MAP_FILE_MAX bytes.
 *
 * The file must be root's with a secure path (config_path_secure: root-owned,
 * not group- or world-writable, nor its directories) and readable by user=
 * (it holds no secrets: mode 644).  It is re-read when its inode, size,
 * modification or change time differ from the last reading (one stat() per
 * lookup), as domains.cf is (vdomain.h): a cache per process, the only state.
 *
 * Called by routing (route.c), the MX router (mx.c), the SMTP client
 * (smtp_client.c), -bv (verify.c) and, as root, the credential loader
 * (relay_auth.c); as whoever runs them.  Nothing here talks to the network. */
#ifndef PO_RELAY_MAP_H
#define PO_RELAY_MAP_H

#include <stddef.h>

#include "conf.h"

#define RELAY_MAP_LINE_MAX 4096
#define RELAY_MAP_FILE_MAX (1024 * 1024)

enum relay_tls {
    RELAY_TLS_DEFAULT = 0, /* not given (entries only) */
    RELAY_TLS_NONE,
    RELAY_TLS_MAY,
    RELAY_TLS_REQUIRE,
    RELAY_TLS_SMTPS
};

struct relay_entry {
    char *pattern; /* lower case, no trailing dot: "example.com", ".example.com", "*" */
    char *host;    /* a name, or "[address]"; NULL = the domain's own MX hosts ("-") */
    int port;      /* 25 unless given */
    int no_mx;     /* written [name]: its addresses only, no MX lookup */
    int tls;       /* enum relay_tls, RELAY_TLS_DEFAULT when not given */
    char *ca;      /* ca=, or NULL */
    char *auth;    /* auth=, or NULL */
    int line;
};

struct relay_map {
    struct relay_entry *v;
    size_t n;
};

/* Parse the map's text (len bytes).  0 with m filled (free with
 * relay_map_free), or -1 with *why malloc'd ("line N: ...", naming the field,
 * never more of the line) and m empty. */
int relay_map_parse(const char *text, size_t len, struct relay_map *m, char **why);
void relay_map_free(struct relay_map *m);

/* The entry for domain (any case, a trailing dot ignored; an address literal
 * matches only "*"), or NULL. */
const struct relay_entry *relay_map_find(const struct relay_map *m, const char *domain);

/* A next hop as relay-host= and the map write it: host, host:port,
 * [name], [name]:port, [address], [address]:port.  0 with *host malloc'd (the
 * name without brackets and *no_mx set for [name]; "[address]" for a
 * literal), *port 25 unless given; or -1. */
int relay_nexthop_parse(const char *spec, char **host, int *port, int *no_mx);

/* The current map of c->relay_map (re-read when the file changed), or NULL
 * with *why (not malloc'd, valid until the next call: "4.3.5 relay-map=FILE
 * ...") when it cannot be used.  Errors are logged once per change of the
 * file.  c->relay_map must be set. */
const struct relay_map *relay_map_current(const struct config *c, const char **why);
/* Forget the cached map (tests). */
void relay_map_flush(void);

/* How mail for one domain leaves. */
struct relay_dest {
    char *host;   /* next hop (as relay_nexthop_parse); NULL = the domain's MX hosts */
    int port;
    int no_mx;
    int tls;      /* RELAY_TLS_NONE, _MAY, _REQUIRE or _SMTPS (never _DEFAULT) */
    int implicit; /* TLS from the first byte (smtps, or port 465) */
    char *ca;     /* CA file to verify against, NULL = the system store */
    char *auth;   /* credentials file (relay-auth= format), NULL = no AUTH */
    char *origin; /* where this came from, for messages: "relay-map FILE:LINE",
                     "relay-host"; NULL for the plain MX route */
    const char *ca_opt;   /* the option that named ca: "ca" or "relay-tls-ca" */
    const char *auth_opt; /* the option that named auth: "auth" or "relay-auth" */
    int line;     /* the map's line, 0 when not from the map */
};

/* The destination of domain (NULL or "" only for relay-host= or "*"): 0 with
 * d filled (free with relay_dest_free), or -1 with *why malloc'd ("4.3.5
 * relay-map=..." for an unusable map, "4.4.4 relay-host=..." for a bad
 * relay-host=): a configuration problem, never a reason to bounce. */
int relay_dest_get(const struct config *c, const char *domain, struct relay_dest *d,
                   char **why);
void relay_dest_free(struct relay_dest *d);

/* For routing (route.c): 1 when the map sends domain to a next hop (or the
 * map is unusable: the delivery then waits with the reason), 0 when its entry
 * says "-" (the domain's own MX hosts, whatever relay-host= says), -1 when
 * there is no map or no entry for domain. */
int relay_map_way(const struct config *c, const char *domain);

/* "tls=require" etc. for messages and -bv. */
const char *relay_tls_name(int tls);

#endif
