/* smtp_client.c - the SMTP client's batch: route the recipients of one domain
 * (mx.h), try MX host by MX host and address by address, reusing cached
 * connections (smtp_cache.h), run the transaction (smtp_txn.h), log one line
 * per recipient.  Runs unprivileged (the caller forks and drops first). */
#include "compat.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "logfmt.h"
#include "mx.h"
#include "relay_map.h"
#include "smtp_auth.h"
#include "smtp_cache.h"
#include "smtp_conn.h"
#include "smtp_txn.h"
#include "smtp_client.h"
#include "util.h"

static void log_results(const struct envelope *e, struct smtp_rcpt *rs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const struct smtpc_result *x = rs[i].res;
        struct lf_delivery d = {
            .qid = e->qid, .to = rs[i].addr, .relay = x->relay,
            .word = x->outcome == SO_SENT ? "sent" : x->outcome == SO_BOUNCED ? "bounced"
                                                                             : "deferred",
            .status = x->status, .delay = lf_delay(e->ctime),
        };
        lf_log_delivery(&d);
    }
}

static size_t open_count(const struct smtp_rcpt *rs, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        k += !rs[i].final;
    return k;
}

/* How this batch's connections are made: TLS state, policy, credentials. */
struct how {
    struct smtp_tls *tls;
    struct relay_dest dest;        /* where the domain's mail goes (relay_map.h) */
    struct smtp_tls_policy pol;
    const struct relay_cred *cred; /* the destination's credentials, else NULL */
    char *pkey;                    /* policy and credentials, for the cache */
};

/* A connection to address a of host mh, from the cache or new (greeting,
 * EHLO, TLS and AUTH done).  A cached connection is past its STARTTLS and
 * AUTH already: the cache gives back only a connection opened with the same
 * policy and credentials (h->pkey; with TLS required, for the same name),
 * and never keeps one whose TLS or AUTH failed (those are closed).  On failure k->fd < 0 and k->err says why. */
static struct smtp_conn *get_conn(struct smtpc_cache *cc, const struct config *c, int verbose,
                                  const struct how *h, const struct mx_host *mh, size_t a)
{
    /* a verified connection is good for the name it was verified for only */
    char *key = h->pol.level == SMTP_TLS_REQUIRE
                    ? xasprintf("%s %s", h->pkey, h->pol.name ? h->pol.name : mh->name)
                    : xstrdup(h->pkey);
    struct smtp_conn *k = smtp_cache_take(cc, &mh->addrs[a], key, verbose);
    if (!k) {
        k = smtp_conn_new(c, verbose, &mh->addrs[a]);
        k->pkey = key;
    } else {
        free(key);
    }
    smtp_conn_name(k, mh->name); /* the name this route knows the address by */
    k->tlsctx = h->tls;
    k->policy = &h->pol;
    if (k->fd >= 0) {
        if (verbose)
            fprintf(stderr, "%s REUSE (%s%s)\n", k->addr, k->relay, k->tls ? ", TLS" : "");
        return k;
    }
    if (smtp_conn_open(k) == 0 && h->cred)
        smtp_auth(k, h->cred);
    return k;
}

/* Address a of mh refused a connect earlier in this process (smtp_dead.h):
 * defer the open recipients with that reason instead of connecting again.
 * 1 skipped, 0 try it. */
static int skip_dead(const struct smtpc_sec *sec, const struct mx_host *mh, size_t a,
                     struct smtp_rcpt *rs, size_t n, int verbose)
{
    const char *err = sec && sec->dead ? smtp_dead_find(sec->dead, &mh->addrs[a], now_ms())
                                       : NULL;
    if (!err)
        return 0;
    if (verbose)
        fprintf(stderr, "%s: not tried again in this run: %s\n", mh->name, err);
    for (size_t i = 0; i < n; i++)
        if (!rs[i].final)
            smtp_rcpt_set(&rs[i], SO_DEFERRED, err, NULL, 0);
    return 1;
}

/* The destination, policy and credentials for this batch.  0, or -1 with *why. */
static int how_init(struct how *h, const struct config *c, const struct smtpc_sec *sec,
                    const char *domain, char **why)
{
    memset(h, 0, sizeof *h);
    h->tls = sec && sec->tls ? sec->tls : NULL;
    if (relay_dest_get(c, domain, &h->dest, why) < 0)
        return -1;
    const struct relay_dest *d = &h->dest;
    if (d->host || d->origin)
        smtp_tls_dest_policy(d, &h->pol);
    else
        smtp_tls_mx_policy(&h->pol);
    h->pkey = xasprintf("%s%s %s %s", relay_tls_name(d->tls), d->implicit ? "+implicit" : "",
                        d->ca ? d->ca : "-", d->auth ? d->auth : "-");
    if (!d->auth)
        return 0;
    h->cred = relay_creds_find(sec ? sec->creds : NULL, d->auth);
    if (!h->cred) { /* the map changed since the parent read the files */
        *why = xasprintf("4.3.5 %s=%s is set (%s) but its credentials were not read; "
                         "the next attempt reads them", d->auth_opt, d->auth, d->origin);
        return -1;
    }
    if (h->cred->err) { /* no point connecting: say why at once */
        *why = xstrdup(h->cred->err);
        return -1;
    }
    return 0;
}

static void how_free(struct how *h)
{
    smtp_tls_policy_free(&h->pol);
    relay_dest_free(&h->dest);
    free(h->pkey);
}

size_t smtpc_deliver(const struct config *c, struct dns_ctx *d, struct smtpc_cache *cache,
                     const struct smtpc_sec *sec, const char *domain, const struct envelope *e,
                     const struct msgdata *data, const size_t *idx, size_t n, int verbose,
                     struct smtpc_result *res)
{
    struct smtp_rcpt *rs = xcalloc(n ? n : 1, sizeof *rs);
    struct sigaction ign, oldpipe;
    memset(&ign, 0, sizeof ign);
    ign.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &ign, &oldpipe); /* a peer that hangs up is an error, not a signal */
    for (size_t i = 0; i < n; i++) {
        memset(&res[i], 0, sizeof res[i]);
        rs[i].addr = e->rcpts[idx[i]].addr;
        rs[i].r = &e->rcpts[idx[i]];
        rs[i].res = &res[i];
        smtp_rcpt_set(&rs[i], SO_DEFERRED, "4.4.1 no mail host could be reached", NULL, 0);
    }
    struct mx_route route = {0};
    char *why = NULL;
    int eightbit;
    long long size = smtp_wire_size(data, &eightbit);
    struct how how;
    struct smtp_tls *own_tls = NULL;
    enum mx_status ms = how_init(&how, c, sec, domain, &why) < 0
                            ? MX_TEMPFAIL
                            : mx_route_via(d, c, domain, &how.dest, sec ? sec->ours : NULL,
                                           &route, &why);
    if (!how.tls)
        how.tls = own_tls = smtp_tls_new(c);
    if (ms != MX_OK) {
        for (size_t i = 0; i < n; i++)
            smtp_rcpt_set(&rs[i], ms == MX_PERMFAIL ? SO_BOUNCED : SO_DEFERRED, why, NULL, 1);
        free(why);
        goto out;
    }
    for (size_t h = 0; h < route.n && open_count(rs, n); h++) {
        const struct mx_host *mh = &route.hosts[h];
        for (size_t a = 0; a < mh->naddrs && open_count(rs, n); a++) {
            if (skip_dead(sec, mh, a, rs, n, verbose))
                continue;
            struct smtp_conn *k = get_conn(cache, c, verbose, &how, mh, a);
            if (k->fd < 0) {
                /* then the next address or MX host, unless k->final (AUTH) */
                log_info("%s: %s", e->qid, k->err);
                if (k->connect_failed && sec && sec->dead)
                    smtp_dead_note(sec->dead, &mh->addrs[a], k->err, now_ms());
                for (size_t i = 0; i < n; i++)
                    if (!rs[i].final)
                        smtp_rcpt_set(&rs[i], SO_DEFERRED, k->err, k, k->final);
                smtp_conn_free(k);
                continue;
            }
            smtp_txn(k, e, data, size, eightbit || (e->flags & ENV_8BIT), rs, n);
            k->policy = NULL; /* this batch's; a cached connection is past it */
            if (cache && k->fd >= 0 && !own_tls) { /* own_tls goes with this batch */
                smtp_cache_put(cache, k);
            } else {
                smtp_conn_quit(k);
                smtp_conn_free(k);
            }
        }
    }
    mx_route_free(&route);
out:
    how_free(&how);
    smtp_tls_free(own_tls);
    log_results(e, rs, n);
    size_t deferred = 0;
    for (size_t i = 0; i < n; i++)
        deferred += res[i].outcome == SO_DEFERRED;
    free(rs);
    sigaction(SIGPIPE, &oldpipe, NULL);
    return deferred;
}

void smtpc_results_free(struct smtpc_result *res, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(res[i].status);
        free(res[i].mta);
        free(res[i].relay);
    }
}
