/* smtpd_io.c - buffered line I/O of an SMTP connection with poll() deadlines.
 * Runs unprivileged (session children, -bs). */
#include "compat.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <string.h>
#include <unistd.h>

#include "smtpd_io.h"

/* Free space offered to each command read: small, because the input buffer
 * of an idle session is private memory of its process (pipelined commands
 * just take a few more reads).  Message data reads use DATA_CHUNK, and the
 * buffer shrinks back after the message (io_shrink_input). */
#define READ_MIN 1024
#define DATA_CHUNK 65536

void io_init(struct smtpio *io, int rfd, int wfd, long idle_ms, long session_ms)
{
    memset(io, 0, sizeof *io);
    io->rfd = rfd;
    io->wfd = wfd;
    buf_init(&io->in);
    buf_init(&io->out);
    io->idle_ms = idle_ms;
    io->session_deadline = session_ms > 0 ? now_ms() + session_ms : 0;
    set_nonblock(rfd, 1);
    if (wfd != rfd)
        set_nonblock(wfd, 1);
}

void io_free(struct smtpio *io)
{
    if (io->own_fd) /* the TLS proxy's socket: closing it ends the relay */
        close(io->rfd);
    io->own_fd = 0;
    buf_free(&io->in);
    buf_free(&io->out);
}

/* ---- the raw transfers ---- */

#define IO_AGAIN (-100) /* would block: poll for *ev, then try again */

/* Read up to n bytes: >0, 0 at the end of input, -1 (errno), IO_AGAIN. */
static ssize_t raw_read(struct smtpio *io, char *p, size_t n, short *ev)
{
    for (;;) {
        ssize_t r = read(io->rfd, p, n);
        if (r >= 0)
            return r;
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            return -1;
        *ev = POLLIN;
        return IO_AGAIN;
    }
}

/* Write up to n bytes (n > 0): >0 written, -1 (errno), IO_AGAIN. */
static ssize_t raw_write(struct smtpio *io, const char *p, size_t n, short *ev)
{
    for (;;) {
        ssize_t w = write(io->wfd, p, n);
        if (w > 0)
            return w;
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            *ev = POLLOUT;
            return IO_AGAIN;
        }
        if (w == 0)
            errno = EIO;
        return -1;
    }
}

/* The poll deadline for the next wait: the idle timeout from now, capped by
 * the session's total time.  -1 = wait forever. */
static long long next_deadline(struct smtpio *io, int *is_session)
{
    long long d = io->idle_ms > 0 ? now_ms() + io->idle_ms : 0;
    *is_session = 0;
    if (io->session_deadline && (!d || io->session_deadline < d)) {
        d = io->session_deadline;
        *is_session = 1;
    }
    return d ? d : -1;
}

/* Wait for events on fd until deadline.  0 ready, IO_TIMEOUT, IO_ERROR. */
static int wait_fd(struct smtpio *io, int fd, short events, long long deadline,
                   int is_session)
{
    for (;;) {
        struct pollfd p = { .fd = fd, .events = events, .revents = 0 };
        int ms = deadline < 0 ? -1 : ms_left(deadline);
        int r = poll(&p, 1, ms);
        if (r > 0)
            return 0;
        if (r == 0) {
            io->timed_out_session = is_session;
            return IO_TIMEOUT;
        }
        if (errno != EINTR)
            return IO_ERROR;
    }
}

int io_flush(struct smtpio *io)
{
    size_t off = 0;
    int is_session;
    long long deadline = next_deadline(io, &is_session);
    if (io->broken) {
        buf_reset(&io->out);
        return IO_ERROR;
    }
    while (off < io->out.len) {
        short ev = 0;
        ssize_t w = raw_write(io, io->out.s + off, io->out.len - off, &ev);
        if (w > 0) {
            off += (size_t)w;
            continue;
        }
        if (w == IO_AGAIN) {
            int r = wait_fd(io, ev == POLLIN ? io->rfd : io->wfd, ev, deadline, is_session);
            if (r)
                return r;
            continue;
        }
        buf_reset(&io->out);
        return IO_ERROR;
    }
    buf_reset(&io->out);
    return 0;
}

/* Read more input into io->in.  Replies are flushed first when nothing is
 * buffered (PIPELINING: answer a whole group at once).  0, IO_EOF, IO_TIMEOUT,
 * IO_ERROR. */
static int fill_n(struct smtpio *io, size_t want_room);

static int fill(struct smtpio *io)
{
    return fill_n(io, READ_MIN);
}

/* want_room: free space to offer the read (commands: small, so an idle
 * session stays small; message data: large, for fewer reads). */
static int fill_n(struct smtpio *io, size_t want_room)
{
    if (io->eof)
        return IO_EOF;
    if (io->out.len) {
        int r = io_flush(io);
        if (r)
            return r;
    }
    /* keep the buffer compact: consumed bytes are dropped before growing */
    if (io->in_off) {
        size_t left = io->in.len - io->in_off;
        memmove(io->in.s, io->in.s + io->in_off, left);
        buf_truncate(&io->in, left);
        io->in_off = 0;
    }
    /* read straight into the buffer's free space: no stack copy, which keeps
     * an idle session's private memory small */
    if (io->in.cap - io->in.len < want_room + 1) {
        size_t cap = io->in.len + want_room + 1;
        io->in.s = xrealloc(io->in.s, cap);
        io->in.cap = cap;
    }
    int is_session;
    long long deadline = next_deadline(io, &is_session);
    for (;;) {
        size_t room = io->in.cap - io->in.len - 1;
        short ev = 0;
        ssize_t r = raw_read(io, io->in.s + io->in.len, room, &ev);
        if (r > 0) {
            io->in.len += (size_t)r;
            io->in.s[io->in.len] = '\0';
            return 0;
        }
        if (r == 0) {
            io->eof = 1;
            return IO_EOF;
        }
        if (r != IO_AGAIN)
            return IO_ERROR;
        int w = wait_fd(io, ev == POLLOUT ? io->wfd : io->rfd, ev, deadline, is_session);
        if (w)
            return w;
    }
}

enum io_status io_getline(struct smtpio *io, struct buf *line, size_t max, int *bare_cr)
{
    int toolong = 0;
    size_t scanned = 0; /* bytes after in_off already known to hold no LF */
    buf_reset(line);
    *bare_cr = 0;
    for (;;) {
        const char *start = io->in.s + io->in_off;
        size_t avail = io->in.len - io->in_off;
        const char *lf = memchr(start + scanned, '\n', avail - scanned);
        if (lf) {
            size_t n = (size_t)(lf - start);
            io->in_off += n + 1;
            if (toolong)
                return IO_TOOLONG;
            if (n && start[n - 1] == '\r')
                n--;
            if (n > max)
                return IO_TOOLONG;
            buf_add(line, start, n);
            *bare_cr = memchr(line->s, '\r', line->len) != NULL;
            return IO_OK;
        }
        scanned = avail;
        if (avail > max + 1) {
            /* over the limit with no end in sight: drop what we have and
             * keep reading until the LF; the line is answered once */
            toolong = 1;
            io->in_off = io->in.len;
            scanned = 0;
        }
        int r = fill(io);
        if (r)
            return (enum io_status)r;
        /* fill() compacts the buffer but keeps positions relative to
         * in_off, so scanned stays valid */
    }
}

/* States of the end-of-data recogniser.  Only a line that began after a real
 * CR LF can be the end mark or be dot-unstuffed. */
enum dstate {
    D_BOL,    /* at the start of a line that followed CR LF (or the 354) */
    D_DOT,    /* saw "." at D_BOL */
    D_DOTCR,  /* saw ".\r" at D_BOL */
    D_MID,    /* inside a line */
    D_CR      /* saw CR inside a line */
};

/* The decoder works in place: unstuffed output never needs more room than
 * the input it came from (CR LF becomes LF, a stuffed dot is dropped), so it
 * is written back into io->in behind the read position and handed to the
 * sink from there, one call per buffer read: no second buffer, no growth. */
struct dctx {
    enum dstate st;
    io_data_sink sink;
    void *arg;
    int stopped;
    struct io_data_result *res;
    char *s;          /* io->in.s */
    size_t r, w, w0;  /* read position, write position, start of unsent output */
};

static void d_send(struct dctx *d, const char *p, size_t n)
{
    if (!d->stopped && n) {
        d->res->bytes += (long long)n;
        if (d->sink(d->arg, p, n) < 0)
            d->stopped = 1;
    }
}

static void d_flush(struct dctx *d)
{
    d_send(d, d->s + d->w0, d->w - d->w0);
    d->w0 = d->w;
}

/* One output byte.  Only a CR held over from the previous read can find no
 * room behind the read position: it is sent on its own. */
static void d_out(struct dctx *d, char c)
{
    if (d->w < d->r) {
        d->s[d->w++] = c;
        return;
    }
    d_flush(d);
    d_send(d, &c, 1);
}

/* One byte inside a line (state D_MID or D_CR handling). */
static void d_mid(struct dctx *d, char c)
{
    if (c == '\r') {
        d->st = D_CR;
    } else if (c == '\n') {
        /* bare LF: data, flagged; NOT a line start for the end mark */
        d->res->bare_lf = 1;
        d_out(d, '\n');
        d->st = D_MID;
    } else {
        d_out(d, c);
        d->st = D_MID;
    }
}

/* Feed one byte (already consumed: d->r is past it); 1 at the end mark. */
static int d_byte(struct dctx *d, char c)
{
    if (c == '\0')
        d->res->nul = 1; /* kept as data and flagged, like a bare CR or LF */
    switch (d->st) {
    case D_BOL:
        if (c == '.') {
            d->st = D_DOT;
            return 0;
        }
        d_mid(d, c);
        return 0;
    case D_DOT:
        if (c == '\r') {
            d->st = D_DOTCR;
            return 0;
        }
        /* a stuffed dot: dropped; the byte belongs to the line */
        d_mid(d, c);
        return 0;
    case D_DOTCR:
        if (c == '\n')
            return 1;
        /* ".\r" then something else: the CR is bare */
        d->res->bare_cr = 1;
        d_out(d, '\r');
        d->st = D_MID;
        if (c == '\r')
            d->st = D_CR;
        else
            d_mid(d, c);
        return 0;
    case D_CR:
        if (c == '\n') {
            d_out(d, '\n');
            d->st = D_BOL;
            return 0;
        }
        d->res->bare_cr = 1;
        d_out(d, '\r');
        d->st = D_MID;
        d_mid(d, c);
        return 0;
    case D_MID:
        d_mid(d, c);
        return 0;
    }
    return 0;
}

/* Inside a line, everything up to the next CR or LF is plain data: found
 * with memchr and moved as one run.  Returns the run's length. */
static size_t d_run(struct dctx *d, size_t end)
{
    const char *p = d->s + d->r;
    size_t n = end - d->r;
    const char *lf = memchr(p, '\n', n);
    size_t lim = lf ? (size_t)(lf - p) : n;
    const char *cr = memchr(p, '\r', lim);
    size_t run = cr ? (size_t)(cr - p) : lim;
    if (run == 0)
        return 0;
    if (!d->res->nul && memchr(p, '\0', run))
        d->res->nul = 1;
    if (d->w != d->r)
        memmove(d->s + d->w, p, run);
    d->w += run;
    d->r += run;
    return run;
}

/* Decode io->in.s[d->r .. end); 1 at the end mark (d->r just past it). */
static int d_parse(struct dctx *d, size_t end)
{
    while (d->r < end) {
        if (d->st == D_MID && d_run(d, end))
            continue;
        if (d_byte(d, d->s[d->r++]))
            return 1;
    }
    return 0;
}

/* After message data: drop consumed input and give the large data buffer
 * back, so an idle session holds only a command-sized one. */
static void io_shrink_input(struct smtpio *io)
{
    size_t left = io->in.len - io->in_off;
    if (io->in.cap <= 4 * (READ_MIN + 1) || left > READ_MIN)
        return;
    memmove(io->in.s, io->in.s + io->in_off, left);
    io->in.s[left] = '\0';
    io->in.len = left;
    io->in_off = 0;
    io->in.s = xrealloc(io->in.s, READ_MIN + 1);
    io->in.cap = READ_MIN + 1;
}

enum io_status io_read_data(struct smtpio *io, io_data_sink sink, void *arg,
                            struct io_data_result *res)
{
    struct dctx d = { .st = D_BOL, .sink = sink, .arg = arg, .res = res };
    memset(res, 0, sizeof *res);
    for (;;) {
        d.s = io->in.s;
        d.r = d.w = d.w0 = io->in_off;
        int fin = d_parse(&d, io->in.len);
        d_flush(&d);
        io->in_off = d.r;
        if (fin) {
            io_shrink_input(io);
            return IO_OK;
        }
        int r = fill_n(io, DATA_CHUNK);
        if (r)
            return (enum io_status)r;
    }
}

int io_tls_prepare(struct smtpio *io)
{
    int r = io_flush(io);
    /* CVE-2011-0411: whatever followed STARTTLS in plaintext is dropped */
    buf_reset(&io->in);
    io->in_off = 0;
    io->eof = 0;
    if (r)
        io->broken = 1;
    return r;
}

void io_tls_switch(struct smtpio *io, int fd)
{
    if (io->own_fd)
        close(io->rfd);
    io->rfd = io->wfd = fd;
    io->own_fd = 1;
    set_nonblock(fd, 1);
}

void io_printf(struct smtpio *io, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    buf_vaddf(&io->out, fmt, ap);
    va_end(ap);
}
