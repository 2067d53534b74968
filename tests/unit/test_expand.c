/* test_expand.c - recipient expansion: aliases, accounts, loops, duplicates,
 * :include:, .forward (as root, with a throw-away account), local domains. */
#include "compat.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <pwd.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "aliases.h"
#include "conf.h"
#include "expand.h"
#include "log.h"
#include "route.h"
#include "util.h"

struct fx {
    char *dir;         /* private temp dir, mode 0755 */
    char *user;        /* account mail goes to: a test account (root) or us */
    uid_t uid;
    gid_t gid;
    char *home;        /* the test account's home (root only) */
    int own_account;   /* we created user and must delete it */
    int has_forward;   /* not root and our real ~/.forward exists */
    struct config c;
};

/* ---- fixture ---- */

static int run(const char *cmd)
{
    int rc = system(cmd);
    return rc == 0 ? 0 : -1;
}

static int create_account(struct fx *f)
{
    f->user = xasprintf("potest%ld", (long)getpid() % 1000000);
    f->home = xasprintf("%s/home", f->dir);
    char *cmd = xasprintf("useradd -M -U -d '%s' -s /usr/sbin/nologin %s", f->home, f->user);
    int rc = run(cmd);
    free(cmd);
    if (rc < 0)
        return -1;
    f->own_account = 1;
    struct passwd *pw = getpwnam(f->user);
    if (!pw)
        return -1;
    f->uid = pw->pw_uid;
    f->gid = pw->pw_gid;
    if (mkdir(f->home, 0700) < 0 || chown(f->home, f->uid, f->gid) < 0)
        return -1;
    return 0;
}

static int setup(void **state)
{
    struct fx *f = xcalloc(1, sizeof *f);
    log_open("test_expand", 0);
    f->dir = xstrdup("/tmp/po-expand-XXXXXX");
    if (!mkdtemp(f->dir) || chmod(f->dir, 0755) < 0)
        return -1;
    if (geteuid() == 0) {
        if (create_account(f) < 0) {
            fprintf(stderr, "cannot create a test account with useradd\n");
            return -1;
        }
    } else {
        struct passwd *pw = getpwuid(getuid());
        if (!pw)
            return -1;
        f->user = xstrdup(pw->pw_name);
        f->uid = pw->pw_uid;
        f->gid = pw->pw_gid;
        char *fwd = xasprintf("%s/.forward", pw->pw_dir);
        f->has_forward = access(fwd, F_OK) == 0;
        free(fwd);
    }
    config_defaults(&f->c);
    free(f->c.hostname);
    f->c.hostname = xstrdup("mx.test.example");
    sl_add(&f->c.self_names, "mx.test.example");
    sl_add(&f->c.self_names, "test.example");
    free(f->c.user);
    f->c.user = xstrdup(f->user); /* :include: files are read as this account */
    free(f->c.aliases);
    f->c.aliases = NULL;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    if (f->own_account) {
        char *cmd = xasprintf("userdel %s; groupdel %s 2>/dev/null", f->user, f->user);
        if (system(cmd) != 0) {
            /* groupdel fails when userdel already removed the group */
        }
        free(cmd);
    }
    char *cmd = xasprintf("rm -rf '%s'", f->dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", f->dir);
    free(cmd);
    config_free(&f->c);
    free(f->dir);
    free(f->user);
    free(f->home);
    free(f);
    return 0;
}

/* Replace every "USER" and "DIR" in text. */
static char *subst(const struct fx *f, const char *text)
{
    struct buf b;
    buf_init(&b);
    for (const char *p = text; *p;) {
        if (strncmp(p, "USER", 4) == 0) {
            buf_adds(&b, f->user);
            p += 4;
        } else if (strncmp(p, "DIR", 3) == 0) {
            buf_adds(&b, f->dir);
            p += 3;
        } else {
            buf_addc(&b, *p++);
        }
    }
    return b.s; /* not buf_steal: it allocates a fresh buffer */
}

static void write_file(const struct fx *f, const char *path, const char *text, mode_t mode)
{
    char *t = subst(f, text);
    unlink(path);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write_all(fd, t, strlen(t)), 0);
    assert_int_equal(fchmod(fd, mode), 0);
    close(fd);
    free(t);
}

/* Write DIR/name with text, build its database and point the config at it. */
static void use_aliases(struct fx *f, const char *name, const char *text)
{
    char *path = xasprintf("%s/%s", f->dir, name);
    write_file(f, path, text, 0644);
    long count, longest;
    char *err = NULL;
    assert_int_equal(aliases_build(path, &count, &longest, &err), 0);
    free(f->c.aliases);
    f->c.aliases = path;
}

static int expand(struct fx *f, const char *addr, struct targets *t, char **why)
{
    char *a = subst(f, addr);
    int rc = expand_address(&f->c, a, NULL, t, why);
    free(a);
    return rc;
}

/* Is there a target of this kind, dest and user (NULL = none)? */
static int has(const struct fx *f, const struct targets *t, enum target_kind kind,
               const char *dest, const char *user)
{
    char *d = subst(f, dest);
    char *u = user ? subst(f, user) : NULL;
    int found = 0;
    for (size_t i = 0; i < t->n; i++)
        if (t->v[i].kind == kind && strcmp(t->v[i].dest, d) == 0 &&
            ((!u && !t->v[i].user) || (u && t->v[i].user && strcmp(u, t->v[i].user) == 0)))
            found = 1;
    free(d);
    free(u);
    return found;
}

static void skip_if_forward(const struct fx *f)
{
    if (f->has_forward) {
        fprintf(stderr, "skipped: your own ~/.forward changes the results (run as root)\n");
        skip();
    }
}

/* ---- tests ---- */

static void test_alias_kinds(void **state)
{
    struct fx *f = *state;
    use_aliases(f, "kinds", "pipe: \"|/usr/bin/procmail -a x\"\n"
                            "file: /var/tmp/po-file-target\n"
                            "remote: Someone@Example.ORG\n"
                            "all: pipe, file, remote\n");
    struct targets t;
    char *why = NULL;
    targets_init(&t);
    assert_int_equal(expand(f, "all", &t, &why), 0);
    assert_null(why);
    assert_int_equal(t.n, 3);
    assert_true(has(f, &t, T_PIPE, "/usr/bin/procmail -a x", NULL));
    assert_true(has(f, &t, T_FILE, "/var/tmp/po-file-target", NULL));
    assert_true(has(f, &t, T_REMOTE, "Someone@example.org", NULL));
    targets_free(&t);
}

static void test_alias_to_user(void **state)
{
    struct fx *f = *state;
    skip_if_forward(f);
    use_aliases(f, "touser", "postmaster: USER\n");
    const char *forms[] = {"postmaster", "PostMaster", "postmaster@mx.test.example",
                           "postmaster@TEST.EXAMPLE.", "postmaster@localhost",
                           "postmaster@[127.0.0.1]", "USER", "USER@test.example"};
    for (size_t i = 0; i < sizeof forms / sizeof *forms; i++) {
        struct targets t;
        char *why = NULL;
        targets_init(&t);
        assert_int_equal(expand(f, forms[i], &t, &why), 0);
        assert_int_equal(t.n, 1);
        assert_true(has(f, &t, T_MBOX, "USER", "USER"));
        targets_free(&t);
    }
}

/* Before the first newaliases the text file itself is used. */
static void test_alias_without_db(void **state)
{
    struct fx *f = *state;
    char *path = xasprintf("%s/nodb", f->dir);
    write_file(f, path, "pipe: \"|/bin/cat\"\n", 0644);
    free(f->c.aliases);
    f->c.aliases = path;
    struct targets t;
    char *why = NULL;
    targets_init(&t);
    assert_int_equal(expand(f, "Pipe", &t, &why), 0);
    assert_int_equal(t.n, 1);
    assert_true(has(f, &t, T_PIPE, "/bin/cat", NULL));
    assert_int_equal(expand_local_exists(&f->c, "pipe"), 1);
    targets_free(&t);
}

static void test_user_case_insensitive(void **state)
{
    struct fx *f = *state;
    skip_if_forward(f);
    free(f->c.aliases);
    f->c.aliases = NULL;
    char *upper = xstrdup(f->user);
    for (char *p = upper; *p; p++)
        *p = (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
    struct targets t;
    char *why = NULL;
    targets_init(&t);
    assert_int_equal(expand_address(&f->c, upper, NULL, &t, &why), 0);
    assert_int_equal(t.n, 1);
    assert_true(has(f, &t, T_MBOX, "USER", "USER")); /* canonical name */
    targets_free(&t);
    free(upper);
}

static void test_unknown_user(void **state)
{
    struct fx *f = *state;
    use_aliases(f, "unknown", "x: y\n");
    struct targets t;
    char *why = NULL;
    targets_init(&t);
    assert_int_equal(expand(f, "nosuchuser-xyz", &t, &why), 1);
    assert_string_equal(why, "5.1.1 <nosuchuser-xyz>: no such user here");
    free(why);
    assert_int_equal(expand(f, "NoSuchUser-xyz@Test.Example", &t, &why), 1);
    assert_string_equal(why, "5.1.1 <NoSuchUser-xyz@Test.Example>: no such user here");
    free(why);
    /* an envelope address is never a program or a file */
    assert_int_equal(expand(f, "|/bin/sh@localhost", &t, &why), 1);
    free(why);
    assert_int_equal(expand(f, "/etc/passwd", &t, &why), 1);
    free(why);
    assert_int_equal(expand(f, ":include:/etc/passwd", &t, &why), 1);
    free(why);
    assert_int_equal(expand(f, "a b@localhost", &t, &why), 1);
    assert_non_null(strstr(why, "5.1.3"));
    free(why);
    /* control characters never reach the reply text */
    assert_int_equal(expand(f, "x\r\n250 ok@localhost", &t, &why), 1);
    assert_string_equal(why, "5.1.3 <x\\x0D\\x0A250 ok@localhost>: bad recipient address syntax");
    free(why);
    assert_int_equal(expand(f, "\"a b\"@localhost", &t, &why), 1);
    assert_string_equal(why, "5.1.1 <\"a b\"@localhost>: no such user here");
    free(why);
    assert_int_equal(t.n, 0);
    targets_free(&t);
}

static void test_remote_session(void **state)
{
    struct fx *f = *state;
    struct targets t;
    char *why = NULL;
    targets_init(&t);
    assert_int_equal(expand(f, "Joe@Elsewhere.Example", &t, &why), 0);
    assert_int_equal(expand(f, "joe@[203.0.113.55]", &t, &why), 0);
    assert_int_equal(expand(f, "joe@sub.test.example", &t, &why), 0);
    assert_int_equal(t.n, 3);
    assert_true(has(f, &t, T_REMOTE, "Joe@elsewhere.example", NULL));
    assert_true(has(f, &t, T_REMOTE, "joe@[203.0.113.55]", NULL));
    assert_true(has(f, &t, T_REMOTE, "joe@sub.test.example", NULL));
    /* a quoted local part with a space is a valid remote address */
    assert_int_equal(expand(f, "\"J Doe\"@far.example", &t, &why), 0);
    assert_true(has(f, &t, T_REMOTE, "\"J Doe\"@far.example", NULL));
    targets_free(&t);
}

static void test_loop(void **state)
{
    struct fx *f = *state;
    use_aliases(f, "loop", "loopa: loopb\n"
                           "loopb: loopa\n"
                           "l3: l4\nl4: l5\nl5: l3, far@remote.example\n");
    struct targets t;
    char *why = NULL;
    targets_init(&t);
    assert_int_equal(expand(f, "loopa", &t, &why), 1);
    assert_non_null(strstr(why, "5.4.6"));
    assert_non_null(strstr(why, "loopa -> loopb -> loopa"));
    free(why);
    why = NULL;
    /* a loop in one branch does not stop the others */
    assert_int_equal(expand(f, "l3", &t, &why), 0);
    assert_null(why);
    assert_int_equal(t.n, 1);
    assert_true(has(f, &t, T_REMOTE, "far@remote.example", NULL));
    targets_free(&t);
}

static void test_depth(void **state)
{
    struct fx *f = *state;
    struct buf text;
    buf_init(&text);
    for (int i = 0; i < 40; i++)
        buf_addf(&text, "d%d: d%d\n", i, i + 1);
    buf_adds(&text, "d40: far@remote.example\n");
    use_aliases(f, "deep", text.s);
    buf_free(&text);
    struct targets t;
    char *why = NULL;
    targets_init(&t);
    assert_int_equal(expand(f, "d20", &t, &why), 0); /* 21 levels: fine */
    assert_int_equal(t.n, 1);
    assert_int_equal(expand(f, "d0", &t, &why), 1); /* 41 levels: too deep */
    assert_non_null(strstr(why, "5.4.6"));
    free(why);
    targets_free(&t);
}

static void test_loop_to_account(void **state)
{
    struct fx *f = *state;
    skip_if_forward(f);
    /* "user: user, |prog": the looping name is an account: its mailbox */
    use_aliases(f, "loopacct", "USER: USER, \"|/bin/cat\"\n"
                               "a: b\nb: USER-alias\nUSER-alias: a\n");
    struct targets t;
    char *why = NULL;
    targets_init(&t);
    assert_int_equal(expand(f, "USER", &t, &why), 0);
    assert_int_equal(t.n, 2);
    assert_true(has(f, &t, T_MBOX, "USER", "USER"));
    assert_true(has(f, &t, T_PIPE, "/bin/cat", NULL));
    targets_free(&t);

    /* the owner argument: a .forward naming its own owner */
    use_aliases(f, "noalias", "x: y\n");
    targets_init(&t);
    char *u = subst(f, "USER");
    assert_int_equal(expand_address(&f->c, u, u, &t, &why), 0);
    assert_int_equal(t.n, 1);
    assert_true(has(f, &t, T_MBOX, "USER", "USER"));
    free(u);
    targets_free(&t);
}

static void test_duplicates(void **state)
{
    struct fx *f = *state;
    skip_if_forward(f);
    use_aliases(f, "dups", "postmaster: USER\n"
                           "pipe: \"|/bin/cat\"\n"
                           "dups: USER, postmaster, USER@localhost, USER@mx.test.example,\n"
                           "  pipe, pipe, \"|/bin/cat\", x@remote.example, x@REMOTE.example\n");
    struct targets t;
    char *why = NULL;
    targets_init(&t);
    assert_int_equal(expand(f, "dups", &t, &why), 0);
    assert_int_equal(t.n, 3);
    assert_true(has(f, &t, T_MBOX, "USER", "USER"));
    assert_true(has(f, &t, T_PIPE, "/bin/cat", NULL));
    assert_true(has(f, &t, T_REMOTE, "x@remote.example", NULL));
    /* across recipients of one message too */
    assert_int_equal(expand(f, "postmaster", &t, &why), 0);
    assert_int_equal(t.n, 3);
    targets_free(&t);
}

static void test_partial_failure(void **state)
{
    struct fx *f = *state;
    skip_if_forward(f);
    use_aliases(f, "partial", "mixed: USER, nosuchuser-xyz, bad@\n"
                              "onlybad: nosuchuser-xyz, bad@\n"
                              "empty: ,,\n");
    struct targets t;
    char *why = NULL;
    targets_init(&t);
    assert_int_equal(expand(f, "mixed", &t, &why), 0);
    assert_null(why);
    assert_int_equal(t.n, 1);
    assert_int_equal(expand(f, "onlybad", &t, &why), 1);
    assert_string_equal(why, "5.1.1 <onlybad>: no such user here");
    free(why);
    assert_int_equal(expand(f, "empty", &t, &why), 1);
    assert_non_null(strstr(why, "5.1.1"));
    free(why);
    targets_free(&t);
}

static void test_root(void **state)
{
    struct fx *f = *state;
    skip_if_forward(f);
    use_aliases(f, "noroot", "x: y\n");
    struct targets t;
    char *why = NULL;
    targets_init(&t);
    /* without an alias: root's mailbox (written unprivileged, local.h); its
     * .forward is never read */
    assert_int_equal(expand(f, "root", &t, &why), 0);
    assert_int_equal(t.n, 1);
    assert_true(has(f, &t, T_MBOX, "root", "root"));
    targets_free(&t);
    targets_init(&t);
    use_aliases(f, "rootbox", "boss: \\root\n");
    assert_int_equal(expand(f, "boss", &t, &why), 0);
    assert_int_equal(t.n, 1);
    assert_true(has(f, &t, T_MBOX, "root", "root"));
    targets_free(&t);
    targets_init(&t);
    assert_int_equal(expand_local_exists(&f->c, "root"), 1);

    use_aliases(f, "root", "root: USER\n");
    assert_int_equal(expand(f, "root", &t, &why), 0);
    assert_int_equal(t.n, 1);
    assert_true(has(f, &t, T_MBOX, "USER", "USER"));
    assert_int_equal(expand_local_exists(&f->c, "root"), 1);
    targets_free(&t);
}

static void test_local_exists(void **state)
{
    struct fx *f = *state;
    use_aliases(f, "exists", "Webmaster: USER\n");
    assert_int_equal(expand_local_exists(&f->c, "webmaster"), 1);
    assert_int_equal(expand_local_exists(&f->c, "WEBMASTER"), 1);
    assert_int_equal(expand_local_exists(&f->c, f->user), 1);
    assert_int_equal(expand_local_exists(&f->c, "nosuchuser-xyz"), 0);
    assert_int_equal(expand_local_exists(&f->c, ""), 0);
    assert_int_equal(expand_local_exists(&f->c, "a b"), 0);
}

/* user+tag (recipient-delimiter=): the exact name wins, else the user part. */
static void test_subaddress(void **state)
{
    struct fx *f = *state;
    skip_if_forward(f);
    use_aliases(f, "subaddr", "team: \"|/bin/cat\"\nteam+exact: /var/tmp/po-exact\n");
    struct targets t;
    char *why = NULL;
    targets_init(&t);
    assert_int_equal(expand(f, "USER+tag@mx.test.example", &t, &why), 0);
    assert_int_equal(t.n, 1);
    assert_true(has(f, &t, T_MBOX, "USER", "USER"));
    targets_free(&t);
    assert_int_equal(expand(f, "team+x", &t, &why), 0);
    assert_true(t.n == 1 && has(f, &t, T_PIPE, "/bin/cat", NULL));
    targets_free(&t);
    assert_int_equal(expand(f, "Team+Exact", &t, &why), 0);
    assert_true(t.n == 1 && has(f, &t, T_FILE, "/var/tmp/po-exact", NULL));
    targets_free(&t);
    assert_int_equal(expand(f, "nosuchuser-xyz+tag", &t, &why), 1);
    assert_non_null(strstr(why, "5.1.1"));
    free(why);
    why = NULL;
    targets_free(&t);
    assert_int_equal(expand_local_exists(&f->c, "team+any"), 1);
    assert_int_equal(expand_local_exists(&f->c, f->user), 1);
    char *tagged = xasprintf("%s+x", f->user);
    assert_int_equal(expand_local_exists(&f->c, tagged), 1);
    assert_int_equal(expand_local_exists(&f->c, "+x"), 0);
    assert_int_equal(expand_local_exists(&f->c, "nosuchuser-xyz+x"), 0);
    /* another delimiter; none */
    free(f->c.recipient_delimiter);
    f->c.recipient_delimiter = xstrdup("-");
    assert_int_equal(expand_local_exists(&f->c, tagged), 0);
    assert_int_equal(expand_local_exists(&f->c, "team-x"), 1);
    free(f->c.recipient_delimiter);
    f->c.recipient_delimiter = xstrdup("");
    assert_int_equal(expand_local_exists(&f->c, "team+x"), 0);
    assert_int_equal(expand(f, "team+x", &t, &why), 1);
    free(why);
    targets_free(&t);
    free(tagged);
    free(f->c.recipient_delimiter);
    f->c.recipient_delimiter = xstrdup("+"); /* the fixture is shared */
}

/* The "*" entry takes unknown names only; "*@domain" keeps the name. */
static void test_catchall(void **state)
{
    struct fx *f = *state;
    skip_if_forward(f);
    use_aliases(f, "star", "team: \"|/bin/cat\"\n*: /var/tmp/po-caught, *@[203.0.113.9]\n");
    struct targets t;
    char *why = NULL;
    targets_init(&t);
    assert_int_equal(expand(f, "stranger-xyz", &t, &why), 0);
    assert_int_equal(t.n, 2);
    assert_true(has(f, &t, T_FILE, "/var/tmp/po-caught", NULL));
    assert_true(has(f, &t, T_REMOTE, "stranger-xyz@[203.0.113.9]", NULL));
    targets_free(&t);
    assert_int_equal(expand(f, "team", &t, &why), 0);
    assert_true(t.n == 1 && has(f, &t, T_PIPE, "/bin/cat", NULL));
    targets_free(&t);
    assert_int_equal(expand(f, "USER", &t, &why), 0);
    assert_true(t.n == 1 && has(f, &t, T_MBOX, "USER", "USER"));
    targets_free(&t);
    assert_int_equal(expand_local_exists(&f->c, "stranger-xyz"), 1);
    assert_int_equal(expand_local_exists(&f->c, "*"), 0);
    assert_int_equal(expand(f, "*", &t, &why), 1);
    free(why);
    why = NULL;
    targets_free(&t);
    /* a catch-all leading to an unknown name: that name is not caught again */
    use_aliases(f, "star2", "*: also-unknown-xyz\n");
    assert_int_equal(expand(f, "stranger-xyz", &t, &why), 1);
    assert_non_null(strstr(why, "5.1.1"));
    free(why);
    targets_free(&t);
}

static void test_include(void **state)
{
    struct fx *f = *state;
    skip_if_forward(f);
    char *list = xasprintf("%s/list", f->dir);
    char *loop = xasprintf("%s/loop", f->dir);
    char *ww = xasprintf("%s/worldw", f->dir);
    char *secret = xasprintf("%s/secret", f->dir);
    write_file(f, list, "# members\nUSER\n\"|/bin/echo hi\"\nfar@away.example\n", 0644);
    write_file(f, loop, "far@away.example, :include:DIR/loop\n", 0644);
    write_file(f, ww, "far@away.example\n", 0666);
    write_file(f, secret, "far@away.example\n", 0600);
    use_aliases(f, "inc", "inc: :include:DIR/list\n"
                          "incloop: :include:DIR/loop\n"
                          "incww: :include:DIR/worldw\n"
                          "incmissing: :include:DIR/missing\n"
                          "increl: :include:list\n"
                          "incsecret: :include:DIR/secret\n");
    struct targets t;
    char *why = NULL;
    targets_init(&t);
    assert_int_equal(expand(f, "inc", &t, &why), 0);
    assert_int_equal(t.n, 3);
    assert_true(has(f, &t, T_MBOX, "USER", "USER"));
    assert_true(has(f, &t, T_PIPE, "/bin/echo hi", NULL));
    assert_true(has(f, &t, T_REMOTE, "far@away.example", NULL));
    targets_free(&t);

    targets_init(&t);
    assert_int_equal(expand(f, "incloop", &t, &why), 0); /* loop logged, rest delivered */
    assert_int_equal(t.n, 1);
    targets_free(&t);

    targets_init(&t);
    assert_int_equal(expand(f, "incww", &t, &why), 1);
    assert_non_null(strstr(why, "world-writable"));
    free(why);
    assert_int_equal(expand(f, "incmissing", &t, &why), 1);
    assert_non_null(strstr(why, "does not exist"));
    free(why);
    assert_int_equal(expand(f, "increl", &t, &why), 1);
    assert_non_null(strstr(why, "absolute"));
    free(why);
    if (geteuid() == 0) {
        /* read as user=, not as root: a root-only file stays unread */
        assert_int_equal(chown(secret, 0, 0), 0);
        assert_int_equal(expand(f, "incsecret", &t, &why), 1);
        assert_non_null(strstr(why, "permission denied"));
        free(why);
    }
    assert_int_equal(t.n, 0);
    targets_free(&t);
    free(list);
    free(loop);
    free(ww);
    free(secret);
}

static int have_ipv6_loopback(void)
{
    struct ifaddrs *ifa;
    int found = 0;
    if (getifaddrs(&ifa) < 0)
        return 0;
    for (struct ifaddrs *i = ifa; i; i = i->ifa_next)
        if (i->ifa_addr && i->ifa_addr->sa_family == AF_INET6 &&
            IN6_IS_ADDR_LOOPBACK(&((struct sockaddr_in6 *)(void *)i->ifa_addr)->sin6_addr))
            found = 1;
    freeifaddrs(ifa);
    return found;
}

static void test_local_domain(void **state)
{
    struct fx *f = *state;
    const struct config *c = &f->c;
    assert_int_equal(route_is_local_domain(c, NULL), 1);
    assert_int_equal(route_is_local_domain(c, "localhost"), 1);
    assert_int_equal(route_is_local_domain(c, "LocalHost."), 1);
    assert_int_equal(route_is_local_domain(c, "MX.test.example"), 1);
    assert_int_equal(route_is_local_domain(c, "test.example"), 1);
    assert_int_equal(route_is_local_domain(c, "[127.0.0.1]"), 1);
    assert_int_equal(route_is_local_domain(c, "[203.0.113.55]"), 0);
    assert_int_equal(route_is_local_domain(c, "other.example"), 0);
    assert_int_equal(route_is_local_domain(c, "sub.test.example"), 0);
    assert_int_equal(route_is_local_domain(c, "[127.0.0.1"), 0);
    assert_int_equal(route_is_local_domain(c, "[junk]"), 0);
    assert_int_equal(route_is_local_domain(c, "[IPv6:junk]"), 0);
    assert_int_equal(route_is_local_domain(c, ""), 0);
    assert_int_equal(route_is_local_domain(c, "[IPv6:2001:db8::1]"), 0);
    if (have_ipv6_loopback()) {
        assert_int_equal(route_is_local_domain(c, "[IPv6:::1]"), 1);
        assert_int_equal(route_is_local_domain(c, "[ipv6:0:0:0:0:0:0:0:1]"), 1);
    }
}

/* ---- virtual domains (vhosts(7)) ---- */

/* DIR/virtual with one.example (passwd: joe, Ann; aliases) and two.example
 * (passwd: joe; "*" rewrites to one.example); the config points at it. */
static void use_vdomains(struct fx *f)
{
    char *v = xasprintf("%s/virtual", f->dir);
    char *one = xasprintf("%s/one.example", v), *two = xasprintf("%s/two.example", v);
    assert_true(mkdir(v, 0755) == 0 || errno == EEXIST);
    assert_true(mkdir(one, 0755) == 0 || errno == EEXIST);
    assert_true(mkdir(two, 0755) == 0 || errno == EEXIST);
    char *p = xasprintf("%s/domains.cf", v);
    write_file(f, p, "admin:one.example:1\nadmin:two.example:1\nadmin:off.example:0\n", 0644);
    free(p);
    p = xasprintf("%s/passwd", one);
    write_file(f, p, "joe:$6$x$y\nAnn:$1$x$y\n", 0644);
    free(p);
    p = xasprintf("%s/passwd", two);
    write_file(f, p, "joe:$6$x$y\n", 0644);
    free(p);
    p = xasprintf("%s/aliases", one);
    write_file(f, p, "list: joe, ann, USER@mx.test.example, Remote@Example.ORG, "
                     "\"|/bin/cat\", /tmp/x\n"
                     "self: \\joe\nloop: loop2\nloop2: loop\n", 0644);
    long count, longest;
    char *err = NULL;
    assert_int_equal(aliases_build(p, &count, &longest, &err), 0);
    free(p);
    p = xasprintf("%s/aliases", two);
    write_file(f, p, "*: *@one.example\n", 0644); /* no database: the text is read */
    free(p);
    free(f->c.vpath);
    f->c.vpath = v;
    free(one);
    free(two);
}

static void test_virtual(void **state)
{
    struct fx *f = *state;
    skip_if_forward(f);
    use_vdomains(f);
    use_aliases(f, "sys", "vjoe: joe@one.example\n");
    struct targets t;
    char *why = NULL;
    assert_int_equal(route_is_local_domain(&f->c, "One.Example"), 1);
    assert_int_equal(route_is_our_host(&f->c, "one.example"), 0);
    assert_int_equal(route_is_local_domain(&f->c, "off.example"), 0);

    /* an account of the domain: its mailbox, named in lower case */
    const char *forms[] = {"joe@one.example", "JOE@One.Example", "self@one.example",
                           "joe@two.example", "vjoe", "loop@one.example"};
    const char *boxes[] = {"joe@one.example", "joe@one.example", "joe@one.example",
                           "joe@two.example", "joe@one.example", NULL};
    for (size_t i = 0; i < sizeof forms / sizeof *forms; i++) {
        targets_init(&t);
        int rc = expand(f, forms[i], &t, &why);
        if (boxes[i]) {
            assert_int_equal(rc, 0);
            assert_int_equal(t.n, 1);
            assert_true(has(f, &t, T_MBOX, boxes[i], boxes[i]));
        } else {
            assert_int_equal(rc, 1); /* a loop of names without an account */
            assert_non_null(strstr(why, "5.4.6"));
        }
        free(why);
        why = NULL;
        targets_free(&t);
    }
    /* the catch-all rewrites to the same name in one.example */
    targets_init(&t);
    assert_int_equal(expand(f, "ann@two.example", &t, &why), 0);
    assert_true(has(f, &t, T_MBOX, "ann@one.example", "ann@one.example"));
    targets_free(&t);
    /* a local account is no user of a virtual domain */
    targets_init(&t);
    assert_int_equal(expand(f, "USER@one.example", &t, &why), 1);
    assert_non_null(strstr(why, "5.1.1"));
    free(why);
    why = NULL;
    targets_free(&t);
    /* a list: bare names are the domain's; programs and files refused */
    targets_init(&t);
    assert_int_equal(expand(f, "list@one.example", &t, &why), 0);
    assert_int_equal(t.n, 4);
    assert_true(has(f, &t, T_MBOX, "joe@one.example", "joe@one.example"));
    assert_true(has(f, &t, T_MBOX, "ann@one.example", "ann@one.example"));
    assert_true(has(f, &t, T_MBOX, "USER", "USER"));
    assert_true(has(f, &t, T_REMOTE, "Remote@example.org", NULL));
    targets_free(&t);

    assert_int_equal(expand_virtual_exists(&f->c, "Joe", "one.example"), 1);
    assert_int_equal(expand_virtual_exists(&f->c, "list", "one.example"), 1);
    assert_int_equal(expand_virtual_exists(&f->c, "USER", "one.example"), 0);
    assert_int_equal(expand_virtual_exists(&f->c, "a/b", "one.example"), 0);
    assert_int_equal(expand_virtual_exists(&f->c, "anyone", "two.example"), 1);
}

/* ---- .forward (needs root to own a throw-away account) ---- */

static char *forward_path(const struct fx *f)
{
    return xasprintf("%s/.forward", f->home);
}

/* Write the test account's .forward owned by uid with mode; expand the account. */
static int expand_with_forward(struct fx *f, const char *text, uid_t owner, mode_t mode,
                               struct targets *t, char **why)
{
    char *path = forward_path(f);
    write_file(f, path, text, mode);
    assert_int_equal(chown(path, owner, f->gid), 0);
    assert_int_equal(chmod(path, mode), 0); /* chown may clear bits */
    free(path);
    use_aliases(f, "fwd", "x: y\n");
    return expand(f, "USER", t, why);
}

static void need_root(void)
{
    if (geteuid() != 0) {
        fprintf(stderr, "skipped: .forward tests need root (a throw-away account)\n");
        skip();
    }
}

static void test_forward_entries(void **state)
{
    struct fx *f = *state;
    need_root();
    struct targets t;
    char *why = NULL;
    targets_init(&t);
    assert_int_equal(expand_with_forward(f,
                                         "# my forward\n"
                                         "\\USER, \"|/usr/bin/vacation USER\"\n"
                                         "DIR/home/mail.log, Friend@Remote.Example\n"
                                         ":include:/etc/passwd\n",
                                         f->uid, 0644, &t, &why),
                     0);
    assert_int_equal(t.n, 4);
    assert_true(has(f, &t, T_MBOX, "USER", "USER"));
    assert_true(has(f, &t, T_PIPE, "/usr/bin/vacation USER", "USER"));
    assert_true(has(f, &t, T_FILE, "DIR/home/mail.log", "USER"));
    assert_true(has(f, &t, T_REMOTE, "Friend@remote.example", NULL));
    targets_free(&t);

    /* naming yourself without a backslash: the mailbox, not a loop */
    targets_init(&t);
    assert_int_equal(expand_with_forward(f, "USER, far@remote.example\n", f->uid, 0600, &t,
                                         &why),
                     0);
    assert_int_equal(t.n, 2);
    assert_true(has(f, &t, T_MBOX, "USER", "USER"));
    targets_free(&t);

    /* a .forward that leads nowhere keeps the mail in the mailbox */
    targets_init(&t);
    assert_int_equal(expand_with_forward(f, "nosuchuser-xyz\n", f->uid, 0600, &t, &why), 0);
    assert_int_equal(t.n, 1);
    assert_true(has(f, &t, T_MBOX, "USER", "USER"));
    targets_free(&t);
}

/* Each unsafe .forward is ignored: plain mailbox delivery. */
static void assert_ignored(struct fx *f, const char *what, struct targets *t, int rc,
                           char *why)
{
    if (rc != 0 || t->n != 1 || !has(f, t, T_MBOX, "USER", "USER"))
        fail_msg(".forward %s was not ignored (rc %d, %zu targets, %s)", what, rc, t->n,
                 why ? why : "");
}

static void test_forward_unsafe(void **state)
{
    struct fx *f = *state;
    need_root();
    const char *text = "\"|/bin/evil\"\n";
    struct targets t;
    char *why = NULL;
    int rc;

    targets_init(&t);
    rc = expand_with_forward(f, text, f->uid, 0664, &t, &why);
    assert_ignored(f, "group-writable", &t, rc, why);
    targets_free(&t);

    targets_init(&t);
    rc = expand_with_forward(f, text, f->uid, 0646, &t, &why);
    assert_ignored(f, "world-writable", &t, rc, why);
    targets_free(&t);

    targets_init(&t);
    rc = expand_with_forward(f, text, 0, 0644, &t, &why);
    assert_ignored(f, "owned by root", &t, rc, why);
    targets_free(&t);

    /* unreadable by its owner: proves it is read as the user, not as root */
    targets_init(&t);
    rc = expand_with_forward(f, text, f->uid, 0200, &t, &why);
    assert_ignored(f, "unreadable by the user", &t, rc, why);
    targets_free(&t);

    /* a symlink to a file the user owns */
    char *real = xasprintf("%s/real-forward", f->home);
    char *path = forward_path(f);
    write_file(f, real, text, 0644);
    assert_int_equal(chown(real, f->uid, f->gid), 0);
    unlink(path);
    assert_int_equal(symlink(real, path), 0);
    use_aliases(f, "fwd", "x: y\n");
    targets_init(&t);
    rc = expand(f, "USER", &t, &why);
    assert_ignored(f, "symlink", &t, rc, why);
    targets_free(&t);

    /* a FIFO must not hang the reader */
    unlink(path);
    assert_int_equal(mkfifo(path, 0644), 0);
    assert_int_equal(chown(path, f->uid, f->gid), 0);
    targets_init(&t);
    rc = expand(f, "USER", &t, &why);
    assert_ignored(f, "FIFO", &t, rc, why);
    targets_free(&t);

    /* a directory */
    unlink(path);
    assert_int_equal(mkdir(path, 0755), 0);
    assert_int_equal(chown(path, f->uid, f->gid), 0);
    targets_init(&t);
    rc = expand(f, "USER", &t, &why);
    assert_ignored(f, "directory", &t, rc, why);
    targets_free(&t);
    assert_int_equal(rmdir(path), 0);

    free(real);
    free(path);
}

/* A .forward in a directory others may write to is ignored (they could have
 * put it there or replaced it); so is one under a directory that belongs to
 * someone else.  A sticky directory above the home (/tmp) is fine. */
static void test_forward_unsafe_dir(void **state)
{
    struct fx *f = *state;
    need_root();
    const char *text = "\"|/bin/evil\"\n";
    static const mode_t bad[] = {0777, 0770, 0707, 01777};
    struct targets t;
    char *why = NULL;
    int rc;
    for (size_t k = 0; k < sizeof bad / sizeof *bad; k++) {
        assert_int_equal(chmod(f->home, bad[k]), 0);
        targets_init(&t);
        rc = expand_with_forward(f, text, f->uid, 0644, &t, &why);
        char what[64];
        snprintf(what, sizeof what, "in a home of mode %04o", (unsigned)bad[k]);
        assert_ignored(f, what, &t, rc, why);
        targets_free(&t);
    }
    assert_int_equal(chmod(f->home, 0755), 0);

    /* the home belongs to someone else (nobody) */
    assert_int_equal(chown(f->home, 65534, f->gid), 0);
    targets_init(&t);
    rc = expand_with_forward(f, text, f->uid, 0644, &t, &why);
    assert_ignored(f, "in a home owned by someone else", &t, rc, why);
    targets_free(&t);
    assert_int_equal(chown(f->home, f->uid, f->gid), 0);

    /* a directory above the home that its group may write to */
    assert_int_equal(chmod(f->dir, 0775), 0);
    targets_init(&t);
    rc = expand_with_forward(f, text, f->uid, 0644, &t, &why);
    assert_ignored(f, "under a group-writable directory", &t, rc, why);
    targets_free(&t);
    assert_int_equal(chmod(f->dir, 0755), 0);

    /* safe again (the sandbox lives under the sticky /tmp): honoured */
    targets_init(&t);
    rc = expand_with_forward(f, text, f->uid, 0644, &t, &why);
    assert_int_equal(rc, 0);
    assert_int_equal(t.n, 1);
    assert_true(has(f, &t, T_PIPE, "/bin/evil", "USER"));
    targets_free(&t);
}

static void test_forward_too_big(void **state)
{
    struct fx *f = *state;
    need_root();
    struct buf big;
    buf_init(&big);
    while (big.len <= 70000)
        buf_adds(&big, "someone@remote.example,\n");
    struct targets t;
    char *why = NULL;
    targets_init(&t);
    int rc = expand_with_forward(f, big.s, f->uid, 0644, &t, &why);
    assert_ignored(f, "over 64 KiB", &t, rc, why);
    targets_free(&t);
    buf_free(&big);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_alias_kinds),
        cmocka_unit_test(test_alias_to_user),
        cmocka_unit_test(test_alias_without_db),
        cmocka_unit_test(test_user_case_insensitive),
        cmocka_unit_test(test_unknown_user),
        cmocka_unit_test(test_remote_session),
        cmocka_unit_test(test_loop),
        cmocka_unit_test(test_depth),
        cmocka_unit_test(test_loop_to_account),
        cmocka_unit_test(test_duplicates),
        cmocka_unit_test(test_partial_failure),
        cmocka_unit_test(test_root),
        cmocka_unit_test(test_local_exists),
        cmocka_unit_test(test_subaddress),
        cmocka_unit_test(test_catchall),
        cmocka_unit_test(test_include),
        cmocka_unit_test(test_local_domain),
        cmocka_unit_test(test_virtual),
        cmocka_unit_test(test_forward_entries),
        cmocka_unit_test(test_forward_unsafe),
        cmocka_unit_test(test_forward_unsafe_dir),
        cmocka_unit_test(test_forward_too_big),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
