/* mailq.h - listing the queue (mailq, -bp; -v adds the queue's shape).
 *
 * Called by the command line (main.c) as whoever runs it: root and the queue
 * owner can read the queue, anyone else gets EX_NOPERM.  Changes nothing. */
#ifndef PO_MAILQ_H
#define PO_MAILQ_H

#include <stdio.h>
#include <time.h>

#include "conf.h"

#define MAILQ_SHAPE 1 /* after the listing, the counts by domain and age (queue_shape.h) */

/* Print the queue to out (format: mailq(1)): a title line, each message with
 * its state, attempts and pending recipients, the maildrop's submissions
 * waiting for pickup, the original postoffice's messages, set-aside files,
 * and a total line; "Mail queue is empty" alone when there is nothing.
 * Ages and the next attempt are judged against now (time(NULL) but in tests).
 * flags: MAILQ_*.  Returns 0 or a sysexits code (EX_NOPERM when the queue
 * cannot be read by the caller, EX_OSFILE when it is missing, with a message
 * on stderr). */
int mailq_print(const struct config *c, FILE *out, time_t now, int flags);

#endif
