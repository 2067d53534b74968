/* milter_conf.c - filter= socket specifications and the connect to a filter
 * (milter_conf.h).  Parsing runs wherever the configuration is read; the
 * connect only in the SMTP session child, as user=. */
#include "compat.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "milter_conf.h"
#include "util.h"

static int parse_port(const char *s, size_t n, int *port)
{
    int v = 0;
    if (n == 0 || n > 5)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    if (v < 1 || v > 65535)
        return -1;
    *port = v;
    return 0;
}

/* "[addr]" -> "addr"; a host must be one printable word. */
static char *host_copy(const char *s, size_t n)
{
    if (n >= 2 && s[0] == '[' && s[n - 1] == ']') {
        s++;
        n -= 2;
    }
    if (n == 0 || n > 255)
        return NULL;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] <= ' ' || (unsigned char)s[i] >= 0x7f || s[i] == '/')
            return NULL;
    return xstrndup(s, n);
}

static int set_unix(const char *path, struct mconf_addr *a, const char **why)
{
    if (path[0] != '/') {
        *why = "a Unix socket must be an absolute path";
        return -1;
    }
    if (strlen(path) >= sizeof ((struct sockaddr_un *)0)->sun_path) {
        *why = "the socket path is too long";
        return -1;
    }
    a->family = MCONF_UNIX;
    a->path = xstrdup(path);
    return 0;
}

/* sendmail's "inet:port@host" / "inet6:port@host". */
static int set_inet_sendmail(const char *v, enum mconf_family fam, struct mconf_addr *a,
                             const char **why)
{
    const char *at = strchr(v, '@');
    if (!at || parse_port(v, (size_t)(at - v), &a->port) < 0) {
        *why = "expected inet:PORT@HOST with a port from 1 to 65535";
        return -1;
    }
    if (!(a->host = host_copy(at + 1, strlen(at + 1)))) {
        *why = "the host after @ is missing or malformed";
        return -1;
    }
    a->family = fam;
    return 0;
}

/* the original's "host:port" ("[v6addr]:port" for IPv6). */
static int set_inet_original(const char *v, struct mconf_addr *a, const char **why)
{
    const char *colon = strrchr(v, ':');
    if (!colon || parse_port(colon + 1, strlen(colon + 1), &a->port) < 0) {
        *why = "expected /path, host:port, unix:/path, local:/path, inet:port@host or "
               "inet6:port@host";
        return -1;
    }
    if (!(a->host = host_copy(v, (size_t)(colon - v)))) {
        *why = "the host before :port is missing or malformed";
        return -1;
    }
    a->family = strchr(a->host, ':') ? MCONF_INET6 : MCONF_INET;
    return 0;
}

int mconf_parse(const char *spec, struct mconf_addr *a, const char **why)
{
    memset(a, 0, sizeof *a);
    if (!strncasecmp(spec, "unix:", 5))
        return set_unix(spec + 5, a, why);
    if (!strncasecmp(spec, "local:", 6))
        return set_unix(spec + 6, a, why);
    if (!strncasecmp(spec, "inet:", 5))
        return set_inet_sendmail(spec + 5, MCONF_INET, a, why);
    if (!strncasecmp(spec, "inet6:", 6))
        return set_inet_sendmail(spec + 6, MCONF_INET6, a, why);
    if (spec[0] == '/')
        return set_unix(spec, a, why);
    return set_inet_original(spec, a, why);
}

void mconf_free(struct mconf_addr *a)
{
    free(a->path);
    free(a->host);
    memset(a, 0, sizeof *a);
}

/* A non-blocking connect finished within the deadline?  fd or -1. */
static int connect_wait(int fd, const struct sockaddr *sa, socklen_t len, long long deadline)
{
    if (connect(fd, sa, len) == 0)
        return fd;
    if (errno != EINPROGRESS && errno != EAGAIN) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    struct pollfd p = { .fd = fd, .events = POLLOUT };
    int r;
    while ((r = poll(&p, 1, ms_left(deadline))) < 0 && errno == EINTR)
        ;
    int err = 0;
    socklen_t el = sizeof err;
    if (r == 0)
        err = ETIMEDOUT;
    else if (r < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0)
        err = errno;
    if (err) {
        close(fd);
        errno = err;
        return -1;
    }
    return fd;
}

static int connect_unix(const char *path, long long deadline)
{
    struct sockaddr_un sun;
    memset(&sun, 0, sizeof sun);
    sun.sun_family = AF_UNIX;
    str_copy(sun.sun_path, path, sizeof sun.sun_path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -1;
    return connect_wait(fd, (struct sockaddr *)&sun, sizeof sun, deadline);
}

static int connect_inet(const struct mconf_addr *a, long long deadline)
{
    struct addrinfo hints, *res = NULL;
    char port[8];
    memset(&hints, 0, sizeof hints);
    hints.ai_family = a->family == MCONF_INET6 ? AF_INET6 : AF_INET;
    hints.ai_socktype = SOCK_STREAM;
    snprintf(port, sizeof port, "%d", a->port);
    int g = getaddrinfo(a->host, port, &hints, &res);
    if (g != 0) {
        errno = g == EAI_SYSTEM ? errno : EHOSTUNREACH;
        return -1;
    }
    int fd = -1, err = EHOSTUNREACH;
    for (struct addrinfo *ai = res; ai && fd < 0 && ms_left(deadline) > 0; ai = ai->ai_next) {
        int s = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (s < 0) {
            err = errno;
            continue;
        }
        /* small request/reply packets: never wait to fill a segment */
        int one = 1;
        (void)setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        fd = connect_wait(s, ai->ai_addr, ai->ai_addrlen, deadline);
        if (fd < 0)
            err = errno;
    }
    freeaddrinfo(res);
    if (fd < 0)
        errno = ms_left(deadline) > 0 ? err : ETIMEDOUT;
    return fd;
}

int mconf_connect(const struct mconf_addr *a, long timeout_ms)
{
    long long deadline = now_ms() + timeout_ms;
    if (a->family == MCONF_UNIX)
        return connect_unix(a->path, deadline);
    return connect_inet(a, deadline);
}
