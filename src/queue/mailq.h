/* mailq.h - listing the queue (mailq, -bp). */
#ifndef PO_MAILQ_H
#define PO_MAILQ_H

#include <stdio.h>

#include "conf.h"

/* Print the queue to out.  Returns 0 or a sysexits code (EX_NOPERM when the
 * queue cannot be read by the caller, with a message on stderr). */
int mailq_print(const struct config *c, FILE *out);

#endif
