/* util.h - memory, dynamic strings, string lists, safe I/O helpers.
 *
 * Allocation failure is fatal (EX_OSERR, message on stderr and syslog):
 * every x* function returns a valid pointer or does not return. */
#ifndef PO_UTIL_H
#define PO_UTIL_H

#include <stddef.h>
#include <stdarg.h>
#include <stdint.h>
#include <sys/types.h>

void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
/* reallocarray with overflow check */
void *xreallocarray(void *p, size_t n, size_t size);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
char *xasprintf(const char *fmt, ...) PO_PRINTF(1, 2);
char *xvasprintf(const char *fmt, va_list ap) PO_PRINTF(1, 0);

/* Growable byte buffer.  s is always NUL-terminated (after buf_init it is "").
 * It may also hold NUL bytes; len counts them. */
struct buf {
    char *s;
    size_t len;
    size_t cap;
};
void buf_init(struct buf *b);
void buf_free(struct buf *b);          /* releases memory; b may be reused after buf_init */
void buf_reset(struct buf *b);         /* len = 0, keeps the memory */
void buf_reserve(struct buf *b, size_t n); /* room for n more bytes without growing */
void buf_add(struct buf *b, const void *p, size_t n);
void buf_adds(struct buf *b, const char *s);
void buf_addc(struct buf *b, int c);
void buf_addf(struct buf *b, const char *fmt, ...) PO_PRINTF(2, 3);
void buf_vaddf(struct buf *b, const char *fmt, va_list ap) PO_PRINTF(2, 0);
void buf_truncate(struct buf *b, size_t len);
/* Returns s (the caller frees it); b is left holding no memory: buf_free is a
 * no-op on it, buf_add and friends may reuse it. */
char *buf_steal(struct buf *b);

/* Growable list of owned strings. */
struct strlist {
    char **v;
    size_t n;
    size_t cap;
};
void sl_init(struct strlist *l);
void sl_free(struct strlist *l);
void sl_add(struct strlist *l, const char *s);      /* adds a copy */
void sl_add_owned(struct strlist *l, char *s);      /* takes ownership */
int sl_contains(const struct strlist *l, const char *s);      /* exact */
int sl_contains_ci(const struct strlist *l, const char *s);   /* case-insensitive */
/* Split s at any char of seps (e.g. ", \t"), skipping empty fields, appending to l. */
void sl_split(struct strlist *l, const char *s, const char *seps);

/* Copy src into dst of size bytes, always terminating.  0 if it fit, -1 if truncated. */
int str_copy(char *dst, const char *src, size_t size);
void str_lower(char *s);
/* Strip leading and trailing whitespace in place; returns s advanced past leading space. */
char *str_trim(char *s);
int str_has_prefix_ci(const char *s, const char *prefix);
/* Printable-ASCII copy of untrusted text for logs and control records: every byte
 * outside 0x20..0x7e (CR, LF, NUL, 8-bit) becomes "\xHH", backslash becomes "\\". */
char *str_sanitize(const char *s, size_t len);

/* write(2) until done, retrying EINTR.  0 or -1 with errno. */
int write_all(int fd, const void *p, size_t n);
/* read(2) until n bytes or EOF.  Returns bytes read or -1. */
ssize_t read_all(int fd, void *p, size_t n);
/* Read a whole (small) file into b.  0 or -1 with errno; refuses files over max bytes (EFBIG). */
int read_file(const char *path, struct buf *b, size_t max);
/* Read fd from offset off to its end (pread: the file offset is not used) into
 * b, keeping at most max bytes in all.  0 at EOF, -1 on a read error or with
 * errno EFBIG when there is more than max. */
int pread_rest(int fd, off_t off, struct buf *b, size_t max);

/* Read fd until EOF or the deadline (now_ms() time), keeping the first max
 * bytes in b and discarding the rest (a child's report or a program's output).
 * 0 at EOF (or a read error), -1 when the deadline passed first. */
int read_until_eof(int fd, long long deadline, struct buf *b, size_t max);
/* fsync the directory holding path (or the directory itself if is_dir). */
int fsync_dir(const char *dir);
int set_nonblock(int fd, int on);

/* Milliseconds on the monotonic clock, for poll() deadlines. */
long long now_ms(void);
/* Milliseconds left until deadline (never negative), suitable for poll(). */
int ms_left(long long deadline);

/* Parse a decimal unsigned number with no junk.  0 or -1. */
int parse_ulong(const char *s, unsigned long *out);

/* The local host's name as the kernel reports it (uname nodename), malloc'd. */
char *host_nodename(void);

/* Continue an FNV-1a 64 hash h (start with FNV1A64_INIT) over n bytes (the
 * queue file's and the status records' checksums). */
#define FNV1A64_INIT 0xcbf29ce484222325ULL
uint64_t fnv1a64(uint64_t h, const void *p, size_t n);

#endif
