/* spare.c - the SMTP session child's start (spare.h).
 *
 * Runs unprivileged: the child becomes user= before it waits for or reads
 * anything.  spare_handover_send and spare_handover_encode are the exception:
 * the master (root) calls them to pass on what accept() returned. */
#include "compat.h"

#include <errno.h>
#include <grp.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sysexits.h>
#include <unistd.h>

#include "child.h"
#include "log.h"
#include "privs.h"
#include "session.h"
#include "spare.h"

#define HANDOVER_MAX 256 /* a numeric address and a flag */

int spare_become(const struct config *c, const struct session_user *u)
{
    if (!u || !u->ok)
        return privs_drop_to(c->user);
    if (setgroups(u->ngroups, u->groups) < 0 || setgid(u->gid) < 0 || setuid(u->uid) < 0)
        return -1;
    /* the same checks as privs_become: root cannot come back */
    if (getuid() != u->uid || geteuid() != u->uid || getgid() != u->gid ||
        getegid() != u->gid || setuid(0) == 0 || seteuid(0) == 0 ||
        (u->gid != 0 && (setgid(0) == 0 || setegid(0) == 0))) {
        errno = EPERM;
        return -1;
    }
    return 0;
}

static void refuse(int fd, const char *text)
{
    (void)send(fd, text, strlen(text), MSG_DONTWAIT | MSG_NOSIGNAL);
    close(fd);
}

/* One connection: the session, then the connection closed.  Returns the
 * session's status. */
static int serve_one(const struct spare_start *st, int fd, const struct netaddr *peer,
                     int submission, int implicit_tls)
{
    char ip[64];
    net_format(peer, ip, sizeof ip);
    child_set_title("session %s", ip);
    struct session_conn conn = { .fd = fd, .peer = peer, .submission = submission,
                                 .implicit_tls = implicit_tls, .notify_fd = st->notify_fd,
                                 .auth_fd = st->auth_fd, .tls_req = st->tls_req };
    int rc = session_run(st->c, &conn);
    close(fd);
    return rc;
}

/* The next hand-over on sock: 1 with the connection in *fd, 0 when the
 * master closed sock.  A malformed hand-over is logged and ends the process. */
static int next_conn(int sock, int *fd, struct netaddr *peer, int *submission,
                     int *implicit_tls)
{
    struct msg m;
    if (msg_recv(sock, &m, HANDOVER_MAX, 0) != 1)
        return 0; /* the master has no use for us any more */
    int ok = spare_handover_decode(&m, peer, submission, implicit_tls) == 0;
    *fd = m.fd;
    m.fd = -1; /* ours now: msg_free would close it */
    msg_free(&m);
    if (!ok) {
        log_err("spare session: a malformed hand-over from the master");
        if (*fd >= 0)
            close(*fd);
        _exit(EX_SOFTWARE);
    }
    return 1;
}

/* Serve fd, then (with sock >= 0) tell the master on sock and serve what
 * it hands over next, up to session-max-use connections.  Every session
 * starts from a fresh struct session (session_run); what the process keeps
 * between them is what it was started with (spare_start). */
static PO_NORETURN void serve(const struct spare_start *st, int sock, int fd,
                              const struct netaddr *first, int submission, int implicit_tls,
                              int became)
{
    if (!became) {
        log_err("cannot become %s: %s", st->c->user, strerror(errno));
        refuse(fd, "421 4.3.0 server configuration error; try again later\r\n");
        _exit(EX_OSERR);
    }
    /* unprivileged already: syslog can wait for a first message */
    log_open_deferred("smtpd", log_to_stderr());
    long max = st->c->session_max_use;
    struct netaddr peer = *first;
    for (long used = 1;; used++) {
        int rc = serve_one(st, fd, &peer, submission, implicit_tls);
        if (sock < 0 || (max > 0 && used >= max) || st->c->session_max_idle <= 0)
            _exit(rc);
#ifdef __GLIBC__
        /* the last client's freed buffers (a large message's) go back to
         * the system while the process waits */
        malloc_trim(0);
#endif
        /* told first, then named: whoever sees a "spare" knows that the
         * master will have heard of it before the next connection */
        if (msg_send(sock, MSG_SESSION_DONE, NULL, 0, -1) < 0)
            _exit(rc);
        child_set_title("spare");
        if (!next_conn(sock, &fd, &peer, &submission, &implicit_tls))
            _exit(rc);
    }
}

PO_NORETURN void spare_serve(const struct spare_start *st, int sock, int fd,
                             const struct netaddr *peer, int submission, int implicit_tls)
{
    int became = spare_become(st->c, st->user) == 0;
    serve(st, sock, fd, peer, submission, implicit_tls, became);
}

PO_NORETURN void spare_wait(const struct spare_start *st, int sock)
{
    int became = spare_become(st->c, st->user) == 0;
    int e = errno;
    struct netaddr peer;
    int fd = -1, submission = 0, implicit_tls = 0;
    if (!next_conn(sock, &fd, &peer, &submission, &implicit_tls))
        _exit(0);
    errno = e;
    serve(st, sock, fd, &peer, submission, implicit_tls, became);
}

#define HO_SUBMISSION 1u
#define HO_IMPLICIT_TLS 2u

void spare_handover_encode(struct buf *b, const struct netaddr *peer, int submission,
                           int implicit_tls)
{
    char ip[64];
    net_format(peer, ip, sizeof ip);
    msg_put_str(b, ip);
    msg_put_u32(b, (submission || implicit_tls ? HO_SUBMISSION : 0) |
                       (implicit_tls ? HO_IMPLICIT_TLS : 0));
}

int spare_handover_decode(const struct msg *m, struct netaddr *peer, int *submission,
                          int *implicit_tls)
{
    struct msg_reader r;
    char *ip = NULL;
    uint32_t sub = 0;
    int rc = -1;
    if (m->type != MSG_SESSION_CONN || m->fd < 0)
        return errno = EPROTO, -1;
    msg_reader_init(&r, m);
    if (msg_get_str(&r, &ip) == 0 && msg_get_u32(&r, &sub) == 0 && msg_get_end(&r) == 0 &&
        ip && net_parse(ip, peer) == 0 &&
        (sub == 0 || sub == HO_SUBMISSION || sub == (HO_SUBMISSION | HO_IMPLICIT_TLS))) {
        *submission = (sub & HO_SUBMISSION) != 0;
        *implicit_tls = (sub & HO_IMPLICIT_TLS) != 0;
        rc = 0;
    }
    free(ip);
    if (rc < 0)
        errno = EPROTO;
    return rc;
}

int spare_handover_send(int sock, int fd, const struct netaddr *peer, int submission,
                        int implicit_tls)
{
    struct buf b;
    buf_init(&b);
    spare_handover_encode(&b, peer, submission, implicit_tls);
    int rc = msg_send(sock, MSG_SESSION_CONN, b.s, b.len, fd);
    buf_free(&b);
    return rc;
}
