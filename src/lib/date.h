/* date.h - the one place dates are formatted for mail: RFC 5322 (Date:,
 * Received:, delivery reports) and the asctime layout (the mbox "From "
 * line, mailq).  Local time, English names whatever the locale.
 *
 * Pure functions, any process and uid.  A time localtime_r cannot convert
 * (far outside the calendar) is written as the epoch in UTC rather than
 * guessed, and the function returns -1. */
#ifndef PO_DATE_H
#define PO_DATE_H

#include <time.h>

#include "util.h"

/* Append "Sat, 21 Nov 2026 23:20:59 +0000" (numeric zone, day not
 * zero-padded).  0, or -1 if t could not be converted. */
int date_rfc5322(time_t t, struct buf *out);
/* Append "Sat Nov 21 23:20:59 2026" (asctime, day space-padded, no
 * newline).  0, or -1 if t could not be converted. */
int date_asctime(time_t t, struct buf *out);

#endif
