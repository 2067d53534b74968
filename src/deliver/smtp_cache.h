/* smtp_cache.h - open SMTP client connections kept between the batches of
 * one queue run or worker (up to SMTPC_CACHE_MAX, least recently used closed
 * first), matched by peer address and port and checked with RSET before
 * reuse.
 *
 * A kept connection keeps its TLS and AUTH state (RSET and the next
 * transaction go through the same TLS session); the batch never keeps one
 * whose TLS or AUTH failed, and a connection is reused only for a
 * destination with the same TLS policy and credentials (its pkey, made by
 * smtp_client.c: relay-map= gives destinations their own), so reuse never
 * changes the security a destination gets.
 *
 * Called by the batch (smtpc_deliver) and its callers (remote_session.c, which owns
 * a cache for its lifetime), in the remote-delivery process as the
 * unprivileged user=.  Nothing here fails loudly: a cached connection that
 * does not answer RSET is closed and the caller connects afresh. */
#ifndef PO_SMTP_CACHE_H
#define PO_SMTP_CACHE_H

#include <sys/socket.h>

#include "smtp_conn.h"

#define SMTPC_CACHE_MAX 4
struct smtpc_cache;
struct smtpc_cache *smtpc_cache_new(void);
/* QUIT and close every cached connection, free cc (NULL is fine). */
void smtpc_cache_close(struct smtpc_cache *cc);

/* A cached connection to ss opened with policy key pkey (NULL matches only
 * NULL) that still answers RSET, taken out of cc (its verbose set), or NULL
 * (none, or it failed RSET and was closed; cc may be NULL). */
struct smtp_conn *smtp_cache_take(struct smtpc_cache *cc, const struct sockaddr_storage *ss,
                                  const char *pkey, int verbose);
/* Keep k (connected) in cc; the least recently used goes (QUIT) when full. */
void smtp_cache_put(struct smtpc_cache *cc, struct smtp_conn *k);

#endif
