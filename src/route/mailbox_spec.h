/* mailbox_spec.h - what the mailbox= option says about where a local user's
 * mail goes (postoffice.cf(5) "mailbox="):
 *
 *   unset                  the mail spool, MAILSPOOL/USER (mbox)
 *   a path                 an mbox file, from a template
 *   a path ending in "/"   a maildir, from a template
 *   lmtp:unix:/PATH        an LMTP server on a unix socket
 *   lmtp:[HOST]:PORT       an LMTP server over TCP (HOST:PORT, [v6]:PORT)
 *
 * Templates expand "%u" (the user name), "%d" (the domain: our hostname for
 * local users, the virtual domain for virtual users), "%h" (the home
 * directory), "%%" (a "%"), and a leading "~/" (the home directory).  A
 * template must be absolute or start with "~/".  Who calls: conf.c to check a
 * value, the queue runner to pick a delivery path; as any uid; parsing reads
 * no file.  Fails by returning -1 and a malloc'd reason that names the
 * problem. */
#ifndef PO_MAILBOX_SPEC_H
#define PO_MAILBOX_SPEC_H

enum mailbox_kind { MB_SPOOL, MB_MBOX, MB_MAILDIR, MB_LMTP };

struct mailbox_spec {
    enum mailbox_kind kind;
    char *template;  /* MB_MBOX, MB_MAILDIR: the path template (maildir: ends in "/") */
    char *lmtp_unix; /* MB_LMTP over a unix socket: its absolute path, else NULL */
    char *lmtp_host; /* MB_LMTP over TCP: the host (no brackets), else NULL */
    char *lmtp_port; /* MB_LMTP over TCP: the port, as written */
};

/* Parse value (NULL or "" = MB_SPOOL).  0, or -1 with *why set (malloc'd). */
int mailbox_spec_parse(const char *value, struct mailbox_spec *out, char **why);

void mailbox_spec_free(struct mailbox_spec *s);

/* Expand template for one user: a malloc'd absolute path, or NULL with *why
 * set (malloc'd) when the template needs a home directory and home is NULL or
 * not absolute, or when user or domain holds a "/" or is "." or "..", which
 * would leave the directory the template names. */
char *mailbox_spec_expand(const char *template, const char *user, const char *domain,
                          const char *home, char **why);

#endif
