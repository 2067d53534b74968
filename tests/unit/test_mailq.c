/* test_mailq.c - listing the queue: empty, entries, locked and held marks,
 * attempts, the maildrop, the shape (mailq -v) against a fixed now, permissions. */
#include "compat.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sysexits.h>
#include <unistd.h>
#include <cmocka.h>

#include "conf.h"
#include "date.h"
#include "mailq.h"
#include "queue_shape.h"
#include "spool.h"
#include "util.h"

struct fx {
    char dir[64];
    struct config c;
};

static int setup(void **st)
{
    struct fx *f = xcalloc(1, sizeof *f);
    str_copy(f->dir, "/tmp/po-mailq-XXXXXX", sizeof f->dir);
    if (!mkdtemp(f->dir))
        return -1;
    chmod(f->dir, 0711);
    config_defaults(&f->c);
    free(f->c.queuedir);
    f->c.queuedir = xasprintf("%s/q", f->dir);
    if (spool_setup(f->c.queuedir, getuid(), getgid()) < 0)
        return -1;
    *st = f;
    return 0;
}

static int teardown(void **st)
{
    struct fx *f = *st;
    char *cmd = xasprintf("rm -rf '%s'", f->dir);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", f->dir);
    free(cmd);
    config_free(&f->c);
    free(f);
    return 0;
}

#define NOW ((time_t)1700003600) /* an hour after enqueue()'s messages */

/* mailq output into a malloc'd string; *rc gets the return code. */
static char *run_mailq_flags(const struct config *c, int *rc, int flags)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    assert_non_null(out);
    *rc = mailq_print(c, out, NOW, flags);
    fclose(out);
    return text;
}

static char *run_mailq(const struct config *c, int *rc)
{
    return run_mailq_flags(c, rc, 0);
}

static void enqueue(const char *q, const char *sender, const char *status, char qid[QID_MAX])
{
    struct envelope e;
    env_init(&e);
    free(e.sender);
    e.sender = xstrdup(sender);
    e.ctime = 1700000000;
    env_add_rcpt(&e, "done@example.org", NULL, NULL);
    e.rcpts[0].state = RS_DONE;
    env_add_rcpt(&e, "waiting@example.org", NULL, NULL);
    env_set_status(&e, 1, status);
    struct spool_new *sn = spool_new(q);
    assert_non_null(sn);
    assert_int_equal(spool_new_write(sn, "Subject: t\n\nbody\n", 17), 0);
    assert_int_equal(spool_commit(sn, &e), 0);
    str_copy(qid, e.qid, QID_MAX);
    env_free(&e);
}

static void test_empty(void **st)
{
    struct fx *f = *st;
    int rc;
    char *t = run_mailq(&f->c, &rc);
    assert_int_equal(rc, 0);
    assert_string_equal(t, "Mail queue is empty\n");
    free(t);
}

static void test_entries_and_lock_marker(void **st)
{
    struct fx *f = *st;
    char q1[QID_MAX], q2[QID_MAX];
    enqueue(f->c.queuedir, "alice@example.com", "4.2.1 mailbox busy\r\nfake line", q1);
    enqueue(f->c.queuedir, "", NULL, q2);
    /* a runner (another process: our own peek would drop our own lock) holds q2 */
    int go[2], done[2];
    assert_int_equal(pipe(go), 0);
    assert_int_equal(pipe(done), 0);
    pid_t p = fork();
    assert_true(p >= 0);
    if (p == 0) {
        struct qmsg *m;
        char c = spool_open(f->c.queuedir, q2, &m) == 0 ? 'y' : 'n';
        ssize_t w = write(go[1], &c, 1);
        (void)w;
        w = read(done[0], &c, 1); /* hold the lock until the parent is done */
        _exit(0);
    }
    char c;
    assert_int_equal(read(go[0], &c, 1), 1);
    assert_int_equal(c, 'y');
    int rc;
    char *t = run_mailq(&f->c, &rc);
    assert_int_equal(write(done[1], "x", 1), 1);
    waitpid(p, NULL, 0);
    assert_int_equal(rc, 0);
    char *l1 = xasprintf("%s ", q1), *l2 = xasprintf("%s*", q2);
    char *a = strstr(t, l1), *b = strstr(t, l2);
    assert_non_null(a);
    assert_non_null(b);
    assert_true(a < b); /* oldest first */
    assert_non_null(strstr(a, "alice@example.com\n"));
    assert_non_null(strstr(b, "<>\n"));
    assert_null(strstr(t, "done@example.org"));       /* only pending recipients */
    assert_non_null(strstr(t, "        waiting@example.org  (4.2.1 mailbox busy\\x0D\\x0Afake line)\n"));
    assert_non_null(strstr(t, "\n-- 1 Kbytes in 2 requests.\n"));
    assert_int_equal(strncmp(t, "-Queue ID-           --Size--  ------Arrival Time------  "
                                "-Sender/Recipient-------\n", 80), 0);
    assert_non_null(strstr(t, "alice@example.com\n        (0 attempts; next attempt at the "
                              "next queue run)\n        waiting@"));
    assert_non_null(strstr(t, "      17  ")); /* data size */
    free(l1);
    free(l2);
    free(t);
}

static int child_mailq(const struct config *c)
{
    struct passwd *pw = getpwnam("nobody");
    if (geteuid() == 0 && (!pw || setgid(pw->pw_gid) < 0 || setuid(pw->pw_uid) < 0))
        return 90;
    FILE *out = fopen("/dev/null", "w");
    int rc = mailq_print(c, out, NOW, 0);
    fclose(out);
    return rc;
}

static void put_file(const char *dir, const char *name, const char *text)
{
    char *p = xasprintf("%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    free(p);
}

/* Set-aside files and the original postoffice's messages are listed and
 * counted; listing them changes nothing. */
static void test_aside_and_original(void **st)
{
    struct fx *f = *st;
    const char *q = f->c.queuedir;
    put_file(q, "xf1xUubn3sV0062T3FLW", "torn");
    put_file(q, "xf1xUubn3sV0062T3FLW.1", "torn again");
    put_file(q, "cmAb12Cd", "S\nFold@example.com\nTfar@example.net|example.net\n"
                          "!H ;has headers\n++ ;additional headers\nReceived: x\n");
    put_file(q, "dmAb12Cd", "Subject: old\n\nbody\n");
    put_file(q, "cmBroken", "S\nFx@example.com\n"); /* no recipient */
    int rc;
    char *t = run_mailq(&f->c, &rc);
    assert_int_equal(rc, 0);
    assert_non_null(strstr(t, "Ab12Cd"));
    assert_non_null(strstr(t, "old@example.com\n"
                              "        (original postoffice format, converted at next run)\n"
                              "        (0 attempts; next attempt at the next queue run)\n"
                              "        far@example.net\n"));
    assert_non_null(strstr(t, "Broken"));
    assert_non_null(strstr(t, "no recipient"));
    assert_non_null(strstr(t, "set aside: corrupt queue file xf1xUubn3sV0062T3FLW, see "
                              "postoffice-queue(5)\n"));
    assert_non_null(strstr(t, "set aside: corrupt queue file xf1xUubn3sV0062T3FLW.1, see"));
    assert_non_null(strstr(t, "-- 1 Kbytes in 2 requests, 2 set aside.\n"));
    free(t);
    t = run_mailq_flags(&f->c, &rc, MAILQ_SHAPE); /* every request in TOTAL */
    assert_non_null(strstr(t, "\n       TOTAL 2 "));
    assert_non_null(strstr(t, "\n(unreadable) 1 1 "));
    assert_non_null(strstr(t, "\n example.net 1 "));
    free(t);
    char *cm = xasprintf("%s/cmAb12Cd", q);
    assert_int_equal(access(cm, F_OK), 0); /* not converted by mailq */
    free(cm);
}

/* Commit e (its qid is set) with a body of n bytes. */
static void commit(const char *q, struct envelope *e, size_t n)
{
    struct spool_new *sn = spool_new(q);
    assert_non_null(sn);
    char *body = xcalloc(1, n + 1);
    memset(body, 'x', n);
    assert_int_equal(spool_new_write(sn, body, n), 0);
    free(body);
    assert_int_equal(spool_commit(sn, e), 0);
}

static char *asct(time_t t)
{
    struct buf b;
    buf_init(&b);
    assert_int_equal(date_asctime(t, &b), 0);
    return b.s;
}

/* Attempts and the next one, the held mark, a message whose next try is
 * due: each line exactly, against a fixed now. */
static void test_attempts_and_held(void **st)
{
    struct fx *f = *st;
    struct envelope e;
    env_init(&e);
    free(e.sender);
    e.sender = xstrdup("bob@example.com");
    e.ctime = NOW - 1800;
    e.attempts = 3;
    e.next_try = NOW + 900;
    env_add_rcpt(&e, "Carol@Example.NET", NULL, NULL);
    env_set_status(&e, 0, "4.4.1 connection refused");
    commit(f->c.queuedir, &e, 3000);
    char q1[QID_MAX];
    str_copy(q1, e.qid, QID_MAX);
    env_free(&e);

    env_init(&e);
    e.ctime = NOW - 60;
    e.attempts = 1;
    e.next_try = NOW - 5; /* due */
    e.flags |= ENV_QUARANTINE;
    e.quarantine = xstrdup("held by root");
    env_add_rcpt(&e, "dave@example.org", NULL, NULL);
    commit(f->c.queuedir, &e, 10);
    char q2[QID_MAX];
    str_copy(q2, e.qid, QID_MAX);
    env_free(&e);

    int rc;
    char *t = run_mailq(&f->c, &rc);
    assert_int_equal(rc, 0);
    char *c1 = asct(NOW - 1800), *n1 = asct(NOW + 900), *c2 = asct(NOW - 60);
    char *want1 = xasprintf("%-18s       3000  %s  bob@example.com\n"
                            "        (3 attempts; next attempt %s)\n"
                            "        Carol@Example.NET  (4.4.1 connection refused)\n",
                            q1, c1, n1);
    char *want2 = xasprintf("%-18s!        10  %s  <>\n"
                            "        (held by root; release with postoffice -Mt %s)\n"
                            "        (1 attempt; none while held)\n"
                            "        dave@example.org\n", q2, c2, q2);
    assert_non_null(strstr(t, want1));
    assert_non_null(strstr(t, want2));
    assert_non_null(strstr(t, "\n-- 3 Kbytes in 2 requests.\n")); /* 3010 bytes, rounded up */
    free(want1);
    free(want2);
    free(c1);
    free(n1);
    free(c2);
    free(t);
}

/* A committed submission in the maildrop is listed (owner, file size),
 * one still being written (tf) is not; its content is never read. */
static void test_maildrop(void **st)
{
    struct fx *f = *st;
    char *drop = xasprintf("%s/maildrop", f->c.queuedir);
    put_file(drop, "qf1xUubn3sV0062T3FLW", "not even a queue file, 33 bytes\n\n");
    put_file(drop, "tf1xUubn3sV0062T3FLX", "being written");
    char *p = xasprintf("%s/qf1xUubn3sV0062T3FLW", drop);
    struct stat sb;
    assert_int_equal(stat(p, &sb), 0);
    free(p);
    free(drop);
    int rc;
    char *t = run_mailq_flags(&f->c, &rc, MAILQ_SHAPE);
    assert_int_equal(rc, 0);
    struct passwd *pw = getpwuid(getuid());
    assert_non_null(pw);
    char *c1 = asct(sb.st_mtime);
    char *want = xasprintf("1xUubn3sV0062T3FLW         33  %s  %s\n"
                           "        (waiting for pickup from the maildrop)\n"
                           "-- 1 Kbytes in 1 request.\n", c1, pw->pw_name);
    assert_non_null(strstr(t, want));
    assert_null(strstr(t, "3FLX"));
    assert_non_null(strstr(t, "(maildrop)"));
    free(want);
    free(c1);
    free(t);
}

/* mailq -v: messages by domain and age, each message once per domain. */
static void test_shape(void **st)
{
    struct fx *f = *st;
    static const long ages[] = {60, 7 * 60, 30 * 60, 2000 * 60};
    for (size_t k = 0; k < 4; k++) {
        struct envelope e;
        env_init(&e);
        e.ctime = NOW - ages[k];
        env_add_rcpt(&e, "a@example.org", NULL, NULL);
        if (k == 0)
            env_add_rcpt(&e, "b@EXAMPLE.org", NULL, NULL); /* same domain: once */
        if (k == 1 || k == 3)
            env_add_rcpt(&e, "root", NULL, NULL);
        if (k == 3) {
            env_add_rcpt(&e, "z@example.net", NULL, NULL);
            e.rcpts[2].state = RS_DONE; /* delivered: not waiting */
        }
        commit(f->c.queuedir, &e, 10);
        env_free(&e);
    }
    int rc;
    char *t = run_mailq_flags(&f->c, &rc, MAILQ_SHAPE);
    assert_int_equal(rc, 0);
    const char *want =
        "-- 1 Kbytes in 4 requests.\n"
        "\n"
        "            T 5 10 20 40 80 160 320 640 1280 1280+\n"
        "      TOTAL 4 1  1  0  1  0   0   0   0    0     1\n"
        "example.org 4 1  1  0  1  0   0   0   0    0     1\n"
        "    (local) 2 0  1  0  0  0   0   0   0    0     1\n";
    if (!strstr(t, want))
        fprintf(stderr, "%s", t);
    assert_non_null(strstr(t, want));
    assert_null(strstr(t, "example.net"));
    free(t);
}

static void test_buckets(void **st)
{
    (void)st;
    assert_int_equal(shape_bucket(NOW, NOW + 100), 0); /* clock skew: new */
    assert_int_equal(shape_bucket(NOW, NOW - 299), 0);
    assert_int_equal(shape_bucket(NOW, NOW - 300), 1);
    assert_int_equal(shape_bucket(NOW, NOW - 1279 * 60), 8);
    assert_int_equal(shape_bucket(NOW, NOW - 1280 * 60), 9);
    assert_int_equal(shape_bucket(NOW, 0), 9);
}

static void test_no_permission(void **st)
{
    struct fx *f = *st;
    if (geteuid() == 0 && !getpwnam("nobody"))
        skip(); /* root reads everything: the check runs as "nobody" */
    if (geteuid() != 0)
        chmod(f->c.queuedir, 0300);
    pid_t p = fork();
    assert_true(p >= 0);
    if (p == 0)
        _exit(child_mailq(&f->c));
    int status;
    waitpid(p, &status, 0);
    chmod(f->c.queuedir, 0711);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), EX_NOPERM);
}

int main(void)
{
#define T(t) cmocka_unit_test_setup_teardown(t, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_empty),
        T(test_entries_and_lock_marker),
        T(test_aside_and_original),
        T(test_attempts_and_held),
        T(test_maildrop),
        T(test_shape),
        cmocka_unit_test(test_buckets),
        T(test_no_permission),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
