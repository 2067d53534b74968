/* queue_shape.h - the queue's shape for mailq -v: how many messages wait for
 * each destination domain, by age (what Postfix's qshape and Exim's exiqsumm
 * show).
 *
 * Called by mailq (mailq.h) as whoever runs it; pure bookkeeping, no I/O
 * but the printing. */
#ifndef PO_QUEUE_SHAPE_H
#define PO_QUEUE_SHAPE_H

#include <stdio.h>
#include <time.h>

#include "envelope.h"

/* Age columns, in minutes: a message younger than 5 minutes counts under "5",
 * one of 1280 minutes or more under "1280+". */
#define SHAPE_NBUCKETS 10

struct shape;

/* An empty shape; ages are counted from now. */
struct shape *shape_new(time_t now);
/* Count message e (queued at e->ctime) once in TOTAL and once for each
 * domain of its pending recipients ("(local)" for a bare user name, a program
 * or a file). */
void shape_add(struct shape *s, const struct envelope *e);
/* Count a message whose recipients are not known (maildrop, unreadable)
 * under the row named row, since the time since. */
void shape_add_other(struct shape *s, const char *row, time_t since);
/* The bucket (0 .. SHAPE_NBUCKETS-1) for something waiting since then. */
int shape_bucket(time_t now, time_t since);
/* Print the table: a title row, TOTAL, then one row per domain, most
 * messages first (then by name).  Domain names are printed through
 * str_sanitize (they came from the network).  Sorts s's entries (the counts
 * stay: it may be printed again). */
void shape_print(struct shape *s, FILE *out);
void shape_free(struct shape *s);

#endif
