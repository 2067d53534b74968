/* smtp_cache.c - SMTP client connections kept between batches (see
 * smtp_cache.h).  Runs unprivileged. */
#include "compat.h"

#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "smtp_cache.h"
#include "smtp_conn.h"
#include "smtp_reply.h"
#include "util.h"

struct smtpc_cache {
    struct smtp_conn *v[SMTPC_CACHE_MAX]; /* oldest first */
    size_t n;
};

struct smtpc_cache *smtpc_cache_new(void)
{
    return xcalloc(1, sizeof(struct smtpc_cache));
}

void smtpc_cache_close(struct smtpc_cache *cc)
{
    if (!cc)
        return;
    for (size_t i = 0; i < cc->n; i++) {
        smtp_conn_quit(cc->v[i]);
        smtp_conn_free(cc->v[i]);
    }
    free(cc);
}

static int same_peer(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
    if (a->ss_family != b->ss_family)
        return 0;
    size_t len = a->ss_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
    return memcmp(a, b, len) == 0;
}

/* Opened with the same TLS policy and credentials (NULL only matches NULL)? */
static int same_key(const char *a, const char *b)
{
    return a && b ? strcmp(a, b) == 0 : a == b;
}

void smtp_cache_put(struct smtpc_cache *cc, struct smtp_conn *k)
{
    if (cc->n == SMTPC_CACHE_MAX) { /* evict the least recently used */
        smtp_conn_quit(cc->v[0]);
        smtp_conn_free(cc->v[0]);
        memmove(cc->v, cc->v + 1, (cc->n - 1) * sizeof *cc->v);
        cc->n--;
    }
    cc->v[cc->n++] = k;
}

/* A cached connection to ss that still answers RSET, taken out of the cache. */
struct smtp_conn *smtp_cache_take(struct smtpc_cache *cc, const struct sockaddr_storage *ss,
                                  const char *pkey, int verbose)
{
    for (size_t i = 0; cc && i < cc->n; i++) {
        if (!same_peer(&cc->v[i]->ss, ss) || !same_key(cc->v[i]->pkey, pkey))
            continue;
        struct smtp_conn *k = cc->v[i];
        memmove(cc->v + i, cc->v + i + 1, (cc->n - i - 1) * sizeof *cc->v);
        cc->n--;
        k->verbose = verbose;
        struct smtp_reply r;
        smtp_reply_init(&r);
        int ok = smtp_send_cmd(k, "RSET", smtp_tmo(k, SMTP_TMO_MAIL)) == 0 &&
                 smtp_read_reply(k, &r, smtp_tmo(k, SMTP_TMO_MAIL)) == 0 && r.code / 100 == 2;
        smtp_reply_free(&r);
        if (ok)
            return k;
        smtp_conn_quit(k);
        smtp_conn_free(k);
        return NULL;
    }
    return NULL;
}

