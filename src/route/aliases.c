/* aliases.c - the aliases(5) text file, its gdbm database, and the list syntax
 * shared by aliases, .forward and :include: files.
 *
 * Runs as root only in newaliases (aliases_build), which parses a root-owned
 * file; lookups run in whatever (unprivileged) process routes mail. */
#include "compat.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <gdbm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "address.h"
#include "aliases.h"
#include "log.h"
#include "util.h"

/* Largest aliases text file newaliases reads, and largest single entry. */
#define ALIASES_FILE_MAX ((size_t)256 * 1024 * 1024)

/* ---- parsing the text file ---- */

struct entry_state {
    struct buf name;
    struct buf value;
    int line;      /* line of the name, 0 = no entry open */
    int too_long;  /* entry exceeded ALIAS_ENTRY_MAX: skip it */
};

static int is_blank_line(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isspace((unsigned char)p[i]))
            return 0;
    return 1;
}

/* First non-blank character is '#'. */
static int is_comment_line(const char *p, size_t n)
{
    size_t i = 0;
    while (i < n && (p[i] == ' ' || p[i] == '\t'))
        i++;
    return i < n && p[i] == '#';
}

static void report(struct strlist *errors, const char *fname, int line, const char *fmt,
                   const char *arg)
{
    if (!errors)
        return;
    char *msg = xasprintf(fmt, arg);
    sl_add_owned(errors, xasprintf("%s:%d: %s", fname ? fname : "aliases", line, msg));
    free(msg);
}

/* Deliver the open entry (if any) to the callback.  Returns the callback's
 * verdict (non-zero = stop); *count is incremented for each delivered entry. */
static int flush_entry(struct entry_state *st, const char *fname, alias_cb cb, void *arg,
                       struct strlist *errors, int *count)
{
    int stop = 0;
    if (!st->line)
        return 0;
    if (st->too_long) {
        report(errors, fname, st->line, "alias %s is longer than 65536 bytes; skipped",
               st->name.s);
    } else {
        char *v = str_trim(st->value.s);
        if (*v == '\0') {
            report(errors, fname, st->line, "alias %s has no targets; skipped", st->name.s);
        } else {
            (*count)++;
            stop = cb ? cb(arg, st->name.s, v, st->line) : 0;
        }
    }
    buf_reset(&st->name);
    buf_reset(&st->value);
    st->line = 0;
    st->too_long = 0;
    return stop;
}

static void append_value(struct entry_state *st, const char *p, size_t n)
{
    if (st->too_long)
        return;
    if (st->value.len + n > ALIAS_ENTRY_MAX) {
        st->too_long = 1;
        return;
    }
    buf_add(&st->value, p, n);
}

/* A valid alias name: non-empty, no blanks, controls, quotes, commas or '@';
 * bytes past ASCII must be valid UTF-8 (such a name is reached by SMTPUTF8
 * mail, RFC 6531).  NULL, or a malloc'd reason naming the alias. */
static char *bad_name(const char *p, size_t n)
{
    if (n == 0)
        return xstrdup("empty alias name");
    char *shown = str_sanitize(p, n > 64 ? 64 : n);
    char *why = NULL;
    if (n > ALIAS_NAME_MAX)
        why = xasprintf("alias name '%s...' is longer than %d bytes", shown, ALIAS_NAME_MAX);
    for (size_t i = 0; i < n && !why; i++) {
        unsigned char ch = (unsigned char)p[i];
        const char *what = ch == ' ' || ch == '\t' ? "a blank"
                           : ch < 0x20 || ch == 0x7f ? "a control character"
                           : ch == '"' ? "a quote"
                           : ch == ',' ? "a comma"
                           : ch == '@' ? "'@' (write the local part only)"
                           : NULL;
        if (what)
            why = xasprintf("alias name '%s' contains %s", shown, what);
    }
    if (!why && !addr_utf8_valid(p, n))
        why = xasprintf("alias name '%s' is not valid UTF-8 (save the file as UTF-8)", shown);
    free(shown);
    return why;
}

/* Start a new entry from a "name: value" line. */
static void start_entry(struct entry_state *st, const char *p, size_t n, int line,
                        const char *fname, struct strlist *errors)
{
    const char *colon = memchr(p, ':', n);
    if (!colon) {
        report(errors, fname, line, "%s", "missing ':' after the alias name");
        return;
    }
    const char *ns = p, *ne = colon;
    while (ns < ne && isspace((unsigned char)*ns))
        ns++;
    while (ne > ns && isspace((unsigned char)ne[-1]))
        ne--;
    char *why = bad_name(ns, (size_t)(ne - ns));
    if (why) {
        report(errors, fname, line, "%s", why);
        free(why);
        return;
    }
    buf_add(&st->name, ns, (size_t)(ne - ns));
    str_lower(st->name.s);
    st->line = line;
    append_value(st, colon + 1, (size_t)(p + n - colon - 1));
}

int aliases_parse(const char *text, size_t len, const char *fname, alias_cb cb, void *arg,
                  struct strlist *errors)
{
    struct entry_state st;
    int count = 0, line = 0, stop = 0;
    buf_init(&st.name);
    buf_init(&st.value);
    st.line = 0;
    st.too_long = 0;

    size_t pos = 0;
    while (pos < len && !stop) {
        const char *p = text + pos;
        const char *nl = memchr(p, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - p) : len - pos;
        pos += n + (nl ? 1 : 0);
        line++;
        if (n && p[n - 1] == '\r')
            n--; /* tolerate CRLF files */
        if (memchr(p, '\0', n)) {
            report(errors, fname, line, "%s", "NUL byte in line; line skipped");
            continue;
        }
        if (is_blank_line(p, n) || is_comment_line(p, n))
            continue;
        if (*p == ' ' || *p == '\t') {
            if (!st.line) {
                report(errors, fname, line, "%s",
                       "continuation line without an alias before it");
                continue;
            }
            /* keep the newline: harmless to the list splitter, and it lets a
             * '#' comment inside an entry end at its line */
            append_value(&st, "\n", 1);
            append_value(&st, p, n);
            continue;
        }
        stop = flush_entry(&st, fname, cb, arg, errors, &count);
        if (!stop)
            start_entry(&st, p, n, line, fname, errors);
    }
    if (!stop)
        flush_entry(&st, fname, cb, arg, errors, &count);
    buf_free(&st.name);
    buf_free(&st.value);
    return count;
}

/* ---- the list syntax ---- */

struct splitter {
    struct buf cur;
    int have;   /* cur holds an entry (possibly "" from a quoted empty string) */
    int count;
    struct strlist *out;
};

static void split_emit(struct splitter *s)
{
    if (s->have && s->cur.len) {
        sl_add(s->out, s->cur.s);
        s->count++;
    }
    buf_reset(&s->cur);
    s->have = 0;
}

int aliases_split_list(const char *value, struct strlist *out)
{
    struct splitter s = {.have = 0, .count = 0, .out = out};
    int quoted = 0, line_start = 1;
    buf_init(&s.cur);

    for (const char *p = value; *p; p++) {
        unsigned char ch = (unsigned char)*p;
        if (ch == '\n') {
            /* a line ends an entry, and quotes never span lines */
            split_emit(&s);
            quoted = 0;
            line_start = 1;
            continue;
        }
        if (line_start && !quoted && (ch == ' ' || ch == '\t'))
            continue;
        if (line_start && !quoted && ch == '#') {
            while (p[1] && p[1] != '\n')
                p++;
            continue;
        }
        line_start = 0;
        if (ch == '\\' && p[1] && p[1] != '\n') {
            /* A leading backslash is kept: "\user" means the user's own
             * mailbox, without further expansion. */
            if (!s.have && s.cur.len == 0 && !quoted)
                buf_addc(&s.cur, '\\');
            buf_addc(&s.cur, (unsigned char)*++p);
            s.have = 1;
        } else if (ch == '"') {
            quoted = !quoted;
            s.have = 1;
        } else if (ch == ',' && !quoted) {
            split_emit(&s);
        } else if (isspace(ch) && !quoted) {
            continue;
        } else {
            buf_addc(&s.cur, (char)ch);
            s.have = 1;
        }
    }
    split_emit(&s);
    buf_free(&s.cur);
    return s.count;
}

/* ---- the database ---- */

static char *db_path(const char *path)
{
    return xasprintf("%s.db", path);
}

struct build_state {
    GDBM_FILE db;
    long count;
    long longest;
    struct strlist *warnings;
    const char *fname;
    int failed;
    char *err;
};

static int build_cb(void *arg, const char *name, const char *value, int line)
{
    struct build_state *b = arg;
    datum key = {.dptr = (char *)name, .dsize = (int)strlen(name)};
    datum val = {.dptr = (char *)value, .dsize = (int)strlen(value)};
    int rc = gdbm_store(b->db, key, val, GDBM_INSERT);
    if (rc == 1) {
        if (b->warnings)
            sl_add_owned(b->warnings,
                         xasprintf("%s:%d: duplicate alias %s ignored (the first one wins)",
                                   b->fname, line, name));
        return 0;
    }
    if (rc != 0) {
        b->failed = 1;
        b->err = xasprintf("%s: cannot store alias %s: %s", b->fname, name,
                           gdbm_strerror(gdbm_errno));
        return 1;
    }
    b->count++;
    if ((long)val.dsize > b->longest)
        b->longest = val.dsize;
    return 0;
}

/* Make tmp durable and readable, then move it over the real database. */
static int finish_db(const char *tmp, const char *dbfile, char **err)
{
    int fd = open(tmp, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fchmod(fd, 0644) < 0 || fsync(fd) < 0) {
        *err = xasprintf("%s: %s", tmp, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    close(fd);
    if (rename(tmp, dbfile) < 0) {
        *err = xasprintf("cannot rename %s to %s: %s", tmp, dbfile, strerror(errno));
        return -1;
    }
    char *dir = xstrdup(dbfile);
    char *slash = strrchr(dir, '/');
    if (slash)
        slash[slash == dir ? 1 : 0] = '\0';
    else
        str_copy(dir, ".", 2);
    int rc = fsync_dir(dir);
    if (rc < 0)
        *err = xasprintf("cannot fsync directory %s: %s", dir, strerror(errno));
    free(dir);
    return rc;
}

/* Write every entry of text into a new gdbm file named tmp (fd already open). */
static int fill_db(int fd, const char *tmp, const char *path, const struct buf *text,
                   struct build_state *b, struct strlist *warnings, char **err)
{
    b->db = gdbm_fd_open(fd, tmp, 0, GDBM_NEWDB | GDBM_CLOEXEC | GDBM_CLOERROR, NULL);
    if (!b->db) {
        *err = xasprintf("%s: cannot create database: %s", tmp, gdbm_strerror(gdbm_errno));
        return -1;
    }
    aliases_parse(text->s, text->len, path, build_cb, b, warnings);
    if (!b->failed && gdbm_sync(b->db) != 0) {
        b->failed = 1;
        b->err = xasprintf("%s: %s", tmp, gdbm_strerror(gdbm_errno));
    }
    if (gdbm_close(b->db) != 0 && !b->failed) {
        b->failed = 1;
        b->err = xasprintf("%s: %s", tmp, gdbm_strerror(gdbm_errno));
    }
    if (b->failed) {
        *err = b->err;
        return -1;
    }
    return 0;
}

int aliases_build_warn(const char *path, long *count, long *longest,
                       struct strlist *warnings, char **err)
{
    struct buf text;
    buf_init(&text);
    *err = NULL;
    if (read_file(path, &text, ALIASES_FILE_MAX) < 0) {
        int saved = errno;
        *err = xasprintf("%s: %s", path,
                         errno == EFBIG ? "file too large (limit 256 MiB)" : strerror(errno));
        buf_free(&text);
        errno = saved;
        return -1;
    }
    char *dbfile = db_path(path);
    char *tmp = xasprintf("%s.tXXXXXX", dbfile);
    int fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0) {
        int saved = errno;
        *err = xasprintf("cannot create a temporary file next to %s: %s", dbfile,
                         strerror(errno));
        free(tmp);
        free(dbfile);
        buf_free(&text);
        errno = saved;
        return -2;
    }
    struct build_state b = {.warnings = warnings, .fname = path};
    int rc = fill_db(fd, tmp, path, &text, &b, warnings, err);
    if (rc == 0)
        rc = finish_db(tmp, dbfile, err);
    if (rc < 0) {
        int saved = errno;
        rc = -2; /* the text was fine; the database could not be written */
        unlink(tmp);
        errno = saved;
    } else {
        *count = b.count;
        *longest = b.longest;
    }
    free(tmp);
    free(dbfile);
    buf_free(&text);
    return rc;
}

int aliases_build(const char *path, long *count, long *longest, char **err)
{
    struct strlist warnings;
    sl_init(&warnings);
    int rc = aliases_build_warn(path, count, longest, &warnings, err);
    int saved = errno;
    for (size_t i = 0; i < warnings.n; i++)
        log_warn("%s", warnings.v[i]);
    sl_free(&warnings);
    errno = saved; /* the CLI picks its exit status from it */
    return rc < 0 ? -1 : 0;
}

/* Fetch key, trying the form the original stored (with its trailing NUL) too. */
static int fetch(GDBM_FILE db, const char *name, char **value)
{
    datum key = {.dptr = (char *)name, .dsize = (int)strlen(name)};
    datum val = gdbm_fetch(db, key);
    if (!val.dptr) {
        if (gdbm_errno != GDBM_ITEM_NOT_FOUND && gdbm_errno != GDBM_NO_ERROR) {
            errno = EIO;
            return -1;
        }
        key.dsize++;
        val = gdbm_fetch(db, key);
        if (!val.dptr)
            return gdbm_errno == GDBM_ITEM_NOT_FOUND || gdbm_errno == GDBM_NO_ERROR
                       ? 0
                       : (errno = EIO, -1);
    }
    size_t n = (size_t)val.dsize;
    while (n && val.dptr[n - 1] == '\0')
        n--;
    /* a value with an embedded NUL is not ours: refuse it rather than truncate */
    if (memchr(val.dptr, '\0', n)) {
        free(val.dptr);
        errno = EINVAL;
        return -1;
    }
    *value = xstrndup(val.dptr, n);
    free(val.dptr);
    return 1;
}

int aliases_lookup(const char *dbpath, const char *name, char **value)
{
    *value = NULL;
    if (!name || !*name || strlen(name) > ALIAS_NAME_MAX)
        return 0;
    int fd = open(dbpath, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? 0 : -1;
    /* The database is replaced by rename, never changed in place: no locks. */
    GDBM_FILE db = gdbm_fd_open(fd, dbpath, 0, GDBM_READER | GDBM_NOLOCK | GDBM_CLOERROR,
                                NULL);
    if (!db) {
        errno = EIO;
        return -1;
    }
    char *key = xstrdup(name);
    str_lower(key);
    int rc = fetch(db, key, value);
    int saved = errno;
    free(key);
    gdbm_close(db);
    errno = saved;
    return rc;
}

struct text_find {
    const char *key;
    char *value;
};

static int find_cb(void *arg, const char *name, const char *value, int line)
{
    struct text_find *t = arg;
    (void)line;
    if (strcmp(name, t->key) != 0)
        return 0;
    t->value = xstrdup(value);
    return 1;
}

int aliases_lookup_text(const char *path, const char *name, char **value)
{
    *value = NULL;
    if (!name || !*name || strlen(name) > ALIAS_NAME_MAX)
        return 0;
    struct buf text;
    buf_init(&text);
    if (read_file(path, &text, ALIASES_FILE_MAX) < 0) {
        int saved = errno;
        buf_free(&text);
        errno = saved;
        return saved == ENOENT ? 0 : -1;
    }
    struct text_find t = {.key = NULL, .value = NULL};
    char *key = xstrdup(name);
    str_lower(key);
    t.key = key;
    aliases_parse(text.s, text.len, path, find_cb, &t, NULL);
    free(key);
    buf_free(&text);
    *value = t.value;
    return t.value != NULL;
}

static int mtime_older(const struct stat *a, const struct stat *b)
{
    if (a->st_mtim.tv_sec != b->st_mtim.tv_sec)
        return a->st_mtim.tv_sec < b->st_mtim.tv_sec;
    return a->st_mtim.tv_nsec < b->st_mtim.tv_nsec;
}

int aliases_db_stale(const char *path)
{
    struct stat st_text, st_db;
    char *dbfile = db_path(path);
    int have_db = stat(dbfile, &st_db) == 0;
    free(dbfile);
    if (!have_db)
        return 1;
    if (stat(path, &st_text) < 0)
        return 0;
    return mtime_older(&st_db, &st_text);
}
