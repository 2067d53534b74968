/* received.h - the trace header a server prepends (RFC 5321 4.4). */
#ifndef PO_RECEIVED_H
#define PO_RECEIVED_H

#include <time.h>

#include "util.h"

struct received_info {
    const char *helo;       /* HELO/EHLO argument, or NULL */
    const char *ptr;        /* verified client host name, or NULL */
    const char *ip;         /* client address, or NULL (local -bs) */
    const char *local_user; /* -bs: who ran it, or NULL */
    const char *by;         /* our host name */
    const char *with;       /* protocol: SMTP, ESMTP, ESMTPS, UTF8SMTP(S) (RFC 3848) */
    const char *qid;
    const char *for_rcpt;   /* the recipient when there is exactly one, or NULL */
    const char *tls;        /* "TLSv1.3 with cipher ... (256/256 bits)", or NULL */
    time_t when;
};

/* Append "Received: from ... by ... with ... id ...; DATE\n" (folded with
 * tabs, LF line ends).  Untrusted parts (helo) are sanitised: they cannot
 * break the header. */
void received_format(const struct received_info *ri, struct buf *out);

#endif
