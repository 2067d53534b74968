/* remote.c - remote delivery for the queue runner: group the batch by domain,
 * hand each group to the SMTP client, record every recipient's result in the
 * spool.  Runs unprivileged (runq forks and drops before calling). */
#include "compat.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "dns.h"
#include "log.h"
#include "remote.h"
#include "smtpc.h"
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

int remote_deliver(const struct config *c, struct qmsg *m, const size_t *idx, size_t n,
                   const struct runq_opts *o)
{
    struct envelope *e = spool_env(m);
    size_t pending = 0, bad = 0;
    int verbose = o && o->verbose;
    if (n == 0)
        return 0;
    int fd = open(spool_data_path(m), O_RDONLY | O_CLOEXEC);
    struct dns_ctx *d = fd >= 0 ? dns_open(c) : NULL;
    if (fd < 0 || !d) {
        char *st = fd < 0 ? xasprintf("4.3.0 cannot open the queued message: %s", strerror(errno))
                          : xstrdup("4.4.3 the DNS resolver could not be set up");
        log_err("%s: %s", e->qid, st);
        for (size_t i = 0; i < n; i++) {
            pending++;
            bad += spool_record(m, idx[i], RS_PENDING, st, NULL) < 0;
        }
        free(st);
        if (fd >= 0)
            close(fd);
        return bad == n ? -1 : (int)pending;
    }
    long long size = spool_data_size(m);
    char *done = xcalloc(n, 1);
    size_t *gidx = xcalloc(n, sizeof *gidx);
    struct smtpc_result *res = xcalloc(n, sizeof *res);
    for (size_t s = 0; s < n; s++) {
        if (done[s])
            continue;
        /* one transaction per domain (with relay-host: everything at once) */
        const char *dom = domain_of(e->rcpts[idx[s]].addr);
        size_t gn = 0;
        for (size_t i = s; i < n; i++) {
            if (done[i])
                continue;
            if (c->relay_host || strcasecmp(domain_of(e->rcpts[idx[i]].addr), dom) == 0) {
                gidx[gn++] = idx[i];
                done[i] = 1;
            }
        }
        smtpc_deliver(c, d, dom, e, fd, size, gidx, gn, verbose, res);
        bad += record(m, gidx, gn, res, &pending);
        smtpc_results_free(res, gn);
    }
    free(res);
    free(gidx);
    free(done);
    dns_close(d);
    close(fd);
    return bad == n ? -1 : (int)pending;
}
