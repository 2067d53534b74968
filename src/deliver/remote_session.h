/* remote_session.h - delivery to other hosts over SMTP (MX routing or relay-host).
 *
 * Runs as the unprivileged user (the caller forks and drops first). */
#ifndef PO_REMOTE_SESSION_H
#define PO_REMOTE_SESSION_H

#include <stddef.h>

#include "conf.h"
#include "queue_run.h"
#include "relay_auth.h"
#include "spool.h"

/* Deliver recipients idx[0..n-1] of m (one transaction per domain, or one
 * for all via relay-host when relay-map= is not set) and record each result with spool_record (RS_DONE, RS_FAILED with
 * a 5.x.x status, or RS_PENDING with a 4.x.x status).  Returns the number of
 * recipients still pending, or -1 if nothing could be recorded.  Reads the
 * relay-auth= and relay-map= auth= files itself (relay_auth.h: as whoever
 * calls it; for tests). */
int remote_deliver(const struct config *c, struct qmsg *m, const size_t *idx,
                   size_t n, const struct runq_opts *o);

/* The same for several messages in one process:
 * a session keeps the resolver, the client's TLS state (smtp_tls.h: the relay
 * host's TLS session for resumption) and up to 4 open SMTP connections
 * between calls, so further messages to the same host reuse the connection
 * (RSET first).  creds: the credentials (relay-auth=, relay-map= auth=
 * files) the privileged parent read before forking (relay_auth.h), or NULL;
 * they must outlive the session.  remote_begin: NULL if the resolver cannot be set up
 * (logged).  remote_end sends QUIT on every kept connection. */
struct remote_session;
struct remote_session *remote_begin(const struct config *c, const struct relay_creds *creds);
int remote_deliver_in(struct remote_session *s, struct qmsg *m, const size_t *idx,
                      size_t n, const struct runq_opts *o);
void remote_end(struct remote_session *s);
/* The configuration a session was begun with. */
const struct config *remote_config(const struct remote_session *s);

#endif
