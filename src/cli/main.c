/* main.c - personalities (argv[0]) and the command line.
 *
 *   postoffice -bd -q5    daemon        sendmail [-t] [-i] [-f addr] rcpt...
 *   mailq   (= -bp)       runq (= -bq)  newaliases (= -bi)   smtpd (= -bd)
 *
 * Not setuid: every mode runs with the caller's own privileges. */
#include "compat.h"

#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <unistd.h>

#include "aliases.h"
#include "child.h"
#include "conf.h"
#include "master.h"
#include "envelope.h"
#include "log.h"
#include "logsum.h"
#include "mailq.h"
#include "quarantine.h"
#include "queue_run.h"
#include "queue_tools.h"
#include "session.h"
#include "spool.h"
#include "submit.h"
#include "util.h"
#include "vdomain.h"
#include "verify.h"

#include <ares.h>
#include <gdbm.h>
#include <openssl/crypto.h>

struct cli {
    char mode;              /* m p q i s d D */
    const char *cfile;      /* -C */
    struct strlist sets;    /* -o name=value, in order */
    long interval;          /* -qN: seconds between queue runs, 0 = none */
    int verbose, audit, foreground;
    const char *peer;       /* -bs -R ADDR: play a network client at ADDR */
    char qtool;             /* -M: 'M' deliver, 'r' remove (-Mrm), 'f' hold, 't' release */
    char qsel;              /* -qI/-qR/-qS: which messages a run takes */
    const char *qsel_text;
    struct submit_opts sub;
};

static const char *basename_of(const char *p)
{
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

static char default_mode(const char *name)
{
    if (!strcasecmp(name, "mailq"))
        return 'p';
    if (!strcasecmp(name, "runq"))
        return 'q';
    if (!strcasecmp(name, "newaliases"))
        return 'i';
    if (!strcasecmp(name, "smtpd"))
        return 'd';
    return 'm'; /* postoffice, sendmail, send-mail */
}

/* A command-line error: one line saying what to fix. */
PO_NORETURN static void usage(const char *why)
{
    say("%s (sendmail(8) lists the options)", why);
    exit(EX_USAGE);
}

PO_NORETURN static void help(void)
{
    fputs("usage: sendmail [-t] [-i] [-f sender] [-F name] [-N dsn] [-R ret] [-o opt=val] rcpt...\n"
          "       postoffice -bd|-bD [-qINTERVAL]   the daemon (detached / foreground)\n"
          "       postoffice -bp | mailq [-v]        list the queue (-v: by domain and age)\n"
          "       postoffice -q | runq [-v]          run the queue once\n"
          "       postoffice -bi | newaliases        rebuild the aliases database\n"
          "       postoffice -bs [-R ADDR]           one SMTP session on stdin/stdout\n"
          "       postoffice -M|-Mrm|-Mf|-Mt QID...  deliver now | remove | hold | release\n"
          "       runq -qI|-qR|-qS TEXT              deliver now what matches id|recipient|sender\n"
          "       postoffice -bv address...          where each address would go\n"
          "       postoffice -bP [option...]         the configuration in effect\n"
          "       postoffice -bV                     version and build options\n"
          "       postoffice -bS [logfile...]        summary of the mail log (postoffice-log(5))\n"
          "common: -C file (another configuration), -o name=value (one option), -v\n"
          "see sendmail(8), postoffice(8) and postoffice.cf(5)\n", stdout);
    exit(0);
}

static int parse_notify(const char *v)
{
    int bits = 0;
    struct strlist l;
    sl_init(&l);
    sl_split(&l, v, ",");
    for (size_t i = 0; i < l.n; i++) {
        if (!strcasecmp(l.v[i], "never"))
            bits |= DSN_NEVER;
        else if (!strcasecmp(l.v[i], "success"))
            bits |= DSN_SUCCESS;
        else if (!strcasecmp(l.v[i], "failure"))
            bits |= DSN_FAILURE;
        else if (!strcasecmp(l.v[i], "delay"))
            bits |= DSN_DELAY;
        else
            usage("-N takes never, or a list of success, failure, delay");
    }
    sl_free(&l);
    return bits;
}

/* -q, -q30m, -q1h: a bare -q runs the queue once. */
static void parse_q(struct cli *cl, const char *rest)
{
    if (rest[0] && strchr("IRS", rest[0])) {
        if (!rest[1])
            usage("-qI, -qR and -qS take the text to match: -qRexample.org");
        cl->qsel = rest[0];
        cl->qsel_text = rest + 1;
        if (cl->mode == 'm')
            cl->mode = 'q';
        return;
    }
    if (!*rest) {
        if (cl->mode == 'm')
            cl->mode = 'q';
        return;
    }
    long secs;
    if (config_parse_time(rest, 60, &secs) < 0 || secs <= 0)
        usage("-q takes an interval such as -q5 (minutes), -q30m, -q1h or -q1d");
    cl->interval = secs;
}

/* sendmail's -oX flags that are not configuration settings. */
static int sendmail_o(struct cli *cl, const char *rest)
{
    if (!strcmp(rest, "i")) {
        cl->sub.dot_ends = 0;
        return 1;
    }
    if (!strcmp(rest, "dq")) {
        cl->sub.queue_only = 1;
        return 1;
    }
    /* delivery/error modes and the like have no meaning here */
    static const char *const ignored[] = {"db", "di", "ds", "em", "ee", "ep",
                                          "eq", "ew", "m", "o", NULL};
    for (size_t i = 0; ignored[i]; i++)
        if (!strcmp(rest, ignored[i]))
            return 1;
    return 0;
}

/* sendmail's -O Name=value: IgnoreDots and DeliveryMode=queue mean something
 * here; every other long option is accepted and ignored. */
static void sendmail_O(struct cli *cl, const char *v)
{
    size_t n = strcspn(v, "=");
    const char *val = v[n] == '=' ? v + n + 1 : "true";
    if (n == 10 && !strncasecmp(v, "IgnoreDots", n))
        cl->sub.dot_ends = strchr("tTyY1", val[0]) == NULL;
    else if (n == 12 && !strncasecmp(v, "DeliveryMode", n) && strchr("qQ", val[0]))
        cl->sub.queue_only = 1;
}

/* Flags that take a value, attached ("-fbob") or as the next argument
 * ("-f bob"), as getopt's "f:"; -q and -d take only an attached one, which may
 * be empty ("-q", "-q30m").  Every other flag may be grouped ("-ti"). */
#define VALUE_FLAGS "bfrFCNRoOBhLXA"
#define ATTACHED_FLAGS "qdM"

/* Flag f with value v (NULL for a flag without one). */
static void parse_flag(struct cli *cl, char f, const char *v)
{
    switch (f) {
    case 'b':
        if (!v[0] || v[1] || !strchr("mpqisdDvPVQS", v[0]))
            usage("unknown mode: -bm, -bp, -bq, -bi, -bs, -bd, -bD, -bv, -bP, -bV, -bQ and -bS "
                  "are known");
        cl->mode = v[0];
        break;
    case 'I': cl->mode = 'i'; break; /* sendmail's old name of -bi */
    case 't': cl->sub.extract = 1; break;
    case 'i': cl->sub.dot_ends = 0; break;
    case 'v': cl->verbose = 1; cl->sub.verbose = 1; break;
    case 'a': cl->audit = 1; break;
    case 'd': cl->foreground = 1; break; /* -d, -d0.1: stay in the foreground */
    case 'f':
    case 'r': cl->sub.from = v; break;
    case 'F': cl->sub.fullname = v; break;
    case 'C': cl->cfile = v; break;
    case 'q': parse_q(cl, v); break;
    case 'M': /* Exim's -M QID... (deliver now) and -Mrm QID... (remove) */
        if (!strcmp(v, ""))
            cl->qtool = 'M';
        else if (!strcmp(v, "rm"))
            cl->qtool = 'r';
        else if (!strcmp(v, "f") || !strcmp(v, "t"))
            cl->qtool = v[0];
        else
            usage("-M takes no value (deliver now), rm (remove), f (hold) or t (release): "
                  "-M QID..., -Mrm QID..., -Mf QID..., -Mt QID...");
        cl->mode = 'M';
        break;
    case 'N': cl->sub.notify = parse_notify(v); break;
    case 'R': /* sendmail: DSN RET=hdrs|full; with -bs: the client address */
        cl->peer = v;
        cl->sub.ret_hdrs = !strcasecmp(v, "hdrs");
        break;
    case 'o':
        if (!sendmail_o(cl, v))
            sl_add(&cl->sets, v);
        break;
    case 'O': sendmail_O(cl, v); break;
    case 'h': /* sendmail's hop count: counted from Received: lines here */
        break;
    /* sendmail flags with no meaning here: accepted and ignored */
    case 'B': case 'L': case 'X': case 'A':
    case 'm': case 'n': case 'U': case 'G': break;
    default: {
        char msg[64];
        snprintf(msg, sizeof msg, "unknown option -%c", f ? f : '?');
        usage(msg);
    }
    }
}

/* One argument holding a group of flags ("-ti", "-tf bob", "-oi"); *i moves
 * past a value taken from the next argument. */
static void parse_group(struct cli *cl, int argc, char **argv, int *i)
{
    for (const char *p = argv[*i] + 1; *p; p++) {
        char f = *p;
        if (f == 'V') {
            if (p[1])
                usage("-V takes no value (it prints the version)");
            printf("postoffice %s\n", PO_VERSION);
            exit(0);
        }
        if (strchr(ATTACHED_FLAGS, f)) {
            parse_flag(cl, f, p + 1);
            return;
        }
        if (!strchr(VALUE_FLAGS, f)) {
            parse_flag(cl, f, NULL);
            continue;
        }
        if (!p[1] && *i + 1 >= argc) {
            char msg[64];
            snprintf(msg, sizeof msg, "option -%c needs a value", f);
            usage(msg);
        }
        parse_flag(cl, f, p[1] ? p + 1 : argv[++*i]);
        return;
    }
}

static void parse_cli(struct cli *cl, int argc, char **argv)
{
    int i;
    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--")) {
            i++;
            break;
        }
        /* -h with no hop count after it, or --help: the usage */
        if (!strcmp(a, "--help") || (!strcmp(a, "-h") && i + 1 == argc))
            help();
        if (a[0] != '-' || !a[1])
            break;
        parse_group(cl, argc, argv, &i);
    }
    for (; i < argc; i++)
        sl_add(&cl->sub.rcpts, argv[i]);
}

static int load_config(struct config *c, const struct cli *cl)
{
    struct config_ctx ctx = {getuid() == 0, 0};
    int rc;
    if (cl->cfile) {
        rc = config_load(c, cl->cfile, 1, &ctx);
    } else {
        ctx.secure_check = 1;
        rc = config_load(c, PATH_CONFIG, 0, &ctx);
        ctx.secure_check = 0;
    }
    for (size_t i = 0; rc == 0 && i < cl->sets.n; i++)
        rc = config_set(c, cl->sets.v[i], "-o", &ctx);
    if (cl->audit)
        c->audit = 1;
    return rc;
}

/* Build path.db from path (the system aliases, or a virtual domain's). */
static int build_aliases(const char *path)
{
    long count = 0, longest = 0;
    char *err = NULL;
    struct strlist warn;
    sl_init(&warn);
    int rc = aliases_build_warn(path, &count, &longest, &warn, &err);
    for (size_t i = 0; i < warn.n; i++)
        say("%s", warn.v[i]);
    sl_free(&warn);
    if (rc < 0) {
        say("%s", err ? err : "cannot build the aliases database");
        free(err);
        return rc == -1 ? EX_NOINPUT : EX_CANTCREAT;
    }
    fprintf(stderr, "%s: %ld aliases, longest %ld bytes\n", path, count, longest);
    return 0;
}

/* newaliases: the system aliases; newaliases DOMAIN...: those virtual
 * domains' aliases (VHOSTDIR/DOMAIN/aliases), each an active domain. */
static int run_newaliases(const struct config *c, const struct strlist *domains)
{
    if (domains->n == 0)
        return build_aliases(c->aliases);
    int rc = 0;
    for (size_t i = 0; i < domains->n; i++) {
        char *d = vdomain_name(c, domains->v[i]);
        char *path = d ? vdomain_aliases_path(c, d) : NULL;
        int r;
        if (!path) {
            say("%s: not a known virtual domain (see %s/domains.cf)", domains->v[i],
                c->vpath);
            r = EX_NOHOST;
        } else {
            r = build_aliases(path);
        }
        if (r && !rc)
            rc = r;
        free(path);
        free(d);
    }
    return rc;
}

/* Create the queue (owned by user=, or by the caller when not root) if it or its
 * maildrop is missing.  Ordinary users can't and needn't: they use the maildrop. */
static void ensure_queue(const struct config *c)
{
    uid_t uid = getuid();
    gid_t gid = getgid();
    if (geteuid() == 0) {
        struct passwd *pw = getpwnam(c->user);
        if (!pw) {
            say("the unprivileged account %s (user=) does not exist; create it or "
                "set user= in %s", c->user, c->confpath);
            exit(EX_NOUSER);
        }
        uid = pw->pw_uid;
        gid = pw->pw_gid;
    } else if (access(c->queuedir, F_OK) == 0) {
        struct stat st;
        if (stat(c->queuedir, &st) < 0 || st.st_uid != uid)
            return;
    }
    if (spool_setup(c->queuedir, uid, gid) < 0)
        say("cannot set up the queue %s: %s", c->queuedir, strerror(errno));
}

/* Print the lines of dump (NUL-terminated "name=value" lines) for option
 * name, or every line when name is NULL.  Returns how many. */
static int print_lines(const char *dump, const char *name)
{
    int shown = 0;
    size_t want = name ? strlen(name) : 0;
    for (const char *line = dump; *line;) {
        size_t len = strcspn(line, "\n"), n = strcspn(line, "=");
        if (!name || (n == want && !strncasecmp(line, name, n))) {
            printf("%.*s\n", (int)len, line);
            shown++;
        }
        line += len + (line[len] == '\n');
    }
    return shown;
}

/* -bP: every option's value in effect, or the named ones in the order
 * given (a list option gives a line per entry; an unset one "name="). */
static int print_config(const struct config *c, const struct strlist *names)
{
    for (size_t i = 0; i < names->n; i++) {
        if (!config_known(names->v[i])) {
            say("-bP: %s is not an option (postoffice.cf(5) lists them)", names->v[i]);
            return EX_USAGE;
        }
    }
    struct buf b;
    buf_init(&b);
    config_dump(c, &b);
    buf_addc(&b, '\0');
    if (names->n == 0)
        print_lines(b.s, NULL);
    for (size_t i = 0; i < names->n; i++)
        if (print_lines(b.s, names->v[i]) == 0)
            printf("%s=\n", names->v[i]);
    buf_free(&b);
    return 0;
}

/* -bV: the version and what this binary was built with. */
static int print_version(void)
{
    printf("postoffice %s\n", PO_VERSION);
    printf("configuration: %s\nqueue: %s\nmail spool: %s\naliases: %s\n", PATH_CONFIG,
           PATH_QUEUEDIR, PATH_MAILSPOOL, PATH_ALIASES);
    if (PATH_MAILNAME[0])
        printf("mailname: %s\n", PATH_MAILNAME);
    printf("tcp wrappers: %s\nmilter: %s\npam: %s\n",
           HAVE_LIBWRAP ? "yes (" WRAP_LIBRARY ")" : "no", HAVE_MILTER ? "yes" : "no",
           HAVE_PAM ? "yes" : "no");
    printf("libraries: %s, gdbm %s, c-ares %s\n", OpenSSL_version(OPENSSL_VERSION),
           gdbm_version, ares_version(NULL));
    return 0;
}

/* -bQ QID...: release messages a mail filter quarantined. */
static int release_quarantined(const struct config *c, const struct strlist *qids)
{
    int rc = 0;
    for (size_t i = 0; i < qids->n; i++) {
        int r = quar_release(c, qids->v[i]);
        if (r == 0) {
            printf("%s: released\n", qids->v[i]);
            continue;
        }
        if (r == 1)
            say("%s: not quarantined; nothing to release", qids->v[i]);
        else if (errno == EACCES || errno == EPERM)
            say("%s: cannot open the queue file: run -bQ as root or the queue owner",
                qids->v[i]);
        else if (errno == EBUSY)
            say("%s: is being delivered; try again", qids->v[i]);
        else
            say("%s: %s", qids->v[i], errno == ENOENT ? "no such message in the queue"
                                                      : strerror(errno));
        rc = r == 1 ? (rc ? rc : EX_DATAERR) : errno == ENOENT ? EX_NOINPUT : EX_TEMPFAIL;
    }
    return rc;
}

static int dispatch(struct config *c, struct cli *cl)
{
    if (cl->mode == 'P')
        return print_config(c, &cl->sub.rcpts);
    if (cl->mode == 'V')
        return print_version();
    if (cl->mode == 'v')
        return verify_addresses(c, &cl->sub.rcpts, stdout);
    if (cl->mode == 'M' && cl->qtool == 'r')
        return qtool_remove(c, &cl->sub.rcpts);
    if (cl->mode == 'M' && (cl->qtool == 'f' || cl->qtool == 't'))
        return qtool_hold(c, &cl->sub.rcpts, cl->qtool == 'f');
    if (cl->mode == 'M')
        return qtool_deliver(c, &cl->sub.rcpts, cl->verbose);
    if (cl->mode == 'q' && cl->qsel) {
        ensure_queue(c);
        return qtool_deliver_matching(c, (enum qsel_kind)cl->qsel, cl->qsel_text, cl->verbose);
    }
    if (cl->mode != 'p' && cl->mode != 'i')
        ensure_queue(c);
    struct runq_opts ro = {.force = 1, .verbose = cl->verbose};
    switch (cl->mode) {
    case 'm':
        if (cl->interval && cl->sub.rcpts.n == 0)
            return master_main(c, cl->foreground, cl->interval, 0);
        return submit_main(c, &cl->sub);
    case 'p':
        return mailq_print(c, stdout, time(NULL), cl->verbose ? MAILQ_SHAPE : 0);
    case 'q':
        return runq_run(c, &ro);
    case 'i':
        return run_newaliases(c, &cl->sub.rcpts);
    case 'Q':
        return release_quarantined(c, &cl->sub.rcpts);
    case 's':
        return cl->peer ? session_run_stdio_peer(c, cl->peer) : session_run_stdio(c);
    case 'd':
    case 'D':
        return master_main(c, cl->mode == 'D' || cl->foreground, cl->interval, 1);
    }
    return EX_USAGE;
}

int main(int argc, char **argv)
{
    child_set_argv(argc, argv); /* first: copies argv, so names below stay put */
    const char *name = basename_of(argv[0] ? argv[0] : "postoffice");
    log_open(name, 0);
    struct cli cl;
    memset(&cl, 0, sizeof cl);
    cl.sub.dot_ends = 1;
    sl_init(&cl.sets);
    sl_init(&cl.sub.rcpts);
    cl.mode = default_mode(name);
    parse_cli(&cl, argc, argv);
    if (!strchr("mvPMiQS", cl.mode) && cl.sub.rcpts.n)
        usage("recipients are only taken when sending mail (-bm); newaliases takes "
              "virtual domains");
    if (cl.mode == 'v' && cl.sub.rcpts.n == 0)
        usage("-bv needs the addresses to verify");
    if (cl.mode == 'Q' && cl.sub.rcpts.n == 0)
        usage("-bQ needs the queue ids of the quarantined messages to release");
    if (cl.verbose)
        log_set_stderr(1);
    if (cl.mode == 'S') { /* reads a log: no configuration, no privilege */
        int rs = logsum_main(&cl.sub.rcpts, stdout);
        sl_free(&cl.sets);
        sl_free(&cl.sub.rcpts);
        return rs;
    }

    struct config c;
    config_defaults(&c);
    int rc = load_config(&c, &cl);
    if (rc == 0)
        rc = dispatch(&c, &cl);
    config_free(&c);
    sl_free(&cl.sets);
    sl_free(&cl.sub.rcpts);
    return rc;
}
