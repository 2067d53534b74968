/* submit_filter.c - mail filters for the sendmail front end's messages
 * (submit_filter.h).  Runs as the invoking user. */
#include "compat.h"

#include <errno.h>
#include <string.h>
#include <sysexits.h>

#include "log.h"
#include "milter.h"
#include "route.h"
#include "spool.h"
#include "submit_filter.h"

static ssize_t stored_read(void *arg, void *p, size_t n, long long off)
{
    return spool_new_pread(arg, p, n, off);
}

/* A filter's reply code as an exit status, said on stderr. */
static int refused(const struct envelope *e, int code, const struct buf *why)
{
    say("message refused by a mail filter: %d %s", code, why->s ? why->s : "");
    log_notice("%s: local submission refused by a mail filter: %d %s", e->qid, code,
               why->s ? why->s : "");
    return code >= 500 ? EX_UNAVAILABLE : EX_TEMPFAIL;
}

/* The SMTP-like dialogue up to the end of the message.  0 or a reply code. */
static int dialogue(const struct config *c, struct milter_set *ms, struct spool_new *sn,
                    const struct envelope *e, const char *qid, struct buf *why)
{
    struct milter_client cl = { .ip = "", .ptr = NULL };
    milter_connect(ms, &cl, why);
    milter_helo(ms, c->hostname, NULL, why);
    int code = milter_mail(ms, e->sender, "", NULL, why);
    for (size_t i = 0; !code && i < e->nrcpts; i++) {
        const char *dom = strrchr(e->rcpts[i].addr, '@');
        code = milter_rcpt(ms, e->rcpts[i].addr, !dom || route_is_local_domain(c, dom + 1),
                           why);
    }
    if (!code)
        code = milter_data(ms, qid, why);
    if (!code)
        code = milter_message(ms, stored_read, sn, spool_new_size(sn), why);
    return code;
}

int sfilter_run(const struct config *c, const char *dir, struct spool_new **sn,
                struct envelope *e)
{
    if (!c->filter_local || c->filter.n == 0)
        return 0;
    struct milter_set *ms = milter_open(c);
    struct buf why;
    buf_init(&why);
    char qid[QID_MAX];
    str_copy(qid, spool_new_qid(*sn), sizeof qid);
    int rc = 0, code = dialogue(c, ms, *sn, e, qid, &why);
    if (code) {
        rc = refused(e, code, &why);
    } else if (milter_discarded(ms)) {
        log_notice("%s: discarded by a mail filter; not queued", qid);
        rc = 1;
    } else {
        int r = mmods_apply(milter_mods(ms), stored_read, *sn, spool_new_size(*sn), dir, sn, e);
        if (r == 1)
            log_notice("%s: a mail filter removed every recipient; not queued", qid);
        if (r < 0)
            say("cannot store the filtered message: %s", strerror(errno));
        if (r == 0 && e->quarantine)
            log_notice("%s: quarantined by a mail filter: %s", qid, e->quarantine);
        rc = r < 0 ? EX_IOERR : r;
    }
    milter_close(ms);
    buf_free(&why);
    return rc;
}
