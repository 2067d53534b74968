/* audit.c - mailaudit(5) records for the SMTP session. */
#include "compat.h"

#include <stdlib.h>
#include <string.h>

#include "audit.h"
#include "log.h"
#include "util.h"

void audit_record(const struct config *c, long long start_ms, const char *client,
                  const char *cmd, int code, const char *info)
{
    if (!c->audit)
        return;
    long long secs = (now_ms() - start_ms) / 1000;
    char *clean = str_sanitize(info ? info : "", info ? strlen(info) : 0);
    char *who = str_sanitize(client && *client ? client : "local",
                             client && *client ? strlen(client) : 5);
    log_msg(LOG_INFO, "AUDIT:%3lld:%15s:%-4.4s:%03d:%s", secs, who, cmd, code, clean);
    free(clean);
    free(who);
}
