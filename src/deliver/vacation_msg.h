/* vacation_msg.h - the vacation file (postoffice-vacation(5)) and the reply
 * made from it: pure functions, no I/O (the caller passes the clock).
 *
 * Who calls: the vacation child (vacation.c), as the user who wrote the file
 * (never root).  The file and the original's Subject and Message-ID are
 * untrusted text: parsed within the lengths given, every limit an error that
 * names the line, never a silent cut of the user's text.
 *
 * The file: an optional header block, a blank line, the body.  It has a header
 * block when its first line is one of the fields below; the block ends at
 * the first empty line.  Fields:
 *   Subject:            the reply's subject; $SUBJECT stands for the
 *                       original's (default: "Auto: " and the original's)
 *   From:               the reply's From: (one address; default the user's)
 *   Reply-To:, X-*:     copied into the reply
 *   Vacation-Period:    at most one reply per sender in this time: a number
 *                       and s, m, h, d (default) or w; 0 = every message
 *   Vacation-Alias:     more addresses of the user (for the To/Cc rule)
 *   Vacation-Check-To:  "no": answer even when none of the user's addresses
 *                       is in To: or Cc:
 *   MIME-Version:, Content-Type: text/plain (utf-8 or us-ascii),
 *   Content-Transfer-Encoding: 7bit or 8bit, Precedence:
 *                       accepted and left out (the reply gets its own)
 * Any other field is an error, and so is a control character (other than tab;
 * form feed in the body).  The body is UTF-8 text; $SUBJECT in it stands for
 * the original's subject too. */
#ifndef PO_VACATION_MSG_H
#define PO_VACATION_MSG_H

#include <stddef.h>
#include <time.h>

#include "util.h"

#define VAC_FILE_MAX (64 * 1024)              /* bytes of a vacation file */
#define VAC_LINE_MAX 998                      /* RFC 5322 2.1.1 */
#define VAC_PERIOD_DEFAULT (7L * 24 * 3600)   /* one reply per sender a week */
#define VAC_PERIOD_MAX (3650L * 24 * 3600)    /* ten years */

struct vac_file {
    char *subject;          /* Subject: value as written, or NULL */
    char *from;             /* From: value as written, or NULL */
    struct strlist extra;   /* "Reply-To: ..." / "X-...: ..." lines, unfolded */
    struct strlist aliases; /* Vacation-Alias: addresses, canonical */
    long period;            /* seconds */
    int check_to;           /* 0 after Vacation-Check-To: no */
    char *body;             /* the body, LF lines, ending in LF (or "") */
};

/* Parse the file text (len bytes; more than VAC_FILE_MAX is an error).
 * 0 with f filled (vac_file_free it), or -1 with *err a malloc'd text saying
 * what to fix ("line 3: unknown field Cc: (...)"); f is then freed. */
int vac_file_parse(const char *text, size_t len, struct vac_file *f, char **err);
void vac_file_free(struct vac_file *f);

/* Parse a period ("7", "7d", "12h", "2w", "3600s", "0"): 0 with *secs, -1. */
int vac_period_parse(const char *s, long *secs);

struct vac_orig {
    const char *subject; /* the original's Subject, unfolded, or NULL */
    const char *msgid;   /* its Message-ID, or NULL */
    const char *refs;    /* its References, or NULL */
};

/* The reply, as a message for the sendmail front end (LF lines): From: (the
 * file's or <from>), To: <to>, Subject: (RFC 2047 when not ASCII), Date:
 * (now), Message-ID: (new, @host), In-Reply-To: and References: (when the
 * original's Message-ID is one msg-id), Auto-Submitted: auto-replied, the
 * file's Reply-To:/X-* fields, MIME-Version, Content-Type: text/plain;
 * charset=utf-8 and 7bit, or quoted-printable for a body with 8-bit text;
 * then the body.  Text from the original is cleaned first (control
 * characters become spaces, invalid UTF-8 bytes '?', at most 200 bytes).
 * Appends to out; 0, or -1 with *err (malloc'd) when a line would pass
 * VAC_LINE_MAX. */
int vac_compose(const struct vac_file *f, const struct vac_orig *o, const char *from,
                const char *to, const char *host, time_t now, struct buf *out, char **err);

/* Clean untrusted header text for reuse: unfolded text with control
 * characters as spaces, invalid UTF-8 bytes as '?', cut to max bytes at a
 * character boundary, spaces trimmed.  malloc'd. */
char *vac_clean_text(const char *s, size_t max);

#endif
