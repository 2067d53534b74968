/* remote_session.c - remote delivery for the queue runner: group the batch by domain,
 * hand each group to the SMTP client, record every recipient's result in the
 * spool.  Runs unprivileged (remote_worker.c forks and drops before calling). */
#include "compat.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "dns.h"
#include "log.h"
#include "remote_session.h"
#include "smtp_client.h"
#include "spool.h"
#include "util.h"

static const char *domain_of(const char *addr)
{
    const char *at = strrchr(addr, '@');
    return at ? at + 1 : "";
}

static enum rcpt_state state_of(enum smtpc_outcome o)
{
    return o == SO_SENT ? RS_DONE : o == SO_BOUNCED ? RS_FAILED : RS_PENDING;
}

/* Record the results of one group.  Returns how many records failed. */
static size_t record(struct qmsg *m, const size_t *gidx, size_t gn,
                     const struct smtpc_result *res, size_t *pending)
{
    size_t bad = 0;
    for (size_t i = 0; i < gn; i++) {
        enum rcpt_state st = state_of(res[i].outcome);
        if (st == RS_PENDING)
            (*pending)++;
        if (spool_record(m, gidx[i], st, res[i].status, res[i].mta) < 0) {
            log_err("%s: cannot record the result for recipient %zu: %s",
                    spool_env(m)->qid, gidx[i], strerror(errno));
            bad++;
        }
    }
    return bad;
}

struct remote_session {
    const struct config *c;
    struct dns_ctx *d;
    struct smtpc_cache *cache;
    struct smtpc_sec sec;
    struct mx_ours ours;     /* this machine's addresses, for the session's life */
    struct smtp_dead dead;   /* addresses that refused a connect (smtp_dead.h) */
};

struct remote_session *remote_begin(const struct config *c, const struct relay_creds *creds)
{
    struct dns_ctx *d = dns_open(c);
    if (!d)
        return NULL;
    struct remote_session *s = xcalloc(1, sizeof *s);
    s->c = c;
    s->d = d;
    s->cache = smtpc_cache_new();
    s->sec.tls = smtp_tls_new(c);
    s->sec.creds = creds;
    s->sec.ours = &s->ours;
    s->sec.dead = &s->dead;
    return s;
}

const struct config *remote_config(const struct remote_session *s)
{
    return s->c;
}

void remote_end(struct remote_session *s)
{
    if (!s)
        return;
    smtpc_cache_close(s->cache); /* before the TLS state its connections use */
    smtp_tls_free(s->sec.tls);
    dns_close(s->d);
    mx_ours_free(&s->ours);
    smtp_dead_free(&s->dead);
    free(s);
}

/* Every recipient deferred with status st (nothing could be tried). */
static int defer_all(struct qmsg *m, const size_t *idx, size_t n, const char *st)
{
    size_t bad = 0;
    log_err("%s: %s", spool_env(m)->qid, st);
    for (size_t i = 0; i < n; i++)
        bad += spool_record(m, idx[i], RS_PENDING, st, NULL) < 0;
    return bad == n ? -1 : (int)n;
}

int remote_deliver_in(struct remote_session *rs, struct qmsg *m, const size_t *idx, size_t n,
                      const struct runq_opts *o)
{
    const struct config *c = rs->c;
    struct envelope *e = spool_env(m);
    size_t pending = 0, bad = 0;
    int verbose = o && o->verbose;
    if (n == 0)
        return 0;
    /* the locked queue file's own descriptor: opening it by name again and
     * closing that would drop our lock */
    struct msgdata data = spool_data(m);
    char *done = xcalloc(n, 1);
    size_t *gidx = xcalloc(n, sizeof *gidx);
    struct smtpc_result *res = xcalloc(n, sizeof *res);
    for (size_t s = 0; s < n; s++) {
        if (done[s])
            continue;
        /* one transaction per domain (with relay-host alone: everything at
         * once; relay-map= may give each domain its own way) */
        const char *dom = domain_of(e->rcpts[idx[s]].addr);
        int all = c->relay_host && !c->relay_map;
        size_t gn = 0;
        for (size_t i = s; i < n; i++) {
            if (done[i])
                continue;
            if (all || strcasecmp(domain_of(e->rcpts[idx[i]].addr), dom) == 0) {
                gidx[gn++] = idx[i];
                done[i] = 1;
            }
        }
        smtpc_deliver(c, rs->d, rs->cache, &rs->sec, dom, e, &data, gidx, gn, verbose, res);
        bad += record(m, gidx, gn, res, &pending);
        smtpc_results_free(res, gn);
    }
    free(res);
    free(gidx);
    free(done);
    return bad == n ? -1 : (int)pending;
}

int remote_deliver(const struct config *c, struct qmsg *m, const size_t *idx, size_t n,
                   const struct runq_opts *o)
{
    struct relay_creds creds;
    relay_creds_load(c, NULL, 0, &creds);
    struct remote_session *s = remote_begin(c, &creds);
    if (!s) {
        relay_creds_free(&creds);
        return defer_all(m, idx, n, "4.4.3 the DNS resolver could not be set up");
    }
    int r = remote_deliver_in(s, m, idx, n, o);
    remote_end(s);
    relay_creds_free(&creds);
    return r;
}
