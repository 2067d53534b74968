/* lmtp.h - local users' mailbox deliveries over LMTP (RFC 2033) to a server
 * such as dovecot's lmtp, which then does the final write (its sieve, quotas
 * and indexes): mailbox=lmtp:unix:/PATH or mailbox=lmtp:[HOST]:PORT
 * (mailbox_spec.h), or, for one virtual domain, its file VHOSTDIR/DOMAIN/lmtp
 * holding such a value (vhosts(7)).
 *
 * One session per server carries every message of a queue-runner group: one
 * transaction per message (LHLO once; MAIL FROM with SIZE= and BODY=8BITMIME
 * when offered, an RCPT per recipient, DATA, the text through message_out.h,
 * CRLF and dot-stuffed), pipelined when the server offers PIPELINING, and
 * after the dot one reply per accepted recipient, each that recipient's own
 * result.  The name sent in RCPT TO is the mailbox's: the account name for
 * a local user ("alice", which dovecot's LMTP takes without a domain and
 * looks up as it stands), "name@domain" for a virtual user.
 *
 * Who calls: the queue runner (queue_run.c), as root or as the queue owner.
 * lmtp_wanted only looks whether a domain's file exists (lstat).
 * lmtp_deliver forks one child (per LMTP_JOBS_MAX jobs) that becomes user=
 * - never root - before it reads a domain's file, connects, or reads a reply;
 * the parent only reads the child's checked results.  Every step is bounded:
 * connect-timeout= for the connect, the SMTP client's waits (timeout=,
 * smtp_conn.h) for each reply, SMTPC_LINE_MAX per reply line, LMTP_BUDGET_MS
 * for starting new transactions and LMTP_DEADLINE_MS for the whole child.
 *
 * How it fails: never by losing a recipient.  Each job gets a result and a
 * status ("X.Y.Z CODE text" with the server's own text for its answers):
 * 2xx delivered, 5xx failed (bounced), anything else deferred.  A server that
 * cannot be reached, breaks off or times out defers every job it has not
 * answered yet (4.4.x, naming the server and why); one that went quiet after
 * the message text may have delivered it (the next run repeats it, as RFC
 * 5321 6.1 prefers).  A bad domain file defers that domain's jobs (4.3.5);
 * so does a virtual domain no longer active in domains.cf (4.3.0, checked
 * as for a mailbox file, vmailbox.h). */
#ifndef PO_LMTP_H
#define PO_LMTP_H

#include <stddef.h>

#include "conf.h"
#include "local.h"
#include "message_out.h"
#include "smtp_conn.h"

#define LMTP_JOBS_MAX 200            /* jobs per child: its report stays small */
#define LMTP_STATUS_MAX 512          /* a status as reported, at most */
#define LMTP_BUDGET_MS 600000L       /* no new transaction after ten minutes */
#define LMTP_DEADLINE_MS 1800000L    /* the child is killed after 30 minutes */
#define LMTP_FILE_MAX 4096           /* a domain's lmtp file, at most */

struct lmtp_job {
    const char *rcpt;      /* sent in RCPT TO: "alice" or "joe@virtual.example" */
    char *domfile;         /* the virtual domain's lmtp file (lmtp_wanted), or NULL: mailbox= */
    const char *sender;    /* envelope sender ("" = <>) */
    struct msgdata data;   /* the queued message (the locked queue file's descriptor) */
    const char *qid;
    const void *msg;       /* jobs with the same msg are one message: one transaction */
    enum deliv_result res; /* out */
    char *status;          /* out: malloc'd "X.Y.Z ..." */
    char *relay;           /* out: malloc'd "lmtp:unix:/PATH" or "lmtp:[HOST]:PORT", for the log */
};

/* Does box (a mailbox target: a local account name, or "name@domain" for a
 * virtual user) get its mail over LMTP?  1: yes, and *domfile is the
 * malloc'd path of the virtual domain's lmtp file when it has one (it
 * decides, whatever mailbox= says), else NULL (mailbox= names an LMTP
 * server); 0: no (*domfile NULL). */
int lmtp_wanted(const struct config *c, const char *box, char **domfile);

/* Deliver jobs[0..n-1] (out fields set for every one), grouped by server
 * and message, jobs of one message next to each other or not.  verbose
 * prints the dialogue on stderr (runq -v). */
void lmtp_deliver(const struct config *c, struct lmtp_job *jobs, size_t n, int verbose);

/* ---- the parts, for the unit tests ---- */

/* What a reply code means for a recipient: 2xx DELIV_OK, 5xx DELIV_FAIL,
 * anything else DELIV_DEFER. */
enum deliv_result lmtp_result_of(int code);

/* The session on a connected k (fd set, relay named, no TLS) for jobs that
 * all go to this server: greeting, LHLO, a transaction per message, QUIT.
 * Starts no transaction after budget_end (a now_ms() value).  Every job gets
 * res and status (relay is left to the caller); k's connection is closed at
 * the end.  SIGPIPE must be ignored. */
void lmtp_session(struct smtp_conn *k, struct lmtp_job *jobs, size_t n, long long budget_end);

/* The value of a domain's lmtp file text (one "lmtp:..." line; "#" comment
 * lines and blank lines skipped; surrounding blanks ignored; no blank or
 * control byte inside): malloc'd, or NULL with *why (malloc'd) saying what
 * is wrong. */
char *lmtp_file_value(const char *text, size_t len, char **why);

#endif
