/* smtp_reply.c - the SMTP client's reply parser (see smtp_reply.h).
 * No I/O; runs wherever the client runs (unprivileged). */
#include "compat.h"

#include <stdlib.h>

#include "smtp_reply.h"
#include "util.h"

void smtp_reply_init(struct smtp_reply *r)
{
    r->code = 0;
    r->done = 0;
    sl_init(&r->lines);
}

void smtp_reply_free(struct smtp_reply *r)
{
    sl_free(&r->lines);
    smtp_reply_init(r);
}

int smtp_reply_line(struct smtp_reply *r, const char *line, size_t len, const char **why)
{
    if (r->done) {
        *why = "reply already complete";
        return -1;
    }
    if (len < 3 || line[0] < '2' || line[0] > '5' || line[1] < '0' || line[1] > '5' ||
        line[2] < '0' || line[2] > '9') {
        *why = "reply line does not start with a valid 3-digit code";
        return -1;
    }
    int code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
    if (r->code && code != r->code) {
        *why = "reply code changes inside a multi-line reply";
        return -1;
    }
    if (len > 3 && line[3] != ' ' && line[3] != '-') {
        *why = "reply code not followed by a space or '-'";
        return -1;
    }
    if (r->lines.n >= SMTPC_LINES_MAX) {
        *why = "too many lines in one reply";
        return -1;
    }
    r->code = code;
    sl_add_owned(&r->lines, len > 4 ? str_sanitize(line + 4, len - 4) : xstrdup(""));
    if (len > 3 && line[3] == '-')
        return 1;
    r->done = 1;
    return 0;
}

/* Does s start with an enhanced status code "C.D{1,3}.D{1,3}" of class cls
 * followed by a space or the end?  Returns its length or 0. */
static size_t enh_len(const char *s, int cls)
{
    size_t i = 0;
    if (s[0] != cls || s[1] != '.')
        return 0;
    i = 2;
    for (int part = 0; part < 2; part++) {
        size_t st = i;
        while (s[i] >= '0' && s[i] <= '9' && i - st < 4)
            i++;
        if (i == st || i - st > 3)
            return 0;
        if (part == 0) {
            if (s[i] != '.')
                return 0;
            i++;
        }
    }
    return s[i] == ' ' || s[i] == '\0' ? i : 0;
}

char *smtp_reply_status(const struct smtp_reply *r)
{
    struct buf b;
    buf_init(&b);
    int cls = '0' + r->code / 100;
    const char *first = r->lines.n ? r->lines.v[0] : "";
    size_t el = enh_len(first, cls);
    if (el)
        buf_add(&b, first, el);
    else
        buf_addf(&b, "%c.0.0", cls);
    buf_addf(&b, " %d", r->code);
    for (size_t i = 0; i < r->lines.n; i++) {
        const char *t = r->lines.v[i];
        size_t tl = enh_len(t, cls);
        t += tl;
        while (*t == ' ')
            t++;
        if (!*t)
            continue;
        buf_adds(&b, i && b.len ? "; " : " ");
        buf_adds(&b, t);
        if (b.len > SMTPC_TEXT_MAX) {
            buf_truncate(&b, SMTPC_TEXT_MAX);
            buf_adds(&b, "...");
            break;
        }
    }
    char *st = buf_steal(&b);
    buf_free(&b); /* buf_steal leaves an empty buffer behind */
    return st;
}
