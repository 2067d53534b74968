/* subaddress.h - user+tag addresses (recipient-delimiter=): where a local
 * part splits into the user and the tag.
 *
 * Pure functions on strings, no I/O.  Who calls: the expansion (expand.c)
 * in the queue runner, the SMTP session's RCPT check and -bv; conf.c checks
 * the option's value with subaddr_delim_ok.  The rule (as Postfix's
 * split_addr and Exim's local_part_suffix): an exact match of the whole name
 * wins; the caller tries the user part only when the whole name is unknown. */
#ifndef PO_SUBADDRESS_H
#define PO_SUBADDRESS_H

/* The characters recipient-delimiter= may be: a character of an atom that
 * routes nowhere and names no target (not % ! | / * or a letter or digit). */
#define SUBADDR_DELIMS "+-=_#~.&"

/* Is d a usable recipient-delimiter= value: "" (off) or one character of
 * SUBADDR_DELIMS?  1 or 0. */
int subaddr_delim_ok(const char *d);

/* Split local (an unquoted local part, no domain) at the first delim
 * character.  1 with *user (malloc'd, the part before it) and *tag (pointing
 * into local, after it); 0 (*user = NULL, *tag = NULL) when it does not
 * split: delim NULL or "", no delim in local, nothing before the delim
 * ("+x"), or one of the names that never split (postmaster, mailer-daemon,
 * any case; with "-" also owner-NAME and NAME-request, the mailing-list
 * conventions). */
int subaddr_split(const char *delim, const char *local, char **user, const char **tag);

#endif
