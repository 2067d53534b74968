/* milter.h - the mail filter (milter) client: sendmail's milter protocol,
 * version 6 (falling back to what an older filter speaks, down to 2), to the
 * filters named by filter=, in order.
 *
 * Runs in the SMTP session child as user= (never as root): session.c calls
 * it at connect, HELO, MAIL, RCPT, DATA, the end of the message, RSET and the
 * end of the session.  One connection per filter and session, opened at the
 * client's connect (a filter needs the connect event to know the client).
 * Each step (write a command, read its reply) has its own deadline
 * (filter-timeout=).  A filter that cannot be reached, times out or breaks
 * the protocol is closed for the rest of the session and filter-fail= decides:
 * "tempfail" (the default) answers 451 4.7.1 to the step and to every later
 * transaction, "accept" goes on without that filter.
 *
 * The macros real filters ask for are sent before each step (SMFIC_MACRO):
 * j _ {daemon_name} {if_name} {if_addr} {client_addr} {client_port}
 * {client_name} {client_ptr} at connect; {tls_version} {cipher} at HELO;
 * {mail_addr} {mail_mailer} {auth_authen} at MAIL; {rcpt_addr} {rcpt_mailer}
 * at RCPT; i (the queue id, known from DATA on) at DATA, end of headers and
 * end of message.  A filter's "no such step" and "no reply" flags (SMFIP_NO*,
 * SMFIP_NR_*) and SMFIP_SKIP (no more body) are honoured.
 *
 * The transaction steps return 0 (go on) or an SMTP reply code with its
 * text ("X.Y.Z text", checked: a filter's SMFIR_REPLYCODE is used only when
 * it is a well-formed 4xx/5xx reply, and only as data, never as a format)
 * in *why; a refusal at connect or HELO is remembered and given at every
 * MAIL.  A discard is remembered (milter_discarded) and answered as a
 * success by the caller.  Also used by the sendmail front end
 * (submit_filter.h, filter-local=), as the invoking user. */
#ifndef PO_MILTER_H
#define PO_MILTER_H

#include "conf.h"
#include "milter_mods.h"
#include "util.h"

struct milter_set;

/* What the filters are told about the client at connect. */
struct milter_client {
    const char *ip;       /* numeric address, "" for a local (-bs) submission */
    const char *ptr;      /* verified reverse DNS name, or NULL */
    int port;             /* the client's port, 0 when unknown */
    const char *if_addr;  /* our address the client connected to, or NULL */
};

/* Filters for this session, or NULL when filter= is empty.  Nothing is
 * connected yet. */
struct milter_set *milter_open(const struct config *c);

/* Connect (each filter is connected and negotiated first) and HELO: a
 * refusal is kept for milter_mail. */
void milter_connect(struct milter_set *ms, const struct milter_client *cl, struct buf *why);
/* tls_info: "TLS1.3 cipher=NAME ..." (session.h) or NULL. */
void milter_helo(struct milter_set *ms, const char *helo, const char *tls_info,
                struct buf *why);
/* A new transaction (any earlier one is aborted first).  args: the MAIL
 * parameters as the client sent them ("SIZE=123 BODY=8BITMIME"), or "".
 * A refusal of the connection or HELO by a filter is answered here. */
int milter_mail(struct milter_set *ms, const char *sender, const char *args,
                const char *auth_user, struct buf *why);
/* local: the recipient's domain is ours ({rcpt_mailer} "local", else "esmtp"). */
int milter_rcpt(struct milter_set *ms, const char *rcpt, int local, struct buf *why);
/* DATA: qid is the queue id the message is being written under. */
int milter_data(struct milter_set *ms, const char *qid, struct buf *why);
/* The message is stored: its headers and body (read with rd, size bytes) go
 * to the filters, then the end of message; their changes are collected in
 * milter_mods(ms).  0 or a reply code. */
int milter_message(struct milter_set *ms, mmods_read_fn rd, void *arg, long long size,
                   struct buf *why);
/* The changes the filters asked for in this transaction. */
struct mmods *milter_mods(struct milter_set *ms);
/* Did a filter discard this transaction's message? */
int milter_discarded(const struct milter_set *ms);
/* The transaction ended (RSET, a message accepted or refused): filters that
 * are still inside it are told to forget it. */
void milter_end_message(struct milter_set *ms);
/* End of the session: QUIT to every filter, close, free.  ms may be NULL. */
void milter_close(struct milter_set *ms);

#endif
