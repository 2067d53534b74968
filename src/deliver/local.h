/* local.h - local delivery: a mailbox, a program, a file; each in a child
 * process running as the identity the target belongs to.
 *
 * Runs as root only in the parent, to fork and change identity, and for a
 * spool mailbox to open, lock and (when the writer died) truncate it
 * (mbox.h); everything that reads the message or a user's file runs in the
 * child after privs_become. */
#ifndef PO_LOCAL_H
#define PO_LOCAL_H

#include "conf.h"
#include "envelope.h"
#include "message_out.h"

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
 * first) describing the outcome in either case.  T_MBOX: the mailbox of the
 * account named j->dest, as local_deliver_mbox_batch with one message (j->user
 * and j->timeout_ms are not used).  T_PIPE/T_FILE: as j->user, or config user=
 * when NULL; never as uid 0 (DELIV_FAIL "5.7.1 refusing to deliver as root").
 * When not running as root only to ourselves (DELIV_DEFER "4.3.0 delivery to
 * USER needs the queue runner to run as root").  Forks one child and waits for
 * it (waitpid on that pid only). */
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

/* Deliver n messages into the mailbox of account user (matched as privs_lookup
 * does), where mailbox= puts it (mailbox_place.h: the spool file named as the
 * account, an mbox or a maildir from a template; an LMTP mailbox= defers
 * 4.3.0 until LMTP delivery is built), or, when user is "name@domain", of
 * that virtual user (VSPOOL/DOMAIN/NAME, owned and written by vuser=;
 * vmailbox.h says what is checked first): one child, one lock, one fsync for
 * all of them, a result for each.  What makes a burst of mail for one mailbox
 * cost one flush instead of one per message.  An mbox in a directory root
 * owns all the way up (the spool) is opened and locked by the caller (root;
 * mbox_open: a busy one defers after MBOX_LOCK_WAIT_MS, a planted file
 * defers 4.2.0) and the child, as the owner - or as config user= for a uid 0
 * account's mailbox (DELIV_DEFER 4.3.0 when user= is unset or root) - appends
 * through the inherited descriptor; if the child dies, hangs or reports on
 * fewer messages, the mailbox is cut back to its size before the batch and
 * every message defers (4.3.0).  Any other mbox (a home directory, a virtual
 * domain's directory) is opened, locked and written by the child itself (a
 * killed one is cut back by the next delivery, from its dot-lock); a maildir
 * is written by the child (maildir.h; root only makes a missing maildir in a
 * root-owned directory).  The child reads the mailbox's limit
 * (mailbox_limits.h) and refuses what would pass it: 4.2.2, or 5.2.2 with
 * mailbox-limit-action=bounce. */
void local_deliver_mbox_batch(const struct config *c, const char *user,
                              struct local_mjob *jobs, size_t n);

/* The mbox path for user under c->mailspool. */
char *local_mbox_path(const struct config *c, const char *user);

#endif
