/* milter_conf.h - where a mail filter (milter) listens: the filter= socket
 * specifications, and connecting to one within a deadline.
 *
 * Called by conf.c (filter= is checked when it is set) and by the milter
 * client (src/smtpd/milter.h) in the SMTP session child, as user=.
 * Forms (postoffice.cf(5)): the original postoffice's "/path" (a Unix socket)
 * and "host:port"; sendmail's "unix:/path", "local:/path", "inet:port@host"
 * and "inet6:port@host" (host a name, an address or "[address]").  Pure
 * parsing plus one connect; no global state. */
#ifndef PO_MILTER_CONF_H
#define PO_MILTER_CONF_H

enum mconf_family { MCONF_UNIX, MCONF_INET, MCONF_INET6 };

struct mconf_addr {
    enum mconf_family family;
    char *path;     /* MCONF_UNIX: the socket's absolute path */
    char *host;     /* MCONF_INET*: a name or a numeric address */
    int port;       /* MCONF_INET*: 1..65535 */
};

/* Parse one filter= value.  0 (a filled in, free with mconf_free), or -1
 * with *why set to a static text saying what is wrong. */
int mconf_parse(const char *spec, struct mconf_addr *a, const char **why);
void mconf_free(struct mconf_addr *a);

/* Connect to the filter, waiting at most timeout_ms (names are looked up with
 * getaddrinfo: /etc/hosts, then DNS; every address is tried in turn).
 * Returns a connected, non-blocking descriptor, or -1 with errno
 * (ETIMEDOUT when the deadline passed). */
int mconf_connect(const struct mconf_addr *a, long timeout_ms);

#endif
