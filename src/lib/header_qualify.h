/* header_qualify.h - unqualified addresses in the header of a locally
 * submitted message get "@" and our domain, as sendmail and Postfix
 * (append_at_myorigin) do: "To: bob" becomes "To: bob@host", "To: Bob Smith
 * <bob>" becomes "To: Bob Smith <bob@host>".
 *
 * The address fields are parsed as RFC 5322 address lists (display names,
 * quoted strings, comments, groups, angle addresses with obsolete routes,
 * folded lines); only the addresses change, every other byte is copied as
 * it is.  Left alone: an address with a domain, "<>", an address whose
 * local part has a quoted string ("bob smith" may be a display name an old
 * program wrote without its address), the text of comments, quoted strings
 * and group names (an empty group such as "undisclosed-recipients:;" stays
 * as it is; the members of a group are addresses and are qualified), and a
 * field that does not parse as an address list (an unbalanced quote,
 * comment or angle bracket, control characters, comments nested deeper than
 * HQ_COMMENT_DEPTH_MAX, more than HQ_ADDRS_MAX addresses to qualify).
 *
 * Pure text in, text out: no I/O, linear in the input.  Who calls: the
 * sendmail front end (submit.c), as the submitting user, unless
 * qualify-headers=0; never mail received over SMTP. */
#ifndef PO_HEADER_QUALIFY_H
#define PO_HEADER_QUALIFY_H

#include <stddef.h>

#include "util.h"

#define HQ_COMMENT_DEPTH_MAX 64
#define HQ_ADDRS_MAX 1000 /* per field */

/* Is the field name (n bytes, without the colon) one whose addresses are
 * qualified: From, Sender, Reply-To, To, Cc, Bcc, Resent-From,
 * Resent-Sender, Resent-To, Resent-Cc, Resent-Bcc (any case)?  1 or 0. */
int hq_field(const char *name, size_t n);

/* Qualify one field body: value (n bytes, what follows the colon, folded
 * lines and the final LF included) read as an address list.  Appends the
 * body with "@" domain after each unqualified address to out (the body
 * unchanged when it does not parse; see above) and returns the number of
 * addresses qualified. */
size_t hq_value(const char *value, size_t n, const char *domain, struct buf *out);

/* The header block hdrs (len bytes, LF line ends, complete fields: what
 * hdr_scan counts as hdr_len): the fields hq_field names through hq_value,
 * everything else copied.  Appends to out; returns the number of addresses
 * qualified. */
size_t hq_headers(const char *hdrs, size_t len, const char *domain, struct buf *out);

#endif
