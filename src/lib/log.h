/* log.h - syslog (facility mail) and stderr reporting.
 *
 * The log identity (program name, whether to echo to stderr) is the one piece of
 * process-wide state besides the configuration.  Any process, any uid.  Uses
 * libc only, never util.h (util reports running out of memory with die()):
 * a message that cannot be formatted for lack of memory is logged as such. */
#ifndef PO_LOG_H
#define PO_LOG_H

#include <syslog.h>

/* Open syslog as ident (LOG_PID, LOG_MAIL).  to_stderr: also print messages
 * (the foreground daemon, -v, tests).  progname is used in stderr messages. */
void log_open(const char *ident, int to_stderr);
/* The same, but syslog is connected at the first message (by then the process
 * may have dropped privileges: only for processes that already have).  An
 * SMTP session child that never logs thus leaves libc's syslog state, a page
 * shared with the daemon, untouched. */
void log_open_deferred(const char *ident, int to_stderr);
void log_set_stderr(int on);
int log_to_stderr(void);

void log_msg(int prio, const char *fmt, ...) PO_PRINTF(2, 3);
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_notice(...) log_msg(LOG_NOTICE, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARNING, __VA_ARGS__)
#define log_err(...) log_msg(LOG_ERR, __VA_ARGS__)
#define log_crit(...) log_msg(LOG_CRIT, __VA_ARGS__)

/* Print "ident: message" on stderr (always) and log it at LOG_ERR, then exit(code).
 * code is a <sysexits.h> value. */
PO_NORETURN void die(int code, const char *fmt, ...) PO_PRINTF(2, 3);
/* One line on stderr only (no syslog): user-facing diagnostics of the CLI. */
void say(const char *fmt, ...) PO_PRINTF(1, 2);

#endif
