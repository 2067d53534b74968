/* envelope.c - a queued message's envelope: sender, recipients, their states. */
#include "compat.h"

#include <stdlib.h>
#include <string.h>

#include "envelope.h"
#include "util.h"

void env_init(struct envelope *e)
{
    memset(e, 0, sizeof *e);
    e->sender = xstrdup("");
}

static void rcpt_free(struct rcpt *r)
{
    free(r->addr);
    free(r->orig);
    free(r->owner);
    free(r->status);
    free(r->remote_mta);
}

void env_free(struct envelope *e)
{
    for (size_t i = 0; i < e->nrcpts; i++)
        rcpt_free(&e->rcpts[i]);
    free(e->rcpts);
    free(e->sender);
    free(e->client_name);
    free(e->client_addr);
    free(e->helo);
    free(e->local_user);
    free(e->quarantine);
    memset(e, 0, sizeof *e);
}

int rcpt_is_target(const struct rcpt *r)
{
    const char *a = r->addr;
    return (a[0] == '\\' || a[0] == '|' || a[0] == '/') && r->orig &&
           strcmp(r->orig, a) != 0;
}

size_t env_add_rcpt(struct envelope *e, const char *addr, const char *orig,
                    const char *owner)
{
    e->rcpts = xreallocarray(e->rcpts, e->nrcpts + 1, sizeof *e->rcpts);
    struct rcpt *r = &e->rcpts[e->nrcpts];
    memset(r, 0, sizeof *r);
    r->addr = xstrdup(addr);
    r->orig = orig ? xstrdup(orig) : NULL;
    r->owner = owner ? xstrdup(owner) : NULL;
    r->state = RS_PENDING;
    return e->nrcpts++;
}

void env_set_status(struct envelope *e, size_t i, const char *status)
{
    if (i >= e->nrcpts)
        return;
    /* copy before freeing: status may be the recipient's own string */
    char *copy = status ? xstrdup(status) : NULL;
    free(e->rcpts[i].status);
    e->rcpts[i].status = copy;
}

size_t env_pending(const struct envelope *e)
{
    size_t n = 0;
    for (size_t i = 0; i < e->nrcpts; i++)
        if (e->rcpts[i].state == RS_PENDING)
            n++;
    return n;
}

int qid_valid(const char *s)
{
    static const char ok[] =
        "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    size_t n = strlen(s);
    return n > 0 && n < QID_MAX && strspn(s, ok) == n;
}
