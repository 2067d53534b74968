/* address.h - mail address syntax: RFC 5321 paths and RFC 5322 address lists.
 *
 * Everything here parses untrusted text.  What an address is follows RFC 5321
 * 4.1.2 (with RFC 6531's UTF-8): a local part is a Dot-string or a
 * Quoted-string, a domain has no trailing dot; anything else is refused with
 * a reason, never repaired into another address.  Results are canonical
 * strings: "local@domain" with the domain lower-cased, or a bare "local" for a
 * local user.  A local part keeps its case and is written with the least
 * quoting that says the same thing (RFC 5321 4.1.2: all quoted forms are
 * equivalent): "joe"@x is joe@x, "john\ smith"@x is "john smith"@x.  Nothing
 * returned ever contains a control character. */
#ifndef PO_ADDRESS_H
#define PO_ADDRESS_H

#include <stddef.h>

#include "util.h"

#define ADDR_LOCAL_MAX 64
#define ADDR_DOMAIN_MAX 255
#define ADDR_MAX 254 /* RFC 5321 4.5.3.1.3: a path is 256 octets with its < > */

/* Parse the path argument of MAIL FROM:/RCPT TO: starting at s (leading spaces
 * allowed): "<addr>", "<>" (only if allow_null), or a bare address (accepted for
 * compatibility).  A source route "<@a,@b:u@c>" is accepted and dropped
 * (RFC 5321 4.1.2 and C: the route's domains must be valid, the route is
 * ignored).  On success returns 0, *addr = malloc'd canonical address ("" for
 * <>) and *rest = the text after the path (the ESMTP parameters), leading
 * spaces skipped.  Lengths: local part (as written) 64, domain 255, canonical
 * address ADDR_MAX.  On failure returns -1, *addr = NULL and *why = static text
 * suitable for a 501/553 reply ("address has a control character", "domain
 * name is not valid", ...).  The whole of s is checked: a control character
 * (< 0x20 other than a tab between words, or 0x7f) or invalid UTF-8 anywhere
 * rejects it.  A domainless address whose local part starts with | / : or -
 * (quoted or not) is rejected: those are program/file/:include:/option forms,
 * which only aliases and .forward files may hold.  Nor may any address
 * whose canonical form starts with | or / ("|x"@d and /x@d too): the queue
 * reads such a recipient as a program or file target (envelope.h).  The local
 * part of an address WITH a domain may still start with - or contain |:
 * callers must treat it as data (a lookup key), never as an expansion entry. */
int addr_parse_path(const char *s, int allow_null, char **addr, const char **rest,
                    const char **why);

/* Validate and canonicalise a bare address "local@domain" or "local" (as from
 * the command line or an aliases file; "<local@domain>" is taken too).  Same
 * results as addr_parse_path; <> and anything after the address are errors.
 * Callers recognise "|prog", "/file" and ":include:" entries before calling. */
int addr_parse_mailbox(const char *s, char **addr, const char **why);

/* Parse an RFC 5322 address-list (the unfolded value of To:, Cc:, Bcc:):
 * display names, comments, quoted strings, groups "name: a, b;", obsolete
 * routes.  Appends each canonical addr-spec to out.  Returns the number added;
 * entries that don't parse are skipped (each candidate goes through the same
 * checks as addr_parse_path; <> entries are skipped).  value may be NULL. */
int addr_parse_list(const char *value, struct strlist *out);

/* The same, and each non-empty entry that is not an address is added to bad
 * (if not NULL) as "ENTRY: reason", ENTRY as written (control and 8-bit
 * bytes shown as \xHH): a caller such as sendmail -t refuses rather than
 * drops a recipient it cannot read. */
int addr_parse_list_report(const char *value, struct strlist *out, struct strlist *bad);

/* Split a canonical address: *local (malloc'd, as written in the address,
 * i.e. with its quotes when it has them) and *domain (malloc'd, or NULL when
 * there is none).  addr NULL gives two NULLs. */
void addr_split(const char *addr, char **local, char **domain);

/* The domain part (pointer into addr) or NULL: what follows the last '@'
 * after any quoted local part, so "\"a@b\"@c" gives "c". */
const char *addr_domain(const char *addr);

/* Is s a syntactically valid domain name or address literal ([1.2.3.4],
 * [IPv6:...])?  1 or 0.  Case is ignored and one trailing dot is allowed
 * (a DNS name; in an address the parsers above refuse it). */
int addr_valid_domain(const char *s);

/* If domain is an address literal, write the numeric address (no brackets,
 * no "IPv6:") into out and return 4 or 6; else 0. */
int addr_literal(const char *domain, char *out, size_t outsz);

/* Is s (n bytes) free of invalid UTF-8: every byte past ASCII part of a
 * well-formed sequence (no overlong forms, surrogates, code points past
 * U+10FFFF or C1 controls)?  ASCII bytes are not judged.  1 or 0. */
int addr_utf8_valid(const char *s, size_t n);

/* Does the local part (unquoted text) need quoting in an SMTP path?  1 unless
 * it is a dot-atom (atext and UTF-8, dots not leading, trailing or doubled). */
int addr_needs_quotes(const char *local);

#endif
