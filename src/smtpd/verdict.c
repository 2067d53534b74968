/* verdict.c - the forbidden= and spam= actions (verdict.h).  Runs unprivileged. */
#include "compat.h"

#include <stdlib.h>
#include <string.h>

#include "address.h"
#include "log.h"
#include "privs.h"
#include "route.h"
#include "vdomain.h"
#include "verdict.h"

const struct action *verdict_action(const struct config *c, enum verdict_kind kind)
{
    return kind == VERDICT_SPAM ? &c->spam : &c->forbidden;
}

int verdict_refuses(const struct config *c, enum verdict_kind kind)
{
    return verdict_action(c, kind)->what == ACT_BOUNCE;
}

char *verdict_diag(const char *diag)
{
    size_t n = strlen(diag);
    if (n > VERDICT_DIAG_MAX)
        n = VERDICT_DIAG_MAX;
    char *raw = xmalloc(n + 1);
    for (size_t i = 0; i < n; i++) /* line breaks of program output: spaces */
        raw[i] = (unsigned char)diag[i] < 0x20 || diag[i] == 0x7f ? ' ' : diag[i];
    raw[n] = '\0';
    char *t = str_sanitize(raw, n); /* 8-bit bytes as \xHH */
    free(raw);
    char *s = str_trim(t);
    char *r = xstrdup(*s ? s : "flagged");
    free(t);
    return r;
}

char *verdict_refusal(const struct config *c, enum verdict_kind kind, const char *diag)
{
    const struct action *a = verdict_action(c, kind);
    return verdict_diag(a->text && *a->text ? a->text : diag);
}

void verdict_header(const char *diag, struct buf *hdr)
{
    char *t = verdict_diag(diag);
    buf_addf(hdr, "X-Spam: %s\n", t);
    free(t);
}

char *verdict_folder(const struct config *c, enum verdict_kind kind, const char *addr,
                     char **owner)
{
    const struct action *a = verdict_action(c, kind);
    const char *folder = a->folder;
    char *local = NULL, *domain = NULL, *path = NULL;
    struct ident id;
    *owner = NULL;
    if (a->what != ACT_FOLDER || !folder)
        return NULL;
    addr_split(addr, &local, &domain);
    memset(&id, 0, sizeof id);
    /* virtual domains' users are never redirected (vhosts(7)) */
    if ((!domain || (route_is_local_domain(c, domain) && !vdomain_active(c, domain))) &&
        privs_lookup(local, &id) == 0) {
        /* root's mail is never redirected (files are not written as root) */
        if (id.uid != 0 && folder[0] == '~' && id.home && id.home[0] == '/')
            path = xasprintf("%s/%s", id.home, folder + 2);
        else if (id.uid != 0 && folder[0] != '~')
            path = xasprintf("%s/%s:%s", c->mailspool, id.name, folder);
        if (path)
            *owner = xstrdup(id.name);
        privs_free(&id);
    }
    free(local);
    free(domain);
    return path;
}

static void drop_rcpt(struct envelope *e, size_t i)
{
    struct rcpt *r = &e->rcpts[i];
    free(r->addr);
    free(r->orig);
    free(r->owner);
    free(r->status);
    free(r->remote_mta);
    memmove(r, r + 1, (e->nrcpts - i - 1) * sizeof *r);
    e->nrcpts--;
}

static int seen_before(const struct envelope *e, size_t i, const char *addr)
{
    for (size_t j = 0; j < i; j++)
        if (!strcmp(e->rcpts[j].addr, addr))
            return 1;
    return 0;
}

/* folder: each local account's copy goes to its folder. */
static void to_folders(const struct config *c, enum verdict_kind kind, struct envelope *e)
{
    for (size_t i = 0; i < e->nrcpts;) {
        struct rcpt *r = &e->rcpts[i];
        char *owner = NULL, *path = NULL;
        if (!rcpt_is_target(r))
            path = verdict_folder(c, kind, r->addr, &owner);
        if (path) {
            if (!r->orig)
                r->orig = r->addr;
            else
                free(r->addr);
            r->addr = path;
            free(r->owner);
            r->owner = owner;
        }
        if (seen_before(e, i, e->rcpts[i].addr))
            drop_rcpt(e, i);
        else
            i++;
    }
}

int verdict_message(const struct config *c, enum verdict_kind kind, const char *diag,
                    struct envelope *env, struct buf *hdr, struct buf *why)
{
    const struct action *a = verdict_action(c, kind);
    if (a->what == ACT_BOUNCE) {
        char *t = verdict_refusal(c, kind, diag);
        buf_reset(why);
        buf_addf(why, "5.7.1 message refused: %s", t);
        free(t);
        return 554;
    }
    verdict_header(diag, hdr);
    if (a->what == ACT_FOLDER)
        to_folders(c, kind, env);
    return 0;
}
