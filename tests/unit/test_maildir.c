/* test_maildir.c - the maildir writer (maildir.h): unique names and their
 * escapes, subaddress folder names, delivery into new/ through tmp/, the
 * refusals (root, a symlinked maildir), the Maildir++ maildirsize count (made
 * by a scan, appended to, recounted) and the limit at its boundary; where
 * mailbox= puts mail (mailbox_place.h); and the limits files
 * (mailbox_limits.h).  The writer never runs as root: when the
 * tests do, each writer call runs in a child that became "nobody". */
#include "compat.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "conf.h"
#include "mailbox_limits.h"
#include "mailbox_place.h"
#include "maildir.h"
#include "data_fixture.h"
#include "util.h"

/* ---- names ---- */

static void test_name(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b);
    maildir_name(&b, 1700000000, 123456, 4242, 7, "mx.example", 1234);
    assert_string_equal(b.s, "1700000000.M123456P4242Q7.mx.example,S=1234");
    buf_reset(&b);
    maildir_name(&b, 1, 0, 2, 0, "a/b:c", -1);
    assert_string_equal(b.s, "1.M0P2Q0.a\\057b\\072c");
    buf_reset(&b);
    maildir_name(&b, 1, 0, 2, 3, "", 0);
    assert_string_equal(b.s, "1.M0P2Q3.localhost,S=0");
    buf_free(&b);
}

static void check_folder(const char *rcpt, const char *delim, const char *want)
{
    char *f = maildir_folder_of(rcpt, delim);
    if (want == NULL) {
        assert_null(f);
    } else {
        assert_non_null(f);
        assert_string_equal(f, want);
    }
    free(f);
}

static void test_folder_of(void **state)
{
    (void)state;
    check_folder("bob+work@example.org", "+", ".work");
    check_folder("bob+work", "+", ".work");
    check_folder("bob+a+b@example.org", "+", ".a+b");
    check_folder("bob-list@example.org", "-", ".list");
    check_folder("bob@example.org", "+", NULL);
    check_folder("bob+@example.org", "+", NULL);         /* empty tag */
    check_folder("bob+.hidden@example.org", "+", NULL);  /* leading dot */
    check_folder("bob+../x@example.org", "+", NULL);
    check_folder("bob+a/b@example.org", "+", NULL);      /* a slash */
    check_folder("bob+a\tb@example.org", "+", NULL);     /* a control byte */
    check_folder("bob+work@example.org", "", NULL);      /* no delimiter */
    check_folder("bob+work@example.org", NULL, NULL);
    char *longtag = xmalloc(300);
    memcpy(longtag, "bob+", 4);
    memset(longtag + 4, 'x', 250);
    memcpy(longtag + 254, "@e.org", 7);
    check_folder(longtag, "+", NULL);
    free(longtag);
}

/* ---- the writer ---- */

struct fx {
    char dir[64];
    char *md;
    int datafd;
    uid_t uid;
    gid_t gid;
};

static int data_file(const char *text)
{
    return fixture_data_file(text, strlen(text));
}

static int setup(void **state)
{
    struct fx *f = xcalloc(1, sizeof *f);
    str_copy(f->dir, "/tmp/po-md-XXXXXX", sizeof f->dir);
    if (mkdtemp(f->dir) == NULL)
        return -1;
    f->uid = geteuid();
    f->gid = getegid();
    if (f->uid == 0) { /* the writer's identity: nobody */
        struct passwd *pw = getpwnam("nobody");
        if (pw == NULL)
            return -1;
        f->uid = pw->pw_uid;
        f->gid = pw->pw_gid;
        if (chown(f->dir, f->uid, f->gid) < 0)
            return -1;
    }
    chmod(f->dir, 0755);
    f->md = xasprintf("%s/Maildir/", f->dir);
    f->datafd = data_file("Subject: one\n\nFrom the start\nline two\n");
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    char *cmd = xasprintf("rm -rf '%s'", f->dir);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", f->dir);
    free(cmd);
    free(f->md);
    close(f->datafd);
    free(f);
    return 0;
}

/* Run maildir_write as the fixture's uid (a child when we are root); each
 * message's result and status come back through a pipe. */
static void write_as(struct fx *f, const struct maildir_req *r, struct mbox_msg *m, size_t n)
{
    int p[2];
    assert_int_equal(pipe(p), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(p[0]);
        if (geteuid() == 0 && (setgroups(0, NULL) < 0 || setgid(f->gid) < 0 ||
                               setuid(f->uid) < 0))
            _exit(3);
        maildir_write(r, m, n);
        for (size_t k = 0; k < n; k++) {
            char *line = xasprintf("%d %s\n", (int)m[k].res, m[k].status);
            (void)write_all(p[1], line, strlen(line));
            free(line);
        }
        _exit(0);
    }
    close(p[1]);
    FILE *in = fdopen(p[0], "r");
    char *line = NULL;
    size_t cap = 0;
    for (size_t k = 0; k < n; k++) {
        assert_true(getline(&line, &cap, in) > 0);
        line[strcspn(line, "\n")] = '\0';
        m[k].res = (enum deliv_result)atoi(line);
        m[k].status = xstrdup(strchr(line, ' ') + 1);
    }
    free(line);
    fclose(in);
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

static int count_dir(const char *path)
{
    char *cmd = xasprintf("ls -A '%s' | wc -l", path);
    FILE *p = popen(cmd, "r");
    int n = -1;
    assert_non_null(p);
    assert_int_equal(fscanf(p, "%d", &n), 1);
    pclose(p);
    free(cmd);
    return n;
}

static char *only_file(const char *dir)
{
    char *cmd = xasprintf("ls '%s'", dir);
    FILE *p = popen(cmd, "r");
    char *line = NULL;
    size_t cap = 0;
    assert_true(getline(&line, &cap, p) > 0);
    line[strcspn(line, "\n")] = '\0';
    pclose(p);
    free(cmd);
    return line;
}

static char *slurp(const char *path)
{
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    struct buf b;
    buf_init(&b);
    char tmp[4096];
    ssize_t n;
    while ((n = read(fd, tmp, sizeof tmp)) > 0)
        buf_add(&b, tmp, (size_t)n);
    close(fd);
    return buf_steal(&b);
}

static void free_msgs(struct mbox_msg *m, size_t n)
{
    for (size_t k = 0; k < n; k++)
        free(m[k].status);
}

static void test_write(void **state)
{
    struct fx *f = *state;
    struct maildir_req r = {.path = f->md};
    struct mbox_msg m[2] = {
        {.sender = "alice@example.org", .rcpt = "bob@example.org", .data = fixture_md(f->datafd)},
        {.sender = "", .rcpt = "bob@example.org", .data = fixture_md(f->datafd)},
    };
    write_as(f, &r, m, 2);
    assert_int_equal(m[0].res, DELIV_OK);
    assert_int_equal(m[1].res, DELIV_OK);
    assert_non_null(strstr(m[0].status, "2.0.0 delivered to maildir"));
    char *sub = xasprintf("%s/Maildir/new", f->dir);
    assert_int_equal(count_dir(sub), 2);
    char *tmp = xasprintf("%s/Maildir/tmp", f->dir);
    assert_int_equal(count_dir(tmp), 0);
    const char *dirs[] = {"", "/tmp", "/new", "/cur"};
    for (size_t i = 0; i < 4; i++) {
        char *d = xasprintf("%s/Maildir%s", f->dir, dirs[i]);
        struct stat st;
        assert_int_equal(lstat(d, &st), 0);
        assert_true(S_ISDIR(st.st_mode));
        assert_int_equal(st.st_mode & 07777, 0700);
        assert_int_equal(st.st_uid, f->uid);
        free(d);
    }
    /* no maildirsize without a limit */
    char *ms = xasprintf("%s/Maildir/maildirsize", f->dir);
    assert_int_equal(access(ms, F_OK), -1);
    free(ms);
    free(sub);
    free(tmp);
    free_msgs(m, 2);
}

static void test_content(void **state)
{
    struct fx *f = *state;
    struct maildir_req r = {.path = f->md};
    struct mbox_msg m = {.sender = "alice@example.org", .rcpt = "bob\n@example.org",
                         .data = fixture_md(f->datafd)};
    write_as(f, &r, &m, 1);
    assert_int_equal(m.res, DELIV_OK);
    char *dir = xasprintf("%s/Maildir/new", f->dir);
    char *name = only_file(dir);
    char *path = xasprintf("%s/%s", dir, name);
    char *text = slurp(path);
    assert_string_equal(text, "Return-Path: <alice@example.org>\nDelivered-To: bob?@example.org\n"
                              "Subject: one\n\nFrom the start\nline two\n");
    const char *s = strstr(name, ",S=");
    assert_non_null(s);
    assert_int_equal(atoll(s + 3), (long long)strlen(text));
    free(text);
    free(path);
    free(name);
    free(dir);
    free(m.status);
}

static void test_refusals(void **state)
{
    struct fx *f = *state;
    struct mbox_msg m = {.sender = "a@b", .rcpt = "c@d", .data = fixture_md(f->datafd)};
    if (geteuid() == 0) { /* never as root */
        struct maildir_req r = {.path = f->md};
        maildir_write(&r, &m, 1);
        assert_int_equal(m.res, DELIV_DEFER);
        assert_non_null(strstr(m.status, "as root"));
        free(m.status);
    }
    /* a symlinked maildir: refused, nothing written through it */
    char *real = xasprintf("%s/real", f->dir);
    char *link = xasprintf("%s/link", f->dir);
    assert_int_equal(mkdir(real, 0700), 0);
    if (geteuid() == 0)
        assert_int_equal(chown(real, f->uid, f->gid), 0);
    assert_int_equal(symlink(real, link), 0);
    char *path = xasprintf("%s/", link);
    struct maildir_req r = {.path = path};
    write_as(f, &r, &m, 1);
    assert_int_equal(m.res, DELIV_DEFER);
    assert_non_null(strstr(m.status, "4.2.0"));
    assert_non_null(strstr(m.status, "symbolic link"));
    assert_int_equal(count_dir(real), 0);
    free(m.status);
    /* a tmp/ that is a symlink: refused too */
    char *md = xasprintf("%s/md2", f->dir);
    char *mdtmp = xasprintf("%s/md2/tmp", f->dir);
    assert_int_equal(mkdir(md, 0700), 0);
    assert_int_equal(symlink(real, mdtmp), 0);
    if (geteuid() == 0)
        assert_int_equal(lchown(mdtmp, f->uid, f->gid) | chown(md, f->uid, f->gid), 0);
    r.path = md;
    write_as(f, &r, &m, 1);
    assert_int_equal(m.res, DELIV_DEFER);
    assert_non_null(strstr(m.status, "tmp is a symbolic link"));
    assert_int_equal(count_dir(real), 0);
    free(m.status);
    free(md);
    free(mdtmp);
    free(real);
    free(link);
    free(path);
}

/* Over the limit at the exact boundary, and recounting. */
static void test_limit(void **state)
{
    struct fx *f = *state;
    struct maildir_req r = {.path = f->md};
    struct mbox_msg m = {.sender = "a@example.org", .rcpt = "b@example.org",
                         .data = fixture_md(f->datafd)};
    write_as(f, &r, &m, 1); /* no limit: the size of one */
    assert_int_equal(m.res, DELIV_OK);
    free(m.status);
    char *dir = xasprintf("%s/Maildir/new", f->dir);
    char *name = only_file(dir);
    long long one = atoll(strstr(name, ",S=") + 3);
    /* limit 2*one: made by a scan (one message), then exactly full */
    r.limit = 2 * one;
    write_as(f, &r, &m, 1);
    assert_int_equal(m.res, DELIV_OK);
    free(m.status);
    char *ms = xasprintf("%s/Maildir/maildirsize", f->dir);
    char *text = slurp(ms);
    char *want = xasprintf("%lldS\n%lld 1\n%lld 1\n", 2 * one, one, one);
    assert_string_equal(text, want);
    free(text);
    free(want);
    /* one more byte than room: 4.2.2, or 5.2.2 with limit_bounce; tmp/ clean */
    r.limit = 3 * one - 1;
    write_as(f, &r, &m, 1);
    assert_int_equal(m.res, DELIV_DEFER);
    assert_non_null(strstr(m.status, "4.2.2"));
    assert_non_null(strstr(m.status, "full"));
    free(m.status);
    r.limit_bounce = 1;
    write_as(f, &r, &m, 1);
    assert_int_equal(m.res, DELIV_FAIL);
    assert_non_null(strstr(m.status, "5.2.2"));
    free(m.status);
    char *tmp = xasprintf("%s/Maildir/tmp", f->dir);
    assert_int_equal(count_dir(tmp), 0);
    assert_int_equal(count_dir(dir), 2);
    /* the limit changed: the count was made again for it */
    text = slurp(ms);
    want = xasprintf("%lldS\n%lld 2\n", 3 * one - 1, 2 * one);
    assert_string_equal(text, want);
    free(text);
    free(want);
    /* a batch: the first fits, the second no longer: each its own result */
    r.limit = 3 * one;
    r.limit_bounce = 0;
    struct mbox_msg b[2] = {m, m};
    write_as(f, &r, b, 2);
    assert_int_equal(b[0].res, DELIV_OK);
    assert_int_equal(b[1].res, DELIV_DEFER);
    free_msgs(b, 2);
    assert_int_equal(count_dir(dir), 3);
    free(tmp);
    free(ms);
    free(name);
    free(dir);
}

/* A stale, garbled or oversized maildirsize is recounted from the names;
 * folders count. */
static void test_maildirsize(void **state)
{
    struct fx *f = *state;
    struct maildir_req r = {.path = f->md, .delim = "+"};
    struct mbox_msg m[2] = {
        {.sender = "a@e", .rcpt = "b+x@e", .data = fixture_md(f->datafd)},
        {.sender = "a@e", .rcpt = "b@e", .data = fixture_md(f->datafd)},
    };
    write_as(f, &r, m, 2);
    assert_int_equal(m[0].res, DELIV_OK);
    assert_int_equal(m[1].res, DELIV_OK);
    assert_non_null(strstr(m[0].status, "/.x/"));
    free_msgs(m, 2);
    char *folder = xasprintf("%s/Maildir/.x/new", f->dir);
    assert_int_equal(count_dir(folder), 1);
    char *marker = xasprintf("%s/Maildir/.x/maildirfolder", f->dir);
    assert_int_equal(access(marker, F_OK), 0);
    char *ms = xasprintf("%s/Maildir/maildirsize", f->dir);
    char *name = only_file(folder);
    long long tagged = atoll(strstr(name, ",S=") + 3);
    char *inbox = xasprintf("%s/Maildir/new", f->dir);
    char *name2 = only_file(inbox);
    long long one = atoll(strstr(name2, ",S=") + 3);
    free(name2);
    free(inbox);
    /* garbage: recounted (both messages, the folder's too) */
    FILE *out = fopen(ms, "w");
    fputs("junk\nnot a count\n", out);
    fclose(out);
    if (geteuid() == 0)
        assert_int_equal(chown(ms, f->uid, f->gid), 0);
    r.limit = 1000000;
    m[0].rcpt = "b@e";
    write_as(f, &r, m, 1);
    assert_int_equal(m[0].res, DELIV_OK);
    free(m[0].status);
    char *text = slurp(ms);
    char *want = xasprintf("1000000S\n%lld 2\n%lld 1\n", tagged + one, one);
    assert_string_equal(text, want);
    free(text);
    free(want);
    free(name);
    free(ms);
    free(marker);
    free(folder);
}

/* ---- limits files ---- */

static char *limits_file(const char *text, mode_t mode)
{
    char path[] = "/tmp/po-limits-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write_all(fd, text, strlen(text)), 0);
    close(fd);
    chmod(path, mode);
    return xstrdup(path);
}

static void test_limits_file(void **state)
{
    (void)state;
    char *p = limits_file("# comment\n\n  alice 200m\nBob@Mx.Example\t1g # bob\n"
                          "carol 0\nalice 5\n", 0644);
    long long v = -1;
    char *why = NULL;
    assert_int_equal(mlimit_lookup_file(p, "alice", NULL, 0, &v, &why), 1);
    assert_int_equal(v, 200000000LL);
    assert_int_equal(mlimit_lookup_file(p, "ALICE", "x", 0, &v, &why), 1);
    assert_int_equal(v, 200000000LL);
    assert_int_equal(mlimit_lookup_file(p, "bob", "mx.example", 0, &v, &why), 1);
    assert_int_equal(v, 1000000000LL);
    assert_int_equal(mlimit_lookup_file(p, "bob", "other.example", 0, &v, &why), 0);
    assert_int_equal(mlimit_lookup_file(p, "bob", NULL, 0, &v, &why), 0);
    assert_int_equal(mlimit_lookup_file(p, "carol", NULL, 0, &v, &why), 1);
    assert_int_equal(v, 0);
    assert_int_equal(mlimit_lookup_file(p, "dave", NULL, 0, &v, &why), 0);
    unlink(p);
    free(p);
    /* errors: a bad size (the line named), no size, anyone may write */
    p = limits_file("alice 1m\nbob lots\n", 0644);
    assert_int_equal(mlimit_lookup_file(p, "carol", NULL, 0, &v, &why), -1);
    assert_non_null(strstr(why, "line 2"));
    free(why);
    unlink(p);
    free(p);
    p = limits_file("alice\n", 0644);
    assert_int_equal(mlimit_lookup_file(p, "carol", NULL, 0, &v, &why), -1);
    assert_non_null(strstr(why, "no size"));
    free(why);
    unlink(p);
    free(p);
    p = limits_file("alice 1m\n", 0666);
    assert_int_equal(mlimit_lookup_file(p, "alice", NULL, 0, &v, &why), -1);
    assert_non_null(strstr(why, "only its owner"));
    free(why);
    unlink(p);
    /* missing: an error unless missing_ok */
    assert_int_equal(mlimit_lookup_file(p, "alice", NULL, 1, &v, &why), 0);
    assert_int_equal(mlimit_lookup_file(p, "alice", NULL, 0, &v, &why), -1);
    free(why);
    free(p);
}

static void test_limits_order(void **state)
{
    (void)state;
    char vdir[] = "/tmp/po-vhost-XXXXXX";
    assert_non_null(mkdtemp(vdir));
    char *ddir = xasprintf("%s/one.example", vdir);
    assert_int_equal(mkdir(ddir, 0755), 0);
    char *dfile = xasprintf("%s/limits", ddir);
    FILE *out = fopen(dfile, "w");
    fputs("joe 5k\n", out);
    fclose(out);
    char *sys = limits_file("alice 1m\njoe@one.example 7k\nann@one.example 9k\n"
                            "ann 3k\nalice@mx.example 2m\n", 0644);
    struct config c;
    memset(&c, 0, sizeof c);
    c.hostname = "mx.example";
    c.vpath = vdir;
    c.mailbox_limits = sys;
    c.mailbox_limit = 100;
    char *why = NULL;
    assert_int_equal(mlimit_local(&c, "alice", &why), 1000000LL);
    assert_int_equal(mlimit_local(&c, "nobody", &why), 100);
    assert_int_equal(mlimit_virtual(&c, "joe", "one.example", &why), 5000);  /* domain's */
    assert_int_equal(mlimit_virtual(&c, "ann", "one.example", &why), 9000);  /* user@domain */
    assert_int_equal(mlimit_virtual(&c, "alice", "one.example", &why), 100); /* not "alice" */
    assert_int_equal(mlimit_virtual(&c, "x", "two.example", &why), 100);     /* no file */
    c.mailbox_limits = NULL;
    assert_int_equal(mlimit_local(&c, "alice", &why), 100);
    unlink(sys);
    unlink(dfile);
    rmdir(ddir);
    rmdir(vdir);
    free(sys);
    free(dfile);
    free(ddir);
}

/* Where mailbox= puts an account's mail, and whether root may open there. */
static void test_place(void **state)
{
    struct fx *f = *state;
    struct config c;
    memset(&c, 0, sizeof c);
    c.mailspool = "/var/mail";
    c.hostname = "mx.example";
    struct ident id = {.uid = f->uid, .gid = f->gid, .name = "bob", .home = f->dir};
    struct mbplace p;
    char *why = NULL;
    /* unset: the spool, as before */
    assert_int_equal(mbplace_find(&c, &id, &p, &why), DELIV_OK);
    assert_int_equal(p.kind, MB_SPOOL);
    assert_string_equal(p.path, "/var/mail/bob");
    assert_true(p.root_owned);
    mbplace_free(&p);
    /* a maildir in the home directory (not root's when we are root) */
    c.mailbox = "~/Maildir/";
    assert_int_equal(mbplace_find(&c, &id, &p, &why), DELIV_OK);
    assert_int_equal(p.kind, MB_MAILDIR);
    char *want = xasprintf("%s/Maildir", f->dir);
    assert_string_equal(p.path, want);
    assert_false(p.root_owned); /* the home is the user's */
    free(want);
    mbplace_free(&p);
    /* an mbox template under a symlink to a root-owned directory: resolved */
    if (geteuid() == 0) {
        char *link = xasprintf("%s/etc-link", f->dir);
        assert_int_equal(symlink("/tmp", link), 0);
        char *tmpl = xasprintf("%s/etc-link/%%u.%%d", f->dir);
        c.mailbox = tmpl;
        assert_int_equal(mbplace_find(&c, &id, &p, &why), DELIV_OK);
        assert_int_equal(p.kind, MB_MBOX);
        assert_string_equal(p.path, "/tmp/bob.mx.example");
        assert_string_equal(p.dir, "/tmp");
        assert_true(p.root_owned);
        mbplace_free(&p);
        free(tmpl);
        free(link);
        char *real = NULL;
        assert_int_equal(mbplace_root_chain(f->dir, &real), 0); /* nobody's */
        assert_null(real);
        assert_int_equal(mbplace_root_chain("/tmp", &real), 1);
        assert_string_equal(real, "/tmp");
        free(real);
    }
    /* no home: a deferral naming the template */
    id.home = NULL;
    c.mailbox = "~/Maildir/";
    assert_int_equal(mbplace_find(&c, &id, &p, &why), DELIV_DEFER);
    assert_non_null(strstr(why, "4.3.0 mailbox=~/Maildir/"));
    free(why);
    mbplace_free(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_name),
        cmocka_unit_test(test_folder_of),
        cmocka_unit_test_setup_teardown(test_write, setup, teardown),
        cmocka_unit_test_setup_teardown(test_content, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_maildirsize, setup, teardown),
        cmocka_unit_test_setup_teardown(test_place, setup, teardown),
        cmocka_unit_test(test_limits_file),
        cmocka_unit_test(test_limits_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
