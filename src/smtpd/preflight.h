/* preflight.h - what the daemon checks before it listens, so a broken
 * installation stops at start with one line saying what to fix, instead of
 * answering every client 451 with a reason that misleads.
 *
 * Called by the master (root, or the invoking user for a private daemon)
 * before it binds.  Checks: the account user= exists; the queue directory
 * exists (created with its owner and modes when missing and its parent
 * exists) and belongs to user=; the mail spool exists and is a directory;
 * the aliases database is not older than its text file (a warning only). */
#ifndef PO_PREFLIGHT_H
#define PO_PREFLIGHT_H

#include "conf.h"

/* 0 when the daemon may start, else a sysexits code after say()ing the
 * one thing to fix (EX_NOUSER, EX_CANTCREAT, EX_OSFILE). */
int preflight_daemon(const struct config *c);

#endif
