/* remote_session.h - delivery to other hosts over SMTP (MX routing or relay-host).
 *
 * Runs as the unprivileged user (the caller forks and drops first). */
#ifndef PO_REMOTE_SESSION_H
#define PO_REMOTE_SESSION_H

#include <stddef.h>

#include "conf.h"
#include "queue_run.h"
#include "spool.h"

/* Deliver recipients idx[0..n-1] of m (all for the same domain, or all via
 * relay-host) and record each result with spool_record (RS_DONE, RS_FAILED with
 * a 5.x.x status, or RS_PENDING with a 4.x.x status).  Returns the number of
 * recipients still pending, or -1 if nothing could be recorded. */
int remote_deliver(const struct config *c, struct qmsg *m, const size_t *idx,
                   size_t n, const struct runq_opts *o);

/* The same for several messages in one process:
 * a session keeps the resolver and up to 4 open SMTP connections between
 * calls, so further messages to the same host reuse the connection (RSET
 * first).  remote_begin: NULL if the resolver cannot be set up (logged).
 * remote_end sends QUIT on every kept connection. */
struct remote_session;
struct remote_session *remote_begin(const struct config *c);
int remote_deliver_in(struct remote_session *s, struct qmsg *m, const size_t *idx,
                      size_t n, const struct runq_opts *o);
void remote_end(struct remote_session *s);
/* The configuration a session was begun with. */
const struct config *remote_config(const struct remote_session *s);

#endif
