/* greylist_db.h - the greylist database (smtpauth(5)): a gdbm file named
 * greylist-db= plus ".db" (/var/db/smtpauth.db), in the original postoffice's
 * format, so a database it made keeps working.
 *
 *   key   "LOCALPART@[IP]", the full sender address (greylist-from, or an
 *         entry the administrator added), or "<>@[IP]"; stored with a
 *         trailing NUL
 *   value "ALLOWED LAST" (decimal time_t: when mail is accepted from this
 *         key, when it was last seen) or "* LAST" (forbidden); trailing NUL
 *
 * Used by the session (greylist.h, as user=), the master (root: creating the
 * file for user=) and authexpire (as user=).  Every writer holds gdbm's
 * exclusive lock only for one short open-update-close, so nothing keeps the
 * file open across another process's changes (gdbm caches buckets). */
#ifndef PO_GREYLIST_DB_H
#define PO_GREYLIST_DB_H

#include <signal.h>
#include <sys/types.h>
#include <time.h>

#include <gdbm.h>

struct grey_rec {
    int forbidden;     /* "*" */
    time_t allowed;    /* when mail is accepted (0 when forbidden) */
    time_t last;       /* last seen; 0 when the value had none */
};

/* The file name: path + ".db" (malloc'd), as the original's gdbm build. */
char *grey_db_file(const char *path);

/* An open database. */
struct grey_db {
    GDBM_FILE db;
    sigset_t oldmask;   /* restored by grey_db_close */
};

/* Open the database file (grey_db_file(path)) as a writer (writer=1) or a
 * reader, waiting up to wait_ms for another process's lock (short sleeps).
 * Termination signals are blocked until grey_db_close, so that an update is
 * never cut in half by a kill.  0, or -1 with *err (malloc'd) and errno
 * (ENOENT: no file; EWOULDBLOCK: the lock stayed taken). */
int grey_db_open(struct grey_db *g, const char *path, int writer, long wait_ms, char **err);
void grey_db_close(struct grey_db *g);

/* Create the file for uid/gid (mode 0600) when it is missing, and give an
 * existing one (the original ran as root) to uid/gid; the directory is made
 * (0755) when only its last component is missing.  Root only (the master, or
 * authexpire before it drops privileges).  0, or -1 with *err. */
int grey_db_prepare(const char *path, uid_t uid, gid_t gid, char **err);

/* Parse a stored value (n bytes, NUL or not).  0, or -1 when it is not in
 * the format above. */
int grey_rec_parse(const char *v, size_t n, struct grey_rec *r);

/* Write r in the stored format (without the NUL) into out; returns the
 * length.  GREY_VALUE_MAX bytes always suffice. */
#define GREY_VALUE_MAX 64
size_t grey_rec_format(const struct grey_rec *r, char *out, size_t size);

/* Fetch key; 1 found (*r filled), 0 missing, -1 malformed value or a read
 * error. */
int grey_rec_get(GDBM_FILE db, const char *key, struct grey_rec *r);

/* Store r under key (replacing).  0 or -1. */
int grey_rec_put(GDBM_FILE db, const char *key, const struct grey_rec *r);

#endif
