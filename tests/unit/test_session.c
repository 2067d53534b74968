/* test_session.c - the SMTP session's state machine, driven over a socketpair
 * through session_run (one forked session per test, as the daemon runs it)
 * with a configuration and a private queue built here: command order,
 * EHLO keywords, PIPELINING, the error counter, the line limit, the small
 * commands, a message queued (queue file and MSG_QUEUED), SIZE, the
 * recipient limit, relay refusal (a DNS server in the test answers NXDOMAIN to every query)
 * and the idle timeout.  Every reply's code and enhanced status is checked. */
#include "compat.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "conf.h"
#include "msg.h"
#include "netaddr.h"
#include "session.h"
#include "spool.h"
#include "util.h"

#define HOST "mx.test.example"
#define LOCAL_RCPT "nobody@" HOST
#define REMOTE_PEER "203.0.113.7"
#define WAIT_MS 20000 /* generous: valgrind runs the session child too */

struct fix {
    struct config c;
    char dir[64];     /* private temp dir */
    char q[96];       /* dir/q: the queue */
    pid_t dns_pid;    /* the NXDOMAIN DNS server, or 0 */
    pid_t sess_pid;   /* a session not reaped yet (a failed assertion), or 0 */
};

/* One session: the client's end of the socketpair and the notify pipe. */
struct cli {
    struct fix *f;
    pid_t pid;
    int fd;
    int notify;       /* read end: MSG_QUEUED from the session */
    struct buf in;    /* received, not yet consumed */
    struct buf last;  /* the last reply, lines joined with '\n' */
};

static void set(struct config *c, const char *s)
{
    struct config_ctx ctx = { 1, 0 };
    assert_int_equal(config_set(c, s, "test", &ctx), 0);
}

static void setf(struct config *c, const char *fmt, const char *arg)
{
    char *s = xasprintf(fmt, arg);
    set(c, s);
    free(s);
}

static void write_file(const char *dir, const char *name, const char *text)
{
    char *p = xasprintf("%s/%s", dir, name);
    FILE *fp = fopen(p, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
    free(p);
}

static int setup(void **st)
{
    struct fix *f = xcalloc(1, sizeof *f);
    str_copy(f->dir, "/tmp/po-session-XXXXXX", sizeof f->dir);
    if (!mkdtemp(f->dir))
        return -1;
    snprintf(f->q, sizeof f->q, "%s/q", f->dir);
    if (spool_setup(f->q, getuid(), getgid()) < 0)
        return -1;
    write_file(f->dir, "aliases", "postmaster: root\n");
    write_file(f->dir, "hosts.allow", "");
    write_file(f->dir, "hosts.deny", "");
    config_defaults(&f->c);
    set(&f->c, "hostname=" HOST);
    setf(&f->c, "queuedir=%s", f->q);
    char *p = xasprintf("%s/aliases", f->dir);
    setf(&f->c, "aliases=%s", p);
    free(p);
    p = xasprintf("%s/no-banner", f->dir); /* never read /etc/issue.smtp */
    setf(&f->c, "banner=%s", p);
    free(p);
#if HAVE_LIBWRAP
    p = xasprintf("%s/hosts.allow", f->dir); /* never read /etc/hosts.* */
    setf(&f->c, "hosts-allow=%s", p);
    free(p);
    p = xasprintf("%s/hosts.deny", f->dir);
    setf(&f->c, "hosts-deny=%s", p);
    free(p);
#endif
    set(&f->c, "minfree=0");
    set(&f->c, "timeout=30");
    *st = f;
    return 0;
}

static int teardown(void **st)
{
    struct fix *f = *st;
    pid_t kids[] = { f->dns_pid, f->sess_pid };
    for (size_t i = 0; i < 2; i++) {
        if (kids[i] > 0) {
            kill(kids[i], SIGTERM);
            waitpid(kids[i], NULL, 0);
        }
    }
    char *cmd = xasprintf("rm -rf '%s'", f->dir);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", f->dir);
    free(cmd);
    config_free(&f->c);
    free(f);
    return 0;
}

/* ---- the client side ---- */

/* Fork a session on a socketpair for a client at peer_ip; read its greeting. */
static void cli_start(struct fix *f, struct cli *k, const char *peer_ip)
{
    int sv[2], np[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    assert_int_equal(pipe(np), 0);
    struct netaddr peer;
    assert_int_equal(net_parse(peer_ip, &peer), 0);
    fflush(NULL);
    k->pid = fork();
    assert_true(k->pid >= 0);
    if (k->pid == 0) {
        close(sv[0]);
        close(np[0]);
        struct session_conn conn = { .fd = sv[1], .peer = &peer, .submission = 0,
                                     .notify_fd = np[1] };
        _exit(session_run(&f->c, &conn));
    }
    close(sv[1]);
    close(np[1]);
    f->sess_pid = k->pid;
    k->f = f;
    k->fd = sv[0];
    k->notify = np[0];
    buf_init(&k->in);
    buf_init(&k->last);
}

static void cli_send(struct cli *k, const char *text)
{
    size_t n = strlen(text);
    assert_int_equal(write(k->fd, text, n), (ssize_t)n);
}

/* Read more input; 0 at EOF, -1 on timeout. */
static int cli_fill(struct cli *k)
{
    struct pollfd p = { .fd = k->fd, .events = POLLIN };
    if (poll(&p, 1, WAIT_MS) != 1)
        return -1;
    char b[4096];
    ssize_t r = read(k->fd, b, sizeof b);
    if (r <= 0)
        return 0;
    buf_add(&k->in, b, (size_t)r);
    return 1;
}

/* Read one whole reply (every line) into k->last; returns its code.  Each
 * line must carry the same code. */
static int cli_reply(struct cli *k)
{
    buf_reset(&k->last);
    int code = -1;
    for (;;) {
        char *nl;
        while (!(nl = memchr(k->in.s, '\n', k->in.len)))
            assert_int_equal(cli_fill(k), 1);
        size_t n = (size_t)(nl - k->in.s) + 1;
        assert_true(n >= 6 && k->in.s[n - 2] == '\r');
        int c = atoi(k->in.s);
        assert_true(code < 0 || c == code);
        code = c;
        int more = k->in.s[3] == '-';
        assert_true(more || k->in.s[3] == ' ');
        if (k->last.len)
            buf_adds(&k->last, "\n");
        buf_add(&k->last, k->in.s, n - 2);
        memmove(k->in.s, k->in.s + n, k->in.len - n);
        buf_truncate(&k->in, k->in.len - n);
        if (!more)
            return code;
    }
}

/* Expect a reply "CODE ESC ..." (every line of it starting with CODE and the
 * enhanced status ESC, or with whatever else code_esc holds after CODE). */
static void expect(struct cli *k, const char *code_esc)
{
    cli_reply(k);
    size_t n = strlen(code_esc);
    char *line = k->last.s;
    for (;;) {
        size_t len = strcspn(line, "\n");
        char *got = xasprintf("%.*s", (int)(len < n ? len : n), line);
        if (strlen(got) > 3)
            got[3] = ' '; /* "250-2.0.0" continuation lines compare as "250 2.0.0" */
        assert_string_equal(got, code_esc);
        free(got);
        if (!line[len])
            break;
        line += len + 1;
    }
}

/* EHLO: the first line names us, the keyword lines carry no status code. */
static void ehlo(struct cli *k)
{
    cli_send(k, "EHLO client.example\r\n");
    assert_int_equal(cli_reply(k), 250);
    assert_true(!strncmp(k->last.s, "250-" HOST " greets client.example\n", 42));
}

static void cmd(struct cli *k, const char *line, const char *code_esc)
{
    cli_send(k, line);
    cli_send(k, "\r\n");
    expect(k, code_esc);
}

/* The session must have closed the connection (after its last reply). */
static void expect_eof(struct cli *k)
{
    while (k->in.len == 0) {
        int r = cli_fill(k);
        assert_int_not_equal(r, -1);
        if (r == 0)
            return;
    }
    fail_msg("unexpected data after the last reply: %.*s", (int)k->in.len, k->in.s);
}

/* Close our end, reap the session; returns its exit status. */
static int cli_end(struct cli *k)
{
    close(k->fd);
    close(k->notify);
    buf_free(&k->in);
    buf_free(&k->last);
    int status = 0;
    assert_int_equal(waitpid(k->pid, &status, 0), k->pid);
    k->f->sess_pid = 0;
    assert_true(WIFEXITED(status));
    return WEXITSTATUS(status);
}

static void quit(struct cli *k)
{
    cmd(k, "QUIT", "221 2.0.0");
    expect_eof(k);
    assert_int_equal(cli_end(k), 0);
}

/* Start a loopback session (may relay, no DNS) and greet with EHLO. */
static void start_ehlo(struct fix *f, struct cli *k)
{
    cli_start(f, k, "127.0.0.1");
    expect(k, "220 " HOST);
    ehlo(k);
}

static size_t count_qf(const char *q)
{
    char *cmd = xasprintf("ls '%s' | grep -c '^qf'", q);
    FILE *p = popen(cmd, "r");
    free(cmd);
    assert_non_null(p);
    int n = 0;
    assert_int_equal(fscanf(p, "%d", &n), 1);
    pclose(p);
    return (size_t)n;
}

/* ---- command order ---- */

static void test_order_before_helo(void **st)
{
    struct fix *f = *st;
    struct cli k;
    cli_start(f, &k, "127.0.0.1");
    expect(&k, "220 " HOST);
    cmd(&k, "MAIL FROM:<a@client.example>", "503 5.5.1");
    cmd(&k, "RCPT TO:<" LOCAL_RCPT ">", "503 5.5.1");
    cmd(&k, "DATA", "503 5.5.1");
    cmd(&k, "HELO", "501 5.5.4");
    cmd(&k, "HELO client.example", "250 " HOST);
    /* parameters need EHLO */
    cmd(&k, "MAIL FROM:<a@client.example> SIZE=10", "555 5.5.4");
    cmd(&k, "MAIL FROM:<a@client.example>", "250 2.1.0");
    quit(&k);
}

static void test_order_transaction(void **st)
{
    struct fix *f = *st;
    struct cli k;
    start_ehlo(f, &k);
    cmd(&k, "RCPT TO:<" LOCAL_RCPT ">", "503 5.5.1");
    cmd(&k, "DATA", "503 5.5.1");
    cmd(&k, "MAIL FROM:<a@client.example>", "250 2.1.0");
    cmd(&k, "MAIL FROM:<b@client.example>", "503 5.5.1");
    cmd(&k, "DATA", "554 5.5.1"); /* no recipient yet */
    cmd(&k, "DATA now", "501 5.5.4");
    cmd(&k, "RCPT TO:<" LOCAL_RCPT ">", "250 2.1.5");
    cmd(&k, "RCPT TO:<nosuchuser9@" HOST ">", "550 5.1.1");
    cmd(&k, "RCPT <" LOCAL_RCPT ">", "501 5.5.2");
    /* RSET ends the transaction: a recipient needs a new MAIL */
    cmd(&k, "RSET", "250 2.0.0");
    cmd(&k, "RCPT TO:<" LOCAL_RCPT ">", "503 5.5.1");
    cmd(&k, "MAIL FROM:<b@client.example>", "250 2.1.0");
    /* a second EHLO resets the transaction too */
    ehlo(&k);
    cmd(&k, "DATA", "503 5.5.1");
    cmd(&k, "MAIL FROM:<bad", "553 5.1.7");
    cmd(&k, "MAIL TO:<a@client.example>", "501 5.5.2");
    quit(&k);
}

/* ---- EHLO ---- */

static void test_ehlo_keywords(void **st)
{
    struct fix *f = *st;
    set(&f->c, "size=123456");
    struct cli k;
    cli_start(f, &k, "127.0.0.1");
    expect(&k, "220 " HOST);
    cli_send(&k, "EHLO client.example\r\n");
    assert_int_equal(cli_reply(&k), 250);
    assert_string_equal(k.last.s, "250-" HOST " greets client.example\n"
                                  "250-SIZE 123456\n"
                                  "250-8BITMIME\n"
                                  "250-PIPELINING\n"
                                  "250-ENHANCEDSTATUSCODES\n"
                                  "250-SMTPUTF8\n"
                                  "250 HELP");
    cli_send(&k, "HELO client.example\r\n");
    assert_int_equal(cli_reply(&k), 250);
    assert_string_equal(k.last.s, "250 " HOST " greets client.example");
    quit(&k);
}

static void test_size_limit(void **st)
{
    struct fix *f = *st;
    set(&f->c, "size=1000");
    struct cli k;
    start_ehlo(f, &k);
    cmd(&k, "MAIL FROM:<a@client.example> SIZE=1001", "552 5.3.4");
    assert_non_null(strstr(k.last.s, "1000"));
    /* the refused MAIL started no transaction */
    cmd(&k, "RCPT TO:<" LOCAL_RCPT ">", "503 5.5.1");
    cmd(&k, "MAIL FROM:<a@client.example> SIZE=1000 BODY=8BITMIME", "250 2.1.0");
    cmd(&k, "RSET", "250 2.0.0");
    cmd(&k, "MAIL FROM:<a@client.example> FOO=1", "555 5.5.4");
    /* data over the limit: read to its end, refused, nothing queued */
    cmd(&k, "MAIL FROM:<a@client.example>", "250 2.1.0");
    cmd(&k, "RCPT TO:<" LOCAL_RCPT ">", "250 2.1.5");
    cmd(&k, "DATA", "354 end data");
    struct buf big;
    buf_init(&big);
    buf_adds(&big, "Subject: big\r\n\r\n");
    while (big.len < 3000)
        buf_adds(&big, "0123456789012345678901234567890123456789\r\n");
    buf_adds(&big, ".\r\n");
    cli_send(&k, big.s);
    buf_free(&big);
    expect(&k, "552 5.3.4");
    assert_int_equal(count_qf(f->q), 0);
    /* the transaction is over */
    cmd(&k, "RCPT TO:<" LOCAL_RCPT ">", "503 5.5.1");
    quit(&k);
}

/* ---- PIPELINING ---- */

static void test_pipelining(void **st)
{
    struct fix *f = *st;
    struct cli k;
    start_ehlo(f, &k);
    cli_send(&k, "MAIL FROM:<a@client.example>\r\nRCPT TO:<" LOCAL_RCPT ">\r\n"
                 "RCPT TO:<nosuchuser9@" HOST ">\r\nRCPT TO:<postmaster@" HOST ">\r\n"
                 "DATA\r\n");
    expect(&k, "250 2.1.0");
    expect(&k, "250 2.1.5");
    expect(&k, "550 5.1.1");
    expect(&k, "250 2.1.5");
    expect(&k, "354 end data");
    cli_send(&k, "Subject: piped\r\n\r\nbody\r\n.\r\nRSET\r\nNOOP\r\n");
    expect(&k, "250 2.0.0");
    expect(&k, "250 2.0.0");
    expect(&k, "250 2.0.0");
    assert_int_equal(count_qf(f->q), 1);
    /* a group whose MAIL fails: what follows is refused in order */
    cli_send(&k, "MAIL FROM:<bad\r\nRCPT TO:<" LOCAL_RCPT ">\r\nDATA\r\nQUIT\r\n");
    expect(&k, "553 5.1.7");
    expect(&k, "503 5.5.1");
    expect(&k, "503 5.5.1");
    expect(&k, "221 2.0.0");
    expect_eof(&k);
    assert_int_equal(cli_end(&k), 0);
}

/* ---- errors and limits ---- */

static void test_error_counter(void **st)
{
    struct fix *f = *st;
    set(&f->c, "max-errors=3");
    struct cli k;
    start_ehlo(f, &k);
    cmd(&k, "FOO", "500 5.5.2");
    cmd(&k, "RCPT TO:<" LOCAL_RCPT ">", "503 5.5.1");
    cmd(&k, "NOOP", "250 2.0.0"); /* good commands do not count */
    cmd(&k, "HELOX client.example", "500 5.5.2");
    /* the third error reached the limit: the next command is not served */
    cmd(&k, "NOOP", "421 4.7.0");
    expect_eof(&k);
    assert_int_equal(cli_end(&k), 1);
}

static void test_line_limit(void **st)
{
    struct fix *f = *st;
    set(&f->c, "line-length=512");
    struct cli k;
    start_ehlo(f, &k);
    struct buf l;
    buf_init(&l);
    buf_adds(&l, "NOOP ");
    while (l.len < 512)
        buf_adds(&l, "x");
    cmd(&k, l.s, "250 2.0.0"); /* exactly the limit */
    buf_adds(&l, "y");
    cmd(&k, l.s, "500 5.5.6");
    assert_non_null(strstr(k.last.s, "512"));
    buf_free(&l);
    /* the long line was discarded whole, not split into commands */
    cmd(&k, "NOOP", "250 2.0.0");
    cli_send(&k, "NOOP\rx\r\n");
    expect(&k, "500 5.5.2"); /* bare CR */
    quit(&k);
}

static void test_small_commands(void **st)
{
    struct fix *f = *st;
    struct cli k;
    start_ehlo(f, &k);
    cmd(&k, "NOOP", "250 2.0.0");
    cmd(&k, "noop with args", "250 2.0.0");
    cmd(&k, "HELP", "214 2.0.0");
    assert_non_null(strstr(k.last.s, "\n214-2.0.0 "));
    assert_null(strstr(k.last.s, "DEBUG")); /* debug is off */
    cmd(&k, "VRFY root", "252 2.5.2");
    cmd(&k, "EXPN staff", "502 5.5.1");
    cmd(&k, "DEBUG", "502 5.5.1");
    cmd(&k, "XYZZY", "500 5.5.2");
    cmd(&k, "", "500 5.5.2");
    quit(&k);
}

/* ---- a message queued ---- */

static void test_data_queued(void **st)
{
    struct fix *f = *st;
    struct cli k;
    start_ehlo(f, &k);
    cmd(&k, "MAIL FROM:<sender@client.example>", "250 2.1.0");
    cmd(&k, "RCPT TO:<" LOCAL_RCPT ">", "250 2.1.5");
    cmd(&k, "DATA", "354 end data");
    assert_int_equal(count_qf(f->q), 0);
    cli_send(&k, "Subject: unit\r\n\r\n..dot-stuffed line\r\nbody\r\n.\r\n");
    expect(&k, "250 2.0.0");
    const char *id = strstr(k.last.s, "queue id ");
    assert_non_null(id);
    char *qid = xstrdup(id + 9);
    /* the queue file holds the message, unstuffed, behind our trace header */
    char *path = xasprintf("%s/qf%s", f->q, qid);
    struct buf qf;
    buf_init(&qf);
    assert_int_equal(read_file(path, &qf, 1 << 20), 0);
    assert_non_null(strstr(qf.s, "Received: from client.example"));
    assert_non_null(strstr(qf.s, "Subject: unit\n\n.dot-stuffed line\nbody\n"));
    assert_non_null(strstr(qf.s, "sender@client.example"));
    assert_non_null(strstr(qf.s, LOCAL_RCPT));
    buf_free(&qf);
    free(path);
    assert_int_equal(count_qf(f->q), 1);
    /* the daemon is told which message to deliver */
    struct msg m;
    assert_int_equal(msg_recv(k.notify, &m, 1024, now_ms() + WAIT_MS), 1);
    assert_int_equal(m.type, MSG_QUEUED);
    struct msg_reader r;
    msg_reader_init(&r, &m);
    char *got = NULL;
    assert_int_equal(msg_get_str(&r, &got), 0);
    assert_int_equal(msg_get_end(&r), 0);
    assert_string_equal(got, qid);
    free(got);
    msg_free(&m);
    free(qid);
    /* the transaction ended with the message */
    cmd(&k, "RCPT TO:<" LOCAL_RCPT ">", "503 5.5.1");
    quit(&k);
}

static void test_data_bare_lf(void **st)
{
    struct fix *f = *st;
    struct cli k;
    start_ehlo(f, &k);
    cmd(&k, "MAIL FROM:<sender@client.example>", "250 2.1.0");
    cmd(&k, "RCPT TO:<" LOCAL_RCPT ">", "250 2.1.5");
    cmd(&k, "DATA", "354 end data");
    cli_send(&k, "Subject: lf\r\n\r\nbare\n.\nstill data\r\n.\r\n");
    expect(&k, "550 5.6.0");
    assert_int_equal(count_qf(f->q), 0);
    quit(&k);
}

static void test_recipient_limit(void **st)
{
    struct fix *f = *st;
    set(&f->c, "max-recipients=2");
    struct cli k;
    start_ehlo(f, &k);
    cmd(&k, "MAIL FROM:<a@client.example>", "250 2.1.0");
    cmd(&k, "RCPT TO:<" LOCAL_RCPT ">", "250 2.1.5");
    cmd(&k, "RCPT TO:<postmaster@" HOST ">", "250 2.1.5");
    cmd(&k, "RCPT TO:<root@" HOST ">", "452 4.5.3");
    /* a temporary refusal is not a bad command: the transaction goes on */
    cmd(&k, "DATA", "354 end data");
    cli_send(&k, "Subject: two\r\n\r\nx\r\n.\r\n");
    expect(&k, "250 2.0.0");
    quit(&k);
}

/* ---- relaying ---- */

/* A DNS server on a loopback UDP port that answers every query NXDOMAIN:
 * the remote client's PTR and the recipient domain's MX both do not exist. */
static int nxdomain_server(struct fix *f)
{
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    assert_true(s >= 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = 0 };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(s, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t alen = sizeof a;
    assert_int_equal(getsockname(s, (struct sockaddr *)&a, &alen), 0);
    fflush(NULL);
    f->dns_pid = fork();
    assert_true(f->dns_pid >= 0);
    if (f->dns_pid == 0) {
        for (;;) {
            unsigned char q[512];
            struct sockaddr_storage from;
            socklen_t fl = sizeof from;
            ssize_t n = recvfrom(s, q, sizeof q, 0, (struct sockaddr *)&from, &fl);
            if (n < 12)
                continue;
            size_t i = 12; /* skip the question's name, then its type and class */
            while (i < (size_t)n && q[i])
                i += (size_t)q[i] + 1;
            if (i + 5 > (size_t)n)
                continue;
            q[2] = (unsigned char)(0x84 | (q[2] & 0x01)); /* QR, AA, RD copied */
            q[3] = 0x83;                                  /* RA, NXDOMAIN */
            memset(q + 6, 0, 6);                          /* no answer/auth/additional */
            sendto(s, q, i + 5, 0, (struct sockaddr *)&from, fl);
        }
    }
    close(s);
    return ntohs(a.sin_port);
}

static void test_relay_refused(void **st)
{
    struct fix *f = *st;
    int port = nxdomain_server(f);
    char *r = xasprintf("resolver=127.0.0.1:%d", port);
    set(&f->c, r);
    free(r);
    set(&f->c, "dns-timeout=5");
    set(&f->c, "dns-tries=1");
    struct cli k;
    cli_start(f, &k, REMOTE_PEER);
    expect(&k, "220 " HOST);
    ehlo(&k);
    /* a remote client may not send a sender of our own domain */
    cmd(&k, "MAIL FROM:<nobody@" HOST ">", "550 5.7.1");
    /* verify-from: a sender domain that does not exist */
    cmd(&k, "MAIL FROM:<a@client.example>", "553 5.1.8");
    cmd(&k, "MAIL FROM:<a@[203.0.113.7]>", "250 2.1.0");
    cmd(&k, "RCPT TO:<victim@remote.example>", "554 5.7.1");
    cmd(&k, "RCPT TO:<victim@[198.51.100.9]>", "554 5.7.1");
    cmd(&k, "RCPT TO:<victim%remote.example@" HOST ">", "550 5.7.1");
    /* mail for us is taken */
    cmd(&k, "RCPT TO:<" LOCAL_RCPT ">", "250 2.1.5");
    quit(&k);
    /* the same recipient from loopback (which may relay) is accepted */
    start_ehlo(f, &k);
    cmd(&k, "MAIL FROM:<a@client.example>", "250 2.1.0");
    cmd(&k, "RCPT TO:<victim@remote.example>", "250 2.1.5");
    quit(&k);
}

/* ---- timeouts ---- */

static void test_idle_timeout(void **st)
{
    struct fix *f = *st;
    f->c.timeout = 1; /* the option's unit is a second: set it directly */
    struct cli k;
    cli_start(f, &k, "127.0.0.1");
    expect(&k, "220 " HOST);
    long long t0 = now_ms(); /* the session's wait starts after it answered EHLO */
    ehlo(&k);
    expect(&k, "421 4.4.2");
    assert_non_null(strstr(k.last.s, "idle timeout"));
    assert_true(now_ms() - t0 >= 990);
    expect_eof(&k);
    assert_int_equal(cli_end(&k), 1);
}

static void test_eof_without_quit(void **st)
{
    struct fix *f = *st;
    struct cli k;
    start_ehlo(f, &k);
    shutdown(k.fd, SHUT_WR);
    expect_eof(&k);
    assert_int_equal(cli_end(&k), 1);
}

/* -bs -R with a name instead of an address: refused before any dialogue */
static void test_stdio_peer_not_numeric(void **st)
{
    struct fix *f = *st;
    assert_int_equal(session_run_stdio_peer(&f->c, "client.example"), 64);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_order_before_helo, setup, teardown),
        cmocka_unit_test_setup_teardown(test_order_transaction, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ehlo_keywords, setup, teardown),
        cmocka_unit_test_setup_teardown(test_size_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pipelining, setup, teardown),
        cmocka_unit_test_setup_teardown(test_error_counter, setup, teardown),
        cmocka_unit_test_setup_teardown(test_line_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_small_commands, setup, teardown),
        cmocka_unit_test_setup_teardown(test_data_queued, setup, teardown),
        cmocka_unit_test_setup_teardown(test_data_bare_lf, setup, teardown),
        cmocka_unit_test_setup_teardown(test_recipient_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_relay_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idle_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_eof_without_quit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stdio_peer_not_numeric, setup, teardown),
    };
    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
