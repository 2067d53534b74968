/* dns.c - every DNS lookup (MX, A, AAAA, PTR, CNAME chains) through c-ares.
 *
 * Answers are parsed here rather than with ares_parse_*_reply so that owner
 * names are checked (only records of the name we asked for, after following
 * CNAMEs, count) and every name is validated before a caller sees it: answers
 * are hostile input (c-ares CVE-2021-3672).  The event loop is poll() on the
 * sockets c-ares reports, bounded by c-ares' own timeouts and by an overall
 * deadline.  Runs unprivileged; nothing here runs as root. */
#include "compat.h"

#include <arpa/inet.h>
#include <ares.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <unistd.h>

#include "dns.h"
#include "log.h"
#include "util.h"

#define T_A 1
#define T_CNAME 5
#define T_PTR 12
#define T_MX 15
#define T_TXT 16
#define T_AAAA 28
#define C_IN 1
#define CNAME_MAX 10 /* CNAMEs followed for one lookup (answers and re-queries) */

struct dns_ctx {
    ares_channel ch;
    long long budget_ms; /* longest one query may take in total */
};

/* ---- setup ---- */

/* resolver= entries are host[:port] with host an IPv4 address or [IPv6]; a
 * bare IPv6 address (several colons, no brackets) has no port. */
static int servers_csv(const struct strlist *l, struct buf *csv)
{
    for (size_t i = 0; i < l->n; i++) {
        const char *s = l->v[i];
        struct in6_addr a6;
        if (i)
            buf_addc(csv, ',');
        if (strchr(s, ':') && strchr(s, ':') != strrchr(s, ':') && s[0] != '[' &&
            inet_pton(AF_INET6, s, &a6) == 1)
            buf_addf(csv, "[%s]", s);
        else
            buf_adds(csv, s);
    }
    return 0;
}

struct dns_ctx *dns_open(const struct config *c)
{
    struct ares_options opt;
    int mask = ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_LOOKUPS | ARES_OPT_FLAGS;
    long tmo = c->dns_timeout > 0 ? c->dns_timeout : 5;
    long tries = c->dns_tries > 0 ? c->dns_tries : 2;
    char lookups[] = "b"; /* DNS only: never /etc/hosts */

    if (ares_library_init(ARES_LIB_INIT_ALL) != ARES_SUCCESS) {
        log_err("dns: c-ares library initialisation failed");
        return NULL;
    }
    memset(&opt, 0, sizeof opt);
    opt.timeout = (int)(tmo > 3600 ? 3600000 : tmo * 1000);
    opt.tries = (int)(tries > 20 ? 20 : tries);
    opt.lookups = lookups;
    opt.flags = ARES_FLAG_NOSEARCH | ARES_FLAG_NOALIASES; /* TC answers: retried over TCP */
    struct dns_ctx *d = xcalloc(1, sizeof *d);
    int r = ares_init_options(&d->ch, &opt, mask);
    if (r != ARES_SUCCESS) {
        log_err("dns: cannot set up the resolver: %s", ares_strerror(r));
        free(d);
        return NULL;
    }
    size_t nserv = 3;
    if (c->resolver.n) {
        struct buf csv;
        buf_init(&csv);
        servers_csv(&c->resolver, &csv);
        r = ares_set_servers_ports_csv(d->ch, csv.s);
        if (r != ARES_SUCCESS) {
            log_err("dns: resolver=%s: %s (want address[:port] or [IPv6][:port])", csv.s,
                    ares_strerror(r));
            buf_free(&csv);
            dns_close(d);
            return NULL;
        }
        buf_free(&csv);
        nserv = c->resolver.n;
    }
    /* every try of every server, plus room for a TCP retry after truncation */
    d->budget_ms = (long long)opt.timeout * opt.tries * (long long)(nserv + 1) + 2000;
    return d;
}

void dns_close(struct dns_ctx *d)
{
    if (!d)
        return;
    ares_destroy(d->ch);
    free(d);
    ares_library_cleanup();
}

/* ---- names ---- */

int dns_valid_name(const char *name)
{
    size_t len = strlen(name), lab = 0;
    if (len && name[len - 1] == '.')
        len--; /* one trailing dot: an absolute name */
    if (len == 0 || len > 253)
        return 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)name[i];
        if (ch == '.') {
            if (lab == 0 || name[i - 1] == '-')
                return 0;
            lab = 0;
            continue;
        }
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
              (ch >= '0' && ch <= '9') || ch == '-'))
            return 0;
        if (ch == '-' && lab == 0)
            return 0;
        if (++lab > 63)
            return 0;
    }
    return lab > 0 && name[len - 1] != '-';
}

/* ---- one query ---- */

struct query {
    int done;
    int status; /* ARES_* */
    unsigned char *abuf;
    int alen;
};

static void query_cb(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
    struct query *q = arg;
    (void)timeouts;
    q->done = 1;
    q->status = status;
    if (abuf && alen > 0) {
        q->abuf = xmalloc((size_t)alen);
        memcpy(q->abuf, abuf, (size_t)alen);
        q->alen = alen;
    }
}

/* Drive c-ares until every query in qs is answered or the budget is spent. */
static void run_queries(struct dns_ctx *d, struct query *qs, size_t nq)
{
    long long deadline = now_ms() + d->budget_ms;
    for (;;) {
        size_t pending = 0;
        for (size_t i = 0; i < nq; i++)
            pending += !qs[i].done;
        if (!pending)
            return;
        if (ms_left(deadline) == 0) {
            ares_cancel(d->ch); /* callbacks run with ARES_ECANCELLED */
            return;
        }
        ares_socket_t socks[ARES_GETSOCK_MAXNUM];
        int bits = ares_getsock(d->ch, socks, ARES_GETSOCK_MAXNUM);
        struct pollfd pfd[ARES_GETSOCK_MAXNUM];
        nfds_t np = 0;
        for (int i = 0; i < ARES_GETSOCK_MAXNUM; i++) {
            short ev = 0;
            /* c-ares's ARES_GETSOCK_* macros shift a signed 1 into the sign
             * bit (undefined behaviour): test the same bits unsigned */
            if ((unsigned)bits & (1u << i))
                ev |= POLLIN;
            if ((unsigned)bits & (1u << (i + ARES_GETSOCK_MAXNUM)))
                ev |= POLLOUT;
            if (!ev)
                continue;
            pfd[np].fd = socks[i];
            pfd[np].events = ev;
            pfd[np].revents = 0;
            np++;
        }
        struct timeval maxtv = {1, 0}, tv, *tvp = ares_timeout(d->ch, &maxtv, &tv);
        int wait = (int)(tvp->tv_sec * 1000 + tvp->tv_usec / 1000);
        int left = ms_left(deadline);
        if (wait > left)
            wait = left;
        int r = poll(pfd, np, wait);
        if (r < 0 && errno != EINTR) {
            ares_cancel(d->ch);
            return;
        }
        if (r <= 0) {
            ares_process_fd(d->ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD); /* timeouts */
            continue;
        }
        for (nfds_t i = 0; i < np; i++) {
            ares_socket_t rfd = ARES_SOCKET_BAD, wfd = ARES_SOCKET_BAD;
            if (pfd[i].revents & (POLLIN | POLLERR | POLLHUP))
                rfd = pfd[i].fd;
            if (pfd[i].revents & (POLLOUT | POLLERR | POLLHUP))
                wfd = pfd[i].fd;
            if (rfd != ARES_SOCKET_BAD || wfd != ARES_SOCKET_BAD)
                ares_process_fd(d->ch, rfd, wfd);
        }
    }
}

static enum dns_status map_status(int st)
{
    switch (st) {
    case ARES_SUCCESS:
        return DNS_OK;
    case ARES_ENODATA:
        return DNS_NODATA;
    case ARES_ENOTFOUND:
        return DNS_NXDOMAIN;
    default: /* SERVFAIL, REFUSED, timeout, bad answer, cancelled */
        return DNS_TEMPFAIL;
    }
}

/* ---- answer parsing ---- */

struct rr {
    char *owner;
    int type;
    const unsigned char *rdata; /* inside the answer buffer */
    size_t rdlen;
};

static unsigned get16(const unsigned char *p)
{
    return (unsigned)p[0] << 8 | p[1];
}

/* Split the answer section into records.  -1 if the packet is malformed. */
static int parse_rrs(const unsigned char *ab, int alen, struct rr **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    if (alen < 12)
        return -1;
    unsigned qd = get16(ab + 4), an = get16(ab + 6);
    const unsigned char *p = ab + 12, *end = ab + alen;
    for (unsigned i = 0; i < qd; i++) {
        char *name;
        long enclen;
        if (ares_expand_name(p, ab, alen, &name, &enclen) != ARES_SUCCESS)
            return -1;
        ares_free_string(name);
        p += enclen;
        if (end - p < 4)
            return -1;
        p += 4;
    }
    struct rr *v = xcalloc(an ? an : 1, sizeof *v);
    size_t k = 0;
    for (unsigned i = 0; i < an; i++) {
        char *name;
        long enclen;
        if (ares_expand_name(p, ab, alen, &name, &enclen) != ARES_SUCCESS)
            goto bad;
        p += enclen;
        if (end - p < 10) {
            ares_free_string(name);
            goto bad;
        }
        unsigned type = get16(p), cls = get16(p + 2), rdlen = get16(p + 8);
        p += 10;
        if ((size_t)(end - p) < rdlen) {
            ares_free_string(name);
            goto bad;
        }
        if (cls == C_IN) {
            v[k].owner = xstrdup(name);
            v[k].type = (int)type;
            v[k].rdata = p;
            v[k].rdlen = rdlen;
            k++;
        }
        ares_free_string(name);
        p += rdlen;
    }
    *out = v;
    *n = k;
    return 0;
bad:
    for (size_t j = 0; j < k; j++)
        free(v[j].owner);
    free(v);
    return -1;
}

static void free_rrs(struct rr *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i].owner);
    free(v);
}

/* Expand a domain name inside rdata; validated, malloc'd; NULL if bad.  The
 * root name "." comes back as "" (null MX). */
static char *rdata_name(const unsigned char *ab, int alen, const unsigned char *p)
{
    char *name;
    long enclen;
    if (ares_expand_name(p, ab, alen, &name, &enclen) != ARES_SUCCESS)
        return NULL;
    char *r = NULL;
    if (name[0] == '\0' || dns_valid_name(name))
        r = xstrdup(name);
    ares_free_string(name);
    return r;
}

/* Follow the CNAME chain from *cur inside this answer (records may come in any
 * order).  -1 on a chain that is too long (a loop). */
static int follow_cnames(const unsigned char *ab, int alen, struct rr *v, size_t n,
                         char **cur, int *hops)
{
    for (int changed = 1; changed;) {
        changed = 0;
        for (size_t i = 0; i < n; i++) {
            if (v[i].type != T_CNAME || strcasecmp(v[i].owner, *cur) != 0)
                continue;
            char *t = rdata_name(ab, alen, v[i].rdata);
            if (!t || !*t || ++*hops > CNAME_MAX) {
                free(t);
                return -1;
            }
            free(*cur);
            *cur = t;
            changed = 1;
        }
    }
    return 0;
}

/* Visitor for one record of the wanted type; returns 0 to keep going. */
typedef void (*rr_fn)(const unsigned char *ab, int alen, const struct rr *r, void *arg);

/* Query name/type, following CNAMEs (also across queries), calling fn for each
 * record of type owned by the final name. */
static enum dns_status lookup(struct dns_ctx *d, const char *name, int type, rr_fn fn,
                              void *arg)
{
    char *cur = xstrdup(name);
    int hops = 0;
    enum dns_status res = DNS_TEMPFAIL;
    for (int round = 0; round <= CNAME_MAX; round++) {
        struct query q = {0, 0, NULL, 0};
        ares_query(d->ch, cur, C_IN, type, query_cb, &q);
        run_queries(d, &q, 1);
        res = q.done ? map_status(q.status) : DNS_TEMPFAIL;
        if (res != DNS_OK) {
            free(q.abuf);
            break;
        }
        struct rr *v;
        size_t n;
        if (!q.abuf || parse_rrs(q.abuf, q.alen, &v, &n) < 0) {
            log_warn("dns: malformed answer for %s", cur);
            free(q.abuf);
            res = DNS_TEMPFAIL;
            break;
        }
        if (follow_cnames(q.abuf, q.alen, v, n, &cur, &hops) < 0) {
            log_warn("dns: CNAME loop or bad CNAME for %s", name);
            free_rrs(v, n);
            free(q.abuf);
            res = DNS_TEMPFAIL;
            break;
        }
        size_t found = 0;
        for (size_t i = 0; i < n; i++)
            if (v[i].type == type && strcasecmp(v[i].owner, cur) == 0) {
                fn(q.abuf, q.alen, &v[i], arg);
                found++;
            }
        int chased = 0;
        for (size_t i = 0; i < n && !found; i++)
            chased |= v[i].type == T_CNAME;
        free_rrs(v, n);
        free(q.abuf);
        if (found || !chased) {
            res = found ? DNS_OK : DNS_NODATA;
            break;
        }
        res = DNS_TEMPFAIL; /* the chain ends elsewhere: ask for its target */
    }
    free(cur);
    return res;
}

/* ---- MX ---- */

struct mxacc {
    struct dns_mx *v;
    size_t n, cap;
    size_t bad; /* records with invalid names */
};

static void mx_fn(const unsigned char *ab, int alen, const struct rr *r, void *arg)
{
    struct mxacc *a = arg;
    if (r->rdlen < 3) {
        a->bad++;
        return;
    }
    char *host = rdata_name(ab, alen, r->rdata + 2);
    if (!host) {
        a->bad++;
        return;
    }
    if (a->n == a->cap) {
        a->cap = a->cap ? a->cap * 2 : 8;
        a->v = xreallocarray(a->v, a->cap, sizeof *a->v);
    }
    a->v[a->n].host = host;
    a->v[a->n].pref = (int)get16(r->rdata);
    a->n++;
}

static uint32_t real_random(void *arg)
{
    uint32_t r;
    (void)arg;
    if (getrandom(&r, sizeof r, 0) != (ssize_t)sizeof r)
        r = (uint32_t)now_ms() ^ (uint32_t)getpid(); /* kernel without getrandom: still varies */
    return r;
}

/* Unbiased 0..n-1 from a 32-bit source (rejection sampling). */
static size_t uniform(size_t n, uint32_t (*rnd)(void *), void *arg)
{
    uint32_t lim = UINT32_MAX - (uint32_t)(((uint64_t)UINT32_MAX + 1) % n);
    uint32_t r;
    do
        r = rnd(arg);
    while (r > lim);
    return r % n;
}

static int mx_cmp(const void *a, const void *b)
{
    const struct dns_mx *x = a, *y = b;
    return (x->pref > y->pref) - (x->pref < y->pref);
}

void dns_sort_mx(struct dns_mx *mx, size_t n, uint32_t (*rnd)(void *), void *arg)
{
    if (n == 0)
        return; /* mx may be NULL, which qsort must never be given */
    if (!rnd)
        rnd = real_random;
    qsort(mx, n, sizeof *mx, mx_cmp);
    for (size_t s = 0; s < n;) {
        size_t e = s + 1;
        while (e < n && mx[e].pref == mx[s].pref)
            e++;
        for (size_t i = e - s; i > 1; i--) { /* Fisher-Yates within [s, e) */
            size_t j = uniform(i, rnd, arg);
            struct dns_mx t = mx[s + i - 1];
            mx[s + i - 1] = mx[s + j];
            mx[s + j] = t;
        }
        s = e;
    }
}

enum dns_status dns_mx(struct dns_ctx *d, const char *domain, struct dns_mx **out, size_t *n)
{
    struct mxacc a = {NULL, 0, 0, 0};
    *out = NULL;
    *n = 0;
    if (!dns_valid_name(domain))
        return DNS_NXDOMAIN;
    enum dns_status st = lookup(d, domain, T_MX, mx_fn, &a);
    if (st == DNS_OK && a.n == 0) {
        log_warn("dns: every MX record of %s has an invalid host name", domain);
        st = DNS_TEMPFAIL;
    }
    if (st != DNS_OK) {
        dns_free_mx(a.v, a.n);
        return st;
    }
    /* RFC 7505: a null MX alongside real ones is ignored */
    size_t k = 0;
    for (size_t i = 0; i < a.n; i++) {
        if (a.v[i].host[0] == '\0' && a.n > 1) {
            free(a.v[i].host);
            continue;
        }
        a.v[k++] = a.v[i];
    }
    dns_sort_mx(a.v, k, NULL, NULL);
    *out = a.v;
    *n = k;
    return DNS_OK;
}

void dns_free_mx(struct dns_mx *mx, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(mx[i].host);
    free(mx);
}

/* ---- addresses ---- */

struct addracc {
    struct sockaddr_storage *v;
    size_t n, cap;
};

static void addr_fn(const unsigned char *ab, int alen, const struct rr *r, void *arg)
{
    struct addracc *a = arg;
    struct sockaddr_storage ss;
    (void)ab;
    (void)alen;
    memset(&ss, 0, sizeof ss);
    if (r->type == T_A && r->rdlen == 4) {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
        s4->sin_family = AF_INET;
        memcpy(&s4->sin_addr, r->rdata, 4);
    } else if (r->type == T_AAAA && r->rdlen == 16) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
        s6->sin6_family = AF_INET6;
        memcpy(&s6->sin6_addr, r->rdata, 16);
    } else {
        return;
    }
    for (size_t i = 0; i < a->n; i++)
        if (memcmp(&a->v[i], &ss, sizeof ss) == 0)
            return; /* duplicate */
    if (a->n == a->cap) {
        a->cap = a->cap ? a->cap * 2 : 8;
        a->v = xreallocarray(a->v, a->cap, sizeof *a->v);
    }
    a->v[a->n++] = ss;
}

enum dns_status dns_addrs(struct dns_ctx *d, const char *host, int family,
                          struct sockaddr_storage **out, size_t *n)
{
    struct addracc a = {NULL, 0, 0};
    enum dns_status s6 = DNS_NODATA, s4 = DNS_NODATA;
    *out = NULL;
    *n = 0;
    if (!dns_valid_name(host))
        return DNS_NXDOMAIN;
    if (family == AF_INET6 || family == AF_UNSPEC)
        s6 = lookup(d, host, T_AAAA, addr_fn, &a);
    if ((family == AF_INET || family == AF_UNSPEC) && s6 != DNS_NXDOMAIN)
        s4 = lookup(d, host, T_A, addr_fn, &a);
    if (a.n) { /* one family answering is enough to send mail */
        *out = a.v;
        *n = a.n;
        return DNS_OK;
    }
    free(a.v);
    if (s6 == DNS_TEMPFAIL || s4 == DNS_TEMPFAIL)
        return DNS_TEMPFAIL;
    if (s6 == DNS_NXDOMAIN || s4 == DNS_NXDOMAIN)
        return DNS_NXDOMAIN;
    return DNS_NODATA;
}

/* One answer of a batch: the A records of name (after CNAMEs in it). */
static enum dns_status batch_one(const char *name, struct query *q, struct addracc *a)
{
    enum dns_status res = q->done ? map_status(q->status) : DNS_TEMPFAIL;
    struct rr *v;
    size_t n;
    if (res != DNS_OK)
        return res;
    if (!q->abuf || parse_rrs(q->abuf, q->alen, &v, &n) < 0)
        return DNS_TEMPFAIL;
    char *cur = xstrdup(name);
    int hops = 0;
    if (follow_cnames(q->abuf, q->alen, v, n, &cur, &hops) < 0) {
        res = DNS_TEMPFAIL;
    } else {
        for (size_t i = 0; i < n; i++)
            if (v[i].type == T_A && strcasecmp(v[i].owner, cur) == 0)
                addr_fn(q->abuf, q->alen, &v[i], a);
        res = a->n ? DNS_OK : DNS_NODATA;
    }
    free(cur);
    free_rrs(v, n);
    return res;
}

void dns_addrs4_batch(struct dns_ctx *d, const char *const *names, size_t n,
                      enum dns_status *st, struct sockaddr_storage **addrs, size_t *naddrs)
{
    struct query *qs = xcalloc(n ? n : 1, sizeof *qs);
    for (size_t i = 0; i < n; i++) {
        if (dns_valid_name(names[i]))
            ares_query(d->ch, names[i], C_IN, T_A, query_cb, &qs[i]);
        else
            qs[i].done = 1, qs[i].status = ARES_ENOTFOUND;
    }
    run_queries(d, qs, n);
    for (size_t i = 0; i < n; i++) {
        struct addracc a = {NULL, 0, 0};
        st[i] = batch_one(names[i], &qs[i], &a);
        addrs[i] = a.v;
        naddrs[i] = a.n;
        free(qs[i].abuf);
    }
    free(qs);
}

/* ---- PTR ---- */

static void ptr_fn(const unsigned char *ab, int alen, const struct rr *r, void *arg)
{
    char **name = arg;
    if (*name)
        return;
    char *t = rdata_name(ab, alen, r->rdata);
    if (t && *t)
        *name = t;
    else
        free(t);
}

void dns_reverse_name(int family, const unsigned char *a, const char *zone, struct buf *out)
{
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (family == AF_INET6 && memcmp(a, mapped, sizeof mapped) == 0) {
        family = AF_INET; /* an IPv4 client seen through an IPv6 socket */
        a += 12;
    }
    if (family == AF_INET) {
        buf_addf(out, "%u.%u.%u.%u.%s", a[3], a[2], a[1], a[0], zone ? zone : "in-addr.arpa");
        return;
    }
    for (int i = 15; i >= 0; i--)
        buf_addf(out, "%x.%x.", a[i] & 0xf, a[i] >> 4);
    buf_adds(out, zone ? zone : "ip6.arpa");
}

enum dns_status dns_ptr(struct dns_ctx *d, const struct sockaddr *sa, char **name)
{
    struct buf q;
    buf_init(&q);
    *name = NULL;
    if (sa->sa_family == AF_INET)
        dns_reverse_name(AF_INET, (const unsigned char *)&((const struct sockaddr_in *)sa)->sin_addr,
                         NULL, &q);
    else if (sa->sa_family == AF_INET6)
        dns_reverse_name(AF_INET6,
                         (const unsigned char *)&((const struct sockaddr_in6 *)sa)->sin6_addr,
                         NULL, &q);
    else {
        buf_free(&q);
        return DNS_NXDOMAIN;
    }
    enum dns_status st = lookup(d, q.s, T_PTR, ptr_fn, name);
    buf_free(&q);
    if (st == DNS_OK && !*name)
        st = DNS_TEMPFAIL; /* only invalid names: a bad answer */
    return st;
}

/* ---- TXT ---- */

struct txtacc {
    struct buf b;
    size_t max;
    int seen;
};

static void txt_fn(const unsigned char *ab, int alen, const struct rr *r, void *arg)
{
    struct txtacc *t = arg;
    (void)ab;
    (void)alen;
    if (t->seen++)
        return; /* the first record only */
    for (size_t i = 0; i < r->rdlen;) {
        size_t n = r->rdata[i++];
        for (size_t k = 0; k < n && i < r->rdlen; k++, i++) {
            unsigned char ch = r->rdata[i];
            if (t->b.len < t->max)
                buf_addf(&t->b, "%c", ch >= 0x20 && ch < 0x7f ? ch : ' ');
        }
    }
}

enum dns_status dns_txt(struct dns_ctx *d, const char *name, size_t max, char **out)
{
    struct txtacc t;
    buf_init(&t.b);
    t.max = max;
    t.seen = 0;
    *out = NULL;
    if (!dns_valid_name(name)) {
        buf_free(&t.b);
        return DNS_NXDOMAIN;
    }
    enum dns_status st = lookup(d, name, T_TXT, txt_fn, &t);
    if (st == DNS_OK)
        *out = xstrdup(t.b.s ? t.b.s : "");
    buf_free(&t.b);
    return st;
}
