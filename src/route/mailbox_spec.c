/* mailbox_spec.c - parse mailbox= and expand its path templates. */
#include "compat.h"

#include <stdlib.h>
#include <string.h>

#include "mailbox_spec.h"
#include "util.h"

static int fail(char **why, const char *text, const char *value)
{
    *why = xasprintf("%s: %s", value, text);
    return -1;
}

/* "[host]:port", "host:port" or "[v6addr]:port" */
static int parse_inet(const char *v, struct mailbox_spec *out, char **why, const char *value)
{
    const char *colon;
    if (v[0] == '[') {
        const char *end = strchr(v, ']');
        if (!end || end == v + 1 || end[1] != ':')
            return fail(why, "an LMTP address is lmtp:[HOST]:PORT", value);
        out->lmtp_host = xstrndup(v + 1, (size_t)(end - v - 1));
        colon = end + 1;
    } else {
        colon = strrchr(v, ':');
        if (!colon || colon == v || memchr(v, ':', (size_t)(colon - v)))
            return fail(why, "an LMTP address is lmtp:[HOST]:PORT", value);
        out->lmtp_host = xstrndup(v, (size_t)(colon - v));
    }
    const char *port = colon + 1;
    if (!*port || strspn(port, "0123456789") != strlen(port) || atol(port) < 1 ||
        atol(port) > 65535)
        return fail(why, "the LMTP port must be a number from 1 to 65535", value);
    out->lmtp_port = xstrdup(port);
    return 0;
}

int mailbox_spec_parse(const char *value, struct mailbox_spec *out, char **why)
{
    memset(out, 0, sizeof *out);
    *why = NULL;
    if (!value || !*value)
        return 0;
    int rc;
    if (strncmp(value, "lmtp:", 5) == 0) {
        out->kind = MB_LMTP;
        const char *v = value + 5;
        if (strncmp(v, "unix:", 5) == 0) {
            if (v[5] != '/')
                return fail(why, "an LMTP socket path must be absolute", value);
            out->lmtp_unix = xstrdup(v + 5);
            return 0;
        }
        rc = parse_inet(v, out, why, value);
        if (rc < 0)
            mailbox_spec_free(out);
        return rc;
    }
    if (value[0] != '/' && strncmp(value, "~/", 2) != 0)
        return fail(why, "a mailbox template starts with / or ~/", value);
    for (const char *p = strchr(value, '%'); p; p = strchr(p + 2, '%'))
        if (!p[1] || !strchr("udh%", p[1]))
            return fail(why, "a template may use %u, %d, %h and %%", value);
    size_t n = strlen(value);
    out->kind = value[n - 1] == '/' ? MB_MAILDIR : MB_MBOX;
    out->template = xstrdup(value);
    return 0;
}

void mailbox_spec_free(struct mailbox_spec *s)
{
    free(s->template);
    free(s->lmtp_unix);
    free(s->lmtp_host);
    free(s->lmtp_port);
    memset(s, 0, sizeof *s);
}

static int component_ok(const char *s)
{
    return s && *s && !strchr(s, '/') && strcmp(s, ".") && strcmp(s, "..");
}

static int home_ok(const char *home)
{
    return home && home[0] == '/';
}

char *mailbox_spec_expand(const char *template, const char *user, const char *domain,
                          const char *home, char **why)
{
    *why = NULL;
    struct buf b;
    buf_init(&b);
    const char *p = template;
    if (strncmp(p, "~/", 2) == 0) {
        if (!home_ok(home))
            goto nohome;
        buf_adds(&b, home);
        p++;
    }
    for (; *p; p++) {
        if (*p != '%') {
            buf_addc(&b, *p);
            continue;
        }
        p++;
        if (*p == '%') {
            buf_addc(&b, '%');
        } else if (*p == 'h') {
            if (!home_ok(home))
                goto nohome;
            buf_adds(&b, home);
        } else {
            const char *v = *p == 'u' ? user : domain;
            if (!component_ok(v)) {
                *why = xasprintf("%s: %s is not a usable %s in a mailbox path", template,
                                 v ? v : "(none)", *p == 'u' ? "user name" : "domain");
                buf_free(&b);
                return NULL;
            }
            buf_adds(&b, v);
        }
    }
    return b.s;
nohome:
    *why = xasprintf("%s: %s has no absolute home directory", template, user ? user : "(none)");
    buf_free(&b);
    return NULL;
}
