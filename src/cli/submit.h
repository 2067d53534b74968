/* submit.h - the sendmail front end: read a message, add the missing headers,
 * queue it safely, start its delivery.
 *
 * Runs as the calling user.  Root and the spool owner write straight into the
 * queue; everyone else into the maildrop, which the daemon or runq picks up. */
#ifndef PO_SUBMIT_H
#define PO_SUBMIT_H

#include "conf.h"
#include "util.h"

struct submit_opts {
    int extract;           /* -t: recipients from To/Cc/Bcc (added to argv's) */
    int dot_ends;          /* no -i/-oi: a line holding only "." ends the input */
    int queue_only;        /* -odq: leave it for the next queue run */
    int verbose;           /* -v: deliver in the foreground, telling what happens */
    int notify;            /* -N: DSN_* bits, 0 = default */
    int ret_hdrs;          /* -R hdrs */
    const char *from;      /* -f/-r envelope sender, or NULL */
    const char *fullname;  /* -F, or NULL */
    struct strlist rcpts;  /* command-line recipients (-t adds the header's) */
};

/* Returns the process exit status (0 or a <sysexits.h> code, after one line on
 * stderr saying what is wrong).  Nothing is queued unless every recipient (the
 * command line's, then with -t the header's) is an address by
 * addr_parse_mailbox: EX_DATAERR.  A message longer than size= (counted as read,
 * LF line ends) is EX_DATAERR, a queue file system below minfree= (before, and
 * every MiB while reading) EX_TEMPFAIL; the partial queue file is removed. */
int submit_main(const struct config *c, struct submit_opts *o);

#endif
