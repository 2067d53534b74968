/* av_scan.h - the av= message scanner: an external program judges a message.
 *
 * The program (av=PROGRAM [ARGS], or configure --with-av) gets the message on
 * its standard input as a local delivery would: an mbox "From SENDER DATE"
 * line, then the headers and body with LF line ends.  It runs without a shell
 * (argv is av= split on spaces and tabs; no address is ever in argv), never as
 * root (a root caller runs it as user=), with stdout and stderr captured and
 * nothing else inherited, in its own process group, killed when av-timeout=
 * passes.  Its exit status decides:
 *   0                       clean
 *   75 (EX_TEMPFAIL), or it could not be run (126/127), died of a signal or
 *                           timed out: the scan failed; the caller answers
 *                           with a temporary refusal
 *   anything else           flagged: the caller applies spam= (verdict.h)
 *                           with the program's output as the diagnostic
 * Callers: the SMTP session at the end of DATA (before the 250) and the
 * sendmail front end before it queues a message. */
#ifndef PO_AV_SCAN_H
#define PO_AV_SCAN_H

#include "conf.h"
#include "message_out.h"
#include "util.h"

#define AV_OUTPUT_MAX 4096 /* program output kept; the rest is read and dropped */

enum av_result { AV_CLEAN = 0, AV_FLAGGED = 1, AV_FAILED = -1 };

/* Scan message d (sender "" for <>) with c->av.  AV_FLAGGED: out holds the
 * program's output (at most AV_OUTPUT_MAX bytes, raw: sanitize before use);
 * AV_FAILED: out holds why, for the log.  c->av must be set. */
enum av_result av_scan(const struct config *c, const struct msgdata *d, const char *sender,
                       struct buf *out);

#endif
