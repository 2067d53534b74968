/* quarantine.c - releasing messages a mail filter quarantined
 * (quarantine.h).  Runs as root or the queue owner (postoffice -bQ). */
#include "compat.h"

#include <errno.h>
#include <stdlib.h>

#include "quarantine.h"
#include "spool.h"

int quar_release(const struct config *c, const char *qid)
{
    struct qmsg *m;
    if (!spool_valid_qid(qid)) {
        errno = ENOENT;
        return -1;
    }
    int r = spool_open(c->queuedir, qid, &m);
    if (r == 1) {
        errno = EBUSY;
        return -1;
    }
    if (r < 0)
        return -1;
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
