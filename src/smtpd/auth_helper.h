/* auth_helper.h - the privileged AUTH helper ("postoffice: auth") and how a
 * session asks it one question: is this user name and password right?
 *
 * The daemon's master starts one helper (as root) with auth_helper_start and
 * keeps the session end of its request socket (AF_UNIX SOCK_SEQPACKET) for
 * the session children, which inherit it (listener.h).  A session asks with
 * auth_helper_ask: it makes a fresh socket pair, sends MSG_AUTH_REQUEST (user,
 * password, client address; each at most AUTH_FIELD_MAX bytes) with one end
 * of the pair over the shared socket, and reads the single MSG_AUTH_RESULT on
 * the other end.  Every answer travels on its own pair, so concurrent
 * sessions cannot receive each other's answers, and the only question the
 * protocol can carry is that one (answers: AUTH_NO, AUTH_YES, AUTH_TEMP).
 *
 * The helper reads requests one at a time; each valid one is checked in a
 * checker child (root, auth_check.h; at most AUTH_CHECKERS at once, each
 * killed after AUTH_CHECK_MS) that writes the answer and exits, so a slow PAM
 * module or a crash costs one answer only.  A malformed request (wrong type,
 * size, fields, no answer socket) is logged and dropped; the helper goes on.
 * It ends when every copy of the session end is closed (the master stopped or
 * replaced it on SIGHUP, and the last session using it ended).
 *
 * ROOT: the helper and its checkers run as root; the session side
 * (auth_helper_ask) runs in the session child as user=. */
#ifndef PO_AUTH_HELPER_H
#define PO_AUTH_HELPER_H

#include <sys/types.h>

#include "auth_check.h"
#include "conf.h"
#include "msg.h"

#define AUTH_FIELD_MAX 1024      /* user name, password, client address */
#define AUTH_CHECKERS 8          /* checker children at once */
#define AUTH_CHECK_MS 20000      /* a checker's deadline */
#define AUTH_ASK_MS 30000        /* how long a session waits for its answer */

struct auth_helper {
    pid_t pid;      /* the helper, or 0 */
    int fd;         /* the session end of its request socket, or -1 */
};

/* Start the helper (in the caller's identity: root in the daemon).  in_child
 * (may be NULL) runs first in the new process to close the caller's other
 * descriptors.  0, or -1 with errno (h is then pid 0, fd -1). */
int auth_helper_start(struct auth_helper *h, const struct config *c,
                      void (*in_child)(void *), void *arg);

/* The caller's side of stopping: close the session end (the helper ends once
 * the sessions holding copies have ended).  h is then pid 0, fd -1. */
void auth_helper_release(struct auth_helper *h);

/* For -bs: the same, from the session process itself, with the helper's
 * stdin and stdout on /dev/null (it must not hold the client's pipe open);
 * auth_helper_finish then releases it and waits for it to end. */
int auth_helper_start_stdio(struct auth_helper *h, const struct config *c);
void auth_helper_finish(struct auth_helper *h);

/* Session side: ask helper socket fd.  AUTH_TEMP when the helper cannot be
 * reached or does not answer within AUTH_ASK_MS (logged). */
enum auth_verdict auth_helper_ask(int fd, const char *user, const char *pass,
                                  const char *client);

/* The helper's request decoder, exposed for tests: 0 with malloc'd fields,
 * or -1 (EPROTO) unless m is a MSG_AUTH_REQUEST carrying a descriptor and
 * exactly three present strings within AUTH_FIELD_MAX. */
int auth_helper_decode(const struct msg *m, char **user, char **pass, char **client);

#endif
