/* tls_pool.h - the master's TLS proxies (tls_proxy.h): how many run
 * (tls-proxies=: one per 4 processors by default, so full handshakes use
 * more than one core on a large machine), their ticket keys, which one a
 * new session process uses, and what happens when one dies or the
 * configuration is re-read.
 *
 * Called by the master (ROOT) alone, through listener.c; nothing here reads
 * from a client or a session.  The ticket keys live on a page of their own
 * that every child of the master unmaps (tls_pool_close_in_child), so a
 * session process never holds them and unmapping copies no page.
 *
 * Failures are logged (and the proxies that could start serve); when none
 * runs, STARTTLS is not offered until SIGHUP. */
#ifndef PO_TLS_POOL_H
#define PO_TLS_POOL_H

#include <sys/types.h>

#include "conf.h"
#include "tls_proxy.h"

#define TLS_PROXIES_MAX 64
#define TLS_PROXY_RESTART_MS 1000 /* one that dies sooner after its start is not restarted */

struct session_user;

struct tls_pool {
    struct tls_proxy *p;          /* n proxies; pid 0: not running */
    long long *started;           /* now_ms() at each one's start */
    size_t n;
    struct tls_ticket_keys *keys; /* their ticket keys, a page of their own */
    /* set by the caller before tls_pool_start: */
    const struct session_user *user;
    void (*in_child)(void *);     /* closes the master's descriptors in a proxy */
    void *in_child_arg;
};

void tls_pool_init(struct tls_pool *tp);

/* How many proxies c asks for (tls-proxies=, 0: one per 4 processors). */
size_t tls_pool_size(const struct config *c);

/* Start the proxies c asks for (when it sets tls-cert=), those not running.
 * Returns how many run. */
size_t tls_pool_start(struct tls_pool *tp, const struct config *c);

/* SIGHUP: a new set for c, then the old set let go (each ends with its
 * connections); when one of the new cannot start, the new ones go and the
 * old stay ("SIGHUP: keeping the TLS certificates in use: WHY" logged).
 * c without tls-cert= (and without smtps=) turns TLS off. */
void tls_pool_reload(struct tls_pool *tp, const struct config *c);

/* A child ended: 1 when it was one of the proxies (logged; started again
 * for c unless stopping or it died within TLS_PROXY_RESTART_MS of its
 * start).  The caller then replaces the session processes waiting: they
 * hold the dead one's socket. */
int tls_pool_reaped(struct tls_pool *tp, pid_t pid, const struct config *c, int stopping);

/* Before handing out a connection: a new ticket key when one is due, sent
 * to every proxy. */
void tls_pool_rotate(struct tls_pool *tp);

/* In a new session process: a copy (close-on-exec) of the request socket
 * of one running proxy, chosen by the process id; -1 when none runs. */
int tls_pool_session_req(const struct tls_pool *tp);

/* In any child of the master: close every proxy's sockets, unmap the keys. */
void tls_pool_close_in_child(struct tls_pool *tp);

void tls_pool_free(struct tls_pool *tp);

#endif
