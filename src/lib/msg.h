/* msg.h - the one format between postoffice's processes.
 *
 * A message is a header {version, type, length} and a payload of at most
 * MSG_MAX bytes, sent with one write (one sendmsg: atomic on a SOCK_SEQPACKET
 * socket, and on a pipe up to PIPE_BUF), optionally carrying one descriptor
 * (SCM_RIGHTS, sockets only).  The payload is built from typed fields
 * (integers, length-prefixed strings) and read back with every field checked
 * for size; a short, long or unknown message is an error, never guessed at.
 * Types are listed below, one enum for the whole program, so a process can
 * tell a stray message from the one it waits for.
 *
 * Used by every process pair: master <-> session (connection hand-over),
 * session -> master (accepted queue ids), master <-> delivery workers, and
 * every child that reports a result to its parent (child.h).  Runs as any
 * uid.  Errors: -1 with errno (EPROTO: a malformed message from the peer,
 * EMSGSIZE: over the caller's limit, ETIMEDOUT: the deadline passed).
 */
#ifndef PO_MSG_H
#define PO_MSG_H

#include <stddef.h>
#include <stdint.h>

#include "util.h"

#define MSG_VERSION 1
#define MSG_MAX (256 * 1024) /* the largest payload any process sends */

enum msg_type {
    MSG_NONE = 0,
    /* add each process pair's types here, with who sends them to whom */

    /* the daemon: master -> spare session (spare.h): the connection's
     * descriptor, str client address, u32 submission */
    MSG_SESSION_CONN,
    /* session -> master (listener.h): str queue id of an accepted message */
    MSG_QUEUED,
    /* session -> master, on its hand-over socket (spare.h): no payload; the
     * connection is closed, the process waits for another MSG_SESSION_CONN */
    MSG_SESSION_DONE,
    /* master -> delivery worker (workerpool.h): str queue id */
    MSG_DELIVER,
    /* delivery worker -> master: u32 ids done in a round */
    MSG_DELIVERED,
    /* user lookup child -> master: u32 gid each, user='s groups */
    MSG_GROUPS,

    /* route: queue-runner children -> the queue runner (queue_run.c, remote_worker.c) */
    MSG_ROUTE_MX,     /* DNS child -> runq: u32 0 not here, 1 here, 2 cannot tell */
    MSG_RUNQ_DONE,    /* local-pass child -> runq: u32 RUNQ_* bits left undone */
    MSG_RWORKER_DONE, /* remote worker -> rworker_run: u32 RUNQ_* bits left undone */
    MSG_REMOTE_DONE,  /* one-message remote child -> its holder: u32 1 = it ran */

    /* children -> the process that started them (child.h), one each */
    MSG_LOCAL_RESULT,   /* mailbox/program/file child (local.c): u32 n, then n x
                           (u32 deliv_result, str status) */
    MSG_FORWARD_RESULT, /* .forward reader, as the user (forward.c): i64 verdict
                           (FWD_*), str why or absent, u32 n, n x str entry */
    MSG_BOUNCE_RESULT,  /* bounce composer, as user= (bounce.c): i64 rc (0/-1),
                           i64 errno, str new queue id */
    MSG_WRAP_RESULT,    /* tcp-wrappers check (tcp_wrappers.c): u32 1 allowed, 0 denied,
                           2 libwrap cannot be loaded */
    MSG_VLOOKUP_RESULT, /* virtual-domain lookup, as user= (vlookup.c): i64 rc,
                           str why or absent, 3 x (i64 found, str value or absent) */
    MSG_LMTP_RESULT,    /* LMTP delivery, as user= (lmtp.c): u32 n, then n x
                           (u32 deliv_result, str status, str relay) */
    /* AUTH (auth_helper.h): session -> auth helper, with the socket for the
     * answer: str user, str password, str client address; checker -> session
     * on that socket: u32 AUTH_NO/AUTH_YES/AUTH_TEMP */
    MSG_AUTH_REQUEST,
    MSG_AUTH_RESULT,
    /* TLS proxy (tls_proxy.h): proxy -> master at its start: u32 1 ready /
     * 0 not, u64 virtual domains with their own certificate, str why not;
     * master -> proxy: u32 n, n x (bytes name, bytes aes, bytes hmac, i64
     * made), the ticket keys; session -> proxy on its own pair: u32
     * handshake milliseconds, str client address, with the client's socket;
     * session -> proxy on the request socket: the pair's other end; proxy ->
     * session on the pair: u32 established, u32 resumed, str description or
     * why not */
    MSG_TLS_READY,
    MSG_TLS_KEYS,
    MSG_TLS_CONN,
    MSG_TLS_START,
    MSG_TLS_DONE,
    MSG_TEST,           /* unit tests only */
    MSG_TYPE_END
};

struct msg {
    uint16_t type;
    size_t len;          /* payload length */
    unsigned char *data; /* payload (malloc'd, NUL-terminated for convenience) */
    int fd;              /* a descriptor that came with it (O_CLOEXEC), or -1 */
};

/* Send one message of type with payload data[len] (len <= MSG_MAX), and
 * pass_fd if >= 0 (then fd must be a Unix socket).  Blocks until it is
 * written (retries EINTR; never raises SIGPIPE).  0 or -1 with errno. */
int msg_send(int fd, enum msg_type type, const void *data, size_t len, int pass_fd);

/* Receive one message into m, its payload at most max bytes (<= MSG_MAX),
 * waiting until deadline (a now_ms() value, 0 = no deadline).  Returns 1 with
 * a message, 0 at a clean end of stream (the peer closed between messages),
 * -1 with errno otherwise (EPROTO for a wrong version, a truncated header or
 * payload; EMSGSIZE over max).  Free m with msg_free. */
int msg_recv(int fd, struct msg *m, size_t max, long long deadline);

void msg_free(struct msg *m);

/* Building a payload in a struct buf. */
void msg_put_u32(struct buf *b, uint32_t v);
void msg_put_u64(struct buf *b, uint64_t v);
void msg_put_i64(struct buf *b, int64_t v);
void msg_put_str(struct buf *b, const char *s); /* NULL is sent as "absent" */
void msg_put_bytes(struct buf *b, const void *p, size_t n);

/* Reading one back: each getter fails (returns -1 and marks the reader bad)
 * when the payload is too short or a string holds a NUL byte; msg_get_end
 * fails unless every byte was read and nothing failed. */
struct msg_reader {
    const unsigned char *p;
    size_t left;
    int bad;
};
void msg_reader_init(struct msg_reader *r, const struct msg *m);
int msg_get_u32(struct msg_reader *r, uint32_t *v);
int msg_get_u64(struct msg_reader *r, uint64_t *v);
int msg_get_i64(struct msg_reader *r, int64_t *v);
int msg_get_str(struct msg_reader *r, char **s); /* malloc'd copy, NULL if absent */
int msg_get_bytes(struct msg_reader *r, const unsigned char **p, size_t *n);
int msg_get_end(struct msg_reader *r);

#endif
