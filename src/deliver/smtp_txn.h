/* smtp_txn.h - one SMTP transaction of the client on an open connection
 * (smtp_conn.h): MAIL (SIZE, BODY=8BITMIME, SMTPUTF8, RET), RCPT for every
 * recipient not finally answered yet (NOTIFY, ORCPT when the peer offers DSN),
 * DATA, the message text through message_out.h (CRLF, dot-stuffing), the final dot;
 * pipelined (RFC 2920) when the peer offers PIPELINING.
 *
 * Called by the batch (smtp_client.c) in the remote-delivery process, as the
 * unprivileged user=; SIGPIPE must be ignored (smtpc_deliver does).  Refusals
 * decided before talking (SMTPUTF8 not offered 5.6.7, SIZE limit 5.3.4, an
 * address that could split a command line 5.1.3/5.1.7) are final bounces.
 * A relay host's 530 to MAIL (authentication required) is deferred, 4.7.0:
 * the administrator's to fix, not the sender's. */
#ifndef PO_SMTP_TXN_H
#define PO_SMTP_TXN_H

#include <stddef.h>

#include "envelope.h"
#include "message_out.h"
#include "smtp_conn.h"

enum smtpc_outcome { SO_SENT, SO_DEFERRED, SO_BOUNCED };

struct smtpc_result {
    enum smtpc_outcome outcome;
    char *status;  /* "X.Y.Z CODE text" from a reply, or "X.Y.Z text" of our own
                      (printable); never NULL after smtpc_deliver */
    char *mta;     /* host that gave the answer, or NULL (DSN Remote-MTA) */
    char *relay;   /* "host[address]:port" for the log, or NULL */
};

/* One recipient during a batch. */
struct smtp_rcpt {
    const char *addr;
    const struct rcpt *r; /* for the DSN parameters */
    int final;    /* a server gave a definitive answer (2xx/4xx/5xx) */
    int accepted; /* RCPT got 2xx in this transaction */
    struct smtpc_result *res;
};

/* Set x's result (status copied; mta = k's host when final and k given,
 * relay = k's relay when k given) and whether it is final. */
void smtp_rcpt_set(struct smtp_rcpt *x, enum smtpc_outcome o, const char *status,
                   const struct smtp_conn *k, int final);

/* Bytes of d on the wire (LF -> CRLF, for SIZE= and the peer's limit, RFC
 * 1870), and in *eightbit whether the text has 8-bit bytes. */
long long smtp_wire_size(const struct msgdata *d, int *eightbit);

/* The transaction for rs[0..n-1] not final yet, with message e/d of size
 * bytes (eightbit: send BODY=8BITMIME).  Every recipient it answers gets a
 * result.  Returns 0, or -1 if the connection broke: then the recipients left
 * open carry the connection's error and may go to the next host, except those
 * whose message text had started (RFC 5321 6.1: marked final, deferred). */
int smtp_txn(struct smtp_conn *k, const struct envelope *e, const struct msgdata *d,
             long long size, int eightbit, struct smtp_rcpt *rs, size_t n);

#endif
