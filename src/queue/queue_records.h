/* queue_records.h - the control file format (postoffice-queue(5)): envelope <-> text.
 *
 * Text, one record per line, first character the record type, an end marker
 * line so a truncated file is detected.  After the end marker come appended
 * status records (one per recipient result, appended + fdatasync'ed by the queue
 * runner, each with its own checksum) which ctl_parse applies in order; a last
 * line without its newline is an interrupted append and is ignored.
 *
 * Every string written is sanitised: no CR, LF or NUL can reach the file, so no
 * field can ever forge a record (nor smuggle a line end into one). */
#ifndef PO_QUEUE_RECORDS_H
#define PO_QUEUE_RECORDS_H

#include <stddef.h>
#include <time.h>

#include "envelope.h"
#include "util.h"

/* Serialise e (the whole envelope, with its end marker) into out. */
void ctl_format(const struct envelope *e, struct buf *out);

/* One appended status record for recipient i with state and status text,
 * ending in a TAB and the FNV-1a 64 checksum of the record before it. */
void ctl_format_status(size_t i, enum rcpt_state st, const char *status,
                       const char *remote_mta, struct buf *out);

/* One appended retry record: the message was tried and deferred, attempts
 * and next_try are its new back-off ("B<attempts> <next_try>", B for
 * back-off, then TAB and the FNV-1a 64 checksum, as a status record).  Written instead of a whole
 * rewrite of the file (issue 14); versions before it ignore it as a damaged
 * status record (their retry comes sooner, nothing else changes). */
void ctl_format_retry(int attempts, time_t next_try, struct buf *out);

/* Parse text (len bytes) into e (env_init'ed by the caller).  Returns 0, or -1
 * with *why set to a static reason (truncated: no end marker; bad record). */
int ctl_parse(const char *text, size_t len, struct envelope *e, const char **why);

/* ctl_parse, also telling in *validlen how many bytes of text are the envelope
 * plus the complete status records: what follows is an interrupted append the
 * lock holder may truncate away before appending; and in *badrecs (may be
 * NULL) how many complete status records were ignored: malformed, failing
 * their checksum, or without one after one that had it (records of older
 * versions, all without, are applied).  An ignored record leaves its
 * recipient as the records before it said (pending: delivered again, never
 * lost).  On error e holds whatever was parsed so far (env_free it). */
int ctl_parse_ex(const char *text, size_t len, struct envelope *e, const char **why,
                 size_t *validlen, size_t *badrecs);

#endif
