/* test_logsum.c - the log summary's line reader: syslog prefixes in every
 * form it claims (syslog_prefix.h), our idents only, and the figures the
 * summary (logsum.h) gets from a small log. */
#include "compat.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "logsum.h"
#include "syslog_prefix.h"
#include "util.h"

struct form {
    const char *line, *ident, *msg;
    int year, mon, mday, hour;
};

static void test_prefix_forms(void **state)
{
    (void)state;
    static const struct form f[] = {
        /* Debian 12 rsyslog (traditional file format) */
        {"Dec  7 11:52:01 mx1 smtpd[4242]: connect client=local", "smtpd",
         "connect client=local", 0, 12, 7, 11},
        /* the same sent over the wire (RFC 3164 with its PRI) */
        {"<22>Dec 17 01:02:03 mx1 runq[7]: Q: removed", "runq", "Q: removed", 0, 12, 17, 1},
        /* Debian 13 rsyslog: RFC 3339 time stamps */
        {"2026-12-07T11:52:01.123456+00:00 mx1 postoffice[1]: x", "postoffice", "x", 2026, 12,
         7, 11},
        /* RFC 5424, structured data and a BOM */
        {"<22>1 2026-01-02T03:04:05.6Z mx1 smtpd 99 - [ex@1 a=\"x\\]y\"] \xEF\xBB\xBFQ: removed",
         "smtpd", "Q: removed", 2026, 1, 2, 3},
        {"<22>1 2026-01-02T23:04:05Z mx1 runq - - - Q: removed", "runq", "Q: removed", 2026, 1,
         2, 23},
        /* journalctl -o short and short-iso */
        {"Dec 07 11:52:01 mx1 smtpd[12]: msg", "smtpd", "msg", 0, 12, 7, 11},
        {"2026-12-07T11:52:01+0000 mx1 smtpd[12]: msg", "smtpd", "msg", 2026, 12, 7, 11},
        /* the foreground daemon's stderr: no time */
        {"smtpd: connect client=local", "smtpd", "connect client=local", 0, 0, 0, 0},
        {"runq[3]: Q: removed", "runq", "Q: removed", 0, 0, 0, 0},
        /* a line without a host name */
        {"Dec  7 11:52:01 smtpd[4242]: Q: removed", "smtpd", "Q: removed", 0, 12, 7, 11},
    };
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) {
        struct syslog_prefix p;
        if (syslog_prefix_parse(f[i].line, &p) < 0)
            fail_msg("not parsed: %s", f[i].line);
        assert_string_equal(p.ident, f[i].ident);
        assert_string_equal(p.msg, f[i].msg);
        assert_int_equal(p.have_date, f[i].mon != 0);
        assert_int_equal(p.year, f[i].year);
        assert_int_equal(p.mon, f[i].mon);
        assert_int_equal(p.mday, f[i].mday);
        assert_int_equal(p.hour, f[i].hour);
    }
}

static void test_prefix_refused(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "", "Dec", "Dec  7", "Dec  7 11:52", "Dec 32 11:52:01 h smtpd: x",
        "Dex  7 11:52:01 h smtpd: x", "<22", "<22>1 ", "<22>1 2026-01-02T03:04:05Z h",
        "<1234>x: y", "2026-13-01T00:00:00 h smtpd: x", "no colon here",
        "<22>1 2026-01-02T03:04:05Z h app - - [unterminated msg",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct syslog_prefix p;
        if (syslog_prefix_parse(bad[i], &p) == 0)
            fail_msg("parsed: %s", bad[i]);
    }
    assert_true(syslog_ident_ours("smtpd"));
    assert_true(syslog_ident_ours("postoffice/smtpd"));
    assert_false(syslog_ident_ours("postfix/smtpd"));
    assert_false(syslog_ident_ours("exim"));
}

static char *report(const char *const *lines)
{
    struct logsum *s = ls_new();
    for (size_t i = 0; lines[i]; i++)
        ls_line(s, lines[i]);
    char *out = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&out, &n);
    ls_report(s, f, 5);
    fclose(f);
    ls_free(s);
    return out;
}

static void has(const char *out, const char *want)
{
    if (!strstr(out, want)) {
        fputs(out, stdout); /* cmocka cuts long messages */
        fail_msg("missing \"%s\"", want);
    }
}

static void test_figures(void **state)
{
    (void)state;
    static const char *const log[] = {
        "Dec  7 10:00:00 mx smtpd[1]: connect client=c.example[198.51.100.1]",
        "Dec  7 10:00:01 mx smtpd[1]: Q1: queued from=<a@Send.example>, size=100, nrcpt=2, "
        "client=c.example[198.51.100.1], proto=ESMTP",
        "Dec  7 10:00:02 mx smtpd[1]: reject cmd=RCPT, client=c.example[198.51.100.1], "
        "from=<a@send.example>, to=<x@here.example>, code=550, dsn=5.1.1, "
        "reason=\"<x@here.example>: no such user\"",
        "Dec  7 10:00:02 mx smtpd[1]: reject cmd=RCPT, client=c.example[198.51.100.1], "
        "from=<a@send.example>, to=<y@here.example>, code=550, dsn=5.1.1, "
        "reason=\"<y@here.example>: no such user\"",
        "Dec  7 10:00:03 mx smtpd[1]: reject cmd=RCPT, client=d[198.51.100.2], code=451, "
        "dsn=4.7.1, reason=\"greylisted, try again in 300 seconds\"",
        "Dec  7 11:00:00 mx runq[2]: Q1: delivery to=<b@here.example>, relay=local, delay=4, "
        "dsn=2.0.0, status=sent, reason=ok",
        "Dec  7 11:00:00 mx runq[2]: Q1: delivery to=<c@far.example>, relay=mx[203.0.113.5]:25,"
        " delay=10, dsn=4.4.1, status=deferred, reason=\"connection refused\"",
        "Dec  8 09:00:00 mx runq[2]: Q1: delivery to=<c@far.example>, relay=mx[203.0.113.5]:25,"
        " delay=80000, dsn=2.0.0, status=sent, reason=\"250 ok\"",
        "Dec  8 09:00:00 mx runq[2]: Q1: removed",
        "Dec  8 09:00:01 mx smtpd[3]: Q2: queued from=<>, size=50, nrcpt=1, proto=ESMTP",
        "Dec  8 09:00:02 mx runq[4]: Q2: delivery to=<z@nowhere.example>, relay=none, delay=1, "
        "dsn=5.1.2, status=bounced, reason=\"no such domain\"",
        "Dec  8 09:00:02 mx runq[4]: Q2: bounce kind=double, bounce_qid=Q3, to=<postmaster>",
        "Dec  8 09:00:02 mx runq[4]: Q3: queued from=<>, size=900, nrcpt=1, proto=bounce",
        "Dec  8 09:00:03 mx runq[4]: Q3: delivery to=<\\\\root>, orig_to=<postmaster>, "
        "relay=local, delay=1, dsn=2.0.0, status=sent, reason=ok",
        /* not ours, or not event lines: skipped */
        "Dec  8 09:00:04 mx postfix/smtpd[9]: connect from x[1.2.3.4]",
        "Dec  8 09:00:04 mx postfix/qmgr[9]: ABC: removed",
        "Dec  8 09:00:04 mx smtpd[9]: listening on 127.0.0.1:25",
        "garbage",
        NULL,
    };
    char *out = report(log);
    has(out, "(18 lines read, 14 of them events)");
    has(out, "         2  received\n");
    has(out, "         3  delivered\n");
    has(out, "         1  deferred (attempts)\n");
    has(out, "         1  deferred (messages)\n");
    has(out, "         1  bounced\n");
    has(out, "         2  rejected (5xx)\n");
    has(out, "         1  rejected temporarily (4xx)\n");
    has(out, "         1  bounce notices sent\n");
    has(out, "         1  connections\n");
    has(out, "         1  removed from the queue\n");
    has(out, "       150  bytes received\n");
    has(out, "      1100  bytes delivered\n"); /* 100 + 100 + 900 */
    has(out, "         2  senders\n");
    /* delays of the three delivered: 1, 4, 80000 */
    has(out, "         3  delivered\n   26668.3  average\n         4  median\n"
             "     80000  95th percentile\n     80000  maximum\n");
    has(out, "  Dec 07               1         1         1         0         0         3\n");
    has(out, "  Dec 08               1         2         0         1         0         0\n");
    has(out, "  10:00-11:00          1         0         0         0         0         3\n");
    has(out, "  09:00-10:00          1         2         0         1         0         0\n");
    has(out, "         1          100  a@send.example\n");
    has(out, "         1           50  <>\n");
    has(out, "Top receiving domains (delivered, bytes)\n"
             "         1          900  (local)\n"
             "         1          100  far.example\n"
             "         1          100  here.example\n");
    has(out, "         1          900  postmaster\n"); /* orig_to, not the mailbox */
    has(out, "Top sending domains (messages, bytes)\n"
             "         1           50  <>\n"
             "         1          100  send.example\n"); /* domains lower-cased */
    has(out, "         2  RCPT 550 5.1.1 <...>: no such user\n");
    has(out, "         1  RCPT 451 4.7.1 greylisted, try again in N seconds\n");
    has(out, "         2  c.example[198.51.100.1]\n");
    has(out, "         1  4.4.1 connection refused\n");
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_prefix_forms),
        cmocka_unit_test(test_prefix_refused),
        cmocka_unit_test(test_figures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
