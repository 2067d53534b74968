/* usermap.h - personal addresses (usermap=, usermap(7)).
 *
 * usermap=PATTERN:TARGET[,TARGET...], several allowed; the first whose
 * pattern matches a local name wins.  They are consulted for a local name
 * that is neither an alias nor an account (after the aliases and the password
 * file), never for virtual users.
 *   PATTERN  a glob, matched without regard to case: '*' matches any run of
 *            characters (also none), '~' (at most one) a run of letters,
 *            digits, '.' and '_' that is the name of an account (not root);
 *            other characters match themselves.  "*-~" matches "shop-alice"
 *            when alice is an account.
 *   TARGET   tried in order until one gives a result:
 *            ~        the account '~' matched (its aliases and .forward apply)
 *            ~/FILE   the whole local name looked up, without regard to case,
 *                     in FILE in that account's home directory, a file in
 *                     aliases(5) format read as the account under the rules of
 *                     .forward (forward.h: owned by it, not group- or
 *                     world-writable, safe directories); a file that is absent,
 *                     unsafe or lacks the name gives nothing
 *            ADDRESS  a literal address or local name (always a result)
 * The result is expanded like an aliases entry; programs and files in it run
 * as user= when they come from postoffice.cf, as the account (as in its
 * .forward, and never :include:) when they come from its personal file.  Pure matching (usermap_match) needs only the password file; the
 * personal files are read by usermap_resolve, through forward.h's reader
 * child when running as root. */
#ifndef PO_USERMAP_H
#define PO_USERMAP_H

#include "conf.h"
#include "util.h"

#define USERMAP_NAME_MAX 256 /* longer local names are never matched */

struct usermap_hit {
    const char *entry;  /* the usermap= value that matched */
    char *user;         /* the account '~' matched, or NULL */
    struct strlist targets;
};

/* conf.c refuses a malformed usermap= value (no ':', more than one '~' in
 * the pattern, a '~' target without a '~' in the pattern). */

/* The first usermap= that matches local.  1 (hit filled; usermap_hit_free),
 * 0 none, -1 an account lookup failed (errno). */
int usermap_match(const struct config *c, const char *local, struct usermap_hit *hit);
void usermap_hit_free(struct usermap_hit *hit);

/* Try hit's targets for local in order.  1: entries (aliases-list entries)
 * appended, from the first target that gave a result, and *owner set to the
 * account whose personal file they came from (NULL: from postoffice.cf); 0:
 * none did; -1: temporary failure reading a personal file (*why malloc'd). */
int usermap_resolve(const struct usermap_hit *hit, const char *local, struct strlist *entries,
                    const char **owner, char **why);

#endif
