/* vlookup.h - what a name means in a virtual domain, as far as the domain's
 * files say: its alias (VHOSTDIR/DOMAIN/aliases, vlookup_alias), its
 * account (VHOSTDIR/DOMAIN/passwd, vdomain_passwd) and the domain's "*"
 * catch-all alias.  Who calls: the expansion (expand.c) in the queue runner
 * (root) and in the SMTP session (user=, the RCPT check).
 *
 * The files may belong to an account other than root (vhosts(7)), so root
 * never parses them: when called as root the lookups run in a child that has
 * become user= (child_start) and sends its one MSG_VLOOKUP_RESULT back; any
 * other caller reads them itself. */
#ifndef PO_VLOOKUP_H
#define PO_VLOOKUP_H

#include "conf.h"

#define VLOOKUP_TIMEOUT_MS 30000

struct vlookup {
    int alias;   /* 1: name is an alias (alias_value); 0 not */
    char *alias_value;
    int user;    /* 1: name is an account of the domain's passwd file; 0 not */
    int star;    /* 1: the domain has a "*" alias (star_value); 0 not (only asked
                    when name is neither alias nor account) */
    char *star_value;
};

/* Look name (a local part, any case) up in active virtual domain domain.
 * 0 with *v filled (free with vlookup_free), or -1 with *why (malloc'd) when
 * a file exists but cannot be read, or the child failed: a temporary
 * failure. */
int vlookup_name(const struct config *c, const char *domain, const char *name,
                 struct vlookup *v, char **why);

void vlookup_free(struct vlookup *v);

/* Look key up (case-insensitively) in the aliases of virtual domain domain,
 * as the system aliases are looked up: in the database that "newaliases
 * DOMAIN" builds (VHOSTDIR/DOMAIN/aliases.db), or, while that has never been
 * built, in the text file itself (logged).  "*" is the catch-all entry.
 *   1  found; *value malloc'd (the raw list, aliases_split_list splits it)
 *   0  not there (also: no aliases file at all)
 *  -1  a file exists but cannot be read (errno)
 * Reads as the caller (vlookup_name runs it as user= when we are root). */
int vlookup_alias(const struct config *c, const char *domain, const char *key,
                  char **value);

#endif
