/* logsum.h - postoffice -bS: a summary of the event log (postoffice-log(5)),
 * what pflogsumm and eximstats give: messages received, delivered, deferred,
 * bounced, rejected (by reason), bytes, top senders, recipients and domains,
 * per-day and per-hour counts, delivery delays.
 *
 * Reads syslog files or stdin as the invoking user (no privilege, no
 * configuration).  Each line's syslog prefix is recognised (syslog_prefix.h), lines
 * of other programs and lines of ours that are not event lines (logfmt.h) are
 * skipped.  Lines longer than LS_LINE_MAX are skipped; memory grows with the
 * number of distinct queue ids, addresses and reasons in the input. */
#ifndef PO_LOGSUM_H
#define PO_LOGSUM_H

#include <stdio.h>

#include "util.h"

#define LS_LINE_MAX 65536
#define LS_TOP 10

struct logsum;
struct logsum *ls_new(void);
/* Account one input line (no newline). */
void ls_line(struct logsum *s, const char *line);
/* Print the summary with top lists of top entries. */
void ls_report(const struct logsum *s, FILE *out, size_t top);
void ls_free(struct logsum *s);

/* -bS FILE...: summarise the files ("-" or none: stdin) on out.  0, or
 * EX_NOINPUT when a file cannot be read (said on stderr). */
int logsum_main(const struct strlist *files, FILE *out);

#endif
