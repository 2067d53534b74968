/* logfmt.h - the one format of postoffice's event log lines (postoffice-log(5)),
 * written and read back here only.
 *
 * A line is "[QID: ]EVENT[ KEY=VALUE[, KEY=VALUE]...]": the queue id first when
 * the event belongs to a message, an event word (LF_EVENTS), then fields.  KEY
 * is [a-z0-9_]+.  A VALUE is written one of three ways:
 *   <ADDR>   an address (from=, to=, orig_to=, msgid=): '\' and '>' escaped
 *            as \\ and \>;
 *   "TEXT"   text holding a space, ',', '"', '\', '<', '=', or empty: '\' and
 *            '"' escaped as \\ and \";
 *   TOKEN    anything else, as it is.
 * In all three, bytes outside printable ASCII (0x20-0x7e) are written \xHH
 * (log lines stay ASCII, as str_sanitize's do).
 * Every value is cut to LF_VALUE_MAX bytes (then it ends in "...").  Writers
 * are any process, any uid (log.h); the reader is the summary (logsum.h) and
 * the tests. */
#ifndef PO_LOGFMT_H
#define PO_LOGFMT_H

#include <stddef.h>

#include "util.h"

#define LF_VALUE_MAX 1024
#define LF_FIELDS_MAX 48
#define LF_QID_MAX 32

/* The event words, space-separated: what the reader accepts. */
#define LF_EVENTS "connect disconnect reject queued pickup delivery bounce removed held " \
                  "released deleted"

/* ---- writing ---- */

struct logfmt {
    struct buf b;
    int nfields;
};

/* Start a line for event (one of LF_EVENTS); qid NULL or "" for none. */
void lf_begin(struct logfmt *l, const char *qid, const char *event);
/* Add KEY=VALUE as a token or quoted text; val NULL: nothing added. */
void lf_str(struct logfmt *l, const char *key, const char *val);
/* The same with a printf value. */
void lf_fmt(struct logfmt *l, const char *key, const char *fmt, ...) PO_PRINTF(3, 4);
/* Add KEY=<ADDR>; addr NULL: nothing added ("" gives <>). */
void lf_addr(struct logfmt *l, const char *key, const char *addr);
void lf_num(struct logfmt *l, const char *key, long long v);
/* msgid=<ID> from a Message-ID field's value "<ID>" (other forms are written
 * as text); NULL: nothing added. */
void lf_msgid(struct logfmt *l, const char *msgid);
/* client=NAME[IP] ("unknown" without a name); ip NULL or "": client=local. */
void lf_client(struct logfmt *l, const char *name, const char *ip);
/* Reply text "X.Y.Z text" (or just "text") of a code: code=, dsn=, reason=. */
void lf_reply(struct logfmt *l, int code, const char *text);
/* One delivery attempt of one recipient: "QID: delivery to=<TO>[, orig_to=<>],
 * relay=RELAY, delay=SECONDS, dsn=X.Y.Z, status=WORD, reason=TEXT".  status
 * is "X.Y.Z text" (the dsn is taken from it; without one: 2.0.0 for sent,
 * 4.0.0 for deferred, 5.0.0 otherwise).  word: sent, deferred, bounced or
 * expired.  Every delivery path (local, remote, and those to come) logs
 * through this, so the lines cannot drift apart. */
struct lf_delivery {
    const char *qid, *to, *orig_to, *relay, *word, *status;
    long delay;             /* whole seconds since the message was queued */
};
void lf_log_delivery(const struct lf_delivery *d);
/* Seconds from then to now for delay= (0 when the clock went back). */
long lf_delay(long long then);
/* The line so far (tests). */
const char *lf_line(const struct logfmt *l);
/* Log the line at prio (log.h) and free it. */
void lf_log(struct logfmt *l, int prio);
void lf_free(struct logfmt *l);

/* ---- reading ---- */

struct lf_field {
    const char *key;
    const char *val;    /* decoded: no quotes, brackets or escapes */
    int addr;           /* written as <ADDR> */
};

struct lf_rec {
    char qid[LF_QID_MAX];   /* "" when none */
    const char *event;
    size_t n;
    struct lf_field f[LF_FIELDS_MAX];
    char *mem;              /* owns the strings */
};

/* Parse the message part of a log line (after the syslog prefix).  0 when it
 * is one of ours (r filled; free with lf_rec_free), -1 when not (r empty). */
int lf_parse(const char *msg, struct lf_rec *r);
/* A field's value, or NULL. */
const char *lf_get(const struct lf_rec *r, const char *key);
void lf_rec_free(struct lf_rec *r);

#endif
