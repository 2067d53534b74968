/* msgid_peek.c - the Message-ID of a message being queued (msgid_peek.h). */
#include "compat.h"

#include <stdlib.h>

#include "headers.h"
#include "msgid_peek.h"
#include "util.h"

char *msgid_of(const char *msg, size_t len)
{
    struct hdr_info hi;
    hdr_scan(msg, len, &hi);
    return hdr_get(msg, hi.hdr_len, "Message-ID");
}

char *msgid_peek(const struct spool_new *sn)
{
    char *p = xmalloc(MSGID_PEEK_MAX);
    ssize_t got = spool_new_pread(sn, p, MSGID_PEEK_MAX, 0);
    char *id = got > 0 ? msgid_of(p, (size_t)got) : NULL;
    free(p);
    return id;
}
