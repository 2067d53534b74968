/* po-remote.c - test driver for remote delivery without the queue runner.
 *
 *   po-remote [-o opt=val]... route DOMAIN     print the route (mx_route)
 *   po-remote [-o opt=val]... here DOMAIN      route_mx_here: yes/no/tempfail
 *   po-remote [-o opt=val]... mx DOMAIN        dns_mx: status and records
 *   po-remote [-o opt=val]... addrs HOST       dns_addrs AF_UNSPEC
 *   po-remote [-o opt=val]... ptr ADDRESS      dns_ptr
 *   po-remote [-o opt=val]... [-v] [-8] [-u] [-r N] [-N NOTIFY] [-O] [-H]
 *             send SENDER DATAFILE RCPT...
 *        deliver with smtpc_deliver; one line per recipient on stdout:
 *        "RCPT<TAB>sent|deferred|bounced<TAB>STATUS<TAB>MTA<TAB>RELAY";
 *        -r N sends it N times over cached connections (last results shown);
 *        -N/-O/-H set the DSN NOTIFY, ORCPT (= the recipient), RET=HDRS.
 *   po-remote [-o opt=val]... queue QUEUEDIR SENDER DATAFILE RCPT...
 *        put a message into the queue (spool API), print its qid
 *   po-remote [-o opt=val]... [-v] deliver QUEUEDIR QID
 *        remote_deliver() every pending recipient (no privilege change: the
 *        caller's identity), then print each recipient as the control file
 *        has it afterwards: "ADDR<TAB>STATE<TAB>STATUS<TAB>REMOTE-MTA".
 * Options are applied as root would (relay-host is root-only in files). */
#include "compat.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "conf.h"
#include "dns.h"
#include "log.h"
#include "mx.h"
#include "remote_session.h"
#include "route.h"
#include "queue_run.h"
#include "smtp_client.h"
#include "spool.h"
#include "util.h"

static const char *st_name(enum dns_status s)
{
    return s == DNS_OK ? "ok" : s == DNS_NODATA ? "nodata" : s == DNS_NXDOMAIN ? "nxdomain"
                                                                                : "tempfail";
}

static void print_addr(const struct sockaddr_storage *ss)
{
    char t[64];
    int port;
    if (ss->ss_family == AF_INET) {
        inet_ntop(AF_INET, &((const struct sockaddr_in *)ss)->sin_addr, t, sizeof t);
        port = ntohs(((const struct sockaddr_in *)ss)->sin_port);
    } else {
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)ss)->sin6_addr, t, sizeof t);
        port = ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
    }
    printf(" %s", t);
    if (port)
        printf(":%d", port);
}

struct dsnopt {
    int notify;         /* -N: DSN_* bits for every recipient */
    int orcpt;          /* -O: ORCPT = the recipient itself */
};

static int parse_notify(const char *s)
{
    int n = 0;
    if (strstr(s, "NEVER"))
        n |= DSN_NEVER;
    if (strstr(s, "SUCCESS"))
        n |= DSN_SUCCESS;
    if (strstr(s, "FAILURE"))
        n |= DSN_FAILURE;
    if (strstr(s, "DELAY"))
        n |= DSN_DELAY;
    return n;
}

static int do_send(const struct config *c, struct dns_ctx *d, int argc, char **argv,
                   int verbose, int flags, int repeat, const struct dsnopt *dsn)
{
    if (argc < 3) {
        fprintf(stderr, "usage: send SENDER DATAFILE RCPT...\n");
        return 64;
    }
    struct envelope e;
    memset(&e, 0, sizeof e);
    str_copy(e.qid, "TESTQID", sizeof e.qid);
    e.sender = argv[0];
    e.ctime = time(NULL);
    e.flags = flags;
    e.nrcpts = (size_t)argc - 2;
    e.rcpts = xcalloc(e.nrcpts, sizeof *e.rcpts);
    size_t *idx = xcalloc(e.nrcpts, sizeof *idx);
    for (size_t i = 0; i < e.nrcpts; i++) {
        e.rcpts[i].addr = argv[2 + i];
        e.rcpts[i].notify = dsn->notify;
        e.rcpts[i].orig = dsn->orcpt ? argv[2 + i] : NULL;
        idx[i] = i;
    }
    int fd = open(argv[1], O_RDONLY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) {
        perror(argv[1]);
        return 66;
    }
    struct smtpc_result *res = xcalloc(e.nrcpts, sizeof *res);
    const char *at = strrchr(argv[2], '@');
    /* -r N: the same message N times over one cached connection */
    struct smtpc_cache *cache = repeat > 1 ? smtpc_cache_new() : NULL;
    struct relay_creds creds;
    relay_creds_load(c, NULL, 0, &creds); /* as the caller: tests run it as root */
    struct smtpc_sec sec = {.tls = smtp_tls_new(c), .creds = &creds};
    for (int k = 0; k < repeat; k++) {
        if (k)
            smtpc_results_free(res, e.nrcpts);
        struct msgdata data = {fd, 0, (long long)st.st_size};
        smtpc_deliver(c, d, cache, &sec, at ? at + 1 : "", &e, &data, idx, e.nrcpts, verbose,
                      res);
    }
    smtpc_cache_close(cache);
    smtp_tls_free(sec.tls);
    relay_creds_free(&creds);
    for (size_t i = 0; i < e.nrcpts; i++)
        printf("%s\t%s\t%s\t%s\t%s\n", e.rcpts[i].addr,
               res[i].outcome == SO_SENT ? "sent" : res[i].outcome == SO_BOUNCED ? "bounced"
                                                                                 : "deferred",
               res[i].status, res[i].mta ? res[i].mta : "-", res[i].relay ? res[i].relay : "-");
    smtpc_results_free(res, e.nrcpts);
    free(res);
    free(idx);
    free(e.rcpts);
    close(fd);
    return 0;
}

static int do_queue(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: queue QUEUEDIR SENDER DATAFILE RCPT...\n");
        return 64;
    }
    struct buf data;
    buf_init(&data);
    if (read_file(argv[2], &data, 64 << 20) < 0) {
        perror(argv[2]);
        return 66;
    }
    struct envelope e;
    env_init(&e);
    free(e.sender);
    e.sender = xstrdup(argv[1]);
    e.ctime = time(NULL);
    for (int i = 3; i < argc; i++)
        env_add_rcpt(&e, argv[i], NULL, NULL);
    struct spool_new *sn = spool_new(argv[0]);
    if (!sn || spool_new_write(sn, data.s, data.len) < 0 || spool_commit(sn, &e) < 0) {
        perror("spool");
        return 74;
    }
    printf("%s\n", e.qid);
    env_free(&e);
    buf_free(&data);
    return 0;
}

static const char *state_name(enum rcpt_state st)
{
    return st == RS_DONE ? "done" : st == RS_FAILED ? "failed" : st == RS_BOUNCED ? "bounced"
                                                                                : "pending";
}

static int do_deliver(const struct config *c, int argc, char **argv, int verbose)
{
    struct qmsg *m;
    if (argc < 2) {
        fprintf(stderr, "usage: deliver QUEUEDIR QID\n");
        return 64;
    }
    if (spool_open(argv[0], argv[1], &m) != 0) {
        perror(argv[1]);
        return 66;
    }
    struct envelope *e = spool_env(m);
    size_t *idx = xcalloc(e->nrcpts + 1, sizeof *idx), n = 0;
    for (size_t i = 0; i < e->nrcpts; i++)
        if (e->rcpts[i].state == RS_PENDING)
            idx[n++] = i;
    struct runq_opts o = {.force = 1, .verbose = verbose};
    int left = remote_deliver(c, m, idx, n, &o);
    spool_close(m);
    free(idx);
    /* read back what is on disk, not what is in memory */
    struct envelope back;
    env_init(&back);
    if (spool_peek(argv[0], argv[1], &back, NULL) < 0) {
        perror("spool_peek");
        return 74;
    }
    for (size_t i = 0; i < back.nrcpts; i++)
        printf("%s\t%s\t%s\t%s\n", back.rcpts[i].addr, state_name(back.rcpts[i].state),
               back.rcpts[i].status ? back.rcpts[i].status : "-",
               back.rcpts[i].remote_mta ? back.rcpts[i].remote_mta : "-");
    printf("pending %d\n", left);
    env_free(&back);
    return 0;
}

int main(int argc, char **argv)
{
    struct config c;
    struct config_ctx ctx = {1, 0};
    int verbose = 0, flags = 0, opt, repeat = 1;
    struct dsnopt dsn = {0, 0};
    config_defaults(&c);
    log_open("po-remote", 1);
    while ((opt = getopt(argc, argv, "+o:v8ur:N:OH")) != -1) {
        switch (opt) {
        case 'o':
            if (config_set(&c, optarg, "-o", &ctx) != 0)
                return 78;
            break;
        case 'v':
            verbose = 1;
            break;
        case '8':
            flags |= ENV_8BIT;
            break;
        case 'u':
            flags |= ENV_SMTPUTF8;
            break;
        case 'r':
            repeat = atoi(optarg);
            break;
        case 'N':
            dsn.notify = parse_notify(optarg);
            break;
        case 'O':
            dsn.orcpt = 1;
            break;
        case 'H':
            flags |= ENV_RET_HDRS;
            break;
        default:
            return 64;
        }
    }
    argc -= optind;
    argv += optind;
    if (argc < 2) {
        fprintf(stderr, "usage: po-remote [-o opt]... route|here|mx|addrs|ptr|send ...\n");
        return 64;
    }
    if (strcmp(argv[0], "queue") == 0 || strcmp(argv[0], "deliver") == 0) {
        int r = argv[0][0] == 'q' ? do_queue(argc - 1, argv + 1)
                                  : do_deliver(&c, argc - 1, argv + 1, verbose);
        config_free(&c);
        return r;
    }
    struct dns_ctx *d = dns_open(&c);
    if (!d)
        return 69;
    int rc = 0;
    if (strcmp(argv[0], "route") == 0) {
        struct mx_route r;
        char *why;
        enum mx_status ms = mx_route(d, &c, argv[1], &r, &why);
        if (ms != MX_OK) {
            printf("%s %s\n", ms == MX_TEMPFAIL ? "tempfail" : "permfail", why);
            free(why);
        } else {
            for (size_t i = 0; i < r.n; i++) {
                printf("%d %s", r.hosts[i].pref, r.hosts[i].name);
                for (size_t j = 0; j < r.hosts[i].naddrs; j++)
                    print_addr(&r.hosts[i].addrs[j]);
                printf("\n");
            }
            mx_route_free(&r);
        }
    } else if (strcmp(argv[0], "here") == 0) {
        int h = route_mx_here(d, &c, argv[1]);
        printf("%s\n", h > 0 ? "yes" : h == 0 ? "no" : "tempfail");
    } else if (strcmp(argv[0], "mx") == 0) {
        struct dns_mx *mx;
        size_t n;
        enum dns_status s = dns_mx(d, argv[1], &mx, &n);
        printf("%s\n", st_name(s));
        for (size_t i = 0; i < n; i++)
            printf("%d %s\n", mx[i].pref, mx[i].host[0] ? mx[i].host : ".");
        dns_free_mx(mx, n);
    } else if (strcmp(argv[0], "addrs") == 0) {
        struct sockaddr_storage *a;
        size_t n;
        enum dns_status s = dns_addrs(d, argv[1], AF_UNSPEC, &a, &n);
        printf("%s", st_name(s));
        for (size_t i = 0; i < n; i++)
            print_addr(&a[i]);
        printf("\n");
        free(a);
    } else if (strcmp(argv[0], "ptr") == 0) {
        struct sockaddr_storage ss;
        char *name = NULL;
        memset(&ss, 0, sizeof ss);
        if (inet_pton(AF_INET, argv[1], &((struct sockaddr_in *)&ss)->sin_addr) == 1)
            ss.ss_family = AF_INET;
        else if (inet_pton(AF_INET6, argv[1], &((struct sockaddr_in6 *)&ss)->sin6_addr) == 1)
            ss.ss_family = AF_INET6;
        enum dns_status s = dns_ptr(d, (struct sockaddr *)&ss, &name);
        printf("%s %s\n", st_name(s), name ? name : "-");
        free(name);
    } else if (strcmp(argv[0], "send") == 0) {
        rc = do_send(&c, d, argc - 1, argv + 1, verbose, flags, repeat, &dsn);
    } else {
        fprintf(stderr, "po-remote: unknown command %s\n", argv[0]);
        rc = 64;
    }
    dns_close(d);
    config_free(&c);
    return rc;
}
