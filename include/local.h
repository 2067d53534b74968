/* local.h - local delivery: a mailbox, a program, a file; each in a child
 * process running as the identity the target belongs to.
 *
 * Runs as root only in the parent, to fork and change identity; everything
 * that touches the mailbox or the message runs in the child after privs_become. */
#ifndef PO_LOCAL_H
#define PO_LOCAL_H

#include "conf.h"
#include "envelope.h"
#include "msgout.h"

enum deliv_result { DELIV_OK = 0, DELIV_DEFER = 1, DELIV_FAIL = 2 };

struct local_job {
    int kind;              /* T_MBOX, T_PIPE, T_FILE (expand.h) */
    const char *dest;      /* mbox: user name; pipe: command; file: absolute path */
    const char *user;      /* identity to run as; NULL = config user= */
    const char *rcpt;      /* the address being delivered (Delivered-To, RECIPIENT) */
    const char *sender;    /* envelope sender ("" = <>) */
    struct msgdata data;   /* the queued message (spool_data(): the locked queue
                              file; the child inherits it, nobody closes it) */
    const char *qid;
    long timeout_ms;       /* bound on the whole delivery; 0 = LOCAL_TIMEOUT_MS.
                              A program still running then is killed (DEFER). */
};

#define LOCAL_TIMEOUT_MS 600000L /* ten minutes, as sendmail's local mailer */

/* Deliver one job.  *status gets a malloc'd "X.Y.Z text" (enhanced status code
 * first) describing the outcome in either case.  Identity: T_MBOX the mailbox
 * owner (j->user, or the account named j->dest); T_PIPE/T_FILE j->user, or
 * config user= when NULL.  Never delivers as uid 0 (DELIV_FAIL "5.7.1 refusing
 * to deliver as root"); when not running as root only to ourselves
 * (DELIV_DEFER "4.3.0 delivery to USER needs the queue runner to run as root").
 * Forks one child and waits for it (waitpid on that pid only). */
enum deliv_result local_deliver(const struct config *c, const struct local_job *j,
                                char **status);

/* One message of a batch for one mailbox (local_deliver_mbox_batch). */
struct local_mjob {
    const char *rcpt;      /* Delivered-To */
    const char *sender;    /* envelope sender ("" = <>) */
    struct msgdata data;   /* the queued message (spool_data(): the locked queue
                              file's descriptor, inherited by the child) */
    const char *qid;
    enum deliv_result res; /* out */
    char *status;          /* out: malloc'd "X.Y.Z text" */
};

/* Deliver n messages into the mailbox of account user (the T_MBOX rules of
 * local_deliver): one child, one lock, one fsync for all of them, a result for
 * each.  What makes a burst of mail for one mailbox cost one flush instead of
 * one per message. */
void local_deliver_mbox_batch(const struct config *c, const char *user,
                              struct local_mjob *jobs, size_t n);

/* The mbox path for user under c->mailspool. */
char *local_mbox_path(const struct config *c, const char *user);

#endif
