/* authexpire.c - housekeeping of the greylist database (authexpire(8)):
 * expire old entries, list them, approve or forbid a key.
 *
 * Started by root (cron) or by user=; as root it creates a missing database
 * for -a/-d (grey_db_prepare) and then becomes user= before it reads a key:
 * the keys come from SMTP clients.  It holds the database's lock for one
 * pass only (collect, then delete), so sessions wait at most that long. */
#include "compat.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "conf.h"
#include "greylist_db.h"
#include "log.h"
#include "privs.h"
#include "util.h"

/* authexpire waits longer for the lock than a session: it is not serving
 * anyone, and a pass of the daemon's never takes long. */
#define LOCK_WAIT_MS 30000
#define KEY_COLUMN 31 /* listing on a terminal: keys cut to fit 80 columns */

struct opts {
    int expire_forbidden, nulluser, unretried, verbose, dryrun, list, wide;
    const char *approve, *forbid, *cfile;
    long age;
};

static void usage(void)
{
    fprintf(stderr, "usage: authexpire [-C config] [-Elnuvwz] [age]\n"
                    "       authexpire [-C config] -a key | -d key | -b key\n");
    exit(EX_USAGE);
}

static void parse_args(int argc, char **argv, struct opts *o)
{
    int ch;
    memset(o, 0, sizeof *o);
    o->age = 14 * 86400;
    while ((ch = getopt(argc, argv, "C:Elnuvwza:b:d:")) != -1) {
        switch (ch) {
        case 'C': o->cfile = optarg; break;
        case 'E': o->expire_forbidden = 1; break;
        case 'l': o->list = 1; break;
        case 'n': o->dryrun = 1; break;
        case 'u': o->unretried = 1; break;
        case 'v': o->verbose = 1; break;
        case 'w': o->wide = 1; break;
        case 'z': o->nulluser = 1; break;
        case 'a': o->approve = optarg; break;
        case 'b': /* the original's old name of -d */
        case 'd': o->forbid = optarg; break;
        default: usage();
        }
    }
    if (optind < argc - 1 || (o->approve && o->forbid))
        usage();
    if (optind == argc - 1) {
        if (config_parse_time(argv[optind], 1, &o->age) < 0)
            die(EX_USAGE, "bad age %s: give seconds or a number with m, h, d or w "
                          "(such as 14d)", argv[optind]);
        if (o->age < 60)
            die(EX_USAGE, "the age must be at least 60 seconds (%s)", argv[optind]);
    }
}

static void load_config(struct config *c, const char *cfile)
{
    struct config_ctx ctx = { getuid() == 0, 0 };
    int rc;
    config_defaults(c);
    if (cfile) {
        rc = config_load(c, cfile, 1, &ctx);
    } else {
        ctx.secure_check = 1;
        rc = config_load(c, PATH_CONFIG, 0, &ctx);
    }
    if (rc)
        exit(rc);
}

/* A key as stored (with its NUL) for printing: control bytes as '?'. */
static char *key_text(datum k)
{
    size_t n = (size_t)k.dsize;
    while (n && k.dptr[n - 1] == '\0')
        n--;
    char *s = xstrndup(k.dptr, n);
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f || s[i] == '\0')
            s[i] = '?';
    return s;
}

static void print_time(time_t t)
{
    char b[64];
    struct tm tm;
    localtime_r(&t, &tm);
    strftime(b, sizeof b, "<%H:%M %d %b %Y>", &tm);
    fputs(b, stdout);
}

struct entry {
    datum key;
    char *text;
};

static int by_text(const void *a, const void *b)
{
    return strcmp(((const struct entry *)a)->text, ((const struct entry *)b)->text);
}

/* Every key of the database, sorted by its printed form. */
static struct entry *all_keys(GDBM_FILE db, size_t *n)
{
    struct entry *v = NULL;
    size_t cap = 0;
    *n = 0;
    for (datum k = gdbm_firstkey(db); k.dptr;) {
        if (*n == cap) {
            cap = cap ? cap * 2 : 64;
            v = xreallocarray(v, cap, sizeof *v);
        }
        v[*n].key = k;
        v[(*n)++].text = key_text(k);
        k = gdbm_nextkey(db, k);
    }
    if (*n)
        qsort(v, *n, sizeof *v, by_text);
    return v;
}

static void free_keys(struct entry *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(v[i].key.dptr);
        free(v[i].text);
    }
    free(v);
}

static int fetch(GDBM_FILE db, datum k, struct grey_rec *r)
{
    datum v = gdbm_fetch(db, k);
    if (!v.dptr)
        return -1;
    int rc = grey_rec_parse(v.dptr, (size_t)v.dsize, r);
    free(v.dptr);
    return rc;
}

static void list(GDBM_FILE db, const struct opts *o)
{
    size_t n;
    struct entry *v = all_keys(db, &n);
    int cut = isatty(1) && !o->wide;
    for (size_t i = 0; i < n; i++) {
        struct grey_rec r;
        if (cut)
            printf("%-*.*s\t", KEY_COLUMN, KEY_COLUMN, v[i].text);
        else
            printf("%s\t", v[i].text);
        if (fetch(db, v[i].key, &r) < 0) {
            puts("NO VALUE SET");
            continue;
        }
        if (r.forbidden)
            fputs("**** forbidden ****", stdout);
        else
            print_time(r.allowed);
        if (r.last) {
            putchar(' ');
            putchar(!r.forbidden && r.last > r.allowed ? '#' : ' ');
            print_time(r.last);
        }
        putchar('\n');
    }
    free_keys(v, n);
}

/* Does the expiry pass remove this entry? */
static int expired(const struct opts *o, const char *key, const struct grey_rec *r, int ok,
                   time_t now)
{
    if (!ok)
        return 1; /* not in the format: nothing can use it */
    if (r->forbidden && !o->expire_forbidden)
        return 0;
    time_t last = r->last ? r->last : r->allowed;
    if (last + o->age < now)
        return 1;
    if (o->nulluser && !strncmp(key, "<>@", 3))
        return 1;
    /* the wait is over and the client never came back: not a mail server */
    return o->unretried && !r->forbidden && r->last < r->allowed && r->allowed <= now;
}

static int expire(GDBM_FILE db, const struct opts *o)
{
    size_t n, gone = 0;
    struct entry *v = all_keys(db, &n);
    time_t now = time(NULL);
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        struct grey_rec r;
        int ok = fetch(db, v[i].key, &r) == 0;
        if (!expired(o, v[i].text, &r, ok, now))
            continue;
        gone++;
        if (o->dryrun || o->verbose)
            printf("delete [%s]\n", v[i].text);
        if (!o->dryrun && gdbm_delete(db, v[i].key) != 0) {
            say("cannot delete %s: %s", v[i].text, gdbm_strerror(gdbm_errno));
            rc = EX_IOERR;
        }
    }
    if (o->verbose)
        printf("%zu record%s; expired %zu.\n", n, n == 1 ? "" : "s", gone);
    free_keys(v, n);
    return rc;
}

/* -a: accepted from now on; -d: refused until approved. */
static int set_key(GDBM_FILE db, const struct opts *o)
{
    const char *key = o->approve ? o->approve : o->forbid;
    time_t now = time(NULL);
    struct grey_rec r;
    if (grey_rec_get(db, key, &r) != 1 || !r.last)
        r.last = now;
    r.forbidden = o->forbid != NULL;
    r.allowed = r.forbidden ? 0 : now - 1;
    if (r.forbidden)
        r.last = now;
    if (grey_rec_put(db, key, &r) < 0) {
        say("cannot store %s: %s", key, gdbm_strerror(gdbm_errno));
        return EX_IOERR;
    }
    if (o->verbose)
        printf("%s [%s]\n", r.forbidden ? "forbidden" : "approved", key);
    return 0;
}

int main(int argc, char **argv)
{
    struct opts o;
    struct config c;
    log_open("authexpire", 1);
    parse_args(argc, argv, &o);
    load_config(&c, o.cfile);
    int writer = !o.list;
    if (getuid() == 0 && (o.approve || o.forbid)) {
        struct ident id;
        char *err = NULL;
        if (privs_lookup(c.user, &id) != 0)
            die(EX_NOUSER, "no account %s (user=) to own the greylist", c.user);
        if (grey_db_prepare(c.greylist_db, id.uid, id.gid, &err) < 0)
            die(EX_CANTCREAT, "%s", err);
        privs_free(&id);
    }
    if (privs_drop_to(c.user) < 0)
        die(EX_NOUSER, "cannot become %s (user=): %s", c.user, strerror(errno));
    struct grey_db db;
    char *err = NULL;
    if (grey_db_open(&db, c.greylist_db, writer, LOCK_WAIT_MS, &err) < 0)
        die(errno == EWOULDBLOCK ? EX_TEMPFAIL : errno == ENOENT ? EX_NOINPUT : EX_IOERR,
            "cannot open the greylist: %s", err);
    int rc = 0;
    if (o.list)
        list(db.db, &o);
    else if (o.approve || o.forbid)
        rc = set_key(db.db, &o);
    else
        rc = expire(db.db, &o);
    grey_db_close(&db);
    if (fflush(stdout) != 0)
        rc = EX_IOERR;
    config_free(&c);
    return rc;
}
