/* test_queue_records.c - control file format: round trip, truncation, injection, hostile input. */
#include "compat.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "queue_records.h"
#include "envelope.h"
#include "util.h"

/* Strings meant to break a line format: record separators, our escape char,
 * field separators, 8-bit text, a lone "-" (our "none" token). */
static const char *const nasty[] = {
    "x\nD0 D - forged\n.\nQevil",
    "a\r\nF attacker@evil",
    "%41%0A%%",
    " leading and trailing  ",
    "user|name@example.com",
    "\"quoted local\"@example.com",
    "-",
    "-leading-dash",
    "caf\xc3\xa9@\xc3\xa9xample.com",
    "\x01\x1f\x7f\xff",
    "",
};
#define NNASTY (sizeof nasty / sizeof nasty[0])

static void fill(struct envelope *e, const char *s)
{
    env_init(e);
    str_copy(e->qid, "0Abc9XyZ", sizeof e->qid);
    free(e->sender);
    e->sender = xstrdup(s);
    e->ctime = 1700000000;
    e->next_try = 1700003600;
    e->attempts = 3;
    e->flags = ENV_8BIT | ENV_RET_HDRS;
    e->client_name = xstrdup(s);
    e->client_addr = xstrdup("203.0.113.1");
    e->helo = xstrdup(s);
    e->local_user = NULL;
    size_t i = env_add_rcpt(e, s[0] ? s : "x", s, s);
    e->rcpts[i].notify = DSN_SUCCESS | DSN_FAILURE;
    e->rcpts[i].state = RS_FAILED;
    env_set_status(e, i, s);
    e->rcpts[i].remote_mta = xstrdup(s);
    i = env_add_rcpt(e, "plain@example.org", NULL, NULL);
}

static void str_eq(const char *a, const char *b)
{
    if (!a || !b)
        assert_ptr_equal(a, b);
    else
        assert_string_equal(a, b);
}

static void env_eq(const struct envelope *a, const struct envelope *b)
{
    assert_string_equal(a->qid, b->qid);
    str_eq(a->sender, b->sender);
    assert_int_equal(a->ctime, b->ctime);
    assert_int_equal(a->next_try, b->next_try);
    assert_int_equal(a->attempts, b->attempts);
    assert_int_equal(a->flags, b->flags);
    str_eq(a->client_name, b->client_name);
    str_eq(a->client_addr, b->client_addr);
    str_eq(a->helo, b->helo);
    str_eq(a->local_user, b->local_user);
    assert_int_equal(a->nrcpts, b->nrcpts);
    for (size_t i = 0; i < a->nrcpts; i++) {
        const struct rcpt *x = &a->rcpts[i], *y = &b->rcpts[i];
        str_eq(x->addr, y->addr);
        str_eq(x->orig, y->orig);
        str_eq(x->owner, y->owner);
        str_eq(x->status, y->status);
        str_eq(x->remote_mta, y->remote_mta);
        assert_int_equal(x->state, y->state);
        assert_int_equal(x->notify, y->notify);
    }
}

static size_t count_lines(const struct buf *b)
{
    size_t n = 0;
    for (size_t i = 0; i < b->len; i++)
        n += b->s[i] == '\n';
    return n;
}

static void test_envelope_basics(void **st)
{
    (void)st;
    struct envelope e;
    env_init(&e);
    assert_string_equal(e.sender, "");
    assert_int_equal(env_add_rcpt(&e, "a@b", NULL, NULL), 0);
    assert_int_equal(env_add_rcpt(&e, "|cmd", "c@d", "bob"), 1);
    assert_int_equal(env_pending(&e), 2);
    e.rcpts[0].state = RS_DONE;
    assert_int_equal(env_pending(&e), 1);
    env_set_status(&e, 1, "4.2.1 busy");
    assert_string_equal(e.rcpts[1].status, "4.2.1 busy");
    env_set_status(&e, 1, NULL);
    assert_null(e.rcpts[1].status);
    env_set_status(&e, 7, "ignored"); /* out of range: no effect */
    env_free(&e);
}

static void test_round_trip(void **st)
{
    (void)st;
    for (size_t k = 0; k < NNASTY; k++) {
        struct envelope a, b;
        struct buf text;
        const char *why;
        fill(&a, nasty[k]);
        buf_init(&text);
        ctl_format(&a, &text);
        /* header: V Q T N A G F C I H = 10; rcpt 0: R O W S M; rcpt 1: R; end */
        assert_int_equal(count_lines(&text), 10 + 5 + 1 + 1);
        assert_null(memchr(text.s, '\r', text.len));
        env_init(&b);
        assert_int_equal(ctl_parse(text.s, text.len, &b, &why), 0);
        env_eq(&a, &b);
        env_free(&a);
        env_free(&b);
        buf_free(&text);
    }
}

/* The smallest envelope (null sender, one recipient) and its records. */
static void minimal(struct envelope *a, struct buf *text)
{
    env_init(a);
    str_copy(a->qid, "Q1", sizeof a->qid);
    env_add_rcpt(a, "r@x", NULL, NULL);
    buf_init(text);
    ctl_format(a, text);
}

static void test_null_sender_and_nulls(void **st)
{
    (void)st;
    struct envelope a, b;
    struct buf text;
    const char *why;
    minimal(&a, &text);
    assert_non_null(strstr(text.s, "\nF\n"));
    env_init(&b);
    assert_int_equal(ctl_parse(text.s, text.len, &b, &why), 0);
    env_eq(&a, &b);
    assert_string_equal(b.sender, "");
    env_free(&a);
    env_free(&b);
    buf_free(&text);
}

/* E (DSN ENVID) and U (AUTH user) records of older versions: read and
 * ignored, never written again. */
static void test_old_envid_auth_ignored(void **st)
{
    (void)st;
    struct envelope a, b;
    struct buf text, old;
    const char *why;
    minimal(&a, &text);
    assert_null(strstr(text.s, "\nE"));
    assert_null(strstr(text.s, "\nU"));
    const char *f = strstr(text.s, "\nF\n");
    assert_non_null(f);
    buf_init(&old);
    buf_add(&old, text.s, (size_t)(f - text.s) + 3);
    buf_adds(&old, "Eenv-42\nUadmin\n");
    buf_adds(&old, f + 3);
    env_init(&b);
    assert_int_equal(ctl_parse(old.s, old.len, &b, &why), 0);
    env_eq(&a, &b);
    env_free(&a);
    env_free(&b);
    buf_free(&text);
    buf_free(&old);
}

/* Format an envelope plus status records, the way the spool appends them. */
static void with_status(struct envelope *a, struct buf *text, size_t *envlen)
{
    fill(a, "s@example.com");
    ctl_format(a, text);
    *envlen = text->len;
    ctl_format_status(1, RS_PENDING, "4.2.1 try later\nD1 D - forged", "mx.example.org", text);
    ctl_format_status(0, RS_BOUNCED, NULL, NULL, text);
    ctl_format_status(1, RS_DONE, "2.0.0 ok", "-mx", text);
}

static void test_status_records(void **st)
{
    (void)st;
    struct envelope a, b;
    struct buf text;
    size_t envlen, valid;
    const char *why;
    buf_init(&text);
    with_status(&a, &text, &envlen);
    env_init(&b);
    assert_int_equal(ctl_parse_ex(text.s, text.len, &b, &why, &valid, NULL), 0);
    assert_int_equal(valid, text.len);
    assert_int_equal(b.rcpts[0].state, RS_BOUNCED);
    assert_null(b.rcpts[0].status);
    assert_null(b.rcpts[0].remote_mta);
    assert_int_equal(b.rcpts[1].state, RS_DONE);
    assert_string_equal(b.rcpts[1].status, "2.0.0 ok");
    assert_string_equal(b.rcpts[1].remote_mta, "-mx");
    env_free(&b);
    /* a damaged record (one byte changed) is ignored and counted */
    size_t bad = 0;
    char *last = strstr(text.s + envlen, "\nD1 D ");
    assert_non_null(last);
    last[2] = '0';
    env_init(&b);
    assert_int_equal(ctl_parse_ex(text.s, text.len, &b, &why, &valid, &bad), 0);
    assert_int_equal(bad, 1);
    assert_int_equal(b.rcpts[0].state, RS_BOUNCED); /* not taken for recipient 0 */
    assert_int_equal(b.rcpts[1].state, RS_PENDING);
    env_free(&b);
    last[2] = '1';
    /* an interrupted append (no newline) is ignored and reported */
    buf_adds(&text, "D0 P - 4.0.0 half");
    env_init(&b);
    assert_int_equal(ctl_parse_ex(text.s, text.len, &b, &why, &valid, NULL), 0);
    assert_int_equal(valid, text.len - strlen("D0 P - 4.0.0 half"));
    assert_int_equal(b.rcpts[0].state, RS_BOUNCED);
    env_free(&b);
    env_free(&a);
    buf_free(&text);
}

/* Retry records (attempts, next try) appended after results: applied in
 * order, the last wins; one without its checksum or damaged is ignored. */
static void test_retry_records(void **st)
{
    (void)st;
    struct envelope a, b;
    struct buf text;
    size_t envlen, valid, bad = 0;
    const char *why;
    buf_init(&text);
    with_status(&a, &text, &envlen); /* fill() initialises a */
    ctl_format_retry(1, 1700000000, &text);
    ctl_format_retry(2, 1700003600, &text);
    env_init(&b);
    assert_int_equal(ctl_parse_ex(text.s, text.len, &b, &why, &valid, &bad), 0);
    assert_int_equal(bad, 0);
    assert_int_equal(valid, text.len);
    assert_int_equal(b.attempts, 2);
    assert_int_equal((long long)b.next_try, 1700003600LL);
    assert_int_equal(b.rcpts[1].state, RS_DONE); /* results still applied */
    env_free(&b);
    /* damaged (a digit changed): ignored, the one before stands */
    text.s[text.len - 20] = text.s[text.len - 20] == '9' ? '8' : '9';
    env_init(&b);
    assert_int_equal(ctl_parse_ex(text.s, text.len, &b, &why, &valid, &bad), 0);
    assert_int_equal(bad, 1);
    assert_int_equal(b.attempts, 1);
    env_free(&b);
    /* without a checksum: never written so, ignored */
    buf_adds(&text, "B7 1800000000\n");
    bad = 0;
    env_init(&b);
    assert_int_equal(ctl_parse_ex(text.s, text.len, &b, &why, &valid, &bad), 0);
    assert_int_equal(bad, 2);
    assert_int_equal(b.attempts, 1);
    env_free(&b);
    env_free(&a);
    buf_free(&text);
}

/* Cutting the file at any byte: before the end marker's newline it is
 * incomplete; after it, the result equals the envelope with exactly the
 * complete status records applied. */
static void test_truncation_every_offset(void **st)
{
    (void)st;
    struct envelope a;
    struct buf text;
    size_t envlen;
    buf_init(&text);
    with_status(&a, &text, &envlen);
    for (size_t k = 0; k <= text.len; k++) {
        struct envelope b, want;
        const char *why;
        size_t valid;
        env_init(&b);
        int r = ctl_parse_ex(text.s, k, &b, &why, &valid, NULL);
        if (k < envlen) {
            assert_int_equal(r, -1);
            assert_non_null(why);
        } else {
            assert_int_equal(r, 0);
            assert_true(valid <= k);
            /* the same as parsing just the complete lines */
            env_init(&want);
            assert_int_equal(ctl_parse(text.s, valid, &want, &why), 0);
            env_eq(&want, &b);
            env_free(&want);
        }
        env_free(&b);
    }
    env_free(&a);
    buf_free(&text);
}

/* A CR, LF or NUL-free hostile value in any field never adds a record. */
static void test_no_record_injection(void **st)
{
    (void)st;
    const char *evil = "a\n.\nD0 D - x\nQforged\r\nR1 P 0 evil@x\n";
    struct envelope a, b;
    struct buf text;
    const char *why;
    fill(&a, evil);
    buf_init(&text);
    ctl_format(&a, &text);
    ctl_format_status(0, RS_DONE, evil, evil, &text);
    assert_int_equal(count_lines(&text), 10 + 5 + 1 + 1 + 1);
    env_init(&b);
    assert_int_equal(ctl_parse(text.s, text.len, &b, &why), 0);
    assert_int_equal(b.nrcpts, 2);
    assert_string_equal(b.rcpts[0].status, evil);
    assert_string_equal(b.rcpts[0].remote_mta, evil);
    assert_string_equal(b.qid, "0Abc9XyZ");
    env_free(&a);
    env_free(&b);
    buf_free(&text);
}

static void test_rejects_malformed(void **st)
{
    (void)st;
    static const char *const bad[] = {
        "",
        ".\n",
        "V2\nQa\nT1\nF\n.\n",                    /* unknown version */
        "Qa\nT1\nF\n.\n",                        /* no version */
        "V1\nQa\nT1\nF\n",                       /* no end marker */
        "V1\nQa\nT1\nF\n.",                      /* end marker without newline */
        "V1\nQa\nQb\nT1\nF\n.\n",                /* duplicate record */
        "V1\nQa\nT1\n.\n",                       /* no sender */
        "V1\nT1\nF\n.\n",                        /* no queue id */
        "V1\nQa/b\nT1\nF\n.\n",                  /* bad queue id */
        "V1\nQa\nT1\nF\nZ\n.\n",                 /* unknown record */
        "V1\nQa\nT-1\nF\n.\n",                   /* negative time */
        "V1\nQa\nT01\nF\n.\n",                   /* leading zero */
        "V1\nQa\nT99999999999999999999999\nF\n.\n",
        "V1\nQa\nT1\nFa%0\n.\n",                 /* short escape */
        "V1\nQa\nT1\nFa%zz\n.\n",                /* bad escape */
        "V1\nQa\nT1\nFa%00b\n.\n",               /* escaped NUL */
        "V1\nQa\nT1\nFa\rb\n.\n",                /* raw CR */
        "V1\nQa\nT1\nF\nR1 P 0 x\n.\n",          /* recipient index gap */
        "V1\nQa\nT1\nF\nO0 x\n.\n",              /* field before its recipient */
        "V1\nQa\nT1\nF\nR0 X 0 x\n.\n",          /* bad state */
        "V1\nQa\nT1\nF\nR0 P 16 x\n.\n",         /* bad notify */
        "V1\nQa\nT1\nF\nR0 P 0 x\nS0 a\nS0 b\n.\n", /* duplicate field */
        "V1\nQa\nT1\nF\nR0 P 0 x\nHhelo\n.\n",   /* header after recipients */
        "V1\nQa\nT1\nR0 P 0 x\nF\n.\n",          /* recipient before sender */
        "V1\nQa\nT1\n\nF\n.\n",                  /* empty line */
        "V1\nQa\nT1\nF\nR0 P 0x\n.\n",           /* missing separator */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct envelope e;
        const char *why = NULL;
        env_init(&e);
        if (ctl_parse(bad[i], strlen(bad[i]), &e, &why) != -1)
            fail_msg("accepted bad control file #%zu: %s", i, bad[i]);
        assert_non_null(why);
        env_free(&e);
    }
    /* a NUL byte inside a record */
    static const char withnul[] = "V1\nQa\nT1\nFa\0b\n.\n";
    struct envelope e;
    const char *why;
    env_init(&e);
    assert_int_equal(ctl_parse(withnul, sizeof withnul - 1, &e, &why), -1);
    env_free(&e);
}

/* Malformed status records (torn writes) are skipped, never fatal, never
 * applied to a recipient that does not exist. */
static void test_bad_status_skipped(void **st)
{
    (void)st;
    const char *t = "V1\nQa\nT1\nF\nR0 P 0 x\n.\nD5 D - x\nD0 Q - x\nD0 D\n\0\0\0\nD0 D mx ok\n";
    size_t len = strlen("V1\nQa\nT1\nF\nR0 P 0 x\n.\nD5 D - x\nD0 Q - x\nD0 D\n") + 4
                 + strlen("D0 D mx ok\n");
    struct envelope e;
    const char *why;
    env_init(&e);
    assert_int_equal(ctl_parse(t, len, &e, &why), 0);
    assert_int_equal(e.nrcpts, 1);
    assert_int_equal(e.rcpts[0].state, RS_DONE);
    assert_string_equal(e.rcpts[0].status, "ok");
    assert_string_equal(e.rcpts[0].remote_mta, "mx");
    env_free(&e);
}

/* Deterministic mutations of a valid file: parsing must never crash (run the
 * suite under valgrind or -fsanitize=address to see memory errors). */
static void test_hostile_fuzz(void **st)
{
    (void)st;
    struct envelope a;
    struct buf text, m;
    size_t envlen;
    unsigned long long x = 88172645463325252ULL;
    buf_init(&text);
    buf_init(&m);
    with_status(&a, &text, &envlen);
    for (int round = 0; round < 20000; round++) {
        buf_reset(&m);
        buf_add(&m, text.s, text.len);
        int edits = 1 + round % 4;
        for (int k = 0; k < edits; k++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            size_t pos = (size_t)(x >> 8) % m.len;
            switch (x % 4) {
            case 0: m.s[pos] = (char)(x >> 40); break;               /* replace */
            case 1: m.s[pos] = "\n\r%0 -.DR"[(x >> 40) % 9]; break;  /* syntax bytes */
            case 2: buf_truncate(&m, pos); break;                    /* cut */
            default:                                                 /* delete one */
                memmove(m.s + pos, m.s + pos + 1, m.len - pos - 1);
                buf_truncate(&m, m.len - 1);
            }
            if (m.len == 0)
                buf_addc(&m, 'V');
        }
        struct envelope b;
        const char *why = NULL;
        env_init(&b);
        if (ctl_parse(m.s, m.len, &b, &why) < 0)
            assert_non_null(why);
        else
            assert_true(b.qid[0] != '\0');
        env_free(&b);
    }
    env_free(&a);
    buf_free(&text);
    buf_free(&m);
}

/* Only a target an expansion wrote is a program or file: an envelope
 * recipient that merely looks like one (RCPT TO:<|cmd@x> in a queue written
 * before such addresses were refused) is an address. */
static void test_rcpt_is_target(void **state)
{
    (void)state;
    static const struct { const char *addr, *orig; int want; } cases[] = {
        { "|/usr/bin/procmail", "joe@example.org", 1 },
        { "/home/joe/mail/in", "joe@example.org", 1 },
        { "\\joe", "joe@example.org", 1 },
        { "|touch${IFS}/tmp/x@example.org", "|touch${IFS}/tmp/x@example.org", 0 },
        { "|touch${IFS}/tmp/x@example.org", NULL, 0 },
        { "/tmp/a@example.org", NULL, 0 },
        { "joe@example.org", "joe@example.org", 0 },
        { "joe@example.org", "alias@example.org", 0 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct rcpt r = { .addr = (char *)cases[i].addr, .orig = (char *)cases[i].orig };
        assert_int_equal(rcpt_is_target(&r), cases[i].want);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_envelope_basics),
        cmocka_unit_test(test_rcpt_is_target),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_null_sender_and_nulls),
        cmocka_unit_test(test_old_envid_auth_ignored),
        cmocka_unit_test(test_status_records),
        cmocka_unit_test(test_retry_records),
        cmocka_unit_test(test_truncation_every_offset),
        cmocka_unit_test(test_no_record_injection),
        cmocka_unit_test(test_rejects_malformed),
        cmocka_unit_test(test_bad_status_skipped),
        cmocka_unit_test(test_hostile_fuzz),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
