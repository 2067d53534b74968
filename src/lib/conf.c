/* conf.c - postoffice.cf: option table, parsing, defaults, secure-path check. */
#include "compat.h"

#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <unistd.h>

#include "conf.h"
#include "dnsbl.h"
#include "mailbox_spec.h"
#include "milter_conf.h"
#include "subaddress.h"
#include "log.h"
#include "util.h"

enum opt_type {
    O_BOOL, O_LONG, O_TIME, O_MINUTES, O_SIZE, O_KSIZE, O_DOUBLE, O_PORT,
    O_STR, O_PATH, O_LIST, O_ACTION, O_HOST
};

#define ROOT 1   /* only root may set it from -o or -C */
#define NOTYET 2 /* known, but its feature is not built yet: refused */

struct option {
    const char *name;
    enum opt_type type;
    size_t off;
    int flags;
    const char *help; /* what a good value looks like, for error messages */
};

#define F(field) offsetof(struct config, field)

static const struct option options[] = {
    {"aliases", O_PATH, F(aliases), 0, "a file name"},
    {"audit", O_BOOL, F(audit), 0, NULL},
    {"auth-failures", O_LONG, F(auth_failures), 0, "a number of attempts"},
    {"auth-local", O_BOOL, F(auth_local), 0, NULL},
    {"auth-plaintext", O_BOOL, F(auth_plaintext), 0, NULL},
    {"auth-sender-check", O_BOOL, F(auth_sender_check), 0, NULL},
    {"av", O_STR, F(av), 0, "an absolute program path, optionally with arguments"},
    {"av-timeout", O_TIME, F(av_timeout), 0, "a time such as 60 or 2m"},
    {"banner", O_PATH, F(banner), 0, "a file name"},
    {"blacklist", O_ACTION, F(forbidden), ROOT, "bounce[:why], accept or folder:path"},
    {"checkhelo", O_BOOL, F(checkhelo), 0, NULL},
    {"clients", O_LONG, F(clients), 0, "a number of sessions"},
    {"clients-per-host", O_LONG, F(clients_per_host), 0, "a number of sessions"},
    {"connect-timeout", O_TIME, F(connect_timeout), 0, "a time such as 30s or 2m"},
    {"debug", O_BOOL, F(debug), 0, NULL},
    {"delay", O_TIME, F(delay), 0, "a time such as 3600, 30m or 1h"},
    {"delivery-processes", O_LONG, F(delivery_procs), 0, "a number of processes"},
    {"destination-processes", O_LONG, F(dest_procs), 0, "a number of processes"},
    {"dns-timeout", O_TIME, F(dns_timeout), 0, "a time such as 5s"},
    {"dns-tries", O_LONG, F(dns_tries), 0, "a number"},
    {"dnsbl", O_LIST, F(dnsbl), 0, "zone, zone=127.0.0.[2..11] or zone*2"},
    {"dnsbl-threshold", O_LONG, F(dnsbl_threshold), 0, "a score (at least 1)"},
    {"dnscheck", O_BOOL, F(dnscheck), 0, NULL},
    {"early-talker", O_BOOL, F(early_talker), 0, NULL},
    {"escape-from", O_BOOL, F(escape_from), 0, NULL},
    /* not root-only: they change only what happens to the setter's own
     * submissions (the daemon and its settings are root's) */
    {"filter", O_LIST, F(filter), 0, NULL},
    {"filter-fail", O_STR, F(filter_fail), 0, "tempfail or accept"},
    {"filter-local", O_BOOL, F(filter_local), 0, NULL},
    {"filter-timeout", O_TIME, F(filter_timeout), 0, "a time such as 30s or 2m"},
    {"forbidden", O_ACTION, F(forbidden), ROOT, "bounce[:why], accept or folder:path"},
    {"forward-all", O_BOOL, F(forward_all), ROOT, NULL},
    {"greet-pause", O_TIME, F(greet_pause), 0, "a time such as 0, 1 or 5s"},
    {"greylist", O_BOOL, F(greylist), 0, NULL},
    {"greylist-db", O_PATH, F(greylist_db), 0, "a file name"},
    {"greylist-from", O_BOOL, F(greylist_from), 0, NULL},
    {"hops", O_LONG, F(hops), 0, "a number of Received: headers"},
    {"hostname", O_HOST, F(hostname), 0, "a host name (no spaces or control characters)"},
    {"hosts-allow", O_PATH, F(hosts_allow), 0, "a file name"},
    {"hosts-deny", O_PATH, F(hosts_deny), 0, "a file name"},
    {"immediate", O_BOOL, F(immediate), 0, NULL},
    {"line-length", O_LONG, F(line_max), 0, "a number of bytes (at least 512)"},
    {"listen", O_LIST, F(listen), 0, NULL},
    {"load", O_DOUBLE, F(load), 0, "a load average such as 4 or 2.5"},
    {"localmx", O_BOOL, F(localmx), 0, NULL},
    {"mailbox", O_STR, F(mailbox), 0, "a path template (a maildir ends in /), lmtp:unix:/PATH or lmtp:[HOST]:PORT"},
    {"mailbox-limit", O_SIZE, F(mailbox_limit), 0, "a size such as 100M or 2G, 0 for none"},
    {"mailbox-limit-action", O_STR, F(mailbox_limit_action), 0, "defer or bounce"},
    {"mailbox-limits", O_PATH, F(mailbox_limits), 0, "a file of user SIZE lines"},
    {"mailspool", O_PATH, F(mailspool), 0, "a directory"},
    {"max-errors", O_LONG, F(max_errors), 0, "a number"},
    {"max-recipients", O_LONG, F(max_rcpts), 0, "a number"},
    {"minfree", O_KSIZE, F(minfree), 0, "a size such as 10000 (KB), 50m or 1g"},
    {"msp", O_PORT, F(msp), 0, "a port number"},
    {"mxpool", O_BOOL, F(mxpool), 0, NULL},
    {"nodaemon", O_BOOL, F(nodaemon), 0, NULL},
    {"paranoid", O_BOOL, F(paranoid), 0, NULL},
    {"pidfile", O_PATH, F(pidfile), 0, "a file name"},
    {"qreturn", O_TIME, F(qreturn), 0, "a time such as 3d or 72h"},
    {"qwarn", O_TIME, F(qwarn), 0, "a time such as 4h (0 = never)"},
    {"queuedir", O_PATH, F(queuedir), 0, "a directory"},
    {"relay", O_BOOL, F(relay), 0, NULL},
    {"relay-auth", O_PATH, F(relay_auth), ROOT, "a file name"},
    {"relay-auth-plaintext", O_BOOL, F(relay_auth_plaintext), ROOT, NULL},
    {"qualify-headers", O_BOOL, F(qualify_headers), 0, NULL},
    {"recipient-delimiter", O_STR, F(recipient_delimiter), 0, "one of + - = _ # ~ . &, or empty for none"},
    {"relay-host", O_STR, F(relay_host), ROOT,
     "host[:port], [host][:port] or [address][:port]"},
    {"relay-map", O_PATH, F(relay_map), ROOT, "a file name"},
    {"relay-tls", O_STR, F(relay_tls), ROOT, "may, require or smtps"},
    {"relay-tls-ca", O_PATH, F(relay_tls_ca), ROOT, "a file name"},
    {"resolver", O_LIST, F(resolver), 0, NULL},
    {"retry-max", O_TIME, F(retry_max), 0, "a time such as 4h"},
    {"retry-min", O_TIME, F(retry_min), 0, "a time such as 5m"},
    {"safe", O_BOOL, F(safe), 0, NULL},
    {"self", O_HOST, F(hostname), 0, "a host name (no spaces or control characters)"},
    {"session-max-idle", O_TIME, F(session_max_idle), 0, "a time such as 100s"},
    {"session-max-use", O_LONG, F(session_max_use), 0, "a number of connections (1 = one per process)"},
    {"session-timeout", O_TIME, F(session_timeout), 0, "a time such as 1h"},
    {"smtps", O_PORT, F(smtps), 0, "a port number"},
    {"size", O_SIZE, F(size), 0, "a size such as 10m (0 = unlimited)"},
    {"spam", O_ACTION, F(spam), ROOT, "bounce[:why], accept or folder:path"},
    {"subaddress-folder", O_BOOL, F(subaddress_folder), 0, NULL},
    {"timeout", O_TIME, F(timeout), 0, "a time such as 300 or 5m"},
    {"tls-cert", O_LIST, F(tls_cert), 0, NULL},
    {"tls-ciphers", O_STR, F(tls_ciphers), 0, "an OpenSSL cipher list"},
    {"tls-ciphersuites", O_STR, F(tls_ciphersuites), 0, "TLS 1.3 suites, colon-separated"},
    {"tls-handshake-timeout", O_TIME, F(tls_handshake_timeout), 0, "a time such as 60s"},
    {"tls-key", O_LIST, F(tls_key), 0, NULL},
    {"tls-protocols", O_STR, F(tls_protocols), 0, "versions such as TLSv1.2,TLSv1.3"},
    {"tls-proxies", O_LONG, F(tls_proxies), 0, "a number of processes (0 = one per 4 processors)"},
    {"trusted", O_LIST, F(trusted), ROOT, NULL},
    {"trusted-users", O_LIST, F(trusted_users), 0, NULL},
    {"user", O_STR, F(user), 0, "an account name"},
    {"usermap", O_LIST, F(usermap), 0, "pattern:target,... (see usermap(7))"},
    {"verify-from", O_BOOL, F(verify_from), 0, NULL},
    {"vhostdir", O_PATH, F(vpath), 0, "a directory"},
    {"virtual", O_PATH, F(vpath), 0, "a directory"}, /* the old name of vhostdir */
    {"virtual-maildir", O_BOOL, F(virtual_maildir), 0, NULL},
    {"vspool", O_PATH, F(vspool), 0, "a directory"},
    {"vuser", O_STR, F(vuser), 0, "an account name"},
};

#define NOPTIONS (sizeof options / sizeof options[0])

static void set_str(char **field, const char *v)
{
    free(*field);
    *field = xstrdup(v);
}

static int set_host(struct config *c, const char *v);

/* Debian's /etc/mailname (configure --with-mailname): the name this system
 * puts on its mail, so it is the default hostname=; the node name stays
 * local too. */
static void default_mailname(struct config *c)
{
    struct buf b;
    buf_init(&b);
    if (PATH_MAILNAME[0] && read_file(PATH_MAILNAME, &b, 1024) == 0) {
        buf_addc(&b, '\0');
        char *name = str_trim(b.s);
        name[strcspn(name, "\r\n")] = '\0';
        char *node = xstrdup(c->hostname);
        if (*name && set_host(c, name) == 0)
            sl_add(&c->self_names, node);
        free(node);
    }
    buf_free(&b);
}

void config_defaults(struct config *c)
{
    memset(c, 0, sizeof *c);
    c->confpath = xstrdup(PATH_CONFIG);
    c->queuedir = xstrdup(PATH_QUEUEDIR);
    c->mailspool = xstrdup(PATH_MAILSPOOL);
    c->aliases = xstrdup(PATH_ALIASES);
    c->pidfile = xstrdup(PATH_PIDFILE);
    c->banner = xstrdup(PATH_BANNER);
    c->greylist_db = xstrdup(PATH_GREYLIST);
    c->vpath = xstrdup(PATH_VIRTUAL);
    c->vspool = xstrdup(PATH_VSPOOL);
    c->user = xstrdup("mail");
    c->recipient_delimiter = xstrdup("+");
    c->vuser = xstrdup(PATH_VUSER);
    c->hostname = host_nodename();
    sl_init(&c->self_names);
    sl_init(&c->trusted);
    sl_init(&c->trusted_users);
    sl_init(&c->usermap);
    sl_init(&c->filter);
    sl_init(&c->listen);
    sl_init(&c->resolver);
    sl_init(&c->tls_cert);
    sl_init(&c->tls_key);
    /* TLS 1.2 and 1.3 with forward-secret AEAD ciphers only (tls_server.h) */
    c->tls_protocols = xstrdup("TLSv1.2,TLSv1.3");
    c->tls_ciphers = xstrdup("ECDHE+AESGCM:ECDHE+CHACHA20:DHE+AESGCM:DHE+CHACHA20:!aNULL");
    c->tls_ciphersuites =
        xstrdup("TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256");
    c->tls_handshake_timeout = 60;
    default_mailname(c);
    sl_init(&c->dnsbl);
    c->av = AV_PROGRAM[0] ? xstrdup(AV_PROGRAM) : NULL;
    c->av_timeout = 60;
    c->dnsbl_threshold = 1;
    c->early_talker = 1;

    c->escape_from = 1;
    c->verify_from = 1;
    /* deliver right after acceptance, as admins expect (the original waited
     * for the next queue run; immediate=0 restores that) */
    c->immediate = 1;
    c->qualify_headers = 1; /* To: bob -> To: bob@hostname in sendmail's mail */
    c->auth_local = AUTH_LOCAL_DEFAULT; /* configure --with-auth=passwd */
    c->auth_failures = 3;
    c->clients = 100;
    c->clients_per_host = 10;
    c->delay = 3600;
    c->greylist = GREYLIST_DEFAULT; /* configure --with-greylist */
    c->hops = 100;
    c->load = 4.0;
    c->minfree = 10000LL * 1024;
    /* 50 MiB: what the large mailbox providers take inbound (Gmail 50 MB) and
     * Exim's default; Postfix's 10 MB bounces common attachments today */
    c->size = 52428800LL;
    c->qreturn = 3 * 86400;
    c->qwarn = 4 * 3600;
    c->timeout = 300;
    c->session_timeout = 3600;
    /* Postfix's max_use and max_idle: a session process serves up to 100
     * connections, waiting at most 100 s between two */
    c->session_max_use = 100;
    c->session_max_idle = 100;
    c->max_rcpts = 1000;
    c->max_errors = 20;
    c->line_max = 2048;
    c->retry_min = 300;
    c->retry_max = 4 * 3600;
    c->delivery_procs = 10;
    c->dest_procs = 3;
    c->dns_timeout = 5;
    c->dns_tries = 3;
    c->connect_timeout = 30;
    c->filter_timeout = 30;
    c->filter_fail = xstrdup("tempfail");
    c->forbidden.what = ACT_BOUNCE;
    c->spam.what = ACT_BOUNCE;
}

static void free_action(struct action *a)
{
    free(a->text);
    free(a->folder);
}

void config_free(struct config *c)
{
    char **strs[] = {&c->confpath, &c->queuedir, &c->mailspool, &c->aliases,
                     &c->pidfile, &c->banner, &c->greylist_db, &c->vpath,
                     &c->vspool, &c->hosts_allow, &c->hosts_deny, &c->user,
                     &c->vuser, &c->hostname, &c->relay_host, &c->relay_tls,
                     &c->relay_tls_ca, &c->relay_auth, &c->av, &c->filter_fail,
                     &c->tls_protocols, &c->tls_ciphers, &c->tls_ciphersuites,
                     &c->mailbox, &c->recipient_delimiter, &c->mailbox_limit_action,
                     &c->mailbox_limits, &c->relay_map};
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++) {
        free(*strs[i]);
        *strs[i] = NULL;
    }
    struct strlist *lists[] = {&c->self_names, &c->trusted, &c->trusted_users,
                               &c->usermap, &c->filter, &c->listen, &c->resolver,
                               &c->dnsbl, &c->tls_cert, &c->tls_key};
    for (size_t i = 0; i < sizeof lists / sizeof lists[0]; i++)
        sl_free(lists[i]);
    free_action(&c->forbidden);
    free_action(&c->spam);
}

/* ---- value parsers ---- */

/* Number with an optional one-letter unit from units ("s1 m60 h3600"). */
static int parse_tagged(const char *s, const char *const *sufs, const long long *mult,
                        long long def_mult, long long *out)
{
    if (!isdigit((unsigned char)*s))
        return -1;
    errno = 0;
    char *end;
    long long v = strtoll(s, &end, 10);
    if (errno || v < 0)
        return -1;
    long long m = def_mult;
    if (*end) {
        m = 0;
        for (size_t i = 0; sufs[i]; i++)
            if (strcasecmp(end, sufs[i]) == 0)
                m = mult[i];
        if (!m)
            return -1;
    }
    if (v > 0 && m > (1LL << 62) / v)
        return -1;
    *out = v * m;
    return 0;
}

int config_parse_time(const char *s, long def_unit, long *out)
{
    static const char *const sufs[] = {"s", "m", "h", "d", "w", NULL};
    static const long long mult[] = {1, 60, 3600, 86400, 604800};
    long long v;
    if (parse_tagged(s, sufs, mult, def_unit, &v) < 0 || v > 0x7fffffffL)
        return -1;
    *out = (long)v;
    return 0;
}

int config_parse_size(const char *s, long long *out)
{
    static const char *const sufs[] = {"b", "k", "m", "g", NULL};
    static const long long mult[] = {1, 1000, 1000000, 1000000000};
    return parse_tagged(s, sufs, mult, 1, out);
}

/* minfree= is in kilobytes like the original (bare number = KB). */
static int parse_ksize(const char *s, long long *out)
{
    static const char *const sufs[] = {"k", "m", "g", NULL};
    static const long long mult[] = {1024, 1000LL * 1024, 1000000LL * 1024};
    return parse_tagged(s, sufs, mult, 1024, out);
}

static int parse_action(const char *v, struct action *a)
{
    struct action n = {ACT_BOUNCE, NULL, NULL};
    if (strcasecmp(v, "bounce") == 0) {
        n.what = ACT_BOUNCE;
    } else if (str_has_prefix_ci(v, "bounce:")) {
        n.what = ACT_BOUNCE;
        n.text = xstrdup(v + 7);
    } else if (strcasecmp(v, "accept") == 0) {
        n.what = ACT_ACCEPT;
    } else if ((str_has_prefix_ci(v, "folder:") && v[7]) ||
               (str_has_prefix_ci(v, "file:") && v[5])) {
        /* file: is blacklist='s spelling in the original's 1.4.4 */
        const char *p = strchr(v, ':') + 1;
        /* ~/PATH in the home directory, or a name with no slash beside the mailbox */
        if (!(p[0] == '~' && p[1] == '/' && p[2]) && strchr(p, '/'))
            return -1;
        n.what = ACT_FOLDER;
        n.folder = xstrdup(p);
    } else {
        return -1;
    }
    free_action(a);
    *a = n;
    return 0;
}

/* usermap=PATTERN:TARGET,... (usermap(7), src/route/usermap.h): a pattern,
 * at most one '~' in it, and targets; "~" and "~/FILE" need the '~'. */
static int usermap_syntax_ok(const char *v)
{
    const char *colon = strchr(v, ':');
    if (!colon || colon == v)
        return 0;
    char *pattern = xstrndup(v, (size_t)(colon - v));
    const char *tilde = strchr(pattern, '~');
    int ok = !tilde || !strchr(tilde + 1, '~');
    free(pattern);
    struct strlist t;
    sl_init(&t);
    sl_split(&t, colon + 1, ", \t");
    ok = ok && t.n > 0;
    for (size_t i = 0; ok && i < t.n; i++)
        if (t.v[i][0] == '~' && (!tilde || (t.v[i][1] && (t.v[i][1] != '/' || !t.v[i][2]))))
            ok = 0;
    sl_free(&t);
    return ok;
}

static int parse_bool(const char *v, int *out)
{
    if (!v) {
        *out = 1;
        return 0;
    }
    if (!strcmp(v, "1") || !strcasecmp(v, "yes") || !strcasecmp(v, "true") ||
        !strcasecmp(v, "on")) {
        *out = 1;
        return 0;
    }
    if (!strcmp(v, "0") || !strcasecmp(v, "no") || !strcasecmp(v, "false") ||
        !strcasecmp(v, "off")) {
        *out = 0;
        return 0;
    }
    return -1;
}

/* hostname=/self=: a name, "auto" (the name uname gives) or "literal" (the same,
 * kept exactly).  Every name set counts as one of ours. */
/* The name goes into every greeting, HELO and Received: field: one word,
 * no control byte (a CR LF would start a forged header line).  -1 if not. */
static int set_host(struct config *c, const char *v)
{
    for (const unsigned char *p = (const unsigned char *)v; *p; p++)
        if (*p <= ' ' || *p == 0x7f)
            return -1;
    char *name = (!strcasecmp(v, "auto") || !strcasecmp(v, "literal"))
                     ? host_nodename() : xstrdup(v);
    size_t n = strlen(name);
    if (n > 1 && name[n - 1] == '.')
        name[n - 1] = '\0';
    free(c->hostname);
    c->hostname = name;
    if (!sl_contains_ci(&c->self_names, name))
        sl_add(&c->self_names, name);
    return 0;
}

static const struct option *find_option(const char *name)
{
    for (size_t i = 0; i < NOPTIONS; i++)
        if (strcasecmp(options[i].name, name) == 0)
            return &options[i];
    return NULL;
}

int config_known(const char *name)
{
    return find_option(name) != NULL;
}

static int bad_value(const struct option *o, const char *v, const char *where)
{
    say("%s: bad value \"%s\" for %s: expected %s", where, v ? v : "", o->name,
        o->help ? o->help : (o->type == O_BOOL ? "0 or 1" :
                             o->type == O_ACTION ? "bounce[:reason], accept or folder:PATH" :
                             "a value"));
    return EX_CONFIG;
}

/* filter=: every socket named must parse (milter_conf.h); the list was
 * just extended with v's entries, the bad one is taken out again. */
static int filter_check(struct config *c, const char *v, const char *where)
{
    (void)v;
    for (size_t i = 0; i < c->filter.n; i++) {
        struct mconf_addr a;
        const char *why = NULL;
        if (mconf_parse(c->filter.v[i], &a, &why) == 0) {
            mconf_free(&a);
            continue;
        }
        say("%s: filter=%s: %s", where, c->filter.v[i], why);
        sl_free(&c->filter);
        sl_init(&c->filter);
        return -1;
    }
    return 0;
}

/* mailbox= must parse (mailbox_spec.h); the reason names what is wrong. */
static int mailbox_check(const char *v, const char *where)
{
    struct mailbox_spec ms;
    char *why = NULL;
    int rc = mailbox_spec_parse(v, &ms, &why);
    if (rc < 0) {
        say("%s: mailbox=%s", where, why);
        free(why);
        return -1;
    }
    mailbox_spec_free(&ms);
    return 0;
}

static int apply(struct config *c, const struct option *o, const char *v,
                 const char *where)
{
    void *field = (char *)c + o->off;
    long l;
    long long ll;
    /* recipient-delimiter= (empty) turns subaddresses off */
    int empty_ok = o->off == F(recipient_delimiter);
    if (o->type != O_BOOL && o->type != O_PORT && (!v || (!*v && !empty_ok)) &&
        o->type != O_LIST)
        return bad_value(o, v, where);
    switch (o->type) {
    case O_BOOL:
        if (parse_bool(v, field) < 0)
            return bad_value(o, v, where);
        break;
    case O_PORT:
        if (!v) {
            *(long *)field = o->off == F(smtps) ? 465 : 587;
        } else if (parse_tagged(v, (const char *const[]){NULL}, NULL, 1, &ll) < 0 ||
                   ll > 65535) {
            return bad_value(o, v, where);
        } else {
            *(long *)field = ll != 1 ? (long)ll : o->off == F(smtps) ? 465 : 587;
        }
        break;
    case O_LONG:
        if (parse_tagged(v, (const char *const[]){NULL}, NULL, 1, &ll) < 0 ||
            ll > 0x7fffffffL)
            return bad_value(o, v, where);
        *(long *)field = (long)ll;
        break;
    case O_TIME:
    case O_MINUTES:
        if (config_parse_time(v, o->type == O_MINUTES ? 60 : 1, &l) < 0)
            return bad_value(o, v, where);
        *(long *)field = l;
        break;
    case O_SIZE:
        if (config_parse_size(v, &ll) < 0)
            return bad_value(o, v, where);
        *(long long *)field = ll;
        break;
    case O_KSIZE:
        if (parse_ksize(v, &ll) < 0)
            return bad_value(o, v, where);
        *(long long *)field = ll;
        break;
    case O_DOUBLE: {
        char *end;
        errno = 0;
        double d = strtod(v, &end);
        if (errno || *end || d < 0)
            return bad_value(o, v, where);
        *(double *)field = d;
        break;
    }
    case O_STR:
    case O_PATH:
        if (o->type == O_PATH && v[0] != '/')
            return bad_value(o, v, where);
        set_str(field, v);
        break;
    case O_LIST:
        if (!v || !*v)
            return bad_value(o, v, where);
        /* repeatable; a value may also list several, comma-separated */
        if (!strcmp(o->name, "usermap"))
            sl_add(field, v);
        else
            sl_split(field, v, ", \t");
        break;
    case O_ACTION:
        if (parse_action(v, field) < 0)
            return bad_value(o, v, where);
        break;
    case O_HOST:
        if (set_host(c, v) < 0)
            return bad_value(o, v, where);
        break;
    }
    if (o->off == F(line_max) && c->line_max < 512)
        return bad_value(o, v, where);
    if (o->off == F(relay_tls) && strcasecmp(v, "may") && strcasecmp(v, "require") &&
        strcasecmp(v, "smtps"))
        return bad_value(o, v, where);
    if (o->off == F(usermap) && !usermap_syntax_ok(c->usermap.v[c->usermap.n - 1]))
        return bad_value(o, v, where);
    for (size_t i = 0; o->off == F(dnsbl) && i < c->dnsbl.n; i++)
        if (!dnsbl_valid(c->dnsbl.v[i]))
            return bad_value(o, v, where);
    if (o->off == F(av) && c->av && c->av[0] != '/') /* run without a shell: a path */
        return bad_value(o, v, where);
    if (o->off == F(filter_fail) && strcmp(v, "tempfail") && strcmp(v, "accept"))
        return bad_value(o, v, where);
    if (o->off == F(filter) && filter_check(c, v, where))
        return EX_CONFIG;
    if (o->off == F(mailbox) && mailbox_check(v, where))
        return EX_CONFIG;
    if (o->off == F(mailbox_limit_action) && strcmp(v, "defer") && strcmp(v, "bounce"))
        return bad_value(o, v, where);
    if (o->off == F(recipient_delimiter) && !subaddr_delim_ok(v))
        return bad_value(o, v, where);
    return 0;
}

int config_set(struct config *c, const char *setting, const char *where,
               const struct config_ctx *ctx)
{
    char *copy = xstrdup(setting);
    char *eq = strchr(copy, '=');
    char *val = NULL;
    if (eq) {
        *eq = '\0';
        val = str_trim(eq + 1);
    }
    char *name = str_trim(copy);
    int rc = 0;
    const struct option *o = find_option(name);
    if (!o) {
        say("%s: unknown option \"%s\" ignored", where, name);
    } else if (o->flags & NOTYET) {
        say("%s: %s is not built in this version of postoffice yet; remove it",
            where, o->name);
        rc = EX_CONFIG;
    } else if ((o->flags & ROOT) && !ctx->privileged) {
        say("%s: you may not set %s (only root may)", where, o->name);
        log_crit("uid %ld tried to set %s", (long)getuid(), o->name);
        rc = EX_NOPERM;
    } else {
        rc = apply(c, o, val, where);
    }
    free(copy);
    return rc;
}

/* ---- files ---- */

static int check_one(const char *path, const struct stat *st, int is_dir, char **why)
{
    if (st->st_uid != 0) {
        *why = xasprintf("%s is not owned by root", path);
        return -1;
    }
    if (is_dir ? !S_ISDIR(st->st_mode) : !S_ISREG(st->st_mode)) {
        *why = xasprintf("%s is not a %s", path, is_dir ? "directory" : "regular file");
        return -1;
    }
    if (st->st_mode & S_IWOTH) {
        *why = xasprintf("%s is writable by everyone", path);
        return -1;
    }
    if ((st->st_mode & S_IWGRP) && st->st_gid != 0 && !(is_dir && (st->st_mode & S_ISVTX))) {
        *why = xasprintf("%s is writable by a group other than root's", path);
        return -1;
    }
    return 0;
}

int config_path_secure(const char *path, char **why)
{
    if (path[0] != '/') {
        *why = xasprintf("%s is not an absolute path", path);
        return -1;
    }
    *why = NULL;
    char *p = xstrdup(path);
    struct stat st;
    int rc = 0;
    if (lstat(p, &st) < 0 || check_one(p, &st, 0, why) < 0) {
        if (rc == 0 && !*why)
            *why = xasprintf("%s: %s", p, strerror(errno));
        rc = -1;
    }
    while (rc == 0) {
        char *slash = strrchr(p, '/');
        if (slash == p)
            p[1] = '\0';
        else
            *slash = '\0';
        if (stat(p, &st) < 0) {
            *why = xasprintf("%s: %s", p, strerror(errno));
            rc = -1;
        } else if (check_one(p, &st, 1, why) < 0) {
            rc = -1;
        }
        if (strcmp(p, "/") == 0)
            break;
    }
    free(p);
    return rc;
}

int config_load(struct config *c, const char *path, int must_exist,
                const struct config_ctx *ctx)
{
    set_str(&c->confpath, path);
    FILE *f = fopen(path, "r");
    if (!f) {
        if (errno == ENOENT && !must_exist)
            return 0;
        say("cannot read configuration %s: %s", path, strerror(errno));
        return EX_NOINPUT;
    }
    struct config_ctx file_ctx = *ctx;
    if (ctx->secure_check) {
        char *why = NULL;
        if (config_path_secure(path, &why) < 0) {
            say("%s is not secure: %s", path, why);
            log_crit("%s is not secure: %s", path, why);
            free(why);
            fclose(f);
            return EX_OSFILE;
        }
        /* root's own file (secure path): its root-only settings hold for
         * every caller, as sendmail run by any user must see relay-host= */
        file_ctx.privileged = 1;
    }
    char *line = NULL;
    size_t cap = 0;
    int lineno = 0, rc = 0;
    while (rc == 0 && getline(&line, &cap, f) >= 0) {
        lineno++;
        char *hash = strchr(line, '#');
        if (hash)
            *hash = '\0';
        char *s = str_trim(line);
        if (!*s)
            continue;
        char *where = xasprintf("%s:%d", path, lineno);
        rc = config_set(c, s, where, &file_ctx);
        free(where);
    }
    free(line);
    fclose(f);
    return rc;
}

static void dump_list(struct buf *out, const char *name, const struct strlist *l)
{
    for (size_t i = 0; i < l->n; i++)
        buf_addf(out, "%s=%s\n", name, l->v[i]);
}

static void dump_action(struct buf *out, const char *name, const struct action *a)
{
    if (a->what == ACT_BOUNCE)
        buf_addf(out, "%s=bounce%s%s\n", name, a->text ? ":" : "", a->text ? a->text : "");
    else if (a->what == ACT_ACCEPT)
        buf_addf(out, "%s=accept\n", name);
    else
        buf_addf(out, "%s=folder:%s\n", name, a->folder);
}

void config_dump(const struct config *c, struct buf *out)
{
    for (size_t i = 0; i < NOPTIONS; i++) {
        const struct option *o = &options[i];
        const void *field = (const char *)c + o->off;
        if (!strcmp(o->name, "self") || !strcmp(o->name, "blacklist"))
            continue; /* aliases of hostname= and forbidden= */
        switch (o->type) {
        case O_BOOL:
            buf_addf(out, "%s=%d\n", o->name, *(const int *)field);
            break;
        case O_LONG:
        case O_TIME:
        case O_MINUTES:
        case O_PORT:
            buf_addf(out, "%s=%ld\n", o->name, *(const long *)field);
            break;
        case O_SIZE:
        case O_KSIZE:
            buf_addf(out, "%s=%lld\n", o->name, *(const long long *)field);
            break;
        case O_DOUBLE:
            buf_addf(out, "%s=%g\n", o->name, *(const double *)field);
            break;
        case O_STR:
        case O_PATH:
        case O_HOST: {
            const char *s = *(char *const *)field;
            if (s)
                buf_addf(out, "%s=%s\n", o->name, s);
            break;
        }
        case O_LIST:
            dump_list(out, o->name, field);
            break;
        case O_ACTION:
            dump_action(out, o->name, field);
            break;
        }
    }
}
