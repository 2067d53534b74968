/* orig_queue.c - the original postoffice's control files (orig_queue.h).
 *
 * Read by the queue runner as root (the original's files are root's, mode
 * 0600); the text is the original's own output, but it is parsed strictly
 * all the same and nothing in it is passed to a shell or used as a path. */
#include "compat.h"

#include <stdlib.h>
#include <string.h>

#include "orig_queue.h"
#include "util.h"

int origq_is_control(const char *name)
{
    if (strncmp(name, "cm", 2) != 0 || strlen(name + 2) != ORIGQ_ID_LEN)
        return 0;
    return qid_valid(name + 2);
}

/* A value must hold no control character (a damaged file). */
static int clean(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)p[i] < 0x20 || p[i] == 0x7f)
            return 0;
    return 1;
}

/* "T<recipient>|<domain>": the recipient, angle brackets taken off. */
static int add_rcpt(const char *p, size_t n, struct envelope *e)
{
    const char *bar = NULL;
    for (size_t i = 0; i < n; i++)
        if (p[i] == '|')
            bar = p + i;
    if (bar)
        n = (size_t)(bar - p);
    if (n >= 2 && p[0] == '<' && p[n - 1] == '>') {
        p++;
        n -= 2;
    }
    if (n == 0 || !clean(p, n))
        return -1;
    char *a = xstrndup(p, n);
    env_add_rcpt(e, a, NULL, NULL);
    free(a);
    return 0;
}

/* One record line (without its line end). */
static int record(const char *p, size_t n, struct envelope *e, struct origq *o, int *sender)
{
    if (n == 0)
        return 0;
    switch (p[0]) {
    case 'S': /* the last temporary error: our runner makes its own */
    case 'H': /* obsolete letters, defined but unused by the original */
    case 'D':
        return 0;
    case '!':
        if (n >= 2 && p[1] == 'H')
            o->has_headers = 1;
        return 0;
    case 'F':
        if ((*sender)++ || !clean(p + 1, n - 1))
            return -1;
        free(e->sender);
        e->sender = xstrndup(p + 1, n - 1);
        return 0;
    case 'T':
        return add_rcpt(p + 1, n - 1, e);
    default:
        return -1;
    }
}

int origq_parse(const char *text, size_t len, struct envelope *e, struct origq *o,
                const char **why)
{
    size_t off = 0;
    int sender = 0, plus = 0;
    memset(o, 0, sizeof *o);
    *why = NULL;
    if (memchr(text, '\0', len))
        return *why = "a NUL byte (damaged)", -1;
    while (off < len && !plus) {
        const char *nl = memchr(text + off, '\n', len - off);
        size_t end = nl ? (size_t)(nl - text) : len, n = end - off;
        if (n && text[end - 1] == '\r')
            n--;
        if (text[off] == '+')
            plus = 1;
        else if (record(text + off, n, e, o, &sender) < 0)
            return *why = "a malformed or unknown record", -1;
        off = nl ? end + 1 : len;
    }
    if (e->nrcpts == 0)
        return *why = "no recipient", -1;
    if (o->has_headers && !plus)
        return *why = "no \"+\" line before the generated headers (incomplete)", -1;
    o->gen_off = plus ? off : len;
    o->gen_len = len - o->gen_off;
    return 0;
}
