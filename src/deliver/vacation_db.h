/* vacation_db.h - who got a vacation reply when: a small gdbm database
 * (~/.vacation.db; for a virtual user VHOSTDIR/DOMAIN/vacation/USER.db),
 * key the sender's address in lower case, value the time of the last reply
 * (decimal seconds since the epoch).
 *
 * Who calls: the vacation child (vacation.c), as the user (or vuser=), never
 * root: the file is created mode 0600 by and for that identity.  The database
 * is locked (gdbm's writer lock) from the question to the answer, so two
 * deliveries at once send one reply.  A lock held by another process is
 * waited for up to VACDB_LOCK_WAIT_MS. */
#ifndef PO_VACATION_DB_H
#define PO_VACATION_DB_H

#include <time.h>

#define VACDB_LOCK_WAIT_MS 5000

/* Is a reply to sender due at now (none recorded, or the last one period
 * seconds ago or more, or a recorded time in the future: a clock set back)?
 * When it is, now is recorded for sender before returning.  1 due, 0 not
 * (*last gets the time of the last reply), -1 on an error (*err malloc'd:
 * the database cannot be opened, read or written). */
int vacdb_due(const char *path, const char *sender, long period, time_t now,
              time_t *last, char **err);

#endif
