/* orig_queue.h - the original postoffice's queue format, read once for the upgrade
 * (postoffice-queue(5), "Upgrading from the original postoffice").
 *
 * The original kept a message as cm<id> (control: "S" queue comment, "F"
 * sender, "T<recipient>|<domain>" per remote recipient still pending, "!"
 * flag lines such as "!H ;has headers", then a "+" line followed by its
 * generated header block verbatim to the end of the file) and dm<id> (the
 * message text as received, headers included).  <id> is 6 characters. */
#ifndef PO_ORIG_QUEUE_H
#define PO_ORIG_QUEUE_H

#include <stddef.h>

#include "envelope.h"

#define ORIGQ_ID_LEN 6

/* Is name "cm" followed by a well-formed original id? */
int origq_is_control(const char *name);

struct origq {
    size_t gen_off, gen_len; /* the generated header block in the text */
    int has_headers;         /* "!H": the text starts with header lines (else
                                a blank line goes between block and text) */
};

/* Parse control file text (len bytes) into e (env_init'ed: sender, the
 * recipients in order) and *o.  0, or -1 with *why a static reason: a NUL
 * byte, an unknown record, a second F, a recipient that is empty or holds a
 * control character, no recipient, or "!H" without the "+" line (truncated).
 * A file with neither "!H" nor "+" is the original's message without header
 * lines (which its runner could never read) and is accepted. */
int origq_parse(const char *text, size_t len, struct envelope *e, struct origq *o,
                const char **why);

#endif
