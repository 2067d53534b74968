/* smtpd_log.h - the SMTP session's event log lines (postoffice-log(5)):
 * connect, disconnect with the command counts, one reject line per refusal
 * (every reply 4xx/5xx), queued.  Built with logfmt.h.  Called by session.c
 * and smtpd_auth.c in the session child (user=) or -bs; never fails (a line
 * that cannot be logged is lost with syslog's usual silence). */
#ifndef PO_SMTPD_LOG_H
#define PO_SMTPD_LOG_H

#include <stddef.h>

/* Who and what a line is about; NULL/"" members are left out. */
struct slog_who {
    const char *ptr, *ip;   /* the client: verified name, numeric address ("" = local) */
    const char *helo;
    const char *user;       /* authenticated or local (-bs) user */
    const char *qid;        /* the transaction's queue id once DATA began */
    const char *verb;       /* the command answered ("CONNECT" at the greeting) */
    const char *arg;        /* its argument: the path of MAIL/RCPT is read from it */
    const char *sender;     /* MAIL FROM of the transaction (NULL: none yet) */
    size_t nrcpt;           /* recipients accepted so far */
};

/* The commands of one session: counted by verb, and how many got a 2xx/3xx. */
#define SLOG_VERBS 15
struct slog_counts {
    unsigned n[SLOG_VERBS], ok[SLOG_VERBS];
};

void slog_connect(const struct slog_who *w);
/* One command line answered with code (unknown verbs count as "unknown"). */
void slog_count(struct slog_counts *k, const char *verb, int code);
/* "disconnect ... ehlo=1, mail=1, rcpt=1/2, quit=1, commands=4/5": N when all
 * succeeded, else OK/N; commands never sent are left out. */
void slog_disconnect(const struct slog_who *w, const struct slog_counts *k);
/* A refusal: code and the reply text ("X.Y.Z text"). */
void slog_reject(const struct slog_who *w, int code, const char *text);
/* A message queued: size in bytes, its Message-ID (NULL: none). */
void slog_queued(const struct slog_who *w, long long size, const char *msgid,
                 const char *proto);

#endif
