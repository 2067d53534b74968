/* message_out.h - copying a queued message out: to an mbox, a program, or SMTP.
 *
 * The data file holds LF-terminated lines.  The writer adds what the target
 * needs, streaming in bounded memory. */
#ifndef PO_MESSAGE_OUT_H
#define PO_MESSAGE_OUT_H

#include <stddef.h>

#define MO_FROM_LINE   0x01 /* mbox "From sender date" first line */
#define MO_ESCAPE_FROM 0x02 /* ">From " for body lines starting "From " */
#define MO_BLANK_END   0x04 /* end with an empty line (mbox separator) */
#define MO_SMTP        0x08 /* CRLF line ends and dot-stuffing; lone CR or LF never
                               sent bare; NUL bytes left out; no terminating "."
                               (the caller sends it) */
#define MO_HDRS_ONLY   0x10 /* stop after the header block (bounces with RET=HDRS) */

/* A queued message's data: len bytes at offset off of fd.  The descriptor
 * belongs to whoever holds the message (the spool's locked queue file):
 * readers use pread and never close it. */
struct msgdata {
    int fd;
    long long off;
    long long len;
};

struct msgout {
    int flags;
    const char *sender;        /* envelope sender ("" = <>) for From_/Return-Path */
    const char *prepend;       /* header lines to put first ("Return-Path: ...\n"), or NULL */
};

/* Copy the message d (exactly d->len bytes from d->off, read with pread: the
 * file offset is not used) to outfd.  Order: From_ line, prepend, the message.  A message
 * whose first line is not a header field ("Name:") gets an empty line first
 * (an empty header block), so body text is never read as headers; an
 * unterminated last line gets its line end.  0, or -1 with errno (a write
 * error on outfd, or a read error). */
int msgout_write(const struct msgdata *d, int outfd, const struct msgout *mo);
/* The same through sink(arg, p, n), which writes all n bytes and returns 0, or
 * -1 with errno: for an output that needs its own writer (the SMTP client's,
 * which may be TLS and has its own deadlines). */
int msgout_write_to(const struct msgdata *d, int (*sink)(void *arg, const char *p, size_t n),
                    void *arg, const struct msgout *mo);

/* Only the transformation of one line (for tests): appends line (without its
 * LF) transformed per flags to out, followed by its line end (LF, or CRLF with
 * MO_SMTP).  at_body says the header block is over (the same rules apply to
 * header and body lines today; see postoffice-local(8)).  With MO_SMTP a CR
 * just before the line end merges into the CRLF and any other CR becomes CRLF
 * (so the result may hold several lines, each dot-stuffed) and NUL bytes are
 * left out; without MO_SMTP CR and NUL bytes are copied unchanged. */
struct buf;
void msgout_line(const char *line, size_t len, int flags, int at_body, struct buf *out);

/* The mbox separator line "From SENDER Www Mmm dd hh:mm:ss yyyy\n" for time t
 * (local time, C-locale names, asctime layout).  An empty sender is written
 * MAILER-DAEMON; whitespace and control bytes in sender become '_'.  malloc'd. */
#include <time.h>
char *msgout_from_line(const char *sender, time_t t);

#endif
