/* envelope.h - a queued message's envelope: sender, recipients and their states.
 *
 * This is the in-memory form of a control file (queue_records.h reads and writes it). */
#ifndef PO_ENVELOPE_H
#define PO_ENVELOPE_H

#include <stddef.h>
#include <time.h>

#define QID_MAX 32 /* queue ids are [0-9A-Za-z], shorter than this */

enum rcpt_state {
    RS_PENDING = 0, /* not delivered yet (possibly deferred: see status) */
    RS_DONE,        /* delivered */
    RS_FAILED,      /* permanently failed; a bounce is (or was) owed */
    RS_BOUNCED      /* failed and the bounce has been queued */
};

/* Where a recipient came from, which decides the identity its program/file
 * deliveries run as. */
struct rcpt {
    char *addr;    /* address (user@domain, or user), "|command" or "/file" */
    char *orig;    /* the envelope recipient it was expanded from (DSN Original-Recipient) */
    char *owner;   /* local user whose .forward produced a |command or /file target;
                      NULL: the aliases file (runs as the unprivileged user) */
    enum rcpt_state state;
    int notify;    /* DSN NOTIFY bits (DSN_*), 0 = default (failure) */
    char *status;  /* last result: "X.Y.Z text" (enhanced code first), or NULL */
    char *remote_mta; /* the host that gave the last answer, or NULL */
};

#define DSN_NEVER   1
#define DSN_SUCCESS 2
#define DSN_FAILURE 4
#define DSN_DELAY   8

#define ENV_BOUNCE    0x01 /* this message is itself a bounce (sender <>) */
#define ENV_8BIT      0x02 /* BODY=8BITMIME */
#define ENV_SMTPUTF8  0x04 /* SMTPUTF8 requested */
#define ENV_WARNED    0x08 /* the "delayed" notice was sent */
#define ENV_RET_HDRS  0x10 /* DSN RET=HDRS */
#define ENV_DOUBLE    0x20 /* a bounce of a bounce (to the postmaster): never bounced again */

struct envelope {
    char qid[QID_MAX];
    char *sender;       /* "" for the null sender <> (malloc'd, env_init sets "";
                           free it before replacing it) */
    time_t ctime;       /* when it was queued */
    time_t next_try;    /* earliest next attempt (back-off); 0 = now */
    int attempts;       /* delivery attempts so far */
    int flags;          /* ENV_* */
    char *client_name;  /* who handed it to us (PTR name / "localhost"), or NULL */
    char *client_addr;  /* their IP address, or NULL for local submission */
    char *helo;         /* HELO/EHLO argument or NULL */
    char *local_user;   /* submitting local user (sendmail front end) or NULL */
    struct rcpt *rcpts;
    size_t nrcpts;
};

/* Is s a well-formed queue id ([0-9A-Za-z], 1 to QID_MAX-1 characters)?  Checked
 * before any id from a file, a pipe or the command line becomes part of a path. */
int qid_valid(const char *s);

/* Is r a final target an expansion wrote ("|command", "/file", "\\user", or
 * "\\user@domain": a virtual user's mailbox, vhosts(7)) from the aliases, a
 * .forward or forbidden=folder:?  Only when it came from another
 * address (orig set and different): an envelope recipient that merely starts
 * with | or / (refused at every way in, but possibly in a queue written by an
 * older version, or sent as RCPT TO:<|cmd@x>) is an address, never run. */
int rcpt_is_target(const struct rcpt *r);

void env_init(struct envelope *e);
void env_free(struct envelope *e);
/* Append a recipient (copies the strings; orig/owner may be NULL).  Returns its index. */
size_t env_add_rcpt(struct envelope *e, const char *addr, const char *orig,
                    const char *owner);
/* Set the status text of recipient i (copied; NULL clears). */
void env_set_status(struct envelope *e, size_t i, const char *status);
/* Number of recipients still RS_PENDING. */
size_t env_pending(const struct envelope *e);

#endif
