/* vacation_db.c - who got a vacation reply when: see vacation_db.h.  Runs as
 * the user (or vuser=), never as root. */
#include "compat.h"

#include <errno.h>
#include <gdbm.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"
#include "vacation_db.h"

static GDBM_FILE open_locked(const char *path, char **err)
{
    long long deadline = now_ms() + VACDB_LOCK_WAIT_MS;
    int nap = 2;
    for (;;) {
        GDBM_FILE db = gdbm_open(path, 0, GDBM_WRCREAT | GDBM_CLOEXEC, 0600, NULL);
        if (db)
            return db;
        int busy = gdbm_errno == GDBM_CANT_BE_WRITER;
        if (!busy || now_ms() >= deadline) {
            if (busy)
                *err = xasprintf("%s: still locked by another process after %d ms", path,
                                 VACDB_LOCK_WAIT_MS);
            else if (gdbm_syserr[gdbm_errno])
                *err = xasprintf("%s: %s", path, strerror(errno));
            else
                *err = xasprintf("%s: %s", path, gdbm_strerror(gdbm_errno));
            return NULL;
        }
        poll(NULL, 0, nap);
        if (nap < 64)
            nap *= 2;
    }
}

/* The time stored in d, or -1 when it is not one. */
static long long stored_time(datum d)
{
    if (!d.dptr || d.dsize <= 0 || d.dsize > 20)
        return -1;
    char tmp[24];
    memcpy(tmp, d.dptr, (size_t)d.dsize);
    tmp[d.dsize] = '\0';
    unsigned long v;
    return parse_ulong(tmp, &v) == 0 ? (long long)v : -1;
}

int vacdb_due(const char *path, const char *sender, long period, time_t now,
              time_t *last, char **err)
{
    *err = NULL;
    GDBM_FILE db = open_locked(path, err);
    if (!db)
        return -1;
    char *k = xstrdup(sender);
    str_lower(k);
    datum key = {.dptr = k, .dsize = (int)strlen(k)};
    datum old = gdbm_fetch(db, key);
    long long t = stored_time(old);
    free(old.dptr);
    int due = t < 0 || t > (long long)now || (long long)now - t >= period;
    if (!due)
        *last = (time_t)t;
    if (due) {
        char v[24];
        snprintf(v, sizeof v, "%lld", (long long)now);
        datum val = {.dptr = v, .dsize = (int)strlen(v)};
        if (gdbm_store(db, key, val, GDBM_REPLACE) != 0 || gdbm_sync(db) != 0) {
            *err = xasprintf("%s: cannot record the reply: %s", path,
                             gdbm_strerror(gdbm_errno));
            due = -1;
        }
    }
    free(k);
    gdbm_close(db);
    return due;
}
