/* smtp_reply.h - the SMTP client's reply parser: pure parsing, no I/O.
 *
 * Called by the connection (smtp_conn.h: each line read from a server), the
 * transaction (smtp_txn.h: statuses for recipients) and the unit tests; runs in
 * the remote-delivery process (unprivileged user=).
 *
 * The peer is hostile: replies are parsed strictly (3-digit code, ' ' or '-',
 * the same code on every line, at most SMTPC_LINES_MAX lines), and every piece
 * of reply text that leaves this module is printable ASCII (str_sanitize): no
 * CR, LF or NUL can reach a control record, a log line or a bounce. */
#ifndef PO_SMTP_REPLY_H
#define PO_SMTP_REPLY_H

#include <stddef.h>

#include "util.h"

#define SMTPC_LINES_MAX 100 /* most lines in one reply */
#define SMTPC_TEXT_MAX 400  /* reply text kept for status/bounces (then "...") */

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
/* "X.Y.Z CODE text" for a complete reply: the enhanced code from the first
 * line if it has one of the right class, else X.0.0; the reply code; the text
 * of all lines joined with "; ", at most SMTPC_TEXT_MAX bytes (then "...").
 * Malloc'd, printable. */
char *smtp_reply_status(const struct smtp_reply *r);

#endif
