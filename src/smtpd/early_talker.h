/* early_talker.h - clients that do not wait for the server (early-talker=,
 * greet-pause=).
 *
 * An SMTP client must wait for the greeting, and may send a command before the
 * previous reply only after EHLO announced PIPELINING (RFC 5321 4.3.1, RFC
 * 2920).  Spam software often does not wait.  The session (session.c) refuses
 * such a client with 554 5.5.0, a log line, and closes, as Postfix 3.9's
 * smtpd_forbid_unauth_pipelining and sendmail's greet_pause do:
 *   - before the greeting: input that arrived while the client was looked up
 *     (PTR, tcp wrappers, dnsbl=), or during greet-pause= (default 0: no
 *     added wait, so no latency for anyone);
 *   - before PIPELINING: a command line followed by more input already sent,
 *     in a session without EHLO (before it, or after HELO).
 * Only network sessions are checked (not -bs, whose input is a file or a
 * pipe, nor an implicit-TLS port, where the client speaks first, nor a
 * session after STARTTLS), and not trusted= clients.  Runs in the session (user=). */
#ifndef PO_EARLY_TALKER_H
#define PO_EARLY_TALKER_H

#include "smtpd_io.h"

/* Did the client on socket fd send anything, waiting at most pause_ms for it
 * (0: only what has already arrived)?  1 or 0. */
int early_before_greeting(int fd, long pause_ms);

/* Is more client input waiting after the line just read: in io's buffer or on
 * the socket?  1 or 0. */
int early_pipelined(const struct smtpio *io);

/* After the refusal was queued: send it, end our side of the connection and
 * read (and drop) what the client still sends for up to a second, so that
 * closing with unread input does not reset the connection before the client
 * read the reply. */
void early_close(struct smtpio *io);

#endif
