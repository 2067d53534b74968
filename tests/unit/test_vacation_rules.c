/* test_vacation_rules.c - vacation_rules.c: each never-reply rule alone (and
 * its near misses answered); vacation_msg.c: the vacation file's parser, the
 * period, the composed reply; vacation_db.c: once per sender per period. */
#include "compat.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "util.h"
#include "vacation_db.h"
#include "vacation_msg.h"
#include "vacation_rules.h"

#define ME "alice@here.example"
#define BASE "Received: from x by y\nFrom: Bob <bob@there.example>\nTo: " ME \
             "\nSubject: hi\n"

/* check(sender, extra header lines, check_to): 1 reply, 0 none (*why). */
static int check(const char *sender, const char *extra, int check_to, const char **why)
{
    struct strlist self;
    sl_init(&self);
    sl_add(&self, ME);
    sl_add(&self, "alice.smith@here.example");
    char *h = xasprintf("%s%s\nbody\n", BASE, extra);
    int r = vac_rules_check(sender, h, strlen(h), &self, check_to, why);
    free(h);
    sl_free(&self);
    return r;
}

static void test_plain_message_answered(void **st)
{
    (void)st;
    const char *why = "unset";
    assert_int_equal(check("bob@there.example", "", 1, &why), 1);
    assert_null(why);
}

struct never {
    const char *sender;
    const char *extra;
    const char *why_part;
};

static const struct never nevers[] = {
    {"", "", "<>"},
    {"bob@there.example", "Auto-Submitted: auto-generated\n", "Auto-Submitted"},
    {"bob@there.example", "auto-submitted: Auto-Replied (vacation)\n", "Auto-Submitted"},
    {"bob@there.example", "Auto-Submitted: auto-notified; owner-email=x@y\n",
     "Auto-Submitted"},
    {"bob@there.example", "X-Auto-Response-Suppress: DR, OOF\n", "Suppress"},
    {"bob@there.example", "X-Auto-Response-Suppress: All\n", "Suppress"},
    {"bob@there.example", "Precedence: bulk\n", "Precedence"},
    {"bob@there.example", "Precedence: LIST\n", "Precedence"},
    {"bob@there.example", "Precedence:  junk (old)\n", "Precedence"},
    {"bob@there.example", "Precedence: (c) bulk\n more\n", "Precedence"},
    {"bob@there.example", "Auto-Submitted: auto-generated(x)\n", "Auto-Submitted"},
    {"bob@there.example", "X-Spam: 5.2 points\n", "spam"},
    {"bob@there.example", "X-Spam-Flag: YES\n", "spam"},
    {"bob@there.example", "List-Id: Friends <friends.lists.example>\n", "List-*"},
    {"bob@there.example", "List-Unsubscribe:\n <mailto:x@y>\n", "List-*"},
    {"bob@there.example", "list-post: <mailto:f@l>\n", "List-*"},
    {ME, "", "own address"},
    {"Alice.Smith@HERE.example", "", "own address"},
    {"MAILER-DAEMON@there.example", "", "mailer daemon"},
    {"postmaster@there.example", "", "mailer daemon"},
    {"owner-friends@lists.example", "", "mailer daemon"},
    {"friends-request@lists.example", "", "mailer daemon"},
    {"friends-bounces@lists.example", "", "mailer daemon"},
    {"majordomo@lists.example", "", "mailer daemon"},
};

static void test_each_rule_alone(void **st)
{
    (void)st;
    for (size_t i = 0; i < sizeof nevers / sizeof *nevers; i++) {
        const char *why = NULL;
        int r = check(nevers[i].sender, nevers[i].extra, 1, &why);
        if (r != 0 || !why || !strstr(why, nevers[i].why_part))
            fail_msg("case %zu (%s / %s): r=%d why=%s", i, nevers[i].sender,
                     nevers[i].extra, r, why ? why : "(null)");
    }
}

static void test_near_misses_answered(void **st)
{
    (void)st;
    static const char *const extras[] = {
        "Auto-Submitted: no\n",
        "Auto-Submitted: No (a person wrote this)\n",
        "Precedence: first-class\n",
        "X-Auto-Response-Suppress: DR, RN\n",
        "Listing: 3 items\n",         /* not List-* */
        "X-List-Id: looks alike\n",   /* nor this */
        "Subject2: List-Id: in a value\n",
        "X-Spam-Flag: NO\n",
        "X-Spam-Status: No, score=0.1\n",
    };
    for (size_t i = 0; i < sizeof extras / sizeof *extras; i++) {
        const char *why = NULL;
        if (check("bob@there.example", extras[i], 1, &why) != 1)
            fail_msg("near miss %zu (%s) refused: %s", i, extras[i], why);
    }
    static const char *const senders[] = {"owner@x.example", "requester@x.example",
                                          "daemon@x.example", "bob-owner-x@y.example"};
    for (size_t i = 0; i < sizeof senders / sizeof *senders; i++) {
        const char *why = NULL;
        if (check(senders[i], "", 1, &why) != 1)
            fail_msg("sender %s refused: %s", senders[i], why);
    }
}

static void test_to_cc_check(void **st)
{
    (void)st;
    struct strlist self;
    sl_init(&self);
    sl_add(&self, ME);
    const char *why = NULL;
    const char *list = "From: bob@there.example\nTo: friends@lists.example\n\n";
    assert_int_equal(vac_rules_check("bob@there.example", list, strlen(list), &self, 1, &why),
                     0);
    assert_non_null(strstr(why, "To: or Cc:"));
    assert_int_equal(vac_rules_check("bob@there.example", list, strlen(list), &self, 0, &why),
                     1);
    const char *cc = "To: x@y.example\nCc: Someone <s@t.example>,\n \"A\" <ALICE@here.example>\n\n";
    assert_int_equal(vac_rules_check("bob@there.example", cc, strlen(cc), &self, 1, &why), 1);
    /* Bcc is not To/Cc; a field after the blank line is body */
    const char *bcc = "To: x@y.example\nBcc: " ME "\n\nTo: " ME "\n";
    assert_int_equal(vac_rules_check("bob@there.example", bcc, strlen(bcc), &self, 1, &why), 0);
    /* a List-Id past the header block is body, not a list */
    const char *body = "To: " ME "\n\nList-Id: x\n";
    assert_int_equal(vac_rules_check("bob@there.example", body, strlen(body), &self, 1, &why),
                     1);
    /* only len bytes are read */
    const char *cut = "To: " ME "\nPrecedence: bulk\n";
    assert_int_equal(vac_rules_check("bob@there.example", cut, 4 + strlen(ME) + 1, &self, 1,
                                     &why), 1);
    sl_free(&self);
}

static void test_robot_names(void **st)
{
    (void)st;
    assert_true(vac_rules_robot("Mailer-Daemon"));
    assert_true(vac_rules_robot("owner-x"));
    assert_true(vac_rules_robot("x-REQUEST"));
    assert_false(vac_rules_robot("owner"));
    assert_false(vac_rules_robot("-requestor"));
    assert_false(vac_rules_robot("alice"));
}

/* ---- the file ---- */

static void test_file_parse(void **st)
{
    (void)st;
    struct vac_file f;
    char *err = NULL;
    const char *t = "Subject: Away: $SUBJECT\nFrom: Alice <alice@here.example>\n"
                    "Vacation-Period: 2w\nVacation-Alias: a@x.example, b@y.example\n"
                    "X-Note: hello\n  folded\nContent-Type: text/plain; charset=UTF-8\n"
                    "\nBody line\r\nsecond\n";
    assert_int_equal(vac_file_parse(t, strlen(t), &f, &err), 0);
    assert_string_equal(f.subject, "Away: $SUBJECT");
    assert_string_equal(f.from, "Alice <alice@here.example>");
    assert_int_equal(f.period, 14L * 86400);
    assert_int_equal(f.aliases.n, 2);
    assert_string_equal(f.aliases.v[1], "b@y.example");
    assert_int_equal(f.extra.n, 1);
    assert_string_equal(f.extra.v[0], "X-Note: hello  folded");
    assert_string_equal(f.body, "Body line\nsecond\n");
    assert_int_equal(f.check_to, 1);
    vac_file_free(&f);

    /* no header block: all body (a first line that is not one of ours) */
    t = "Note: I am away\nSubject: this is body\n";
    assert_int_equal(vac_file_parse(t, strlen(t), &f, &err), 0);
    assert_null(f.subject);
    assert_string_equal(f.body, t);
    assert_int_equal(f.period, VAC_PERIOD_DEFAULT);
    vac_file_free(&f);
}

static void test_file_errors(void **st)
{
    (void)st;
    static const struct {
        const char *text;
        const char *err_part;
    } bad[] = {
        {"Subject: a\nCc: boss@x.example\n\nbody\n", "line 2: unknown field Cc:"},
        {"Subject: a\nSubject: b\n\n", "second Subject"},
        {"Subject: a\nnot a field\n\n", "line 2: not a header field"},
        {"Vacation-Period: soon\n\n", "not a period"},
        {"Vacation-Period: 4000d\n\n", "not a period"},
        {"From: nobody\n\n", "From:"},
        {"Vacation-Alias: \n\n", "no address"},
        {"Vacation-Check-To: maybe\n\n", "yes or no"},
        {"Content-Type: text/html\n\n", "text/plain"},
        {"Content-Type: text/plain; charset=iso-8859-1\n\n", "text/plain"},
        {"Content-Transfer-Encoding: base64\n\n", "7bit"},
        {"X-Tag: caf\xc3\xa9\n\n", "ASCII"},
        {"Subject: a\n\nGr\xfc\xdf" "e\n", "not UTF-8"},
        {"Subject: Gr\xfc\n\n", "not UTF-8"},
        {"Subject: a\x1b[31m\n\n", "line 1: a control character"},
        {"Subject: a\n\nline\rmore\n", "line 3: a control character"},
        {"X-A: b\x01\n\n", "control character"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        struct vac_file f;
        char *err = NULL;
        int r = vac_file_parse(bad[i].text, strlen(bad[i].text), &f, &err);
        if (r != -1 || !err || !strstr(err, bad[i].err_part))
            fail_msg("case %zu: r=%d err=%s", i, r, err ? err : "(null)");
        free(err);
    }
    /* NUL bytes, long lines, size */
    struct vac_file f;
    char *err = NULL;
    assert_int_equal(vac_file_parse("a\0b\n", 4, &f, &err), -1);
    free(err);
    char *lng = xmalloc(1200);
    memset(lng, 'x', 1199);
    lng[1199] = '\0';
    assert_int_equal(vac_file_parse(lng, strlen(lng), &f, &err), -1);
    assert_non_null(strstr(err, "line 1: longer than 998"));
    free(err);
    free(lng);
    char *big = xcalloc(1, VAC_FILE_MAX + 2);
    memset(big, '\n', VAC_FILE_MAX + 1);
    assert_int_equal(vac_file_parse(big, VAC_FILE_MAX + 1, &f, &err), -1);
    free(err);
    free(big);
}

static void test_period(void **st)
{
    (void)st;
    long s;
    assert_int_equal(vac_period_parse("7", &s), 0);
    assert_int_equal(s, 7 * 86400);
    assert_int_equal(vac_period_parse("12h", &s), 0);
    assert_int_equal(s, 12 * 3600);
    assert_int_equal(vac_period_parse("90s", &s), 0);
    assert_int_equal(s, 90);
    assert_int_equal(vac_period_parse("0", &s), 0);
    assert_int_equal(s, 0);
    assert_int_equal(vac_period_parse("3650d", &s), 0);
    assert_int_equal(vac_period_parse("3651d", &s), -1);
    assert_int_equal(vac_period_parse("-1", &s), -1);
    assert_int_equal(vac_period_parse("1y", &s), -1);
    assert_int_equal(vac_period_parse("1dd", &s), -1);
    assert_int_equal(vac_period_parse("", &s), -1);
}

/* ---- the reply ---- */

static char *compose_with(const char *file, const struct vac_orig *o)
{
    struct vac_file f;
    char *err = NULL;
    assert_int_equal(vac_file_parse(file, strlen(file), &f, &err), 0);
    struct buf out;
    buf_init(&out);
    int r = vac_compose(&f, o, ME, "bob@there.example", "here.example", 1700000000, &out,
                        &err);
    vac_file_free(&f);
    if (r < 0) {
        free(err);
        buf_free(&out);
        return NULL;
    }
    return buf_steal(&out);
}

static void test_compose(void **st)
{
    (void)st;
    struct vac_orig o = {.subject = "Lunch?", .msgid = "<m1@there.example>",
                         .refs = "<r0@x.example>  <r1@x.example>"};
    char *r = compose_with("Away.\n", &o);
    assert_non_null(r);
    assert_non_null(strstr(r, "From: <" ME ">\n"));
    assert_non_null(strstr(r, "To: <bob@there.example>\n"));
    assert_non_null(strstr(r, "Subject: Auto: Lunch?\n"));
    assert_non_null(strstr(r, "Date: Tue, 14 Nov 2023 22:13:20 +0000\n"));
    assert_non_null(strstr(r, "@here.example>\n"));
    assert_non_null(strstr(r, "In-Reply-To: <m1@there.example>\n"));
    assert_non_null(strstr(r, "References:\n <r0@x.example>\n <r1@x.example>\n "
                              "<m1@there.example>\n"));
    assert_non_null(strstr(r, "Auto-Submitted: auto-replied\n"));
    assert_non_null(strstr(r, "Content-Transfer-Encoding: 7bit\n\nAway.\n"));
    free(r);

    /* a broken Message-ID gives no threading fields; control characters in
     * the subject become spaces; $SUBJECT in the body */
    struct vac_orig bad = {.subject = "a\tb\x01" "c", .msgid = "<no at sign>"};
    r = compose_with("Subject: Re: $SUBJECT\n\nAbout $SUBJECT.\n", &bad);
    assert_non_null(r);
    assert_null(strstr(r, "In-Reply-To"));
    assert_null(strstr(r, "References"));
    assert_non_null(strstr(r, "Subject: Re: a b c\n"));
    assert_non_null(strstr(r, "\n\nAbout a b c.\n"));
    free(r);

    /* UTF-8: B-encoded subject, quoted-printable body, no 8-bit byte left */
    struct vac_orig u = {.subject = "Gr\xc3\xbc\xc3\x9f" "e und \xff" "mehr"};
    r = compose_with("Subject: Abwesend \xe2\x80\x93 $SUBJECT\n\nGr\xc3\xbc\xc3\x9f" "e =\n", &u);
    assert_non_null(r);
    for (const char *p = r; *p; p++)
        assert_true((unsigned char)*p < 0x80);
    assert_non_null(strstr(r, "Subject: =?UTF-8?B?"));
    assert_non_null(strstr(r, "Content-Transfer-Encoding: quoted-printable\n\n"
                              "Gr=C3=BC=C3=9Fe =3D\n"));
    free(r);

    /* no subject at all */
    struct vac_orig none = {0};
    r = compose_with("Away.\n", &none);
    assert_non_null(strstr(r, "Subject: Auto: (no subject)\n"));
    free(r);

    /* the file's From: and Reply-To: */
    r = compose_with("From: Desk <desk@here.example>\nReply-To: desk@here.example\n\nx\n", &o);
    assert_non_null(strstr(r, "From: Desk <desk@here.example>\n"));
    assert_non_null(strstr(r, "Reply-To: desk@here.example\n"));
    free(r);
}

static void test_qp_long_lines_and_trailing_space(void **st)
{
    (void)st;
    struct buf body;
    buf_init(&body);
    for (int i = 0; i < 100; i++)
        buf_adds(&body, "\xc3\xa4");
    buf_adds(&body, " \n");
    char *file = xasprintf("Subject: x\n\n%s", body.s);
    struct vac_orig o = {0};
    char *r = compose_with(file, &o);
    assert_non_null(r);
    const char *b = strstr(r, "\n\n") + 2;
    for (const char *p = b; *p;) {
        size_t n = strcspn(p, "\n");
        assert_true(n <= 76);
        p += n + (p[n] == '\n');
    }
    assert_non_null(strstr(b, "=20\n")); /* the trailing space */
    free(r);
    free(file);
    buf_free(&body);
}

static void test_clean_text(void **st)
{
    (void)st;
    char *s = vac_clean_text("  a\x7f" "b\xc3\xa4\xe2\x82" "c  ", 200);
    assert_string_equal(s, "a b\xc3\xa4??c");
    free(s);
    s = vac_clean_text("\xc3\xa4\xc3\xa4\xc3\xa4", 5); /* cut at a character boundary */
    assert_string_equal(s, "\xc3\xa4\xc3\xa4");
    free(s);
}

/* ---- the record ---- */

static void test_db_once_per_period(void **st)
{
    (void)st;
    char dir[] = "/tmp/po-test-vacdb-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char *path = xasprintf("%s/v.db", dir);
    char *err = NULL;
    time_t last = 0;
    assert_int_equal(vacdb_due(path, "Bob@There.example", 3600, 1000, &last, &err), 1);
    assert_int_equal(vacdb_due(path, "bob@there.example", 3600, 2000, &last, &err), 0);
    assert_int_equal(last, 1000);
    assert_int_equal(vacdb_due(path, "carol@there.example", 3600, 2000, &last, &err), 1);
    assert_int_equal(vacdb_due(path, "bob@there.example", 3600, 4600, &last, &err), 1);
    /* a clock set back: answered (and recorded anew) */
    assert_int_equal(vacdb_due(path, "bob@there.example", 3600, 100, &last, &err), 1);
    /* period 0: every time */
    assert_int_equal(vacdb_due(path, "bob@there.example", 0, 100, &last, &err), 1);
    /* a database that cannot be made */
    char *nodir = xasprintf("%s/missing/v.db", dir);
    assert_int_equal(vacdb_due(nodir, "bob@there.example", 3600, 100, &last, &err), -1);
    assert_non_null(err);
    free(err);
    free(nodir);
    unlink(path);
    rmdir(dir);
    free(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_message_answered),
        cmocka_unit_test(test_each_rule_alone),
        cmocka_unit_test(test_near_misses_answered),
        cmocka_unit_test(test_to_cc_check),
        cmocka_unit_test(test_robot_names),
        cmocka_unit_test(test_file_parse),
        cmocka_unit_test(test_file_errors),
        cmocka_unit_test(test_period),
        cmocka_unit_test(test_compose),
        cmocka_unit_test(test_qp_long_lines_and_trailing_space),
        cmocka_unit_test(test_clean_text),
        cmocka_unit_test(test_db_once_per_period),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
