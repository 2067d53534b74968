/* test_bounce.c - DSN composition (parsed back with python3's email package)
 * and bounce queuing against the real spool. */
#include "compat.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "bounce.h"
#include "util.h"

#define PYTHON "/usr/bin/python3"

/* Dumps what a real MIME reader sees, one fact per line, for strstr asserts. */
static const char pyscript[] =
    "import sys, email, email.utils\n"
    "from email import policy\n"
    "m = email.message_from_binary_file(open(sys.argv[1], 'rb'), policy=policy.default)\n"
    "print('top', m.get_content_type(), m.get_param('report-type'))\n"
    "for h in ('From', 'To', 'Subject', 'Auto-Submitted', 'MIME-Version', 'Message-ID',\n"
    "          'Content-Transfer-Encoding'):\n"
    "    print('hdr', h + ':', m[h])\n"
    "print('date-ok', email.utils.parsedate_to_datetime(str(m['Date'])).tzinfo is not None)\n"
    "parts = m.get_payload()\n"
    "d = list(m.defects)\n"
    "for p in parts[:2]: d += p.defects\n"
    "print('defects', len(d), d)\n"
    "print('nparts', len(parts))\n"
    "for p in parts:\n"
    "    print('part', p.get_content_type())\n"
    "for line in parts[0].get_content().splitlines():\n"
    "    print('text|', line)\n"
    "blocks = parts[1].get_payload()\n"
    "print('nblocks', len(blocks))\n"
    "for i, b in enumerate(blocks):\n"
    "    for k, v in b.items():\n"
    "        print('field', i, k + ':', v)\n"
    "if len(parts) > 2:\n"
    "    p = parts[2]\n"
    "    if p.get_content_type() == 'message/rfc822':\n"
    "        inner = p.get_payload(0)\n"
    "        print('orig-subject', inner['Subject'])\n"
    "        print('orig-body', repr(inner.get_payload(decode=True)))\n"
    "    else:\n"
    "        print('orig-headers', repr(p.get_payload()))\n";

struct fixture {
    char dir[64];
    char data[96];
    struct config c;
    struct envelope e;
    struct rcpt r[4];
};

static int setup(void **state)
{
    struct fixture *f = xcalloc(1, sizeof *f);
    str_copy(f->dir, "/tmp/test_bounce.XXXXXX", sizeof f->dir);
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->data, sizeof f->data, "%s/dforig", f->dir);
    f->c.hostname = "mx.example.org";
    f->c.qreturn = 3 * 86400;
    str_copy(f->e.qid, "Q1abc", sizeof f->e.qid);
    f->e.sender = "alice@example.com";
    /* 3 h 30 min ago: the delay test checks "3 hours and 3x minutes" */
    f->e.ctime = time(NULL) - 3 * 3600 - 30 * 60 - 5;
    f->e.rcpts = f->r;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

static void write_file(const char *path, const char *text, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write_all(fd, text, len), 0);
    close(fd);
}

static const char plain_msg[] =
    "From: alice@example.com\n"
    "To: bob@example.net\n"
    "Subject: lunch tomorrow\n"
    "Message-ID: <m1@example.com>\n"
    "\n"
    "Shall we meet at noon?\n"
    "BODYMARKER\n";

static void add_rcpt(struct fixture *f, const char *addr, const char *orig,
                     enum rcpt_state st, const char *status, const char *mta)
{
    struct rcpt *r = &f->r[f->e.nrcpts++];
    r->addr = (char *)addr;
    r->orig = (char *)orig;
    r->state = st;
    r->status = (char *)status;
    r->remote_mta = (char *)mta;
}

/* Run python's email parser on text; its dump goes into out. */
static void parse(struct fixture *f, const struct buf *text, struct buf *out)
{
    char msg[128], py[128];
    snprintf(msg, sizeof msg, "%s/dsn.eml", f->dir);
    snprintf(py, sizeof py, "%s/dump.py", f->dir);
    write_file(msg, text->s, text->len);
    write_file(py, pyscript, sizeof pyscript - 1);
    char *cmd = xasprintf(PYTHON " %s %s 2>&1", py, msg);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    char chunk[4096];
    size_t n;
    buf_init(out);
    while ((n = fread(chunk, 1, sizeof chunk, p)) > 0)
        buf_add(out, chunk, n);
    int st = pclose(p);
    if (st != 0)
        fprintf(stderr, "python failed:\n%s\n", out->s);
    assert_int_equal(st, 0);
    free(cmd);
}

/* cmocka cuts long failure messages: the whole dump goes to stderr */
static const char *dump_of(const struct buf *d)
{
    fprintf(stderr, "---- dump ----\n%s---- end ----\n", d->s);
    return "(see the dump above)";
}

#define HAS(dump, want)                                                       \
    do {                                                                      \
        if (!strstr((dump)->s, (want)))                                       \
            fail_msg("missing \"%s\" in:\n%s", (want), dump_of(dump));       \
    } while (0)
#define HASNT(dump, want)                                                     \
    do {                                                                      \
        if (strstr((dump)->s, (want)))                                        \
            fail_msg("unexpected \"%s\" in:\n%s", (want), dump_of(dump));    \
    } while (0)

/* Wire rules for our own text: no CR, no NUL, every line < 998 bytes, and
 * (outside the attached original) 7-bit. */
static void assert_clean(const struct buf *b, size_t ascii_len)
{
    size_t col = 0;
    for (size_t i = 0; i < b->len; i++) {
        unsigned char ch = (unsigned char)b->s[i];
        assert_true(ch != '\r' && ch != '\0');
        if (i < ascii_len)
            assert_true(ch < 0x80);
        col = ch == '\n' ? 0 : col + 1;
        assert_true(col < 998);
    }
    assert_true(b->len > 0 && b->s[b->len - 1] == '\n');
}

/* bounce_compose on the message in file path (missing: no original). */
static int compose_file(struct fixture *f, const char *path, int delay, struct buf *out)
{
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct msgdata d = {fd, 0, fd >= 0 && fstat(fd, &st) == 0 ? (long long)st.st_size : 0};
    int r = bounce_compose(&f->c, &f->e, &d, delay, out);
    if (fd >= 0)
        close(fd);
    return r;
}

/* The data of queued message qid (read through the locked descriptor). */
static void queued_data(const char *q, const char *qid, struct buf *out)
{
    struct qmsg *m;
    assert_int_equal(spool_open(q, qid, &m), 0);
    struct msgdata d = spool_data(m);
    char *p = xmalloc((size_t)d.len + 1);
    assert_int_equal(pread(d.fd, p, (size_t)d.len, (off_t)d.off), (ssize_t)d.len);
    buf_add(out, p, (size_t)d.len);
    free(p);
    spool_close(m);
}

static void compose_ok(struct fixture *f, int delay, struct buf *out, struct buf *dump)
{
    buf_init(out);
    assert_int_equal(compose_file(f, f->data, delay, out), 0);
    parse(f, out, dump);
    HAS(dump, "defects 0 []");
    HAS(dump, "top multipart/report delivery-status\n");
}

static void test_compose_one(void **state)
{
    struct fixture *f = *state;
    struct buf out, d;
    write_file(f->data, plain_msg, sizeof plain_msg - 1);
    add_rcpt(f, "bob@example.net", NULL, RS_FAILED, "5.1.1 no such user here", NULL);
    compose_ok(f, 0, &out, &d);
    assert_clean(&out, out.len);
    HAS(&d, "hdr From: Mail Delivery System <MAILER-DAEMON@mx.example.org>\n");
    HAS(&d, "hdr To: alice@example.com\n");
    assert_non_null(strstr(out.s, "\nTo: <alice@example.com>\n"));
    HAS(&d, "hdr Subject: Undelivered Mail Returned to Sender\n");
    HAS(&d, "hdr Auto-Submitted: auto-replied\n");
    HAS(&d, "hdr MIME-Version: 1.0\n");
    HAS(&d, "@mx.example.org>\n");
    HASNT(&d, "hdr Message-ID: None");
    HAS(&d, "date-ok True\n");
    HAS(&d, "nparts 3\npart text/plain\npart message/delivery-status\npart message/rfc822\n");
    HAS(&d, "text| This is the mail system at mx.example.org.\n");
    HAS(&d, "text|   <bob@example.net>: 5.1.1 no such user here\n");
    HAS(&d, "text| (queue id Q1abc).\n");
    HAS(&d, "nblocks 2\n");
    HAS(&d, "field 0 Reporting-MTA: dns; mx.example.org\n");
    HAS(&d, "field 0 X-Postoffice-Queue-ID: Q1abc\n");
    HAS(&d, "field 0 Arrival-Date: ");
    HAS(&d, "field 1 Final-Recipient: rfc822; bob@example.net\n");
    HAS(&d, "field 1 Action: failed\n");
    HAS(&d, "field 1 Status: 5.1.1\n");
    HAS(&d, "field 1 Diagnostic-Code: x-postoffice; 5.1.1 no such user here\n");
    HAS(&d, "field 1 Last-Attempt-Date: ");
    HASNT(&d, "Original-Recipient");
    HASNT(&d, "Remote-MTA");
    HASNT(&d, "Will-Retry-Until");
    HAS(&d, "orig-subject lunch tomorrow\n");
    HAS(&d, "orig-body b'Shall we meet at noon?\\nBODYMARKER\\n'\n");
    buf_free(&out);
    buf_free(&d);
}

static void test_compose_several(void **state)
{
    struct fixture *f = *state;
    struct buf out, d;
    write_file(f->data, plain_msg, sizeof plain_msg - 1);
    add_rcpt(f, "bob@example.net", "team@example.org", RS_FAILED, "5.2.2 mailbox full", NULL);
    add_rcpt(f, "carol@example.org", NULL, RS_DONE, "2.0.0 delivered", NULL);
    add_rcpt(f, "dave@example.org", NULL, RS_PENDING, "4.4.1 connection refused", NULL);
    add_rcpt(f, "erin@example.org", NULL, RS_FAILED, NULL, NULL);
    f->e.client_name = "client.example.com";
    compose_ok(f, 0, &out, &d);
    HAS(&d, "field 0 Received-From-MTA: dns; client.example.com\n");
    HAS(&d, "nblocks 3\n");
    HAS(&d, "field 1 Original-Recipient: rfc822; team@example.org\n"
            "field 1 Final-Recipient: rfc822; bob@example.net\n"
            "field 1 Action: failed\nfield 1 Status: 5.2.2\n");
    /* no status recorded: the generic code, no diagnostic */
    HAS(&d, "field 2 Final-Recipient: rfc822; erin@example.org\n"
            "field 2 Action: failed\nfield 2 Status: 5.0.0\nfield 2 Last-Attempt-Date");
    HASNT(&d, "carol");
    HASNT(&d, "dave");
    HAS(&d, "text|   <erin@example.org>: no reason recorded\n");
    buf_free(&out);
    buf_free(&d);
}

static void test_compose_hostile_status(void **state)
{
    struct fixture *f = *state;
    struct buf out, d;
    write_file(f->data, plain_msg, sizeof plain_msg - 1);
    /* a remote server trying to forge fields and parts of our report */
    add_rcpt(f, "bob@example.net", NULL, RS_FAILED,
             "5.7.1 550 go away\r\nX-Injected: yes\n\nFinal-Recipient: rfc822; evil@x\n"
             "--=_po-Q1abc\n\xff\xfe\x01 end",
             "mx.evil.example\r\nX-Forged-MTA: 1");
    compose_ok(f, 0, &out, &d);
    assert_clean(&out, out.len);
    HAS(&d, "nblocks 2\n");
    /* the forged text is there, escaped, but never as a field of its own */
    HASNT(&d, "hdr X-Injected");
    HASNT(&d, "1 X-Injected:");
    HASNT(&d, "1 X-Forged-MTA:");
    HASNT(&d, "2 Final-Recipient");
    assert_null(strstr(out.s, "\nX-Injected"));
    assert_null(strstr(out.s, "\n--=_po-Q1abc\n"));
    HAS(&d, "field 1 Status: 5.7.1\n");
    HAS(&d, "field 1 Remote-MTA: dns; mx.evil.example\\x0D\\x0AX-Forged-MTA: 1\n");
    HAS(&d, "field 1 Diagnostic-Code: smtp; 550 5.7.1 go away\\x0D\\x0AX-Injected: yes\\x0A\\x0A"
            "Final-Recipient: rfc822; evil@x\\x0A--=_po-Q1abc\\x0A\\xFF\\xFE\\x01 end\n");
    buf_free(&out);
    buf_free(&d);
}

static void test_compose_remote(void **state)
{
    struct fixture *f = *state;
    struct buf out, d;
    write_file(f->data, plain_msg, sizeof plain_msg - 1);
    add_rcpt(f, "bob@example.net", NULL, RS_FAILED, "5.1.1 550 5.1.1 <bob@example.net>: unknown",
             "mx1.example.net");
    compose_ok(f, 0, &out, &d);
    HAS(&d, "field 1 Remote-MTA: dns; mx1.example.net\n");
    HAS(&d, "field 1 Diagnostic-Code: smtp; 550 5.1.1 <bob@example.net>: unknown\n");
    HAS(&d, "text|       (answer from the mail server mx1.example.net)\n");
    buf_free(&out);
    buf_free(&d);
}

/* What smtp_reply_status stores: the server's enhanced code in front of its
 * reply code.  The Diagnostic-Code gives the answer as the server sent it. */
static void test_compose_remote_enhanced_code_kept(void **state)
{
    struct fixture *f = *state;
    struct buf out, d;
    write_file(f->data, plain_msg, sizeof plain_msg - 1);
    add_rcpt(f, "bob@example.net", NULL, RS_FAILED, "5.1.1 550 <bob@example.net>: user unknown",
             "mx1.example.net");
    add_rcpt(f, "carol@example.net", NULL, RS_FAILED, "5.0.0 554 no enhanced code here",
             "mx1.example.net");
    add_rcpt(f, "dave@example.net", NULL, RS_FAILED, "5.7.1 553", "mx1.example.net");
    compose_ok(f, 0, &out, &d);
    HAS(&d, "field 1 Status: 5.1.1\n");
    HAS(&d, "field 1 Diagnostic-Code: smtp; 550 5.1.1 <bob@example.net>: user unknown\n");
    HAS(&d, "field 2 Status: 5.0.0\n");
    HAS(&d, "field 2 Diagnostic-Code: smtp; 554 no enhanced code here\n");
    HAS(&d, "field 3 Diagnostic-Code: smtp; 553 5.7.1\n");
    buf_free(&out);
    buf_free(&d);
}

static void test_compose_long_status_folded(void **state)
{
    struct fixture *f = *state;
    struct buf out, d, want;
    write_file(f->data, plain_msg, sizeof plain_msg - 1);
    buf_init(&want);
    buf_adds(&want, "5.2.0");
    for (int i = 0; i < 60; i++)
        buf_addf(&want, " word%02d", i);
    add_rcpt(f, "bob@example.net", NULL, RS_FAILED, want.s, NULL);
    compose_ok(f, 0, &out, &d);
    assert_clean(&out, out.len);
    /* our header lines are folded near 76 columns ... */
    const char *dc = strstr(out.s, "Diagnostic-Code:");
    assert_non_null(dc);
    const char *nl = strchr(dc, '\n');
    assert_true(nl - dc <= 78);
    assert_true(nl[1] == ' ');
    /* ... and unfold to exactly the original text */
    char *line = xasprintf("field 1 Diagnostic-Code: x-postoffice; %s\n", want.s);
    HAS(&d, line);
    free(line);
    buf_free(&want);
    buf_free(&out);
    buf_free(&d);
}

static void test_compose_huge_token_capped(void **state)
{
    struct fixture *f = *state;
    struct buf out, d, s;
    write_file(f->data, plain_msg, sizeof plain_msg - 1);
    buf_init(&s);
    buf_adds(&s, "5.3.4 ");
    for (int i = 0; i < 5000; i++)
        buf_addc(&s, 'x');
    add_rcpt(f, "bob@example.net", NULL, RS_FAILED, s.s, NULL);
    compose_ok(f, 0, &out, &d);
    assert_clean(&out, out.len); /* no line of 998 or more */
    HAS(&d, "xxx...\n");
    buf_free(&s);
    buf_free(&out);
    buf_free(&d);
}

static void test_compose_ret_hdrs(void **state)
{
    struct fixture *f = *state;
    struct buf out, d;
    write_file(f->data, plain_msg, sizeof plain_msg - 1);
    f->e.flags |= ENV_RET_HDRS;
    add_rcpt(f, "bob@example.net", NULL, RS_FAILED, "5.1.1 unknown", NULL);
    compose_ok(f, 0, &out, &d);
    HAS(&d, "part text/rfc822-headers\n");
    HAS(&d, "orig-headers 'From: alice@example.com\\nTo: bob@example.net\\n"
            "Subject: lunch tomorrow\\nMessage-ID: <m1@example.com>\\n'");
    HAS(&d, "the sender asked for headers only");
    assert_null(strstr(out.s, "BODYMARKER"));
    buf_free(&out);
    buf_free(&d);
}

static void test_compose_big_original_headers_only(void **state)
{
    struct fixture *f = *state;
    struct buf out, d, big;
    buf_init(&big);
    buf_adds(&big, "Subject: big one\nFrom: alice@example.com\n\n");
    while (big.len <= (size_t)BOUNCE_FULL_MAX)
        buf_adds(&big, "BODYMARKER line of a large attachment, repeated many times\n");
    write_file(f->data, big.s, big.len);
    add_rcpt(f, "bob@example.net", NULL, RS_FAILED, "5.3.4 message too big", NULL);
    compose_ok(f, 0, &out, &d);
    HAS(&d, "part text/rfc822-headers\n");
    HAS(&d, "orig-headers 'Subject: big one\\nFrom: alice@example.com\\n'");
    HAS(&d, "the message is larger than 1048576 bytes");
    assert_null(strstr(out.s, "BODYMARKER"));
    assert_true(out.len < 8192);
    buf_free(&big);
    buf_free(&out);
    buf_free(&d);
}

static void test_compose_endless_header(void **state)
{
    struct fixture *f = *state;
    struct buf out, d, big;
    buf_init(&big);
    while (big.len <= (size_t)BOUNCE_FULL_MAX + 10)
        buf_adds(&big, "X-Filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n");
    write_file(f->data, big.s, big.len);
    add_rcpt(f, "bob@example.net", NULL, RS_FAILED, "5.3.4 message too big", NULL);
    compose_ok(f, 0, &out, &d);
    HAS(&d, "part text/rfc822-headers\n");
    assert_true(out.len < (size_t)BOUNCE_HDRS_MAX + 8192);
    assert_true(out.len > (size_t)BOUNCE_HDRS_MAX - 8192);
    assert_clean(&out, 0);
    buf_free(&big);
    buf_free(&out);
    buf_free(&d);
}

static void test_compose_delay(void **state)
{
    struct fixture *f = *state;
    struct buf out, d;
    write_file(f->data, plain_msg, sizeof plain_msg - 1);
    add_rcpt(f, "bob@example.net", NULL, RS_PENDING, "4.4.1 connection refused", "mx1.example.net");
    add_rcpt(f, "carol@example.org", NULL, RS_PENDING, NULL, NULL);
    add_rcpt(f, "dave@example.org", NULL, RS_FAILED, "5.1.1 unknown", NULL);
    compose_ok(f, 1, &out, &d);
    HAS(&d, "hdr Subject: Delayed Mail (still being retried)\n");
    HAS(&d, "nblocks 3\n");
    HAS(&d, "field 1 Action: delayed\nfield 1 Status: 4.4.1\n");
    HAS(&d, "field 1 Diagnostic-Code: smtp; connection refused\n");
    HAS(&d, "field 1 Will-Retry-Until: ");
    HAS(&d, "field 2 Action: delayed\nfield 2 Status: 4.0.0\n");
    HASNT(&d, "dave");
    HAS(&d, "text| listed below.  It has been in the queue for 3 hours and 3");
    HAS(&d, "text| The mail system will keep trying until\n");
    HAS(&d, "you do not need to send the message again.");
    buf_free(&out);
    buf_free(&d);
}

static void test_compose_notify(void **state)
{
    struct fixture *f = *state;
    struct buf out, d;
    write_file(f->data, plain_msg, sizeof plain_msg - 1);
    add_rcpt(f, "never@example.net", NULL, RS_FAILED, "5.1.1 unknown", NULL);
    f->r[0].notify = DSN_NEVER;
    add_rcpt(f, "success@example.net", NULL, RS_FAILED, "5.1.1 unknown", NULL);
    f->r[1].notify = DSN_SUCCESS | DSN_DELAY;
    buf_init(&out);
    assert_int_equal(compose_file(f, f->data, 0, &out), 1);
    assert_int_equal(out.len, 0);
    buf_free(&out);
    add_rcpt(f, "failure@example.net", NULL, RS_FAILED, "5.1.1 unknown", NULL);
    f->r[2].notify = DSN_FAILURE;
    compose_ok(f, 0, &out, &d);
    HAS(&d, "nblocks 2\n");
    HAS(&d, "failure@example.net");
    HASNT(&d, "never@");
    HASNT(&d, "success@");
    buf_free(&out);
    buf_free(&d);
    /* DELAY asked only by the second one */
    f->r[0].state = f->r[1].state = f->r[2].state = RS_PENDING;
    compose_ok(f, 1, &out, &d);
    HAS(&d, "nblocks 2\n");
    HAS(&d, "success@example.net");
    HASNT(&d, "failure@");
    buf_free(&out);
    buf_free(&d);
}

static void test_compose_missing_original(void **state)
{
    struct fixture *f = *state;
    struct buf out, d;
    add_rcpt(f, "bob@example.net", NULL, RS_FAILED, "5.1.1 unknown", NULL);
    compose_ok(f, 0, &out, &d); /* f->data was never written */
    HAS(&d, "nparts 2\n");
    HAS(&d, "It could not be read, so it is not attached.");
    buf_free(&out);
    buf_free(&d);
}

static void test_compose_headerless_and_8bit(void **state)
{
    struct fixture *f = *state;
    struct buf out, d;
    static const char msg[] = "just a body line, caf\xc3\xa9\nno headers at all";
    write_file(f->data, msg, sizeof msg - 1);
    add_rcpt(f, "bob@example.net", NULL, RS_FAILED, "5.1.1 unknown", NULL);
    compose_ok(f, 0, &out, &d);
    HAS(&d, "hdr Content-Transfer-Encoding: 8bit\n");
    HAS(&d, "part message/rfc822\n");
    /* our empty line keeps the body from being read as a header */
    HAS(&d, "orig-subject None\n");
    HAS(&d, "orig-body b'just a body line, caf\\xc3\\xa9\\nno headers at all'\n");
    const char *p3 = strstr(out.s, "Content-Description: Undelivered message\n");
    assert_non_null(p3);
    assert_clean(&out, (size_t)(p3 - out.s));
    buf_free(&out);
    buf_free(&d);
}

static void test_compose_double_and_hidden_targets(void **state)
{
    struct fixture *f = *state;
    struct buf out, d;
    write_file(f->data, plain_msg, sizeof plain_msg - 1);
    f->e.sender = "";
    add_rcpt(f, "|/usr/local/bin/secret --token=XYZ", "list@example.org", RS_FAILED,
             "5.3.0 program failed", NULL);
    add_rcpt(f, "/var/log/private-file", NULL, RS_FAILED, "5.3.0 cannot write", NULL);
    add_rcpt(f, "frank", NULL, RS_FAILED, "5.1.1 no such user", NULL);
    compose_ok(f, 0, &out, &d);
    HAS(&d, "field 3 Final-Recipient: rfc822; frank@mx.example.org\n"); /* qualified */
    HAS(&d, "hdr To: postmaster@mx.example.org\n");
    HAS(&d, "text| envelope sender was <>), so this report goes to the postmaster\n");
    HAS(&d, "field 1 Final-Recipient: rfc822; list@example.org\n");
    HAS(&d, "field 2 Final-Recipient: rfc822; (local delivery)\n");
    HAS(&d, "text|       (delivery to a program)\n");
    HASNT(&d, "secret");
    HASNT(&d, "private-file");
    buf_free(&out);
    buf_free(&d);
}

static void test_compose_unique(void **state)
{
    struct fixture *f = *state;
    struct buf a, b;
    write_file(f->data, plain_msg, sizeof plain_msg - 1);
    add_rcpt(f, "bob@example.net", NULL, RS_FAILED, "5.1.1 unknown", NULL);
    buf_init(&a);
    buf_init(&b);
    assert_int_equal(compose_file(f, f->data, 0, &a), 0);
    assert_int_equal(compose_file(f, f->data, 0, &b), 0);
    const char *ba = strstr(a.s, "boundary=\"=_po-Q1abc-");
    const char *bb = strstr(b.s, "boundary=\"=_po-Q1abc-");
    assert_non_null(ba);
    assert_non_null(bb);
    assert_memory_not_equal(ba, bb, 40);
    const char *ma = strstr(a.s, "Message-ID: <");
    const char *mb = strstr(b.s, "Message-ID: <");
    assert_non_null(ma);
    assert_non_null(mb);
    assert_true(strcspn(ma, "\n") != strcspn(mb, "\n") ||
                memcmp(ma, mb, strcspn(ma, "\n")) != 0);
    buf_free(&a);
    buf_free(&b);
}

/* ---- bounce_queue against the real spool ---- */

static void queue_setup(struct fixture *f)
{
    static char qdir[96];
    snprintf(qdir, sizeof qdir, "%s/queue", f->dir);
    assert_int_equal(mkdir(qdir, 0700), 0);
    f->c.queuedir = qdir;
    if (geteuid() == 0) {
        /* as root, reports are composed by a child that becomes user=, the
         * queue's owner: nobody here */
        struct passwd *pw = getpwnam("nobody");
        assert_non_null(pw);
        assert_int_equal(chmod(f->dir, 0711), 0);
        assert_int_equal(chown(qdir, pw->pw_uid, pw->pw_gid), 0);
        f->c.user = "nobody";
    }
}

/* The uid that owns the report qid's queue file. */
static uid_t queue_file_uid(struct fixture *f, const char *qid)
{
    char path[160];
    struct stat st;
    snprintf(path, sizeof path, "%s/qf%s", f->c.queuedir, qid);
    assert_int_equal(stat(path, &st), 0);
    return st.st_uid;
}

/* Queue the plain message from sender to bob (index 0) and carol (1). */
static void enqueue_orig(struct fixture *f, const char *sender, int flags, char qid[QID_MAX])
{
    struct spool_new *sn = spool_new(f->c.queuedir);
    assert_non_null(sn);
    assert_int_equal(spool_new_write(sn, plain_msg, sizeof plain_msg - 1), 0);
    struct envelope e;
    env_init(&e);
    free(e.sender);
    e.sender = xstrdup(sender);
    e.flags = flags;
    e.ctime = time(NULL) - 3600;
    env_add_rcpt(&e, "bob@example.net", NULL, NULL);
    env_add_rcpt(&e, "carol@example.org", NULL, NULL);
    assert_int_equal(spool_commit(sn, &e), 0);
    str_copy(qid, e.qid, QID_MAX);
    env_free(&e);
}

static size_t queue_len(struct fixture *f)
{
    struct strlist l;
    sl_init(&l);
    assert_int_equal(spool_list(f->c.queuedir, &l), 0);
    size_t n = l.n;
    sl_free(&l);
    return n;
}

/* Fail bob, run bounce_queue, return its result; the message is closed. */
static int fail_and_bounce(struct fixture *f, const char *qid, int notify, char newqid[QID_MAX])
{
    struct qmsg *m;
    assert_int_equal(spool_open(f->c.queuedir, qid, &m), 0);
    spool_env(m)->rcpts[0].notify = notify;
    assert_int_equal(spool_record(m, 0, RS_FAILED, "5.1.1 550 5.1.1 no such user",
                                  "mx1.example.net"), 0);
    int rc = bounce_queue(&f->c, m, 0, newqid);
    /* the in-memory envelope follows the records */
    assert_int_equal(spool_env(m)->rcpts[0].state, RS_BOUNCED);
    assert_int_equal(spool_env(m)->rcpts[1].state, RS_PENDING);
    spool_close(m);
    return rc;
}

static void peek(struct fixture *f, const char *qid, struct envelope *e)
{
    env_init(e);
    assert_int_equal(spool_peek(f->c.queuedir, qid, e, NULL), 0);
}

static void test_queue_failed_to_sender(void **state)
{
    struct fixture *f = *state;
    char qid[QID_MAX], bq[QID_MAX];
    struct envelope e;
    struct buf text, d;
    queue_setup(f);
    enqueue_orig(f, "alice@example.com", 0, qid);
    assert_int_equal(fail_and_bounce(f, qid, 0, bq), 0);
    assert_true(bq[0] != '\0');
    assert_int_equal(queue_len(f), 2);
    if (geteuid() == 0)
        assert_int_equal(queue_file_uid(f, bq), getpwnam("nobody")->pw_uid);
    /* the original: bob's bounce is recorded durably, status kept */
    peek(f, qid, &e);
    assert_int_equal(e.rcpts[0].state, RS_BOUNCED);
    assert_string_equal(e.rcpts[0].status, "5.1.1 550 5.1.1 no such user");
    env_free(&e);
    /* the bounce: from <> to the sender, flagged, one recipient */
    peek(f, bq, &e);
    assert_string_equal(e.sender, "");
    assert_int_equal(e.flags & (ENV_BOUNCE | ENV_DOUBLE), ENV_BOUNCE);
    assert_int_equal(e.nrcpts, 1);
    assert_string_equal(e.rcpts[0].addr, "alice@example.com");
    assert_int_equal(e.rcpts[0].state, RS_PENDING);
    env_free(&e);
    buf_init(&text);
    queued_data(f->c.queuedir, bq, &text);
    parse(f, &text, &d);
    HAS(&d, "defects 0 []");
    HAS(&d, "top multipart/report delivery-status\n");
    HAS(&d, "hdr To: alice@example.com\n");
    HAS(&d, "nblocks 2\n");
    HAS(&d, "field 1 Final-Recipient: rfc822; bob@example.net\n");
    HAS(&d, "field 1 Diagnostic-Code: smtp; 550 5.1.1 no such user\n");
    HASNT(&d, "carol");
    HAS(&d, "orig-subject lunch tomorrow\n");
    buf_free(&text);
    buf_free(&d);
    /* nothing owed any more: no second bounce */
    struct qmsg *m;
    assert_int_equal(spool_open(f->c.queuedir, qid, &m), 0);
    assert_int_equal(bounce_queue(&f->c, m, 0, bq), 1);
    assert_string_equal(bq, "");
    spool_close(m);
    assert_int_equal(queue_len(f), 2);
}

static void test_queue_null_sender_to_postmaster(void **state)
{
    struct fixture *f = *state;
    char qid[QID_MAX], bq[QID_MAX];
    struct envelope e;
    queue_setup(f);
    enqueue_orig(f, "", ENV_BOUNCE, qid);
    assert_int_equal(fail_and_bounce(f, qid, 0, bq), 0);
    peek(f, bq, &e);
    assert_string_equal(e.sender, "");
    assert_int_equal(e.flags & (ENV_BOUNCE | ENV_DOUBLE), ENV_BOUNCE | ENV_DOUBLE);
    assert_int_equal(e.nrcpts, 1);
    assert_string_equal(e.rcpts[0].addr, "postmaster");
    env_free(&e);
}

/* A failed double bounce is neither reported again (a loop) nor dropped: its
 * failed recipient is pending again, marked held, durably. */
static void test_queue_double_bounce_held(void **state)
{
    struct fixture *f = *state;
    char qid[QID_MAX], bq[QID_MAX];
    struct envelope e;
    struct qmsg *m;
    queue_setup(f);
    enqueue_orig(f, "", ENV_BOUNCE | ENV_DOUBLE, qid);
    for (int round = 0; round < 2; round++) {
        assert_int_equal(spool_open(f->c.queuedir, qid, &m), 0);
        assert_int_equal(spool_record(m, 0, RS_FAILED, "5.1.1 <postmaster>: no such user here",
                                      NULL), 0);
        assert_int_equal(bounce_queue(&f->c, m, 0, bq), 1);
        assert_string_equal(bq, "");
        assert_int_equal(spool_env(m)->rcpts[0].state, RS_PENDING);
        spool_close(m);
        assert_int_equal(queue_len(f), 1); /* nothing new: never a loop */
        peek(f, qid, &e);
        assert_int_equal(e.rcpts[0].state, RS_PENDING);
        /* held again, each round with the attempt's own reason */
        assert_string_equal(e.rcpts[0].status, "4.3.0 " BOUNCE_HELD
                            "; last error: 5.1.1 <postmaster>: no such user here");
        env_free(&e);
    }
}

static void test_queue_notify_never(void **state)
{
    struct fixture *f = *state;
    char qid[QID_MAX], bq[QID_MAX];
    queue_setup(f);
    enqueue_orig(f, "alice@example.com", 0, qid);
    assert_int_equal(fail_and_bounce(f, qid, DSN_NEVER, bq), 1);
    assert_int_equal(queue_len(f), 1);
}

static void test_queue_delay_once(void **state)
{
    struct fixture *f = *state;
    char qid[QID_MAX], bq[QID_MAX];
    struct envelope e;
    struct qmsg *m;
    queue_setup(f);
    enqueue_orig(f, "alice@example.com", 0, qid);
    assert_int_equal(spool_open(f->c.queuedir, qid, &m), 0);
    assert_int_equal(spool_record(m, 1, RS_PENDING, "4.4.1 connection refused", NULL), 0);
    assert_int_equal(bounce_queue(&f->c, m, 1, bq), 0);
    assert_true(bq[0] != '\0');
    assert_true(spool_env(m)->flags & ENV_WARNED);
    /* the recipients stay pending: only a warning */
    assert_int_equal(spool_env(m)->rcpts[0].state, RS_PENDING);
    assert_int_equal(spool_env(m)->rcpts[1].state, RS_PENDING);
    spool_close(m);
    peek(f, qid, &e);
    assert_true(e.flags & ENV_WARNED);
    assert_string_equal(e.rcpts[1].status, "4.4.1 connection refused");
    env_free(&e);
    peek(f, bq, &e);
    assert_string_equal(e.rcpts[0].addr, "alice@example.com");
    assert_int_equal(e.flags & ENV_DOUBLE, 0);
    env_free(&e);
    /* once only */
    assert_int_equal(spool_open(f->c.queuedir, qid, &m), 0);
    assert_int_equal(bounce_queue(&f->c, m, 1, bq), 1);
    spool_close(m);
    assert_int_equal(queue_len(f), 2);
}

static void test_queue_no_delay_notice_for_bounces(void **state)
{
    struct fixture *f = *state;
    char qid[QID_MAX], bq[QID_MAX];
    struct qmsg *m;
    queue_setup(f);
    enqueue_orig(f, "", ENV_BOUNCE, qid);
    assert_int_equal(spool_open(f->c.queuedir, qid, &m), 0);
    assert_int_equal(bounce_queue(&f->c, m, 1, bq), 1);
    spool_close(m);
    assert_int_equal(queue_len(f), 1);
}

int main(void)
{
    if (access(PYTHON, X_OK) != 0) {
        fprintf(stderr, "test_bounce: " PYTHON " is missing (apt-get install python3)\n");
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_compose_one, setup, teardown),
        cmocka_unit_test_setup_teardown(test_compose_several, setup, teardown),
        cmocka_unit_test_setup_teardown(test_compose_hostile_status, setup, teardown),
        cmocka_unit_test_setup_teardown(test_compose_remote, setup, teardown),
        cmocka_unit_test_setup_teardown(test_compose_remote_enhanced_code_kept, setup, teardown),
        cmocka_unit_test_setup_teardown(test_compose_long_status_folded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_compose_huge_token_capped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_compose_ret_hdrs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_compose_big_original_headers_only, setup, teardown),
        cmocka_unit_test_setup_teardown(test_compose_endless_header, setup, teardown),
        cmocka_unit_test_setup_teardown(test_compose_delay, setup, teardown),
        cmocka_unit_test_setup_teardown(test_compose_notify, setup, teardown),
        cmocka_unit_test_setup_teardown(test_compose_missing_original, setup, teardown),
        cmocka_unit_test_setup_teardown(test_compose_headerless_and_8bit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_compose_double_and_hidden_targets, setup, teardown),
        cmocka_unit_test_setup_teardown(test_compose_unique, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queue_failed_to_sender, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queue_null_sender_to_postmaster, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queue_double_bounce_held, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queue_notify_never, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queue_delay_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queue_no_delay_notice_for_bounces, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
