/* tls_relay.h - one TLS connection in the TLS proxy (tls_proxy.h): the
 * server handshake on the client's socket, the answer to the session
 * (MSG_TLS_DONE), then records from the client decrypted to the session's
 * socket and the session's plaintext encrypted to the client.
 *
 * Runs in the proxy as user=.  Nothing here blocks: the proxy polls the
 * two descriptors for what relay_events asks and calls relay_run when
 * either is ready or the deadline has come.  At most RELAY_BUF bytes wait
 * in each direction; while a side cannot take more, the other is not read
 * (the sender's socket fills, and TCP slows it down).  Buffers are freed
 * whenever they are empty, and OpenSSL's record buffers too
 * (SSL_MODE_RELEASE_BUFFERS), so an idle connection holds its SSL object
 * and little more.
 *
 * The end: the client's close is passed on to the session as the end of
 * its input (its last replies still go out: a client may close its side
 * after QUIT and wait for the 221); the session's close ends the relay
 * once its last reply is encrypted and sent (close_notify follows); a TLS
 * error ends it once what the client sent has reached the session.  When
 * one side has ended, the other has RELAY_DRAIN_MS to finish.  The handshake has its own
 * deadline (from the session's request).  relay_run then returns 0 and the
 * caller frees the relay, which closes both sockets. */
#ifndef PO_TLS_RELAY_H
#define PO_TLS_RELAY_H

#include <openssl/ssl.h>

#define RELAY_BUF 16384
#define RELAY_DRAIN_MS 30000

struct relay;

/* A relay for client socket cfd and session socket pfd (both owned from
 * now on), handshake on ssl (owned; SSL_set_fd done) by handshake_deadline
 * (a now_ms() value).  client: its address, for the log. */
struct relay *relay_new(SSL *ssl, int cfd, int pfd, long long handshake_deadline,
                        const char *client);

/* What to poll for on the client's socket and on the session's. */
void relay_events(const struct relay *r, int *cfd, short *cev, int *pfd, short *pev);

/* The deadline (now_ms() value) by which relay_run must be called even
 * without events, or 0 for none. */
long long relay_deadline(const struct relay *r);

/* Make what progress can be made now.  1: go on; 0: done (free it). */
int relay_run(struct relay *r, long long now);

void relay_free(struct relay *r);

#endif
