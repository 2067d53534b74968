/* sdnotify.h - the two things a systemd service needs from us, without
 * libsystemd: readiness and reload notifications (the sd_notify datagram
 * protocol) and knowing whether stderr already goes to the journal.
 *
 * Called by the daemon's master (root, before and after it serves).  Both are
 * no-ops outside systemd.  Nothing here fails in a way the caller must handle:
 * a notification that cannot be sent is logged once. */
#ifndef PO_SDNOTIFY_H
#define PO_SDNOTIFY_H

/* Send state (e.g. "READY=1", "RELOADING=1", "STOPPING=1", "STATUS=...") to
 * $NOTIFY_SOCKET (a path, or "@name" in the abstract namespace).  0 sent,
 * 1 no NOTIFY_SOCKET (not run by systemd as Type=notify), -1 error. */
int sd_notify_state(const char *state);

/* Is file descriptor 2 the journal stream systemd gave us ($JOURNAL_STREAM
 * names its device and inode)?  Then a line written to stderr and to syslog
 * would show twice in the journal.  1 or 0. */
int sd_stderr_is_journal(void);

#endif
