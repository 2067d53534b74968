/* queue_run_plan.c - the queue runner's decisions (queue_run_plan.h).  Pure functions. */
#include "compat.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "address.h"
#include "queue_run_plan.h"
#include "util.h"

int rq_any_failed(const struct envelope *e)
{
    for (size_t i = 0; i < e->nrcpts; i++)
        if (e->rcpts[i].state == RS_FAILED)
            return 1;
    return 0;
}

int rq_same_transaction(const struct config *c, const char *a, const char *b)
{
    const char *da = addr_domain(a), *db = addr_domain(b);
    /* relay-map= may give two domains different ways: then per domain */
    return (c->relay_host && !c->relay_map) || (da && db && strcasecmp(da, db) == 0);
}

static int remote_pending(const struct envelope *e, const enum route_way *way, size_t i)
{
    const struct rcpt *r = &e->rcpts[i];
    return r->state == RS_PENDING && !rcpt_is_target(r) && route_is_remote(way[i]);
}

size_t rq_remote_order(const struct config *c, const struct envelope *e,
                       const enum route_way *way, size_t *idx)
{
    size_t k = 0;
    char *done = xcalloc(e->nrcpts + 1, 1);
    for (size_t a = 0; a < e->nrcpts; a++) {
        if (done[a] || !remote_pending(e, way, a))
            continue;
        for (size_t b = a; b < e->nrcpts; b++) {
            if (!done[b] && remote_pending(e, way, b) &&
                rq_same_transaction(c, e->rcpts[a].addr, e->rcpts[b].addr)) {
                idx[k++] = b;
                done[b] = 1;
            }
        }
    }
    free(done);
    return k;
}

static unsigned long hash(const char *s)
{
    unsigned long h = 5381;
    for (; *s; s++)
        h = h * 33 + (unsigned char)(*s >= 'A' && *s <= 'Z' ? *s + 32 : *s);
    return h;
}

const char *rq_remote_domain(const struct config *c, const struct envelope *e)
{
    for (size_t i = 0; i < e->nrcpts; i++) {
        const struct rcpt *r = &e->rcpts[i];
        const char *d = addr_domain(r->addr);
        if (r->state == RS_PENDING && !rcpt_is_target(r) && d && !route_is_local_domain(c, d))
            return d;
    }
    return NULL;
}

long rq_worker_of(const struct config *c, const struct envelope *e, long nworkers)
{
    const char *d = rq_remote_domain(c, e);
    if (d) {
        unsigned long slots = c->dest_procs > 0 ? (unsigned long)c->dest_procs : 1;
        char *key = xasprintf("%s#%lu", c->relay_host && !c->relay_map ? "relay" : d,
                              hash(e->qid) % slots);
        long w = (long)(hash(key) % (unsigned long)(nworkers > 0 ? nworkers : 1));
        free(key);
        return w;
    }
    return -1;
}

size_t rq_share_size(size_t n, long maxp)
{
    size_t shares = maxp < 1 ? 1 : n < (size_t)maxp ? n : (size_t)maxp;
    return n == 0 ? 0 : (n + shares - 1) / shares;
}

long rq_backoff(const struct config *c, int attempts)
{
    long d = c->retry_min > 0 ? c->retry_min : 300;
    for (int k = 1; k < attempts && d < c->retry_max; k++)
        d *= 2;
    return d > c->retry_max && c->retry_max > 0 ? c->retry_max : d;
}

static long age_at(time_t t, time_t now)
{
    return now > t ? (long)(now - t) : 0;
}

int rq_expired(const struct config *c, const struct envelope *e, time_t now)
{
    return env_pending(e) && c->qreturn > 0 && age_at(e->ctime, now) >= c->qreturn &&
           !(e->flags & ENV_DOUBLE);
}

enum rq_fate rq_fate(const struct envelope *e, int local_only)
{
    if (!env_pending(e))
        return rq_any_failed(e) ? RQ_KEEP : RQ_REMOVE;
    return local_only ? RQ_LEAVE : RQ_RETRY;
}

int rq_must_warn(const struct config *c, const struct envelope *e, time_t now,
                 int bounced_now)
{
    return c->qwarn > 0 && age_at(e->ctime, now) >= c->qwarn && !(e->flags & ENV_WARNED) &&
           !(e->flags & ENV_BOUNCE) && !bounced_now;
}
