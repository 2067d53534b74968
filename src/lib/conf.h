/* conf.h - postoffice.cf: option table, parsing, the parsed configuration.
 *
 * Order of precedence: built-in defaults (configure-time paths) -> the default
 * config file (CONFDIR/postoffice.cf, only when no -C) or the -C file -> each -o.
 * The parsed struct config is the only process-wide mutable state; it is built
 * once in main() and passed by pointer.  See postoffice.cf(5). */
#ifndef PO_CONF_H
#define PO_CONF_H

#include <stddef.h>
#include <time.h>

#include "util.h"

/* What to do with clients/messages flagged by tcp wrappers (forbidden=) or
 * milters (spam=). */
enum spam_action { ACT_BOUNCE, ACT_ACCEPT, ACT_FOLDER };
struct action {
    enum spam_action what;
    char *text;   /* bounce:TEXT reason, or NULL */
    char *folder; /* folder:PATH, or NULL */
};

struct config {
    /* ---- paths (all overridable; defaults from configure) ---- */
    char *confpath;    /* the file that was read (or would have been) */
    char *queuedir;    /* queuedir= */
    char *mailspool;   /* mailspool=  system mailbox directory */
    char *mailbox;     /* mailbox=    where local mail goes (mailbox_spec.h); NULL = spool */
    char *aliases;     /* aliases=    text file; database is ALIASES.db */
    char *pidfile;     /* pidfile= */
    char *banner;      /* banner=     extra greeting lines (/etc/issue.smtp) */
    char *greylist_db; /* greylist-db= (/var/db/smtpauth) */
    char *vpath;       /* vhostdir=   virtual-domain config dir (/etc/virtual), virtual= */
    char *vspool;      /* vspool=     virtual mailbox dir (/var/spool/virtual) */
    char *hosts_allow; /* hosts-allow= libwrap tables (NULL = libwrap default) */
    char *hosts_deny;  /* hosts-deny= */
    char *user;        /* user=       unprivileged account (mail) */
    char *vuser;       /* vuser=      owner of virtual mailboxes (mail) */

    /* ---- identity ---- */
    char *hostname;    /* resolved value of hostname=/self= (never NULL after load) */
    struct strlist self_names; /* every self=/hostname= name: all count as local */

    /* ---- booleans (0/1) ---- */
    int audit, checkhelo, debug, dnscheck, escape_from, forward_all, greylist,
        greylist_from, immediate, localmx, mxpool, nodaemon, paranoid, relay,
        safe, verify_from;
    int early_talker;      /* early-talker= refuse clients that talk before the
                              greeting or pipeline without PIPELINING (on) */

    /* ---- numbers ---- */
    long clients;          /* clients=   max simultaneous SMTP sessions */
    long clients_per_host; /* clients-per-host= max sessions from one address */
    long delay;            /* delay=     greylist delay, seconds */
    long hops;             /* hops=      max Received: headers */
    double load;           /* load=      refuse connections above this load average */
    long long minfree;     /* minfree=   bytes that must stay free on the queue fs */
    long msp;              /* msp[=PORT] submission port, 0 = off */
    long qreturn;          /* qreturn=   seconds before queued mail bounces */
    long qwarn;            /* qwarn=     seconds before a "delayed" notice, 0 = never */
    long long size;        /* size=      max message size in bytes, 0 = unlimited */
    long timeout;          /* timeout=   SMTP idle timeout, seconds */
    long session_timeout;  /* session-timeout= total SMTP session time, seconds */
    long session_max_use;  /* session-max-use= connections one session process serves */
    long session_max_idle; /* session-max-idle= seconds a used one waits for the next */
    long max_rcpts;        /* max-recipients= per message */
    long max_errors;       /* max-errors= bad commands before disconnect */
    long line_max;         /* line-length= max SMTP command line, bytes */
    long retry_min;        /* retry-min= first retry back-off, seconds */
    long retry_max;        /* retry-max= longest back-off, seconds */
    long delivery_procs;   /* delivery-processes= parallel deliveries in a queue run */
    long dest_procs;       /* destination-processes= parallel deliveries per destination */
    long dns_timeout;      /* dns-timeout= seconds per DNS try */
    long dns_tries;        /* dns-tries= */
    long connect_timeout;  /* connect-timeout= outbound SMTP connect, seconds */
    long smtps;            /* smtps[=PORT] implicit-TLS submission port (465), 0 = off */
    long tls_handshake_timeout; /* tls-handshake-timeout= seconds for one TLS handshake */
    long tls_proxies;      /* tls-proxies= TLS proxy processes, 0 = one per 4 processors */
    long av_timeout;       /* av-timeout= seconds the av= program may take */
    long dnsbl_threshold;  /* dnsbl-threshold= score that refuses a client */
    long greet_pause;      /* greet-pause= seconds to wait for early talk */

    /* ---- SMTP AUTH (smtpd_auth.h) ---- */
    int auth_local;        /* auth-local=    local accounts may AUTH (shadow/PAM) */
    int auth_plaintext;    /* auth-plaintext= offer AUTH without TLS */
    int auth_sender_check; /* auth-sender-check= MAIL FROM must be the login */
    long auth_failures;    /* auth-failures= failed AUTHs before 421 */
    long filter_timeout;   /* filter-timeout= each step of a mail filter, seconds */
    int filter_local;      /* filter-local= filter local submissions too */
    char *filter_fail;     /* filter-fail= "tempfail" or "accept" */

    /* ---- strings and lists ---- */
    char *relay_host;          /* relay-host=  [root only] */
    char *relay_tls;           /* relay-tls= may|require|smtps, NULL = the default
                                  (smtp_tls.h) [root only] */
    char *relay_tls_ca;        /* relay-tls-ca= CA file for the relay host [root only] */
    char *relay_auth;          /* relay-auth= user:password file [root only] */
    int relay_auth_plaintext;  /* relay-auth-plaintext: AUTH without TLS [root only] */
    char *relay_map;           /* relay-map= per-destination relay settings [root only] */
    struct action forbidden;   /* forbidden= / blacklist= [root only] */
    struct action spam;        /* spam= [root only] */
    struct strlist trusted;    /* trusted= hosts, [addr], CIDR [root only] */
    struct strlist trusted_users; /* trusted-users= may use -f without warning */
    struct strlist usermap;    /* usermap=PATTERN:TARGETS */
    struct strlist filter;     /* filter= milter sockets */
    struct strlist listen;     /* listen= addr:port entries */
    struct strlist resolver;   /* resolver= host[:port] DNS servers */
    /* TLS server (tls_server.h): certificate/key pairs, matched by position */
    struct strlist tls_cert;   /* tls-cert= PEM certificate chain files */
    struct strlist tls_key;    /* tls-key= PEM private key files */
    char *tls_protocols;       /* tls-protocols= allowed versions (TLSv1.2,TLSv1.3) */
    char *tls_ciphers;         /* tls-ciphers= TLS 1.2 and older cipher list */
    char *tls_ciphersuites;    /* tls-ciphersuites= TLS 1.3 suites */
    int qualify_headers;       /* qualify-headers: @hostname on bare names in sendmail's headers */
    char *recipient_delimiter; /* recipient-delimiter= user+tag separator ("+"; "" = none) */
    int subaddress_folder;     /* subaddress-folder= user+tag into maildir folder .tag */
    int virtual_maildir;       /* virtual-maildir= VSPOOL/DOMAIN/USER/ is a maildir */
    long long mailbox_limit;   /* mailbox-limit= bytes a mailbox may hold, 0 = none */
    char *mailbox_limits;      /* mailbox-limits= per-user limits file (mailbox_limits.h) */
    char *mailbox_limit_action; /* mailbox-limit-action= "defer" (NULL) or "bounce" */
    char *av;                  /* av= PROGRAM [ARGS]: the message scanner, or NULL */
    struct strlist dnsbl;      /* dnsbl= zone[=addresses][*weight] */
};

/* Fill c with the built-in defaults (compile-time paths, hostname from uname). */
void config_defaults(struct config *c);
void config_free(struct config *c);

/* Who is setting options: root may set everything; others are refused the
 * root-only options (relay-host, forward-all, trusted, spam, forbidden) from
 * -o and -C files.  The default file, when its path is secure (root's,
 * secure_check), is root's word: its root-only settings hold for everyone. */
struct config_ctx {
    int privileged;     /* caller is root */
    int secure_check;   /* verify the file's path is secure (default config file) */
};

/* Read a config file.  Missing default file is fine (returns 0).  Returns 0, or
 * a <sysexits.h> code after printing the reason on stderr:
 *   EX_NOINPUT  -C file missing/unreadable     EX_OSFILE  insecure path
 *   EX_CONFIG   bad value for a known option   EX_NOPERM  root-only option
 * Unknown options only warn ("FILE:LINE: unknown option NAME"). */
int config_load(struct config *c, const char *path, int must_exist,
                const struct config_ctx *ctx);

/* Apply one "name[=value]" setting (from -o, or a line).  where is for messages
 * ("-o", "file:12").  Returns 0 or a sysexits code as config_load (unknown name:
 * warning, returns 0). */
int config_set(struct config *c, const char *setting, const char *where,
               const struct config_ctx *ctx);

/* Check the path of a config file: absolute, owned by root, not group/world
 * writable (group ok when gid 0), every parent directory the same (sticky dirs
 * may be group-writable but never world-writable).  0 if secure, else -1 with a
 * malloc'd reason in *why. */
int config_path_secure(const char *path, char **why);

/* Parse tagged values.  Return 0 or -1.
 *  config_parse_time: seconds; bare number = seconds unless def_unit says
 *    otherwise (60 for minutes); suffixes s m h d w.
 *  config_parse_size: bytes; suffixes k m g (powers of 1000 as the original). */
int config_parse_time(const char *s, long def_unit, long *out);
int config_parse_size(const char *s, long long *out);

/* Write every option with its current value (for DEBUG and -bP). */
void config_dump(const struct config *c, struct buf *out);

/* Is name (any case) an option of postoffice.cf?  1 or 0. */
int config_known(const char *name);


#endif
