/* smtp_dead.c - addresses that refused a connect, remembered for a while
 * (smtp_dead.h).  Runs unprivileged, in the remote-delivery process. */
#include "compat.h"

#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "smtp_dead.h"
#include "util.h"

static int same_peer(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
    if (a->ss_family != b->ss_family)
        return 0;
    if (a->ss_family == AF_INET) {
        const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
        return x->sin_port == y->sin_port &&
               memcmp(&x->sin_addr, &y->sin_addr, sizeof x->sin_addr) == 0;
    }
    if (a->ss_family == AF_INET6) {
        const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
        return x->sin6_port == y->sin6_port &&
               memcmp(&x->sin6_addr, &y->sin6_addr, sizeof x->sin6_addr) == 0;
    }
    return 0;
}

static void drop(struct smtp_dead *d, size_t i)
{
    free(d->v[i].err);
    d->v[i] = d->v[--d->n];
}

const char *smtp_dead_find(struct smtp_dead *d, const struct sockaddr_storage *ss,
                           long long now)
{
    for (size_t i = 0; i < d->n; i++) {
        if (!same_peer(&d->v[i].ss, ss))
            continue;
        /* expired, or the clock went back more than the lifetime: forget it */
        if (now >= d->v[i].until_ms || d->v[i].until_ms - now > SMTP_DEAD_MS) {
            drop(d, i);
            return NULL;
        }
        return d->v[i].err;
    }
    return NULL;
}

void smtp_dead_note(struct smtp_dead *d, const struct sockaddr_storage *ss, const char *err,
                    long long now)
{
    size_t i;
    for (i = 0; i < d->n && !same_peer(&d->v[i].ss, ss); i++)
        ;
    if (i == d->n && d->n == SMTP_DEAD_MAX) { /* full: the one expiring first goes */
        size_t first = 0;
        for (size_t k = 1; k < d->n; k++)
            if (d->v[k].until_ms < d->v[first].until_ms)
                first = k;
        drop(d, first);
        i = d->n;
    }
    if (i == d->n) {
        if (!d->v)
            d->v = xcalloc(SMTP_DEAD_MAX, sizeof *d->v);
        d->n++;
        d->v[i].err = NULL;
    }
    d->v[i].ss = *ss;
    d->v[i].until_ms = now + SMTP_DEAD_MS;
    free(d->v[i].err);
    d->v[i].err = xstrdup(err);
}

void smtp_dead_free(struct smtp_dead *d)
{
    for (size_t i = 0; i < d->n; i++)
        free(d->v[i].err);
    free(d->v);
    d->v = NULL;
    d->n = 0;
}
