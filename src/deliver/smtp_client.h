/* smtp_client.h - the SMTP client, one batch: routes the recipients of one domain
 * (mx.h), connects MX by MX and address by address (or reuses a cached
 * connection), runs the transaction and reports one result per recipient.
 * Knows nothing of the spool: remote_session.c records the results.
 *
 * The parts, one module each: the reply parser (smtp_reply.h), the
 * connection (smtp_conn.h), the transaction (smtp_txn.h: also the result
 * types below), the connection cache (smtp_cache.h: smtpc_cache_new/close).
 *
 * Waits are the RFC 5321 4.5.3.2 values (greeting, MAIL, RCPT 5 min; DATA 2
 * min; each block of data 3 min; after the final dot 10 min), each capped by
 * timeout= when that is set below 300 seconds; connect-timeout= bounds each
 * connect().  Called by remote_session.c (and tests/helpers/po-remote.c) in the
 * remote-delivery process, as the unprivileged user= (the caller forks and
 * drops first). */
#ifndef PO_SMTP_CLIENT_H
#define PO_SMTP_CLIENT_H

#include <stddef.h>

#include "conf.h"
#include "dns.h"
#include "relay_auth.h"
#include "envelope.h"
#include "message_out.h"
#include "mx.h"
#include "smtp_cache.h"
#include "smtp_dead.h"
#include "smtp_reply.h"
#include "smtp_tls.h"
#include "smtp_txn.h"

/* What a batch needs besides the configuration, kept by the caller for the
 * life of its process: the TLS state (smtp_tls.h: contexts, the relay's
 * session; NULL = a fresh one for this batch, whose connections are then not
 * kept in the cache), the credentials (relay-auth=, the auth= files of
 * relay-map=) its privileged parent read (relay_auth.h; NULL = none), this machine's
 * addresses (mx.h's mx_ours; NULL = listed afresh per batch) and the
 * addresses that refused a connect (smtp_dead.h; NULL = none remembered:
 * every batch tries every address). */
struct smtpc_sec {
    struct smtp_tls *tls;
    const struct relay_creds *creds;
    struct mx_ours *ours;
    struct smtp_dead *dead;
};

/* Deliver recipients idx[0..n-1] of e, whose message text (LF line ends) is
 * data (message_out.h: read with pread, never closed), to domain (the part after
 * '@' of every one of them, or of the first when they share a next hop).  cache: connections to
 * reuse and keep (NULL: connect afresh and QUIT at the end).  res[0..n-1]
 * receives each result (free with smtpc_results_free); a DNS failure gives
 * every recipient its status (5.x.x bounced, else deferred).  Logs one line
 * per recipient at LOG_INFO; verbose prints the dialogue on stderr.  Ignores
 * SIGPIPE for its duration.  The next hop, TLS and AUTH are domain's
 * destination (relay_map.h: its relay-map= entry, else relay-host with
 * relay-tls= and relay-auth=, else the MX hosts with opportunistic
 * STARTTLS), as smtp_tls.h and smtp_auth.h say; an unusable map or
 * credentials file defers every recipient with the reason (4.3.5).
 * Returns the number of recipients deferred. */
size_t smtpc_deliver(const struct config *c, struct dns_ctx *d, struct smtpc_cache *cache,
                     const struct smtpc_sec *sec, const char *domain, const struct envelope *e,
                     const struct msgdata *data, const size_t *idx, size_t n, int verbose,
                     struct smtpc_result *res);
void smtpc_results_free(struct smtpc_result *res, size_t n);

#endif
