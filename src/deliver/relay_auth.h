/* relay_auth.h - the relay-auth= file: the user name and password postoffice
 * gives the relay host (SMTP AUTH, smtp_auth.h).
 *
 * Format (the original postoffice's style): "user:password" on one line; the
 * password is everything after the first colon (it may hold colons and
 * spaces; a CR before the line end is dropped).  Empty lines and lines
 * starting with '#' are skipped; the first other line is used, and any
 * further one is an error (there is one relay host, so one account: a second
 * line would silently never be used).  Both parts non-empty, at most 255
 * bytes, no control characters.  The file must be a regular file owned by root
 * and readable by nobody else (no group or other permission bits: chmod 600):
 * any other file is refused, with a log line, and the mail waits.
 *
 * Privileges: the file is readable by root only, and the remote-delivery
 * processes run as user=, so the privileged process that starts them reads it
 * (remote_worker.c: the queue run before it forks its workers, or the
 * process holding a message before it forks its one delivery child) and the
 * child inherits the two strings across fork().  The message module is not
 * needed: nothing crosses a process boundary except by fork, and the secret
 * never passes through a pipe or a file.  A process that is not root (runq by
 * the queue owner) cannot read the file and defers with the reason.  The
 * password never appears in a log line, a status or the verbose transcript. */
#ifndef PO_RELAY_AUTH_H
#define PO_RELAY_AUTH_H

#include <stddef.h>

#include "conf.h"

#define RELAY_CRED_MAX 255   /* longest user name or password */
#define RELAY_AUTH_FILE_MAX 65536

struct relay_cred {
    char *user, *pass; /* both set when usable */
    char *err;         /* why not: "4.3.5 relay-auth=FILE ..." (each recipient is
                          deferred with it), or NULL */
};

/* Read c->relay_auth into cr (nothing when unset or relay-host is not set:
 * cr all NULL).  On failure cr->err is set and logged (LOG_ERR). */
void relay_cred_load(const struct config *c, struct relay_cred *cr);
/* Wipe and free; cr may then be loaded again. */
void relay_cred_free(struct relay_cred *cr);

/* Every credential file a remote delivery may need: relay-auth= (with
 * relay-host=) and the auth= files of relay-map= entries (relay_map.h), each
 * read once as relay_cred_load reads relay-auth= (same checks, same format;
 * an error is kept as that file's err: "4.3.5 auth=FILE ... (relay-map
 * FILE:LINE)").  Read as root by the process that starts the remote-delivery
 * children, which inherit the set across fork(). */
struct relay_creds {
    char **path;
    struct relay_cred *v;
    size_t n;
};
/* Load into s the files the destinations of domains[0..nd-1] name (domains
 * NULL: of every entry of the map, and relay-auth=).  An unusable map loads
 * only relay-auth= (deliveries then wait for the map's reason anyway). */
void relay_creds_load(const struct config *c, const char *const *domains, size_t nd,
                      struct relay_creds *s);
/* The credentials read from path, or NULL when it was not read. */
const struct relay_cred *relay_creds_find(const struct relay_creds *s, const char *path);
void relay_creds_free(struct relay_creds *s);

/* The parsing alone (for tests): text of len bytes.  0 with *user and *pass
 * malloc'd, or -1 with *why malloc'd (names the line, never its content). */
int relay_cred_parse(const char *text, size_t len, char **user, char **pass, char **why);

#endif
