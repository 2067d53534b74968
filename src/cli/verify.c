/* verify.c - sendmail -bv (verify.h). */
#include "compat.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "address.h"
#include "child.h"
#include "dns.h"
#include "expand.h"
#include "lmtp.h"
#include "mailbox_place.h"
#include "mx.h"
#include "privs.h"
#include "relay_map.h"
#include "route.h"
#include "verify.h"

struct remote_ask {
    const struct config *c;
    const char *addr;
    FILE *out;
};

static void print_host(FILE *out, const struct mx_host *h)
{
    fprintf(out, "    %s (preference %d):", h->name, h->pref);
    for (size_t i = 0; i < h->naddrs; i++) {
        char txt[INET6_ADDRSTRLEN] = "?";
        const struct sockaddr_storage *ss = &h->addrs[i];
        if (ss->ss_family == AF_INET6)
            inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)ss)->sin6_addr, txt, sizeof txt);
        else
            inet_ntop(AF_INET, &((const struct sockaddr_in *)ss)->sin_addr, txt, sizeof txt);
        fprintf(out, " %s", txt);
    }
    fputc('\n', out);
}

/* Where a destination comes from and what it asks: ", relay-map FILE:3
 * next hop [host]:587, tls=require, ca=FILE, auth=FILE" (nothing more for
 * plain MX routing). */
static void print_dest(FILE *out, const struct relay_dest *d)
{
    if (d->line)
        fprintf(out, "%s", d->origin);
    if (!d->origin)
        return;
    if (d->line && d->host)
        fprintf(out, " next hop");
    else if (d->line)
        fprintf(out, " (the domain's hosts)");
    if (d->host)
        fprintf(out, d->no_mx ? " [%s]:%d" : " %s:%d", d->host, d->port);
    fprintf(out, ", tls=%s%s", relay_tls_name(d->tls),
            d->implicit && d->tls != RELAY_TLS_SMTPS ? " (from the first byte)" : "");
    if (d->ca)
        fprintf(out, ", %s=%s", d->ca_opt, d->ca);
    if (d->auth)
        fprintf(out, ", %s=%s", d->auth_opt, d->auth);
}

/* In a child running as user=: the hosts a delivery to addr would try.
 * Exit 0 resolved, 1 permanent failure, 2 temporary. */
static void remote_child(void *arg, int fd)
{
    (void)fd;
    const struct remote_ask *a = arg;
    if (geteuid() == 0 && privs_drop_to(a->c->user) < 0)
        _exit(2);
    struct dns_ctx *d = dns_open(a->c);
    struct mx_route r;
    struct relay_dest dst;
    char *why = NULL;
    const char *dom = addr_domain(a->addr);
    enum mx_status st = relay_dest_get(a->c, dom, &dst, &why) < 0 ? MX_TEMPFAIL
                        : d ? mx_route_via(d, a->c, dom, &dst, NULL, &r, &why)
                            : MX_TEMPFAIL;
    if (st == MX_OK) {
        fprintf(a->out, "  deliverable: remote, %s", dst.line ? "through " : dst.host
                ? "through relay-host" : "to the domain's hosts");
        print_dest(a->out, &dst);
        fprintf(a->out, ", would try:\n");
        for (size_t i = 0; i < r.n; i++)
            print_host(a->out, &r.hosts[i]);
        mx_route_free(&r);
    } else {
        fprintf(a->out, "  %s: %s\n", st == MX_PERMFAIL ? "undeliverable" : "cannot tell now",
                why ? why : "4.4.3 DNS is not available");
    }
    free(why);
    relay_dest_free(&dst);
    dns_close(d);
    fflush(a->out);
    _exit(st == MX_OK ? 0 : st == MX_PERMFAIL ? 1 : 2);
}

static int verify_remote(const struct config *c, const char *addr, FILE *out)
{
    struct remote_ask a = {.c = c, .addr = addr, .out = out};
    struct child_spec spec = {.title = "verify: dns", .deadline_ms = 120000};
    struct child ch;
    struct child_end end;
    fflush(out);
    if (child_start(&ch, &spec, remote_child, &a) < 0) {
        fprintf(out, "  cannot tell now: cannot start a process\n");
        return EX_TEMPFAIL;
    }
    child_wait(&ch, &end);
    if (!end.exited || end.code == 2)
        return EX_TEMPFAIL;
    return end.code == 0 ? 0 : EX_NOUSER;
}

static const char *kind_name(enum target_kind k)
{
    switch (k) {
    case T_MBOX: return "mailbox";
    case T_PIPE: return "program";
    case T_FILE: return "file";
    case T_REMOTE: return "remote";
    }
    return "?";
}

/* Where a mailbox target's mail is written (mailbox=, virtual-maildir=, an
 * LMTP server): what the delivery would use, shown after the target. */
static void show_place(const struct config *c, const char *box, FILE *out)
{
    char *domfile = NULL;
    if (lmtp_wanted(c, box, &domfile)) {
        fprintf(out, " -> LMTP (%s)", domfile ? domfile : c->mailbox);
        free(domfile);
        return;
    }
    const char *at = strrchr(box, '@');
    if (at) {
        fprintf(out, " -> %s/%s/%.*s%s", c->vspool, at + 1, (int)(at - box), box,
                c->virtual_maildir ? "/ (maildir)" : "");
        return;
    }
    struct ident id;
    if (privs_lookup(box, &id) != 0)
        return;
    struct mbplace p;
    char *status = NULL;
    if (mbplace_find(c, &id, &p, &status) == DELIV_OK) {
        fprintf(out, " -> %s%s", p.path, p.kind == MB_MAILDIR ? "/ (maildir)" : "");
        mbplace_free(&p);
    } else {
        fprintf(out, " -> cannot tell: %s", status ? status : "?");
    }
    free(status);
    privs_free(&id);
}

static int verify_local(const struct config *c, const char *addr, FILE *out)
{
    struct targets t;
    targets_init(&t);
    char *why = NULL;
    int rc = expand_address(c, addr, NULL, &t, &why);
    if (rc != 0) {
        fprintf(out, "  %s: %s\n", rc > 0 ? "undeliverable" : "cannot tell now",
                why ? why : "?");
        free(why);
        targets_free(&t);
        return rc > 0 ? EX_NOUSER : EX_TEMPFAIL;
    }
    fprintf(out, "  deliverable: local, %zu target%s\n", t.n, t.n == 1 ? "" : "s");
    int worst = 0;
    for (size_t i = 0; i < t.n; i++) {
        const struct target *x = &t.v[i];
        fprintf(out, "    %s %s", kind_name(x->kind), x->dest);
        if (x->kind != T_REMOTE && x->user)
            fprintf(out, " (as %s)", x->user);
        if (x->kind == T_MBOX)
            show_place(c, x->dest, out);
        fputc('\n', out);
        if (x->kind == T_REMOTE) {
            int r = verify_remote(c, x->dest, out);
            worst = r > worst ? r : worst;
        }
    }
    targets_free(&t);
    return worst;
}

/* A syntax error outranks "unknown", which outranks "try later". */
static int rank(int rc)
{
    return rc == EX_DATAERR ? 3 : rc == EX_NOUSER ? 2 : rc == EX_TEMPFAIL ? 1 : 0;
}

int verify_addresses(const struct config *c, const struct strlist *addrs, FILE *out)
{
    int worst = 0;
    for (size_t i = 0; i < addrs->n; i++) {
        char *addr = NULL;
        const char *why = NULL;
        int r;
        if (addr_parse_mailbox(addrs->v[i], &addr, &why) != 0) {
            fprintf(out, "%s\n  syntax error: %s\n", addrs->v[i], why ? why : "not an address");
            r = EX_DATAERR;
        } else {
            fprintf(out, "%s\n", addr);
            enum route_way w = route_recipient(c, addr_domain(addr), NULL, NULL);
            r = route_is_remote(w) ? verify_remote(c, addr, out) : verify_local(c, addr, out);
        }
        free(addr);
        worst = rank(r) > rank(worst) ? r : worst;
    }
    fflush(out);
    return worst;
}
