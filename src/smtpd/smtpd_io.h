/* smtpd_io.h - buffered, deadline-bounded line I/O for one SMTP connection.
 *
 * Every read waits with poll() until the earlier of the idle deadline (timeout
 * per read) and the session deadline (total session time): no signals.  Replies
 * are buffered and sent only when the client has nothing more waiting in our
 * input buffer (RFC 2920 PIPELINING: a group of pipelined commands gets its
 * replies in one write), or when the caller flushes explicitly. */
#ifndef PO_SMTPD_IO_H
#define PO_SMTPD_IO_H

#include <stddef.h>
#include <sys/types.h>

#include "util.h"

enum io_status {
    IO_OK = 0,       /* a line (or data) was read */
    IO_TOOLONG = 1,  /* the line exceeded the limit: it was read to its LF and discarded */
    IO_EOF = -1,     /* the client closed the connection */
    IO_TIMEOUT = -2, /* idle timeout or the session's total time ran out */
    IO_ERROR = -3    /* read/write error (errno) */
};

struct smtpio {
    int rfd, wfd;                /* raw descriptors (made non-blocking) */
    struct buf in;               /* received, not yet consumed: in.s[in_off..in.len) */
    size_t in_off;
    struct buf out;              /* replies not yet sent */
    long idle_ms;                /* per-read idle timeout, 0 = none */
    long long session_deadline;  /* now_ms() value, 0 = none */
    int timed_out_session;       /* the last IO_TIMEOUT was the total session time */
    int eof;
    int own_fd;                  /* rfd is the TLS proxy's socket: io_free closes it */
    int broken;                  /* a TLS handshake failed: nothing more is sent */
};

/* Set up io on rfd/wfd (the same descriptor for a socket; 0/1 for -bs).  The
 * descriptors are switched to non-blocking mode. */
void io_init(struct smtpio *io, int rfd, int wfd, long idle_ms, long session_ms);
void io_free(struct smtpio *io);

/* Read one line into line (reset first), WITHOUT its line end (CRLF or a bare
 * LF).  *bare_cr is set when the line holds a CR that is not part of its end.
 * A line longer than max bytes (without the line end) is consumed up to its LF
 * and IO_TOOLONG returned: it is never split into two lines.  Before blocking
 * for input, buffered replies are flushed.  A last line without LF before EOF
 * returns IO_EOF. */
enum io_status io_getline(struct smtpio *io, struct buf *line, size_t max, int *bare_cr);

/* What io_read_data found in the message data. */
struct io_data_result {
    long long bytes;   /* bytes delivered to the sink (after unstuffing, LF line ends) */
    int bare_lf;       /* a LF not preceded by CR was seen */
    int bare_cr;       /* a CR not followed by LF was seen */
    int nul;           /* a NUL byte was seen (RFC 5321 2.3.8: not allowed) */
};

/* Sink of message data: called with chunks of the unstuffed message, lines
 * ending in LF.  Return 0 to go on, -1 to stop passing data (the rest is still
 * read up to the end of data and discarded). */
typedef int (*io_data_sink)(void *arg, const char *p, size_t n);

/* Read DATA content up to and excluding the end-of-data mark, which is exactly
 * CR LF "." CR LF (the first line may be "." CR LF right after the 354).
 * Lines are delivered with LF line ends; a leading dot is removed
 * (dot-unstuffing).  A bare LF or bare CR is never an end of data or a line
 * start for the end mark: it is passed through as data and flagged in *res so
 * the caller can refuse the message (SMTP smuggling).  A NUL byte is data too,
 * flagged the same way: a next hop that drops NULs would see "CR LF NUL . CR LF"
 * as an end of data.  Returns IO_OK at the end
 * mark, or IO_EOF / IO_TIMEOUT / IO_ERROR. */
enum io_status io_read_data(struct smtpio *io, io_data_sink sink, void *arg,
                            struct io_data_result *res);

/* STARTTLS (RFC 3207) or implicit TLS, before the hand-over to the TLS
 * proxy (tls_proxy.h): send what is queued (the 220 reply), then DISCARD
 * every byte the client sent that was not read yet (CVE-2011-0411:
 * plaintext pipelined behind STARTTLS must never count as a command after
 * the handshake).  0, or IO_TIMEOUT, IO_ERROR: the connection is then
 * unusable (broken: nothing more is written to it). */
int io_tls_prepare(struct smtpio *io);

/* After the handshake: speak on fd (the proxy's plaintext socket) from now
 * on.  io owns fd (io_free closes it); the client's socket is the caller's. */
void io_tls_switch(struct smtpio *io, int fd);

/* Queue reply text (must already end in CRLF). */
void io_printf(struct smtpio *io, const char *fmt, ...) PO_PRINTF(2, 3);
/* Send everything queued, waiting (poll) within the deadlines.  0 or IO_*. */
int io_flush(struct smtpio *io);

#endif
