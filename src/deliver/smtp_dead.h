/* smtp_dead.h - addresses a remote worker could not connect to (refused,
 * unreachable, timed out), remembered so that the many messages of one queue
 * run to a dead host do not each try the connect again: they are deferred at
 * once with the remembered reason (Postfix's "dead destination", Exim's retry
 * database).  Issue 14: 100,000 messages to one dead relay host.
 *
 * An explicit cache owned by its process (remote_session.c keeps one for the
 * life of a remote worker or one-message child), never a global and never on
 * disk: a later queue run is a new process and tries again.  An entry lasts
 * SMTP_DEAD_MS at most, so a long run retries a host every SMTP_DEAD_MS.  At
 * most SMTP_DEAD_MAX entries (the one expiring first goes).  Only a failed
 * connect is remembered: a host that answers and then fails (greeting, TLS,
 * AUTH, a 4xx reply) is tried for every message.  Runs unprivileged, in the
 * remote-delivery process; nothing here fails (out of memory exits). */
#ifndef PO_SMTP_DEAD_H
#define PO_SMTP_DEAD_H

#include <stddef.h>
#include <sys/socket.h>

#define SMTP_DEAD_MS 120000 /* two minutes */
#define SMTP_DEAD_MAX 256

struct smtp_dead_entry {
    struct sockaddr_storage ss; /* address and port */
    long long until_ms;         /* forgotten at this now_ms() */
    char *err;                  /* "4.x.x text" of the failed connect */
};
/* Zero-initialise; smtp_dead_free at the end. */
struct smtp_dead {
    struct smtp_dead_entry *v;
    size_t n;
};

/* The remembered reason ss (address and port) failed, or NULL (not
 * remembered, or remembered longer than SMTP_DEAD_MS before now; such an
 * entry is dropped).  The string belongs to d, valid until its next call. */
const char *smtp_dead_find(struct smtp_dead *d, const struct sockaddr_storage *ss,
                           long long now);
/* Remember that connecting to ss failed with err at now. */
void smtp_dead_note(struct smtp_dead *d, const struct sockaddr_storage *ss, const char *err,
                    long long now);
void smtp_dead_free(struct smtp_dead *d);

#endif
