/* maildir.h - delivering messages into a maildir (a mailbox= template ending
 * in "/", or a .forward or alias target ending in "/"), with Maildir++
 * subaddress folders and the Maildir++ "maildirsize" count for limits.
 *
 * Who calls: local.c, in the delivery child, running as the maildir's owner
 * (never as root: maildir_write refuses uid 0).  Everything is done through
 * directory descriptors opened without following symbolic links: the maildir
 * itself must be a real directory owned by the caller's uid and not writable
 * by others; tmp/, new/ and cur/ (and a folder's) are made 0700 when missing.
 *
 * A message is written into tmp/, fsynced, linked into new/ under its final
 * name (rename where the file system has no hard links), and the tmp/ name
 * removed; new/ is fsynced once per batch before any message is reported
 * delivered.  A writer killed half-way leaves at most a file in tmp/ (which
 * readers ignore and clean after 36 hours), never a partial one in new/.
 * Fails per message with DELIV_DEFER "4.x.x" or DELIV_FAIL "5.x.x" status
 * text (mbox.h's struct mbox_msg). */
#ifndef PO_MAILDIR_H
#define PO_MAILDIR_H

#include <stddef.h>
#include <sys/types.h>

#include "mbox.h"
#include "util.h"

#define MAILDIRSIZE_MAX 5120  /* Maildir++: a maildirsize file larger than this is
                                 recounted (and rewritten) */
#define MAILDIRSIZE_STALE 900 /* Maildir++: a count over the limit older than this
                                 (seconds) is recounted before it refuses mail */

struct maildir_req {
    const char *path;      /* the maildir (absolute; a trailing "/" is allowed) */
    long long limit;       /* bytes the maildir may hold, 0 = no limit */
    int limit_bounce;      /* over the limit: 1 DELIV_FAIL 5.2.2, 0 DELIV_DEFER 4.2.2 */
    const char *delim;     /* subaddress folders: the recipient delimiter (one
                              character), NULL or "" = every message to INBOX */
};

/* Deliver n messages (sender, rcpt, data of each; res and status are set)
 * into r->path.  Each message gets its own result: a message that would take
 * the maildir past r->limit is refused (5.2.2 or 4.2.2 "mailbox full") and
 * the others go on.  With r->delim, a message whose rcpt local part holds a
 * tag after the delimiter goes into the folder ".TAG" (created with its
 * "maildirfolder" file when missing), unless maildir_folder_of says no. */
void maildir_write(const struct maildir_req *r, struct mbox_msg *msgs, size_t n);

/* The unique file name "SEC.M<USEC>P<PID>Q<Q>.HOST" then ",S=SIZE" when size
 * >= 0, appended to out.  In HOST "/" becomes "\057" and ":" "\072" (as
 * Maildir readers expect); an empty host is "localhost". */
void maildir_name(struct buf *out, long long sec, long usec, long pid, unsigned long q,
                  const char *host, long long size);

/* The folder rcpt's tag names ("user+tag@domain" with delim "+": ".tag"), as
 * a malloc'd string, or NULL for INBOX: no delimiter in the local part, or a
 * tag that is empty, starts with ".", holds "/" or a control byte, or is
 * longer than 200 bytes. */
char *maildir_folder_of(const char *rcpt, const char *delim);

/* The size in bytes of the messages in the maildir open as dirfd (its
 * folders included), from its maildirsize file; the file is made (by one scan
 * of new/ and cur/ of the maildir and its folders, taking sizes from ",S="
 * in the names, else from stat) when missing, unreadable as a count, larger
 * than MAILDIRSIZE_MAX, or when its first line is not "LIMITS" (limit > 0) -
 * written to tmp/ and renamed into place.  0, or -1 with errno. */
int maildirsize_get(int dirfd, long long limit, long long *bytes);

/* Parse a maildirsize file's text (len bytes): its first line must be
 * "LIMITS\n", every other line "BYTES COUNT\n" (decimal, perhaps negative,
 * each within 10^15).  0 with *bytes = the sum of the BYTES (never below
 * 0), or -1 when the text is not such a count (it is then made again). */
int maildirsize_parse(const char *text, size_t len, long long limit, long long *bytes);

/* Append "BYTES COUNT\n" to the maildirsize file of dirfd, if it exists (one
 * write).  0, or -1 with errno. */
int maildirsize_add(int dirfd, long long bytes, long long count);

#endif
