/* headers.h - the header block of a message: scanning and the headers we add.
 *
 * Messages are handled in LF form.  The header block ends at the first empty
 * line, or at the first line that is not a header field or a continuation (then
 * the message has no header block and everything is body). */
#ifndef PO_HEADERS_H
#define PO_HEADERS_H

#include <stddef.h>
#include <time.h>

#include "util.h"

struct hdr_info {
    size_t hdr_len;     /* bytes of the header block (without the blank line) */
    int has_date, has_msgid, has_from, has_sender, has_to;
    int received;       /* number of Received: fields */
    int eight_bit;      /* any byte >= 0x80 anywhere in the scanned text */
};

/* Scan the header block at the start of msg (len bytes).  The caller can pass
 * only the first part of a message: a header block that isn't finished within
 * len bytes is reported with hdr_len = len. */
void hdr_scan(const char *msg, size_t len, struct hdr_info *hi);

/* Collect the addresses of every To:, Cc: and Bcc: field (for sendmail -t). */
void hdr_recipients(const char *hdrs, size_t len, struct strlist *out);

/* Copy the header block without its Bcc: fields (with their continuations). */
void hdr_strip_bcc(const char *hdrs, size_t len, struct buf *out);

/* Value of the first field named name (unfolded, trimmed), malloc'd, or NULL. */
char *hdr_get(const char *hdrs, size_t len, const char *name);

/* RFC 5322 date with a numeric zone: "Sat, 21 Nov 2026 23:20:59 +0000". */
void hdr_date(time_t t, struct buf *out);

/* A Message-ID unique across processes and hosts: "<TIME.PID.RANDOM.QID@host>". */
void hdr_msgid(const char *qid, const char *host, struct buf *out);

/* "From: "Full Name" <user@host>" line for a local user; fullname may be NULL
 * (GECOS is cut at the first comma and quoted as needed). */
void hdr_from_line(const char *user, const char *host, const char *fullname,
                   struct buf *out);

/* Fold-free header field line "Name: value\n" with value made safe (CR/LF
 * replaced by spaces). */
void hdr_line(struct buf *out, const char *name, const char *value);

#endif
