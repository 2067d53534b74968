/* audit.h - mailaudit(5) records: one syslog line per SMTP command when the
 * audit option (or -a) is on. */
#ifndef PO_AUDIT_H
#define PO_AUDIT_H

#include "conf.h"

/* Log "AUDIT:SECS:CLIENT:CMD :CODE:INFO" (see mailaudit(5)) if c->audit.
 * start_ms is the session's start (now_ms()), cmd at most 4 characters are
 * used, info is sanitised (may be NULL). */
void audit_record(const struct config *c, long long start_ms, const char *client,
                  const char *cmd, int code, const char *info);

#endif
