/* syslog_prefix.h - the prefix syslog daemons and the journal put before a
 * program's message, recognised in the usual forms, for the log summary
 * (logsum.h).  Pure parsing, no I/O. */
#ifndef PO_SYSLOG_PREFIX_H
#define PO_SYSLOG_PREFIX_H

struct syslog_prefix {
    const char *msg;     /* the message after "ident[pid]: " (inside the line) */
    char ident[64];
    int have_date;       /* month, day and hour known */
    int year;            /* 0 when the format has none (RFC 3164) */
    int mon, mday, hour; /* 1-12, 1-31, 0-23 */
};

/* Find the prefix of one line (no newline) in any of: RFC 3164 ("<PRI>" or
 * not: "Dec  7 11:52:01 host ident[pid]: "), Debian's rsyslog (that, or an
 * RFC 3339 time first), RFC 5424 ("<PRI>1 TIME HOST APP PROCID MSGID SD MSG",
 * a BOM before MSG skipped), journalctl's short and short-iso output, and the
 * bare "ident: " / "ident[pid]: " of a foreground daemon's stderr.  0 with p
 * filled, or -1 (none of these). */
int syslog_prefix_parse(const char *line, struct syslog_prefix *p);

/* Is ident one of postoffice's (its personalities and processes)?  1 or 0. */
int syslog_ident_ours(const char *ident);

#endif
