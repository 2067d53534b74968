/* smtpd_log.c - the SMTP session's event log lines (smtpd_log.h).  Runs in
 * the session child as user=, or as the -bs user. */
#include "compat.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"
#include "logfmt.h"
#include "smtpd_log.h"
#include "util.h"

static const char *const verbs[SLOG_VERBS] = {
    "helo", "ehlo", "starttls", "auth", "mail", "rcpt", "data", "bdat", "rset",
    "noop", "quit", "vrfy", "expn", "help", "unknown",
};

static void who(struct logfmt *l, const struct slog_who *w)
{
    lf_client(l, w->ptr, w->ip);
    if (w->helo && *w->helo)
        lf_str(l, "helo", w->helo);
    if (w->user && *w->user)
        lf_str(l, "user", w->user);
}

void slog_connect(const struct slog_who *w)
{
    struct logfmt l;
    lf_begin(&l, NULL, "connect");
    who(&l, w);
    lf_log(&l, LOG_INFO);
}

void slog_count(struct slog_counts *k, const char *verb, int code)
{
    size_t i = 0;
    while (i < SLOG_VERBS - 1 && (!verb || strcasecmp(verbs[i], verb)))
        i++;
    k->n[i]++;
    k->ok[i] += code > 0 && code < 400;
}

static void count(struct logfmt *l, const char *key, unsigned ok, unsigned n)
{
    if (ok == n)
        lf_num(l, key, n);
    else
        lf_fmt(l, key, "%u/%u", ok, n);
}

void slog_disconnect(const struct slog_who *w, const struct slog_counts *k)
{
    struct logfmt l;
    lf_begin(&l, NULL, "disconnect");
    who(&l, w);
    unsigned n = 0, ok = 0;
    for (size_t i = 0; i < SLOG_VERBS; i++) {
        if (k->n[i])
            count(&l, verbs[i], k->ok[i], k->n[i]);
        n += k->n[i];
        ok += k->ok[i];
    }
    count(&l, "commands", ok, n);
    lf_log(&l, LOG_INFO);
}

/* The path in a MAIL/RCPT argument ("FROM:<a@b> SIZE=1" -> "a@b"), malloc'd,
 * or NULL when there is none. */
static char *arg_path(const char *arg)
{
    const char *p = arg ? strchr(arg, ':') : NULL;
    if (!p)
        return NULL;
    p += strspn(p + 1, " ") + 1;
    if (*p == '<') {
        const char *e = strchr(++p, '>');
        return xstrndup(p, e ? (size_t)(e - p) : strlen(p));
    }
    return xstrndup(p, strcspn(p, " "));
}

void slog_reject(const struct slog_who *w, int code, const char *text)
{
    struct logfmt l;
    lf_begin(&l, w->qid, "reject");
    if (w->verb)
        lf_str(&l, "cmd", w->verb);
    who(&l, w);
    int is_mail = w->verb && !strcasecmp(w->verb, "MAIL");
    int is_rcpt = w->verb && !strcasecmp(w->verb, "RCPT");
    char *path = is_mail || is_rcpt ? arg_path(w->arg) : NULL;
    if (is_mail && path)
        lf_addr(&l, "from", path);
    else
        lf_addr(&l, "from", w->sender);
    if (is_rcpt && path)
        lf_addr(&l, "to", path);
    if (w->verb && !strcasecmp(w->verb, "DATA"))
        lf_num(&l, "nrcpt", (long long)w->nrcpt);
    free(path);
    lf_reply(&l, code, text);
    lf_log(&l, LOG_NOTICE);
}

void slog_queued(const struct slog_who *w, long long size, const char *msgid,
                 const char *proto)
{
    struct logfmt l;
    lf_begin(&l, w->qid, "queued");
    lf_addr(&l, "from", w->sender ? w->sender : "");
    lf_num(&l, "size", size);
    lf_num(&l, "nrcpt", (long long)w->nrcpt);
    lf_msgid(&l, msgid);
    who(&l, w);
    lf_str(&l, "proto", proto);
    lf_log(&l, LOG_INFO);
}
