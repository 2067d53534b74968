/* msgid_peek.h - the Message-ID of a message being queued, for its "queued"
 * log line (postoffice-log(5)).  Called by the SMTP session, the sendmail
 * front end and the bounce writer, as whoever writes the message. */
#ifndef PO_MSGID_PEEK_H
#define PO_MSGID_PEEK_H

#include "spool.h"

/* The first Message-ID field's value in the header block of the data written
 * so far (read back within MSGID_PEEK_MAX bytes), malloc'd; NULL when there is
 * none (or it lies further in, or cannot be read). */
#define MSGID_PEEK_MAX 32768
char *msgid_peek(const struct spool_new *sn);

/* The same for a message in memory (LF form). */
char *msgid_of(const char *msg, size_t len);

#endif
