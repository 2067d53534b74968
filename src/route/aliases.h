/* aliases.h - the aliases(5) file and its gdbm database.
 *
 * File: "name: target, target..." with continuation lines (leading whitespace),
 * '#' comment lines, quoted "|command args", /file, :include:/path, addresses.
 * Database: ALIASES.db (gdbm), keys are lower-cased names, values the raw target
 * list; built into a temporary file and renamed so readers never see half. */
#ifndef PO_ALIASES_H
#define PO_ALIASES_H

#include <stddef.h>

#include "util.h"

/* Limits: an entry's value (after joining continuation lines) and a name. */
#define ALIAS_ENTRY_MAX 65536
#define ALIAS_NAME_MAX 255

/* Called for each entry of an aliases file; return non-zero to stop. */
typedef int (*alias_cb)(void *arg, const char *name, const char *value, int line);

/* Parse aliases text.  Malformed lines (no colon, empty name) are reported into
 * errors as "FILE:LINE: reason" and skipped.  Returns the number of entries. */
int aliases_parse(const char *text, size_t len, const char *fname, alias_cb cb,
                  void *arg, struct strlist *errors);

/* Build PATH.db from PATH.  On success returns 0 and fills *count (aliases
 * stored) and *longest.  -1 with *err (malloc'd) on failure; the old database is
 * untouched then. */
int aliases_build(const char *path, long *count, long *longest, char **err);

/* The same, handing back the warnings (malformed lines, duplicate names: the
 * first one wins) as "FILE:LINE: text" in warnings instead of logging them.
 * aliases_build logs them with log_warn.  Failure codes tell the CLI which exit
 * status to use: -1 the text file cannot be read (EX_NOINPUT), -2 the database
 * cannot be written (EX_CANTCREAT).  Both functions leave errno as the failing
 * call set it. */
int aliases_build_warn(const char *path, long *count, long *longest,
                       struct strlist *warnings, char **err);

/* Look name up (case-insensitively) in dbpath.  1 found (*value malloc'd),
 * 0 not found (or no database), -1 error (errno). */
int aliases_lookup(const char *dbpath, const char *name, char **value);

/* The same lookup in the text file itself (first entry wins, as in the
 * database): the fallback while ALIASES.db has not been built.  1, 0 (also when
 * the file does not exist), -1 error (errno). */
int aliases_lookup_text(const char *path, const char *name, char **value);

/* 1 if the database is missing or older than the text file, else 0. */
int aliases_db_stale(const char *path);

/* Split an expansion list (an alias value, a .forward file, an :include: file)
 * into entries: commas and line ends separate, whitespace outside double
 * quotes is ignored, quotes are removed, backslash escapes one character, '#'
 * at the start of a line (in files) starts a comment.  A leading backslash is
 * kept ("\user": the user's own mailbox); quotes do not span lines.  Appends
 * to out; returns the count. */
int aliases_split_list(const char *value, struct strlist *out);

#endif
