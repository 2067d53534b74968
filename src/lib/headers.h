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
    int has_date, has_msgid, has_from, has_sender, has_to; /* has_to: To: only */
    int received;       /* number of Received: fields */
    int eight_bit;      /* any byte >= 0x80 anywhere in the scanned text */
};

/* Scan the header block at the start of msg (len bytes).  The caller can pass
 * only the first part of a message: a header block that isn't finished within
 * len bytes is reported with hdr_len = len (a last line without LF made only
 * of field-name characters counts as an unfinished field).  Field names are
 * printable ASCII except ':' (no space before the colon); an mbox "From "
 * line is not a field, so a message starting with one has no header block. */
void hdr_scan(const char *msg, size_t len, struct hdr_info *hi);

/* Collect the addresses of every To:, Cc: and Bcc: field (for sendmail -t),
 * canonical (see addr_parse_list), in order, duplicates kept; entries that
 * are not addresses are skipped.  Resent-* fields are not read.  Only the
 * header block at the start of hdrs is looked at. */
void hdr_recipients(const char *hdrs, size_t len, struct strlist *out);

/* The same; each entry that is not an address is added to bad as
 * "FIELD: ENTRY: reason" (see addr_parse_list_report). */
void hdr_recipients_report(const char *hdrs, size_t len, struct strlist *out,
                           struct strlist *bad);

/* Append the header block without its Bcc: fields (with their continuations)
 * to out; whatever follows the header block within len is copied unchanged. */
void hdr_strip_bcc(const char *hdrs, size_t len, struct buf *out);

/* Value of the first field named name (case-insensitive) in the header block,
 * unfolded (CR LF / LF removed), trimmed of spaces and tabs, NUL bytes turned
 * into spaces; malloc'd, or NULL. */
char *hdr_get(const char *hdrs, size_t len, const char *name);

/* Append a Message-ID unique across processes and hosts:
 * "<YYYYMMDDhhmmss.PID.RANDOM.QID@host>", RANDOM = 16 hex digits from
 * getrandom(2) (or /dev/urandom), time in UTC.  qid may be NULL (".QID"
 * omitted); host NULL or "" means the node name.  Only dot-atom characters of
 * qid and host are copied. */
void hdr_msgid(const char *qid, const char *host, struct buf *out);

/* Append "From: Full Name <user@host>\n" for a local user; fullname may be NULL
 * or empty ("From: <user@host>\n").  The GECOS field is cut at the first comma,
 * '&' stands for the capitalised user name, control characters become spaces,
 * it is cut to 200 bytes and quoted (with \" and \\) when it has specials. */
void hdr_from_line(const char *user, const char *host, const char *fullname,
                   struct buf *out);

/* Append "From: Name <addr>\n" for a canonical address addr (address.h; control
 * characters dropped).  name (sendmail -F) is taken as it is, not as a GECOS
 * field (no cut at a comma, no '&'): control characters become spaces, it is
 * cut to 200 bytes and quoted when it has specials; NULL or empty gives
 * "From: <addr>\n". */
void hdr_from_addr(const char *addr, const char *name, struct buf *out);

#endif
