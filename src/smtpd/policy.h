/* policy.h - what an SMTP client may do: relay, HELO, senders, recipients,
 * resources.  Used by the session (unprivileged).
 *
 * Decisions that refuse return the SMTP reply code and put "X.Y.Z text" (the
 * RFC 3463 enhanced code, a space, plain text) into why; 0 means allowed. */
#ifndef PO_POLICY_H
#define PO_POLICY_H

#include <sys/socket.h>

#include "conf.h"
#include "dns.h"
#include "netaddr.h"
#include "util.h"

/* The client as the policy sees it. */
struct client {
    struct netaddr addr;
    char ip[64];       /* numeric form, or "" for -bs on a pipe */
    char *ptr;         /* PTR name whose forward lookup gives ip back, or NULL */
    int ptr_status;    /* DNS_OK, DNS_NODATA/NXDOMAIN (no PTR), DNS_TEMPFAIL, or
                          DNS_NODATA when the name does not resolve back */
    int local;         /* -bs on stdin: a local user, no IP */
    int relay_ok;      /* may relay to any domain */
    int trusted;       /* matched trusted= */
};

/* Reverse-resolve the client and confirm the name resolves back to its
 * address; fills cl->ptr / cl->ptr_status.  d may be NULL (no DNS: tempfail). */
void policy_lookup_client(struct dns_ctx *d, struct client *cl);

/* Does the client match a trusted= entry (a host name whose addresses include
 * the client, "[addr]", or "addr/prefix")?  1 or 0. */
int policy_trusted(const struct config *c, struct dns_ctx *d, const struct client *cl);

/* Decide cl->relay_ok (and cl->trusted): -bs local users (relay option),
 * loopback, our interface addresses, trusted=, localmx, or relay=1 (open). */
void policy_relay(const struct config *c, struct dns_ctx *d, struct client *cl);

/* localmx: does the client's verified PTR name have an MX pointing at one of our
 * addresses?  1 or 0. */
int policy_localmx(const struct config *c, struct dns_ctx *d, const struct client *cl);

/* checkhelo: a client that is not relay_ok naming us (our name, or an address
 * of ours, literally or by resolving) in HELO is lying.  0 or code. */
int policy_helo(const struct config *c, struct dns_ctx *d, const struct client *cl,
                const char *helo, struct buf *why);

/* MAIL FROM: the canonical sender ("" for <>).  nodaemon refuses <>; verify-from
 * requires, for clients that are not relay_ok, that the domain resolves (MX, A
 * or AAAA; a null MX refuses) and is not one of ours.  0 or code. */
int policy_mail(const struct config *c, struct dns_ctx *d, const struct client *cl,
                const char *sender, struct buf *why);

/* RCPT TO: the canonical recipient.  Local domains: the local part must exist
 * and must not route further ('%', '!', '@' in it are refused); other domains
 * only when cl->relay_ok (554 5.7.1).  0 or code. */
int policy_rcpt(const struct config *c, const struct client *cl, const char *rcpt,
                struct buf *why);

/* RCPT TO as the SMTP server decides it: policy_rcpt, and a domain that is not
 * one of our names is also accepted from a client that may not relay when its
 * MX list (or, without MX, its address) points at us: as an MX that delivers it
 * here (without mxpool any MX of it, with mxpool a most preferred one) the local
 * part is checked as for our own domains; as a backup MX with mxpool any local
 * part is accepted and queued for the better MX.  Not listed: 554 5.7.1; DNS
 * failing, or d NULL: 451 4.4.3.  0 or code. */
int policy_rcpt_dns(const struct config *c, struct dns_ctx *d, const struct client *cl,
                    const char *rcpt, struct buf *why);

/* minfree: free space of the queue file system.  0 or 452 4.3.1. */
int policy_minfree(const struct config *c, struct buf *why);

/* load=: 1 if the one-minute load average is over the limit (or unknown). */
int policy_overloaded(const struct config *c, double *load);

#endif
