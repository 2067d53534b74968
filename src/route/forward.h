/* forward.h - reading a user's ~/.forward (or an :include: file) safely.
 *
 * A list file is never parsed as root: when we are root, a child process
 * becomes the file's reader (the user for .forward, the unprivileged user= for
 * :include:), reads and splits the file (aliases_split_list) and passes the
 * entries back through a pipe, NUL-separated and bounded.  When we are not
 * root the file is read directly, but only if we already are that reader.
 * A file that does not exist is seen by root with lstat, without a child. */
#ifndef PO_FORWARD_H
#define PO_FORWARD_H

#include "privs.h"
#include "util.h"

/* Largest list file read (bigger ones are ignored with a log line). */
#define FWD_FILE_MAX 65536

/* What the file must look like.
 *  FWD_FORWARD: not a symlink (O_NOFOLLOW), a regular file owned by who->uid,
 *               not group- or world-writable; its directory owned by who->uid
 *               or root and not group- or world-writable, the directories
 *               above it likewise unless sticky (/tmp).
 *  FWD_INCLUDE: a regular file, not world-writable. */
enum fwd_mode { FWD_FORWARD, FWD_INCLUDE };

/* Results of forward_read. */
enum fwd_result {
    FWD_TEMP = -1,   /* temporary failure (fork, I/O, timeout): *why set */
    FWD_OK = 0,      /* read: entries appended (maybe none) */
    FWD_ABSENT = 1,  /* no such file: nothing appended, *why NULL */
    FWD_IGNORED = 2  /* exists but unsafe, too big, unreadable: *why set */
};

/* Read the list file path as who.  *why (malloc'd) explains FWD_TEMP and
 * FWD_IGNORED (one line for the log); NULL otherwise.  who->uid 0 is refused
 * (FWD_IGNORED): root's files are never parsed. */
int forward_read(const struct ident *who, const char *path, enum fwd_mode mode,
                 struct strlist *entries, char **why);

/* A usermap's personal aliases file (usermap.h): look key up
 * (case-insensitively, the first entry wins) in the aliases(5)-format file
 * path, read as who under the FWD_FORWARD rules, in the same child.  FWD_OK
 * with key's value split into entries; FWD_ABSENT when the file does not exist
 * or key is not in it; FWD_IGNORED and FWD_TEMP with *why as forward_read. */
int forward_lookup(const struct ident *who, const char *path, const char *key,
                   struct strlist *entries, char **why);

#endif
