/* test_local.c - local_deliver() end to end (mailbox, program, file) and the
 * identity rules of privs.c.  As root the deliveries run as a test account
 * created here with useradd (removed afterwards); otherwise as the current
 * user, and the root-only cases skip saying so. */
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

#include "expand.h"
#include "local.h"
#include "privs.h"
#include "util.h"

#define TUSER "po_local_t"
#define TGROUP "po_local_g"

struct fx {
    char dir[64];
    char *spool, *home, *out, *data;
    struct msgdata md; /* the message inside f->data, after a prefix (as in a queue file) */
    struct ident id; /* who deliveries run as */
    struct config c;
};

static int root(void) { return geteuid() == 0; }

static int sh(const char *fmt, ...) PO_PRINTF(1, 2);
static int sh(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *cmd = xvasprintf(fmt, ap);
    va_end(ap);
    int rc = system(cmd);
    free(cmd);
    return rc;
}

static int group_setup(void **state)
{
    (void)state;
    if (!root())
        return 0;
    sh("userdel " TUSER " 2>/dev/null; groupdel " TUSER " 2>/dev/null; "
       "groupdel " TGROUP " 2>/dev/null");
    if (sh("useradd -M -U -d /nonexistent -s /bin/sh " TUSER) != 0 ||
        sh("groupadd " TGROUP) != 0) {
        fprintf(stderr, "cannot create the test account " TUSER " with useradd\n");
        return -1;
    }
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    if (root())
        sh("userdel " TUSER " 2>/dev/null; groupdel " TUSER " 2>/dev/null; "
           "groupdel " TGROUP " 2>/dev/null");
    return 0;
}

static int setup(void **state)
{
    struct fx *f = xcalloc(1, sizeof *f);
    str_copy(f->dir, "/tmp/po-local-XXXXXX", sizeof f->dir);
    if (mkdtemp(f->dir) == NULL || chmod(f->dir, 0755) < 0)
        return -1;
    const struct passwd *me = getpwuid(geteuid());
    int rc = root() ? privs_lookup(TUSER, &f->id) : me ? privs_lookup(me->pw_name, &f->id) : -1;
    if (rc != 0)
        return -1;
    f->spool = xasprintf("%s/spool", f->dir);
    f->home = xasprintf("%s/home", f->dir);
    f->out = xasprintf("%s/out", f->dir);
    f->data = xasprintf("%s/df", f->dir);
    mkdir(f->spool, 0755);
    chmod(f->spool, 01777);
    mkdir(f->home, 0755);
    mkdir(f->out, 0700);
    if (root() && (chown(f->home, f->id.uid, f->id.gid) < 0 ||
                   chown(f->out, f->id.uid, f->id.gid) < 0))
        return -1;
    if (root()) { /* the test account's home is the sandbox's */
        free(f->id.home);
        f->id.home = xstrdup(f->home);
        sh("usermod -d '%s' " TUSER, f->home);
    }
    struct buf b;
    buf_init(&b);
    buf_adds(&b, "PREFIX\nSubject: hello\n\nFrom here\nbody\nTRAILER\n");
    int fd = open(f->data, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0 || write_all(fd, b.s, b.len) < 0)
        return -1;
    /* root's file, readable only through the descriptor the child inherits */
    f->md = (struct msgdata){fd, 7, (long long)b.len - 7 - 8};
    buf_free(&b);
    f->c.mailspool = f->spool;
    f->c.user = f->id.name;
    f->c.escape_from = 1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    sh("rm -rf '%s'", f->dir);
    free(f->spool);
    free(f->home);
    free(f->out);
    free(f->data);
    close(f->md.fd);
    privs_free(&f->id);
    free(f);
    return 0;
}

/* An existing account that is not the one deliveries run as. */
static const char *someone_else(const struct fx *f)
{
    static const char *names[] = {"nobody", "daemon", "bin", "sys"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        struct passwd *pw = getpwnam(names[i]);
        if (pw && pw->pw_uid != f->id.uid && pw->pw_uid != 0)
            return names[i];
    }
    return NULL;
}

static struct local_job job(struct fx *f, int kind, const char *dest, const char *user)
{
    struct local_job j = {.kind = kind, .dest = dest, .user = user, .rcpt = "rcpt@here",
                          .sender = "alice@example.org", .data = f->md, .qid = "T1"};
    return j;
}

static enum deliv_result run(struct fx *f, const struct local_job *j, char **status)
{
    return local_deliver(&f->c, j, status);
}

static char *slurp(const char *path)
{
    struct buf b;
    buf_init(&b);
    if (read_file(path, &b, 1 << 24) < 0)
        fail_msg("cannot read %s: %s", path, strerror(errno));
    return buf_steal(&b);
}

/* status is read after got was computed (argument order is unspecified) */
static void expect(enum deliv_result got, enum deliv_result want, char **status,
                   const char *prefix)
{
    if (got != want || strncmp(*status, prefix, strlen(prefix)) != 0)
        fail_msg("got %d \"%s\", want %d \"%s...\"", got, *status, want, prefix);
    free(*status);
}

/* ---- mailboxes ---- */

static void test_mbox(void **state)
{
    struct fx *f = *state;
    char *status;
    struct local_job j = job(f, T_MBOX, f->id.name, NULL);
    expect(run(f, &j, &status), DELIV_OK, &status, "2.0.0 ");
    expect(run(f, &j, &status), DELIV_OK, &status, "2.0.0 ");
    char *box = local_mbox_path(&f->c, f->id.name);
    struct stat st;
    assert_int_equal(lstat(box, &st), 0);
    assert_int_equal(st.st_uid, f->id.uid);
    assert_int_equal(st.st_mode & 07777, 0600);
    char *cmd = xasprintf("/usr/bin/python3 -c 'import mailbox,sys\n"
                          "for m in mailbox.mbox(sys.argv[1]): print(m[\"Return-Path\"],"
                          " m[\"Delivered-To\"], m[\"Subject\"], repr(m.get_payload()))' '%s'",
                          box);
    FILE *p = popen(cmd, "r");
    char line[512];
    int n = 0;
    while (fgets(line, sizeof line, p)) {
        assert_string_equal(line, "<alice@example.org> rcpt@here hello '>From here\\nbody\\n'\n");
        n++;
    }
    assert_int_equal(pclose(p), 0);
    assert_int_equal(n, 2);
    free(cmd);
    free(box);
}

/* A batch for one mailbox: one child, every message in, a result each; an
 * unknown account fails every message of its batch alike. */
static void test_mbox_batch(void **state)
{
    struct fx *f = *state;
    struct local_mjob jobs[3];
    const char *rcpts[3] = {"one@here", "two@here", "three@here"};
    for (int k = 0; k < 3; k++)
        jobs[k] = (struct local_mjob){.rcpt = rcpts[k], .sender = "alice@example.org",
                                      .data = f->md, .qid = "T1"};
    local_deliver_mbox_batch(&f->c, f->id.name, jobs, 3);
    for (int k = 0; k < 3; k++) {
        assert_int_equal(jobs[k].res, DELIV_OK);
        assert_true(strncmp(jobs[k].status, "2.0.0 ", 6) == 0);
        free(jobs[k].status);
    }
    char *box = local_mbox_path(&f->c, f->id.name);
    char *cmd = xasprintf("/usr/bin/python3 -c 'import mailbox,sys\n"
                          "for m in mailbox.mbox(sys.argv[1]): print(m[\"Delivered-To\"])' '%s'",
                          box);
    FILE *p = popen(cmd, "r");
    char line[512];
    int n = 0;
    while (fgets(line, sizeof line, p)) {
        line[strcspn(line, "\n")] = '\0';
        assert_string_equal(line, rcpts[n]);
        n++;
    }
    assert_int_equal(pclose(p), 0);
    assert_int_equal(n, 3);
    free(cmd);
    free(box);
    local_deliver_mbox_batch(&f->c, "no-such-user-po", jobs, 2);
    for (int k = 0; k < 2; k++) {
        assert_int_equal(jobs[k].res, DELIV_FAIL);
        char *want = xasprintf("5.1.1 <%s>: no such user no-such-user-po here", rcpts[k]);
        assert_string_equal(jobs[k].status, want); /* each names its own recipient */
        free(want);
        free(jobs[k].status);
    }
}

static void test_mbox_case_insensitive(void **state)
{
    struct fx *f = *state;
    char *status, *upper = xstrdup(f->id.name);
    for (char *s = upper; *s; s++)
        if (*s >= 'a' && *s <= 'z')
            *s = (char)(*s - 'a' + 'A');
    if (strcmp(upper, f->id.name) == 0 || getpwnam(upper) != NULL)
        skip();
    struct local_job j = job(f, T_MBOX, upper, NULL);
    expect(run(f, &j, &status), DELIV_OK, &status, "2.0.0 ");
    char *box = local_mbox_path(&f->c, f->id.name); /* the account's own name */
    assert_int_equal(access(box, F_OK), 0);
    free(box);
    free(upper);
}

/* Root's mail: the mailbox spool/root, opened and locked by the delivery
 * process and written by a child as user= (never as root: without user= it
 * waits).  Programs and files are still never run or written as root. */
static void test_root(void **state)
{
    struct fx *f = *state;
    char *status;
    struct local_job j = job(f, T_MBOX, "root", NULL);
    char *box = local_mbox_path(&f->c, "root");
    if (!root()) {
        expect(run(f, &j, &status), DELIV_DEFER, &status,
               "4.3.0 delivery to root needs the queue runner to run as root");
    } else {
        f->c.user = NULL;
        expect(run(f, &j, &status), DELIV_DEFER, &status, "4.3.0 no user= account");
        f->c.user = (char *)"root";
        expect(run(f, &j, &status), DELIV_DEFER, &status, "4.3.0 user=root is root");
        assert_int_equal(access(box, F_OK), -1);
        f->c.user = f->id.name;
        expect(run(f, &j, &status), DELIV_OK, &status, "2.0.0 ");
        expect(run(f, &j, &status), DELIV_OK, &status, "2.0.0 ");
        struct stat st;
        assert_int_equal(lstat(box, &st), 0);
        assert_int_equal(st.st_uid, 0);
        assert_int_equal(st.st_gid, 0);
        assert_int_equal(st.st_mode & 07777, 0600);
        char *cmd = xasprintf("/usr/bin/python3 -c 'import mailbox,sys\n"
                              "print(len(mailbox.mbox(sys.argv[1])))' '%s'", box);
        FILE *p = popen(cmd, "r");
        char line[64] = "";
        assert_non_null(fgets(line, sizeof line, p));
        assert_int_equal(pclose(p), 0);
        assert_string_equal(line, "2\n");
        free(cmd);
    }
    free(box);
    j = job(f, T_PIPE, "cat >/dev/null", "root");
    expect(run(f, &j, &status), DELIV_FAIL, &status, "5.7.1 refusing to deliver as root");
    f->c.user = (char *)"root";
    j = job(f, T_FILE, "/tmp/x", NULL);
    expect(run(f, &j, &status), DELIV_FAIL, &status, "5.7.1 refusing to deliver as root");
}

/* Something planted at the mailbox's path defers (no bounce) and is never
 * followed; a lock planted by another user does not hold the mail up. */
static void test_planted(void **state)
{
    struct fx *f = *state;
    char *status;
    char *box = local_mbox_path(&f->c, f->id.name);
    char *target = xasprintf("%s/target", f->dir);
    struct local_job j = job(f, T_MBOX, f->id.name, NULL);
    assert_int_equal(symlink(target, box), 0);
    expect(run(f, &j, &status), DELIV_DEFER, &status, "4.2.0 ");
    assert_int_equal(access(target, F_OK), -1);
    unlink(box);
    assert_int_equal(mkfifo(box, 0600), 0);
    expect(run(f, &j, &status), DELIV_DEFER, &status, "4.2.0 ");
    unlink(box);
    if (root()) {
        char *lock = xasprintf("%s.lock", box);
        close(open(lock, O_WRONLY | O_CREAT | O_EXCL, 0600));
        assert_int_equal(chown(lock, 65534, 65534), 0);
        long long t0 = now_ms();
        expect(run(f, &j, &status), DELIV_OK, &status, "2.0.0 ");
        assert_true(now_ms() - t0 < 3000);
        assert_int_equal(access(lock, F_OK), -1);
        free(lock);
    }
    free(target);
    free(box);
}

static void test_unknown_and_bad_names(void **state)
{
    struct fx *f = *state;
    char *status;
    struct local_job j = job(f, T_MBOX, "no-such-user-po", NULL);
    expect(run(f, &j, &status), DELIV_FAIL, &status, "5.1.1 <rcpt@here>: no such user");
    const char *bad[] = {"../etc", ".hidden", "a/b", "a b", "", "x\ny"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        j = job(f, T_MBOX, bad[i], NULL);
        expect(run(f, &j, &status), DELIV_FAIL, &status, "5.1.3 ");
    }
    f->c.user = (char *)"no-such-user-po";
    j = job(f, T_PIPE, "cat", NULL);
    expect(run(f, &j, &status), DELIV_DEFER, &status, "4.3.0 account no-such-user-po");
    f->c.user = NULL;
    expect(run(f, &j, &status), DELIV_DEFER, &status, "4.3.0 no user= account");
}

/* Not root: only deliveries to ourselves; others wait for a root runner. */
static void test_not_root_defers(void **state)
{
    struct fx *f = *state;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char *status;
        if (root() && privs_become(&f->id, (gid_t)-1) < 0)
            _exit(2);
        const char *other = someone_else(f);
        if (other == NULL)
            _exit(3);
        char *want = xasprintf("4.3.0 delivery to %s needs the queue runner to run as root",
                               other);
        struct local_job j = job(f, T_MBOX, other, NULL);
        enum deliv_result r = run(f, &j, &status);
        int ok = r == DELIV_DEFER && strcmp(status, want) == 0;
        free(status);
        free(want);
        _exit(ok ? 0 : 1);
    }
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

static void test_spool_world_writable(void **state)
{
    struct fx *f = *state;
    char *status;
    assert_int_equal(chmod(f->spool, 0777), 0);
    struct local_job j = job(f, T_MBOX, f->id.name, NULL);
    expect(run(f, &j, &status), DELIV_DEFER, &status, "4.3.0 mail spool");
    char *box = local_mbox_path(&f->c, f->id.name);
    assert_int_equal(access(box, F_OK), -1);
    free(box);
}

/* Debian's /var/mail: 2775 root:mail.  The delivery process (root) creates
 * the mailbox and its dot-lock; the mailbox belongs to the user (group mail,
 * inherited) and to nobody else.  In a 0755 root spool too. */
static void test_spool_group_writable(void **state)
{
    struct fx *f = *state;
    char *status;
    if (!root()) {
        print_message("skipped: needs root to chown the spool to a group\n");
        skip();
    }
    struct group *g = getgrnam(TGROUP);
    assert_non_null(g);
    assert_int_equal(chown(f->spool, 0, g->gr_gid), 0);
    assert_int_equal(chmod(f->spool, 02775), 0);
    struct local_job j = job(f, T_MBOX, f->id.name, NULL);
    expect(run(f, &j, &status), DELIV_OK, &status, "2.0.0 ");
    char *box = local_mbox_path(&f->c, f->id.name);
    struct stat st;
    assert_int_equal(lstat(box, &st), 0);
    assert_int_equal(st.st_uid, f->id.uid);
    assert_int_equal(st.st_gid, g->gr_gid);
    assert_int_equal(st.st_mode & 07777, 0600);
    sh("rm -f '%s'/*", f->spool);
    assert_int_equal(chown(f->spool, 0, 0), 0);
    assert_int_equal(chmod(f->spool, 0755), 0);
    expect(run(f, &j, &status), DELIV_OK, &status, "2.0.0 ");
    assert_int_equal(lstat(box, &st), 0);
    assert_int_equal(st.st_uid, f->id.uid);
    assert_int_equal(st.st_gid, f->id.gid);
    free(box);
}

/* ---- programs ---- */

static void test_pipe_environment(void **state)
{
    struct fx *f = *state;
    char *status;
    char *cmd = xasprintf("pwd > '%s/pwd' && cd '%s' && env > env && cat > msg && "
                          "id -G > groups", f->out, f->out);
    struct local_job j = job(f, T_PIPE, cmd, f->id.name);
    j.rcpt = "a;touch /tmp/po-pwned-$$;@b";
    j.sender = "s$(touch ${HOME}/pwned)`id`@x";
    expect(run(f, &j, &status), DELIV_OK, &status, "2.0.0 ");
    free(cmd);

    char *path = xasprintf("%s/env", f->out);
    char *env = slurp(path);
    free(path);
    char *want[] = {xasprintf("HOME=%s\n", f->id.home), xasprintf("USER=%s\n", f->id.name),
                    xasprintf("LOGNAME=%s\n", f->id.name), xstrdup("SHELL=/bin/sh\n"),
                    xstrdup("PATH=/usr/local/bin:/usr/bin:/bin\n"),
                    xstrdup("SENDER=s$(touch ${HOME}/pwned)`id`@x\n"),
                    xstrdup("RECIPIENT=a;touch /tmp/po-pwned-$$;@b\n")};
    for (size_t i = 0; i < 7; i++) {
        if (strstr(env, want[i]) == NULL)
            fail_msg("missing %s in\n%s", want[i], env);
        free(want[i]);
    }
    /* nothing inherited: only ours and what sh itself sets */
    for (char *l = env; *l; l = strchr(l, '\n') + 1) {
        static const char *ok[] = {"HOME=", "USER=", "LOGNAME=", "SHELL=", "PATH=", "SENDER=",
                                   "RECIPIENT=", "PWD=", "OLDPWD=", "SHLVL=", "_="};
        int found = 0;
        for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
            found |= strncmp(l, ok[i], strlen(ok[i])) == 0;
        if (!found)
            fail_msg("unexpected environment line %.40s", l);
    }
    free(env);

    path = xasprintf("%s/msg", f->out);
    char *msg = slurp(path);
    free(path);
    assert_string_equal(msg, "Return-Path: <s$(touch ${HOME}/pwned)`id`@x>\n"
                             "Delivered-To: a;touch /tmp/po-pwned-$$;@b\n"
                             "Subject: hello\n\nFrom here\nbody\n");
    free(msg);
    path = xasprintf("%s/pwd", f->out);
    char *pwd = slurp(path);
    free(path);
    struct stat hst; /* cwd: the home directory, or / when it does not exist */
    char *wantpwd = xasprintf("%s\n", stat(f->id.home, &hst) == 0 ? f->id.home : "/");
    assert_string_equal(pwd, wantpwd);
    free(pwd);
    free(wantpwd);
    path = xasprintf("%s/pwned", f->home);
    assert_int_equal(access(path, F_OK), -1);
    free(path);

    if (root()) { /* supplementary groups are the account's, not root's */
        path = xasprintf("%s/groups", f->out);
        char *groups = slurp(path);
        free(path);
        char *want1 = xasprintf("%lu\n", (unsigned long)f->id.gid);
        assert_string_equal(groups, want1);
        free(want1);
        free(groups);
    }
}

static void test_pipe_results(void **state)
{
    struct fx *f = *state;
    char *status;
    struct local_job j = job(f, T_PIPE, "cat >/dev/null; exit 75", f->id.name);
    expect(run(f, &j, &status), DELIV_DEFER, &status, "4.3.0 program exited 75");
    j.dest = "cat >/dev/null; echo oops; printf 'second\\tline\\001\\n' >&2; exit 1";
    expect(run(f, &j, &status), DELIV_FAIL, &status,
           "5.3.0 program exited 1: oops; second line\\x01");
    j.dest = "kill -9 $$";
    expect(run(f, &j, &status), DELIV_FAIL, &status, "5.3.0 program killed by signal 9");
    j.dest = "exit 0"; /* does not read its input: fine */
    expect(run(f, &j, &status), DELIV_OK, &status, "2.0.0 ");
    j.dest = "yes | head -c 100000; exit 3"; /* lots of output: bounded */
    enum deliv_result r = run(f, &j, &status);
    assert_int_equal(r, DELIV_FAIL);
    assert_true(strlen(status) < 600);
    free(status);
}

static void test_pipe_timeout(void **state)
{
    struct fx *f = *state;
    char *status;
    char *cmd = xasprintf("sleep 30 & sleep 30; touch '%s/late'", f->out);
    struct local_job j = job(f, T_PIPE, cmd, f->id.name);
    j.timeout_ms = 500;
    expect(run(f, &j, &status), DELIV_DEFER, &status, "4.3.0 program timed out");
    free(cmd);
}

static void test_pipe_as_config_user(void **state)
{
    struct fx *f = *state;
    char *status;
    char *cmd = xasprintf("id -u > '%s/uid'", f->out);
    struct local_job j = job(f, T_PIPE, cmd, NULL); /* from the aliases file */
    expect(run(f, &j, &status), DELIV_OK, &status, "2.0.0 ");
    char *path = xasprintf("%s/uid", f->out);
    char *uid = slurp(path);
    char *want = xasprintf("%lu\n", (unsigned long)f->id.uid);
    assert_string_equal(uid, want);
    free(path);
    free(uid);
    free(want);
    free(cmd);
}

/* ---- files ---- */

static void test_file(void **state)
{
    struct fx *f = *state;
    char *status;
    char *path = xasprintf("%s/archive", f->out);
    struct local_job j = job(f, T_FILE, path, f->id.name);
    expect(run(f, &j, &status), DELIV_OK, &status, "2.0.0 ");
    char *text = slurp(path);
    assert_true(strncmp(text, "From alice@example.org ", 23) == 0);
    assert_non_null(strstr(text, "\n>From here\nbody\n\n"));
    free(text);
    struct stat st;
    assert_int_equal(lstat(path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    assert_int_equal(st.st_uid, f->id.uid);

    char *link = xasprintf("%s/link", f->out);
    assert_int_equal(symlink(path, link), 0);
    j.dest = link;
    expect(run(f, &j, &status), DELIV_FAIL, &status, "5.2.0 ");
    j.dest = "/dev/null";
    expect(run(f, &j, &status), DELIV_OK, &status, "2.0.0 discarded");
    j.dest = "relative/file";
    expect(run(f, &j, &status), DELIV_FAIL, &status, "5.3.5 ");
    free(link);
    free(path);
}

/* ---- privs ---- */

static void test_privs_lookup(void **state)
{
    (void)state;
    struct ident id;
    assert_int_equal(privs_lookup("root", &id), 0);
    assert_int_equal(id.uid, 0);
    privs_free(&id);
    assert_int_equal(privs_lookup("RooT", &id), 0); /* case-insensitive fallback */
    assert_int_equal(id.uid, 0);
    assert_string_equal(id.name, "root");
    privs_free(&id);
    assert_int_equal(privs_lookup("no-such-user-po", &id), 1);
    assert_int_equal(privs_lookup("", &id), 1);
}

static void test_privs_become(void **state)
{
    struct fx *f = *state;
    struct ident r = {.uid = 0, .gid = 0, .name = (char *)"root"};
    errno = 0;
    assert_int_equal(privs_become(&r, (gid_t)-1), -1);
    assert_int_equal(errno, EPERM);

    struct ident nobody;
    assert_non_null(someone_else(f));
    assert_int_equal(privs_lookup(someone_else(f), &nobody), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        gid_t extra = 8; /* "mail" on Debian; any gid serves */
        if (!root()) /* unprivileged: ourselves yes, anyone else no */
            _exit(privs_become(&f->id, (gid_t)-1) == 0 && privs_become(&nobody, extra) < 0 &&
                  errno == EPERM ? 0 : 1);
        if (privs_become(&f->id, extra) < 0)
            _exit(2);
        gid_t g[64];
        int n = getgroups(64, g), has_extra = 0, has_root = 0;
        for (int i = 0; i < n; i++) {
            has_extra |= g[i] == extra;
            has_root |= g[i] == 0;
        }
        if (getuid() != f->id.uid || geteuid() != f->id.uid || getgid() != f->id.gid ||
            !has_extra || has_root)
            _exit(3);
        if (setuid(0) == 0 || seteuid(0) == 0 || setgid(0) == 0)
            _exit(4);
        _exit(0);
    }
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        fail_msg("privs_become check failed in the child: status %d", WEXITSTATUS(st));
    privs_free(&nobody);

    pid = fork();
    if (pid == 0)
        _exit(privs_drop_to(f->id.name) == 0 && geteuid() == f->id.uid ? 0 : 1);
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_mbox), T(test_mbox_batch),
        T(test_mbox_case_insensitive),
        T(test_root), T(test_planted),
        T(test_unknown_and_bad_names),
        T(test_not_root_defers),
        T(test_spool_world_writable),
        T(test_spool_group_writable),
        T(test_pipe_environment),
        T(test_pipe_results),
        T(test_pipe_timeout),
        T(test_pipe_as_config_user),
        T(test_file),
        T(test_privs_lookup),
        T(test_privs_become),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
