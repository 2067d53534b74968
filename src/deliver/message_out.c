/* message_out.c - stream a queued message to a mailbox, a program or an SMTP peer.
 *
 * The data file holds LF-terminated lines of any length.  A small state
 * machine applies the per-line rules (">From " escaping, dot-stuffing, CRLF)
 * so memory stays bounded: input is read in chunks, output is flushed in
 * chunks, and no line is ever held whole.  Only a line's first bytes and the
 * bytes that matter (LF; CR and NUL for SMTP) go through it one at a time:
 * the rest of a line is found with memchr and copied as one run.  Runs as whoever calls it (the
 * delivery child after privs_become, or the unprivileged SMTP client). */
#include "compat.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "date.h"
#include "message_out.h"
#include "util.h"

#define MO_CHUNK 65536      /* read size and output flush threshold */
#define FROM_LEN 5          /* strlen("From ") */

struct mo_state {
    int flags;
    size_t col;       /* bytes of content seen on the current line */
    int cr;           /* MO_SMTP: a CR waits to learn if an LF follows */
    int at_body;      /* the header block is over */
    int done;         /* MO_HDRS_ONLY reached the end of the header */
    char hold[FROM_LEN]; /* line start held back to decide on ">From " */
    int nhold;
    struct buf *out;
};

static void st_init(struct mo_state *st, int flags, int at_body, struct buf *out)
{
    memset(st, 0, sizeof *st);
    st->flags = flags;
    st->at_body = at_body;
    st->out = out;
}

static void flush_hold(struct mo_state *st)
{
    if (st->nhold == FROM_LEN && memcmp(st->hold, "From ", FROM_LEN) == 0)
        buf_addc(st->out, '>');
    buf_add(st->out, st->hold, (size_t)st->nhold);
    st->nhold = 0;
}

/* One byte of line content (never CR or LF in SMTP mode, never LF otherwise). */
static void content(struct mo_state *st, char c)
{
    if (st->col == 0 && (st->flags & MO_SMTP) && c == '.')
        buf_addc(st->out, '.');
    if ((st->flags & MO_ESCAPE_FROM) && st->col < FROM_LEN) {
        st->hold[st->nhold++] = c;
        if (st->nhold == FROM_LEN)
            flush_hold(st);
    } else {
        buf_addc(st->out, c);
    }
    st->col++;
}

static void line_end(struct mo_state *st)
{
    if (st->col == 0 && !st->at_body) {
        st->at_body = 1;
        if (st->flags & MO_HDRS_ONLY) {
            st->done = 1; /* the header block without its empty line */
            return;
        }
    }
    flush_hold(st);
    buf_adds(st->out, (st->flags & MO_SMTP) ? "\r\n" : "\n");
    st->col = 0;
}

/* Past a line's first bytes (the ones that can be dot-stuffed or escaped),
 * content up to the next byte that matters is copied unchanged: the length
 * of that run at p (0 when the line is not that far yet). */
static size_t plain_run(const struct mo_state *st, const char *p, size_t n)
{
    size_t first = (st->flags & MO_ESCAPE_FROM) ? FROM_LEN : 1;
    if (st->col < first || st->cr)
        return 0;
    const char *lf = memchr(p, '\n', n);
    size_t run = lf ? (size_t)(lf - p) : n;
    if (st->flags & MO_SMTP) {
        const char *cr = memchr(p, '\r', run);
        if (cr)
            run = (size_t)(cr - p);
        const char *nul = memchr(p, '\0', run);
        if (nul)
            run = (size_t)(nul - p);
    }
    return run;
}

static void feed(struct mo_state *st, const char *p, size_t n)
{
    for (size_t i = 0; i < n && !st->done; i++) {
        size_t run = plain_run(st, p + i, n - i);
        if (run) {
            buf_add(st->out, p + i, run);
            st->col += run;
            i += run;
            if (i == n)
                break;
        }
        char c = p[i];
        if (!(st->flags & MO_SMTP)) {
            if (c == '\n')
                line_end(st);
            else
                content(st, c);
            continue;
        }
        /* SMTP: CRLF and LF end a line; a lone CR is made a line end too, so
         * no receiver can mistake it for (part of) the end of data.  A NUL
         * (forbidden in SMTP data, RFC 5321 2.3.8; it can reach the queue by
         * local submission) is left out: a receiver that drops NULs itself
         * would read "CR LF NUL . CR LF" as the end of data.  Skipped before
         * the CR test, so "CR NUL LF" is still one line end and a dot after
         * a NUL at a line start is still stuffed. */
        if (c == '\0')
            continue;
        if (st->cr) {
            st->cr = 0;
            line_end(st);
            if (c == '\n' || st->done)
                continue;
        }
        if (c == '\r')
            st->cr = 1;
        else if (c == '\n')
            line_end(st);
        else
            content(st, c);
    }
}

/* End of input: a CR pending or an unterminated last line gets its line end. */
static void finish(struct mo_state *st)
{
    if (st->done)
        return;
    if (st->cr) {
        st->cr = 0;
        line_end(st);
    }
    if (st->col > 0 || st->nhold > 0)
        line_end(st);
}

void msgout_line(const char *line, size_t len, int flags, int at_body, struct buf *out)
{
    struct mo_state st;
    st_init(&st, flags & ~MO_HDRS_ONLY, at_body, out);
    feed(&st, line, len);
    if (st.cr) {
        st.cr = 0; /* the CR before the (removed) LF belongs to the line end */
    }
    flush_hold(&st);
    buf_adds(out, (flags & MO_SMTP) ? "\r\n" : "\n");
}

char *msgout_from_line(const char *sender, time_t t)
{
    struct buf b;
    buf_init(&b);
    buf_adds(&b, "From ");
    if (sender == NULL || *sender == '\0')
        sender = "MAILER-DAEMON";
    /* readers split the separator at spaces: keep the address one word */
    for (const unsigned char *s = (const unsigned char *)sender; *s; s++)
        buf_addc(&b, (*s <= ' ' || *s == 0x7f) ? '_' : *s);
    buf_addc(&b, ' ');
    date_asctime(t, &b);
    buf_addc(&b, '\n');
    return buf_steal(&b);
}

/* Does the message start with a header field ("Name:")?  Only the first chunk
 * is looked at: a first line with no colon in it is body text. */
static int starts_with_header(const char *p, size_t n)
{
    if (n == 0 || p[0] == '\n')
        return 1; /* empty message, or an empty header block: nothing to add */
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c == ':')
            return i > 0;
        if (c <= ' ' || c >= 0x7f)
            return 0;
    }
    return 0;
}

struct mo_sink {
    int (*fn)(void *arg, const char *p, size_t n);
    void *arg;
};

static int flush_out(const struct mo_sink *sk, struct buf *out, size_t threshold)
{
    if (out->len < threshold)
        return 0;
    int rc = sk->fn(sk->arg, out->s, out->len);
    buf_reset(out);
    return rc;
}

static int copy_data(const struct msgdata *d, const struct mo_sink *sk, struct mo_state *st,
                     char *chunk)
{
    long long off = 0;
    int first = 1;

    for (;;) {
        size_t want = d->len - off > MO_CHUNK ? MO_CHUNK : (size_t)(d->len - off);
        ssize_t r = want ? pread(d->fd, chunk, want, (off_t)(d->off + off)) : 0;
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (r == 0 && off < d->len) {
            errno = EIO; /* shorter than the queue file says */
            return -1;
        }
        if (first && !starts_with_header(chunk, (size_t)r))
            line_end(st); /* headerless message: an empty header block first */
        first = 0;
        if (r == 0)
            return 0;
        off += r;
        feed(st, chunk, (size_t)r);
        if (flush_out(sk, st->out, MO_CHUNK) < 0)
            return -1;
        if (st->done)
            return 0;
    }
}

static int fd_sink(void *arg, const char *p, size_t n)
{
    return write_all(*(const int *)arg, p, n);
}

int msgout_write(const struct msgdata *d, int outfd, const struct msgout *mo)
{
    return msgout_write_to(d, fd_sink, &outfd, mo);
}

int msgout_write_to(const struct msgdata *d, int (*sink)(void *arg, const char *p, size_t n),
                    void *arg, const struct msgout *mo)
{
    struct mo_sink sk = {sink, arg};
    struct buf out;
    struct mo_state st;
    char *chunk = xmalloc(MO_CHUNK);
    int rc = -1, saved;

    /* one chunk's output at most doubles it (dot-stuffing, CR to CRLF) on
     * top of what is left below the flush threshold: sized once, never grown */
    buf_init(&out);
    buf_reserve(&out, 3 * MO_CHUNK + 64);
    st_init(&st, mo->flags, 0, &out);
    if (mo->flags & MO_FROM_LINE) {
        char *from = msgout_from_line(mo->sender, time(NULL));
        buf_adds(&out, from);
        free(from);
    }
    if (mo->prepend != NULL) {
        /* trusted header lines, but still given the target's line ends */
        feed(&st, mo->prepend, strlen(mo->prepend));
        finish(&st);
    }
    if (copy_data(d, &sk, &st, chunk) < 0)
        goto out;
    finish(&st);
    if ((mo->flags & MO_BLANK_END) && !(mo->flags & MO_HDRS_ONLY))
        buf_adds(&out, (mo->flags & MO_SMTP) ? "\r\n" : "\n");
    rc = flush_out(&sk, &out, 0);
out:
    saved = errno;
    free(chunk);
    buf_free(&out);
    errno = saved;
    return rc;
}
