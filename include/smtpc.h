/* smtpc.h - the SMTP client: routes a batch of recipients (mx.h), connects MX
 * by MX and address by address, speaks ESMTP (PIPELINING, SIZE, 8BITMIME,
 * SMTPUTF8) and reports one result per recipient.  Knows nothing of the spool:
 * remote.c records the results.
 *
 * The peer is hostile: replies are parsed strictly (3-digit code, ' ' or '-',
 * the same code on every line, at most SMTPC_LINE_MAX bytes a line and
 * SMTPC_LINES_MAX lines), and every piece of reply text that leaves this module
 * is printable ASCII (str_sanitize): no CR, LF or NUL can reach a control
 * record, a log line or a bounce.
 *
 * Waits are the RFC 5321 4.5.3.2 values (greeting, MAIL, RCPT 5 min; DATA 2
 * min; each block of data 3 min; after the final dot 10 min), each capped by
 * timeout= when that is set below 300 seconds; connect-timeout= bounds each
 * connect().  Runs unprivileged. */
#ifndef PO_SMTPC_H
#define PO_SMTPC_H

#include <stddef.h>

#include "conf.h"
#include "dns.h"
#include "envelope.h"
#include "msgout.h"
#include "util.h"

#define SMTPC_LINE_MAX 2048 /* longest reply line we accept (RFC 5321: 512) */
#define SMTPC_LINES_MAX 100 /* most lines in one reply */
#define SMTPC_TEXT_MAX 400  /* reply text kept for status/bounces (then "...") */

/* ---- reply parser ---- */

struct smtp_reply {
    int code;              /* 3-digit code, 0 until the first line */
    int done;              /* the last line has been seen */
    struct strlist lines;  /* text of each line after "DDD-", sanitised */
};
void smtp_reply_init(struct smtp_reply *r);
void smtp_reply_free(struct smtp_reply *r);
/* Feed one line (without CRLF; may contain NUL).  Returns 1 if more lines
 * follow, 0 when the reply is complete, -1 on a protocol violation (*why set
 * to a static reason: bad code, changed code, bad separator, too many lines). */
int smtp_reply_line(struct smtp_reply *r, const char *line, size_t len, const char **why);
/* "X.Y.Z text" for a complete reply: the enhanced code from the first line if
 * it has one of the right class, else X.0.0; the text of all lines joined
 * with "; ", at most SMTPC_TEXT_MAX bytes.  Malloc'd, printable. */
char *smtp_reply_status(const struct smtp_reply *r);

/* ---- one batch ---- */

enum smtpc_outcome { SO_SENT, SO_DEFERRED, SO_BOUNCED };

struct smtpc_result {
    enum smtpc_outcome outcome;
    char *status;  /* "X.Y.Z text" (printable), never NULL after smtpc_deliver */
    char *mta;     /* host that gave the answer, or NULL (DSN Remote-MTA) */
    char *relay;   /* "host[address]:port" for the log, or NULL */
};

/* Open connections kept between batches of one queue run (up to
 * SMTPC_CACHE_MAX, least recently used closed first), matched by peer address
 * and port and checked with RSET before reuse. */
#define SMTPC_CACHE_MAX 4
struct smtpc_cache;
struct smtpc_cache *smtpc_cache_new(void);
/* QUIT and close every cached connection, free cc (NULL is fine). */
void smtpc_cache_close(struct smtpc_cache *cc);

/* Deliver recipients idx[0..n-1] of e, whose message text (LF line ends) is
 * data (msgout.h: read with pread, never closed), to domain (the part after '@' of every one of
 * them; ignored with relay-host).  cache: connections to reuse and keep
 * (NULL: connect afresh and QUIT at the end).  res[0..n-1] receives each result (free with
 * smtpc_results_free).  Logs one line per recipient at LOG_INFO; verbose
 * prints the dialogue on stderr.  Returns the number of recipients deferred. */
size_t smtpc_deliver(const struct config *c, struct dns_ctx *d, struct smtpc_cache *cache,
                     const char *domain, const struct envelope *e,
                     const struct msgdata *data, const size_t *idx, size_t n, int verbose,
                     struct smtpc_result *res);
void smtpc_results_free(struct smtpc_result *res, size_t n);

#endif
