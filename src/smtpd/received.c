/* received.c - the Received: trace header (RFC 5321 4.4, RFC 5322 3.6.7). */
#include "compat.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "date.h"
#include "received.h"

/* A token from the client, made safe for a header: printable ASCII only,
 * no parentheses or semicolon that would change the header's structure. */
static void add_token(struct buf *out, const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        buf_addc(out, c > 0x20 && c < 0x7f && !strchr("();\\", c) ? c : '?');
    }
}

void received_format(const struct received_info *ri, struct buf *out)
{
    buf_adds(out, "Received: from ");
    add_token(out, ri->helo && *ri->helo ? ri->helo : "unknown");
    if (ri->ip && *ri->ip) {
        buf_adds(out, " (");
        if (ri->ptr)
            buf_addf(out, "%s ", ri->ptr);
        buf_addf(out, "[%s])", ri->ip);
    } else if (ri->local_user) {
        buf_adds(out, " (user ");
        add_token(out, ri->local_user);
        buf_adds(out, ")");
    }
    if (ri->tls && *ri->tls) {
        /* a comment (RFC 5322 3.2.2): printable text, its parentheses paired */
        buf_adds(out, "\n\t(using ");
        for (const char *p = ri->tls; *p; p++)
            buf_addc(out, *p >= 0x20 && *p < 0x7f && *p != '\\' ? *p : '?');
        buf_adds(out, ")");
    }
    buf_addf(out, "\n\tby %s (postoffice %s) with %s id %s", ri->by, PO_VERSION,
             ri->with, ri->qid);
    if (ri->for_rcpt) {
        buf_adds(out, "\n\tfor <");
        add_token(out, ri->for_rcpt);
        buf_adds(out, ">");
    }
    buf_adds(out, ";\n\t");
    date_rfc5322(ri->when, out);
    buf_adds(out, "\n");
}
