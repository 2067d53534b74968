/* quarantine.c - holding and releasing messages (quarantine.h).  Runs as
 * root or the queue owner (postoffice -bQ, -Mf, -Mt). */
#include "compat.h"

#include <errno.h>
#include <stdlib.h>

#include "quarantine.h"
#include "spool.h"
#include "util.h"

/* Lock message qid.  0 with *m; -1 with errno (ENOENT, EBUSY, ...). */
static int open_locked(const struct config *c, const char *qid, struct qmsg **m)
{
    if (!spool_valid_qid(qid)) {
        errno = ENOENT;
        return -1;
    }
    int r = spool_open(c->queuedir, qid, m);
    if (r == 1)
        errno = EBUSY;
    return r == 0 ? 0 : -1;
}

int quar_hold(const struct config *c, const char *qid, const char *reason)
{
    struct qmsg *m;
    if (open_locked(c, qid, &m) < 0)
        return -1;
    struct envelope *e = spool_env(m);
    if (e->flags & ENV_QUARANTINE) {
        spool_close(m);
        return 1;
    }
    e->flags |= ENV_QUARANTINE;
    free(e->quarantine);
    e->quarantine = xstrdup(reason);
    int r = spool_rewrite(m);
    int err = errno;
    spool_close(m);
    errno = err;
    return r < 0 ? -1 : 0;
}

int quar_release(const struct config *c, const char *qid)
{
    struct qmsg *m;
    if (open_locked(c, qid, &m) < 0)
        return -1;
    int r;
    struct envelope *e = spool_env(m);
    if (!(e->flags & ENV_QUARANTINE)) {
        spool_close(m);
        return 1;
    }
    e->flags &= ~ENV_QUARANTINE;
    free(e->quarantine);
    e->quarantine = NULL;
    e->next_try = 0;
    r = spool_rewrite(m);
    int err = errno;
    spool_close(m);
    if (r < 0) {
        errno = err;
        return -1;
    }
    (void)spool_trigger(c->queuedir);
    return 0;
}
