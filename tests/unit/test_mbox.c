/* test_mbox.c - appending to mbox files: creation, escaping, the refusals
 * (symlink, hard link, owner, non-regular: a mailbox defers, a file named in
 * an alias fails), truncation after a failed write, the dot-lock and fcntl
 * lock, stale, dead and foreign dot-locks (a dead locker's fragment is cut
 * away), and a real reader (python3 mailbox) agreeing. */
#include "compat.h"

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "mbox.h"
#include "data_fixture.h"
#include "util.h"

struct fx {
    char dir[64];
    char *box;
    int datafd;
};

static int data_file(const char *text)
{
    return fixture_data_file(text, strlen(text));
}

static int setup(void **state)
{
    struct fx *f = xcalloc(1, sizeof *f);
    str_copy(f->dir, "/tmp/po-mbox-XXXXXX", sizeof f->dir);
    if (mkdtemp(f->dir) == NULL)
        return -1;
    f->box = xasprintf("%s/user", f->dir);
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
    free(f->box);
    close(f->datafd);
    free(f);
    return 0;
}

static enum deliv_result deliver(struct fx *f, const char *path, int datafd, char **status)
{
    struct mbox_req r = {.path = path, .owner = geteuid(), .sender = "alice@example.org",
                         .rcpt = "user@here", .data = fixture_md(datafd), .escape_from = 1,
                         .lock_wait_ms = 0, .new_uid = (uid_t)-1, .new_gid = (gid_t)-1,
                         .mail_gid = (gid_t)-1};
    (void)f;
    return mbox_deliver(&r, status);
}

/* The same into a file named in an alias: no owner rule. */
static enum deliv_result deliver_file(const char *path, int datafd, char **status)
{
    struct mbox_req r = {.path = path, .owner = (uid_t)-1, .sender = "a@x", .rcpt = "f@here",
                         .data = fixture_md(datafd), .escape_from = 1, .new_uid = (uid_t)-1,
                         .new_gid = (gid_t)-1, .mail_gid = (gid_t)-1};
    return mbox_deliver(&r, status);
}

/* status starts with prefix and contains text; freed */
static void expect_status(char *status, const char *prefix, const char *text)
{
    if (strncmp(status, prefix, strlen(prefix)) != 0 || strstr(status, text) == NULL)
        fail_msg("status \"%s\", want \"%s...%s...\"", status, prefix, text);
    free(status);
}

static char *slurp(const char *path)
{
    struct buf b;
    buf_init(&b);
    assert_int_equal(read_file(path, &b, 1 << 24), 0);
    return buf_steal(&b);
}

/* What python3's mailbox module reads: one line per message. */
static char *python_view(const char *path)
{
    char *cmd = xasprintf(
        "/usr/bin/python3 -c 'import mailbox,sys\n"
        "for m in mailbox.mbox(sys.argv[1]):\n"
        "    print(m.get_from().split()[0], m[\"Return-Path\"], m[\"Delivered-To\"],"
        " m[\"Subject\"], repr(m.get_payload()))' '%s'", path);
    FILE *p = popen(cmd, "r");
    struct buf b;
    char tmp[512];
    size_t n;
    assert_non_null(p);
    buf_init(&b);
    while ((n = fread(tmp, 1, sizeof tmp, p)) > 0)
        buf_add(&b, tmp, n);
    assert_int_equal(pclose(p), 0);
    free(cmd);
    return buf_steal(&b);
}

static void test_new_and_append(void **state)
{
    struct fx *f = *state;
    char *status;
    struct stat st;

    assert_int_equal(deliver(f, f->box, f->datafd, &status), DELIV_OK);
    assert_true(strncmp(status, "2.0.0 ", 6) == 0);
    free(status);
    assert_int_equal(lstat(f->box, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    assert_int_equal(st.st_uid, geteuid());

    int d2 = data_file("Subject: two\n\nbody 2"); /* no final newline */
    assert_int_equal(deliver(f, f->box, d2, &status), DELIV_OK);
    free(status);
    close(d2);

    char *text = slurp(f->box);
    assert_true(strncmp(text, "From alice@example.org ", 23) == 0);
    assert_non_null(strstr(text, "\nReturn-Path: <alice@example.org>\nDelivered-To: user@here\n"
                                 "Subject: one\n\n>From the start\nline two\n\nFrom alice"));
    size_t n = strlen(text);
    assert_true(n > 2 && strcmp(text + n - 9, "\nbody 2\n\n") == 0);
    free(text);

    /* procmail's formail splits it the same way */
    char *cmd = xasprintf("formail -s sh -c 'cat >/dev/null; echo m' < '%s'", f->box);
    FILE *p = popen(cmd, "r");
    char line[64];
    int msgs = 0;
    assert_non_null(p);
    while (fgets(line, sizeof line, p))
        msgs++;
    assert_int_equal(pclose(p), 0);
    assert_int_equal(msgs, 2);
    free(cmd);

    char *view = python_view(f->box);
    assert_string_equal(view,
                        "alice@example.org <alice@example.org> user@here one "
                        "'>From the start\\nline two\\n'\n"
                        "alice@example.org <alice@example.org> user@here two 'body 2\\n'\n");
    free(view);
}

/* A mailbox another program left without the final empty line (or newline)
 * is completed so the next "From " still starts a message. */
static void test_incomplete_tail(void **state)
{
    struct fx *f = *state;
    char *status;
    int fd = open(f->box, O_WRONLY | O_CREAT | O_EXCL, 0600);
    assert_true(fd >= 0);
    const char *old = "From x Thu Jan  1 00:00:00 1970\nSubject: old\n\nno newline";
    assert_int_equal(write_all(fd, old, strlen(old)), 0);
    close(fd);
    assert_int_equal(deliver(f, f->box, f->datafd, &status), DELIV_OK);
    free(status);
    char *view = python_view(f->box);
    assert_non_null(strstr(view, "x None None old 'no newline\\n'\n"));
    assert_non_null(strstr(view, "\nalice@example.org <alice@example.org> user@here one"));
    free(view);
}

static void test_symlink_refused(void **state)
{
    struct fx *f = *state;
    char *status;
    char *target = xasprintf("%s/target", f->dir);
    int fd = open(target, O_WRONLY | O_CREAT, 0600);
    close(fd);
    assert_int_equal(symlink(target, f->box), 0);
    /* a mailbox: planted in a shared spool, the mail waits (no bounce) */
    assert_int_equal(deliver(f, f->box, f->datafd, &status), DELIV_DEFER);
    expect_status(status, "4.2.0 ", "is a symbolic link: remove it");
    /* a file named in an alias: the alias is wrong */
    assert_int_equal(deliver_file(f->box, f->datafd, &status), DELIV_FAIL);
    expect_status(status, "5.2.0 ", "symbolic link");
    struct stat st;
    assert_int_equal(stat(target, &st), 0);
    assert_int_equal(st.st_size, 0);
    /* a dangling symlink is not followed to create its target either */
    unlink(target);
    assert_int_equal(deliver(f, f->box, f->datafd, &status), DELIV_DEFER);
    free(status);
    assert_int_equal(deliver_file(f->box, f->datafd, &status), DELIV_FAIL);
    free(status);
    assert_int_equal(stat(target, &st), -1);
    char *lock = xasprintf("%s.lock", f->box);
    assert_int_equal(access(lock, F_OK), -1); /* no dot-lock left behind */
    free(lock);
    free(target);
}

static void test_hardlink_refused(void **state)
{
    struct fx *f = *state;
    char *status;
    char *other = xasprintf("%s/other", f->dir);
    int fd = open(other, O_WRONLY | O_CREAT, 0600);
    close(fd);
    assert_int_equal(link(other, f->box), 0);
    assert_int_equal(deliver(f, f->box, f->datafd, &status), DELIV_DEFER);
    expect_status(status, "4.2.0 ", "has 2 hard links: remove it");
    assert_int_equal(deliver_file(f->box, f->datafd, &status), DELIV_FAIL);
    expect_status(status, "5.2.0 ", "hard links");
    struct stat st;
    assert_int_equal(stat(other, &st), 0);
    assert_int_equal(st.st_size, 0);
    free(other);
}

/* A FIFO (nobody reading it) or a directory: deferred at once, never
 * opened for writing (that would block). */
static void test_not_regular_refused(void **state)
{
    struct fx *f = *state;
    char *status;
    assert_int_equal(mkfifo(f->box, 0600), 0);
    long long t0 = now_ms();
    assert_int_equal(deliver(f, f->box, f->datafd, &status), DELIV_DEFER);
    expect_status(status, "4.2.0 ", "is a FIFO, not a regular file: remove it");
    assert_int_equal(deliver_file(f->box, f->datafd, &status), DELIV_FAIL);
    expect_status(status, "5.2.0 ", "not a regular file");
    assert_true(now_ms() - t0 < 2000);
    unlink(f->box);
    assert_int_equal(mkdir(f->box, 0700), 0);
    assert_int_equal(deliver(f, f->box, f->datafd, &status), DELIV_DEFER);
    expect_status(status, "4.2.0 ", "is a directory, not a regular file");
}

static void test_wrong_owner_refused(void **state)
{
    struct fx *f = *state;
    char *status;
    int fd = open(f->box, O_WRONLY | O_CREAT, 0600);
    close(fd);
    /* the recipient is somebody else than the file's owner */
    struct mbox_req r = {.path = f->box, .owner = geteuid() + 1, .sender = "",
                         .rcpt = "x", .data = fixture_md(f->datafd), .escape_from = 1,
                         .new_uid = (uid_t)-1, .new_gid = (gid_t)-1, .mail_gid = (gid_t)-1};
    assert_int_equal(mbox_deliver(&r, &status), DELIV_DEFER);
    expect_status(status, "4.2.0 ", "not to the recipient");
    if (geteuid() != 0) {
        print_message("skipped the chown-to-nobody half: needs root\n");
        return;
    }
    /* root: a mailbox really owned by nobody, delivered for root */
    assert_int_equal(chown(f->box, 65534, 65534), 0);
    assert_int_equal(deliver(f, f->box, f->datafd, &status), DELIV_DEFER);
    free(status);
    struct stat st;
    assert_int_equal(stat(f->box, &st), 0);
    assert_int_equal(st.st_size, 0);
}

/* A write that fails half-way (file size limit) leaves the mailbox exactly as
 * it was. */
static void test_truncate_on_failure(void **state)
{
    struct fx *f = *state;
    char *status;
    assert_int_equal(deliver(f, f->box, f->datafd, &status), DELIV_OK);
    free(status);
    char *before = slurp(f->box);
    struct buf big;
    buf_init(&big);
    buf_adds(&big, "Subject: big\n\n");
    while (big.len < 200000)
        buf_adds(&big, "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde\n");
    int bigfd = data_file(big.s);
    buf_free(&big);

    int p[2];
    assert_int_equal(pipe(p), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct rlimit rl = {.rlim_cur = (rlim_t)strlen(before) + 1000,
                            .rlim_max = (rlim_t)strlen(before) + 1000};
        signal(SIGXFSZ, SIG_IGN);
        setrlimit(RLIMIT_FSIZE, &rl);
        char *st2;
        enum deliv_result r = deliver(f, f->box, bigfd, &st2);
        char *line = xasprintf("%d %s", (int)r, st2);
        (void)write_all(p[1], line, strlen(line));
        _exit(0);
    }
    close(p[1]);
    char res[512] = "";
    ssize_t n = read_all(p[0], res, sizeof res - 1);
    res[n > 0 ? n : 0] = '\0';
    close(p[0]);
    waitpid(pid, NULL, 0);
    close(bigfd);
    assert_true(strncmp(res, "1 4.2.2 ", 8) == 0);
    char *after = slurp(f->box);
    assert_string_equal(after, before);
    free(before);
    free(after);
}

/* A child holds a lock (dot-lock, fcntl, or both) until told to let go. */
static pid_t hold_lock(const char *box, int dot, int kernel, int *release)
{
    int ready[2], go[2];
    assert_int_equal(pipe(ready), 0);
    assert_int_equal(pipe(go), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char c;
        if (dot)
            close(open(xasprintf("%s.lock", box), O_WRONLY | O_CREAT | O_EXCL, 0600));
        int fd = open(box, O_RDWR | O_CREAT, 0600);
        if (kernel) {
            struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
            fcntl(fd, F_SETLKW, &fl);
        }
        (void)write_all(ready[1], "r", 1);
        (void)read_all(go[0], &c, 1);
        if (dot)
            unlink(xasprintf("%s.lock", box));
        _exit(0);
    }
    char c;
    close(ready[1]);
    close(go[0]);
    assert_int_equal(read_all(ready[0], &c, 1), 1);
    close(ready[0]);
    *release = go[1];
    return pid;
}

static void lock_case(struct fx *f, int dot, int kernel)
{
    int release;
    pid_t holder = hold_lock(f->box, dot, kernel, &release);
    pid_t d = fork();
    assert_true(d >= 0);
    if (d == 0) {
        char *status;
        _exit(deliver(f, f->box, f->datafd, &status) == DELIV_OK ? 0 : 1);
    }
    /* while the lock is held nothing may be written and the delivery waits */
    poll(NULL, 0, 600);
    int st;
    assert_int_equal(waitpid(d, &st, WNOHANG), 0);
    struct stat sb;
    assert_int_equal(stat(f->box, &sb), 0);
    assert_int_equal(sb.st_size, 0);
    (void)write_all(release, "g", 1);
    close(release);
    waitpid(holder, NULL, 0);
    assert_int_equal(waitpid(d, &st, 0), d);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    assert_int_equal(stat(f->box, &sb), 0);
    assert_true(sb.st_size > 0);
    char *lock = xasprintf("%s.lock", f->box);
    assert_int_equal(access(lock, F_OK), -1); /* our dot-lock is gone again */
    free(lock);
}

static void test_waits_for_dotlock(void **state) { lock_case(*state, 1, 0); }
static void test_waits_for_fcntl_lock(void **state) { lock_case(*state, 0, 1); }

static void test_lock_timeout_defers(void **state)
{
    struct fx *f = *state;
    int release;
    pid_t holder = hold_lock(f->box, 1, 1, &release);
    char *status;
    struct mbox_req r = {.path = f->box, .owner = geteuid(), .sender = "", .rcpt = "x",
                         .data = fixture_md(f->datafd), .escape_from = 1, .lock_wait_ms = 300,
                         .new_uid = (uid_t)-1, .new_gid = (gid_t)-1, .mail_gid = (gid_t)-1};
    assert_int_equal(mbox_deliver(&r, &status), DELIV_DEFER);
    assert_non_null(strstr(status, "4.2.0 "));
    free(status);
    (void)write_all(release, "g", 1);
    close(release);
    waitpid(holder, NULL, 0);
}

static void test_stale_dotlock_removed(void **state)
{
    struct fx *f = *state;
    char *lock = xasprintf("%s.lock", f->box);
    close(open(lock, O_WRONLY | O_CREAT | O_EXCL, 0600));
    struct timespec old[2] = {{.tv_sec = time(NULL) - 2 * MBOX_STALE_LOCK},
                              {.tv_sec = time(NULL) - 2 * MBOX_STALE_LOCK}};
    assert_int_equal(utimensat(AT_FDCWD, lock, old, 0), 0);
    char *status;
    assert_int_equal(deliver(f, f->box, f->datafd, &status), DELIV_OK);
    free(status);
    assert_int_equal(access(lock, F_OK), -1);
    free(lock);
}

/* Root's empty dot-lock: a delivery killed between making it and writing its
 * PID.  Stale after MBOX_EMPTY_LOCK seconds, not MBOX_STALE_LOCK. */
static void test_empty_own_dotlock_removed(void **state)
{
    struct fx *f = *state;
    if (geteuid() != 0)
        skip();
    char *lock = xasprintf("%s.lock", f->box);
    close(open(lock, O_WRONLY | O_CREAT | O_EXCL, 0600));
    struct timespec old[2] = {{.tv_sec = time(NULL) - MBOX_EMPTY_LOCK - 1},
                              {.tv_sec = time(NULL) - MBOX_EMPTY_LOCK - 1}};
    assert_int_equal(utimensat(AT_FDCWD, lock, old, 0), 0);
    char *status;
    assert_int_equal(deliver(f, f->box, f->datafd, &status), DELIV_OK);
    free(status);
    assert_int_equal(access(lock, F_OK), -1);
    free(lock);
}

static void test_prepend_sanitised(void **state)
{
    (void)state;
    char *p = mbox_prepend("a\nX-Evil: 1@b", "r\r\nBcc: x");
    assert_string_equal(p, "Return-Path: <a?X-Evil: 1@b>\nDelivered-To: r??Bcc: x\n");
    free(p);
    p = mbox_prepend("", NULL);
    assert_string_equal(p, "Return-Path: <>\n");
    free(p);
}

/* Several messages under one lock: each gets its own From_ line and headers,
 * python3's mailbox reads them all, each has its own result. */
static void test_many(void **state)
{
    struct fx *f = *state;
    int d2 = data_file("Subject: two\n\nsecond\n");
    struct mbox_req r = {.path = f->box, .owner = geteuid(), .escape_from = 1,
                         .new_uid = (uid_t)-1, .new_gid = (gid_t)-1, .mail_gid = (gid_t)-1};
    struct mbox_msg m[3] = {
        {.sender = "a@x", .rcpt = "u1@here", .data = fixture_md(f->datafd)},
        {.sender = "", .rcpt = "u2@here", .data = fixture_md(d2)},
        {.sender = "c@x", .rcpt = "u3@here", .data = fixture_md(f->datafd)},
    };
    mbox_deliver_many(&r, m, 3);
    for (int k = 0; k < 3; k++) {
        assert_int_equal(m[k].res, DELIV_OK);
        assert_non_null(strstr(m[k].status, "2.0.0"));
        free(m[k].status);
    }
    char *v = python_view(f->box);
    assert_string_equal(v,
        "a@x <a@x> u1@here one '>From the start\\nline two\\n'\n"
        "MAILER-DAEMON <> u2@here two 'second\\n'\n"
        "c@x <c@x> u3@here one '>From the start\\nline two\\n'\n");
    free(v);
    close(d2);
}

/* A read error on the second message: the first stays (synced), the second is
 * cut away, the second and third are deferred with the error. */
static void test_many_error_midway(void **state)
{
    struct fx *f = *state;
    struct mbox_req r = {.path = f->box, .owner = geteuid(), .escape_from = 1,
                         .new_uid = (uid_t)-1, .new_gid = (gid_t)-1, .mail_gid = (gid_t)-1};
    struct mbox_msg m[3] = {
        {.sender = "a@x", .rcpt = "u1@here", .data = fixture_md(f->datafd)},
        {.sender = "b@x", .rcpt = "u2@here", .data = {987, 0, 100}},  /* not open: EBADF */
        {.sender = "c@x", .rcpt = "u3@here", .data = fixture_md(f->datafd)},
    };
    mbox_deliver_many(&r, m, 3);
    assert_int_equal(m[0].res, DELIV_OK);
    assert_int_equal(m[1].res, DELIV_DEFER);
    assert_int_equal(m[2].res, DELIV_DEFER);
    assert_non_null(strstr(m[1].status, "4.3.0"));
    assert_string_equal(m[1].status, m[2].status);
    for (int k = 0; k < 3; k++)
        free(m[k].status);
    char *v = python_view(f->box);
    assert_string_equal(v, "a@x <a@x> u1@here one '>From the start\\nline two\\n'\n");
    free(v);
}

static struct mbox_req box_req(struct fx *f)
{
    return (struct mbox_req){.path = f->box, .owner = geteuid(), .sender = "b@x",
                             .rcpt = "user@here", .data = fixture_md(f->datafd), .escape_from = 1,
                             .new_uid = (uid_t)-1, .new_gid = (gid_t)-1,
                             .mail_gid = (gid_t)-1, .lock_wait_ms = 300};
}

static const char FRAGMENT[] = "From frag@x Thu Jan  1 00:00:00 1970\nSubject: frag\n\npartial";

/* The locker keeps the size: a writer killed half-way (here a child that
 * writes through the inherited descriptor and dies) is cut back by it. */
static void test_killed_writer_cut_back(void **state)
{
    struct fx *f = *state;
    char *status;
    assert_int_equal(deliver(f, f->box, f->datafd, &status), DELIV_OK);
    free(status);
    char *before = slurp(f->box);
    struct mbox_req r = box_req(f);
    struct mbox_box b;
    assert_int_equal(mbox_open(&r, &b, &status), DELIV_OK);
    assert_int_equal(b.size, (off_t)strlen(before));
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        (void)write_all(b.fd, FRAGMENT, strlen(FRAGMENT));
        kill(getpid(), SIGKILL);
    }
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFSIGNALED(st));
    mbox_close(&r, &b, 1);
    char *after = slurp(f->box);
    assert_string_equal(after, before);
    char *lock = xasprintf("%s.lock", f->box);
    assert_int_equal(access(lock, F_OK), -1);
    free(lock);
    free(before);
    free(after);
}

/* The locker itself dies with a fragment in the file: its dot-lock says
 * "postoffice PID SIZE DEV INO", and the next delivery, finding PID gone,
 * cuts the fragment away before appending.  Touching the lock does not keep
 * it: only a live PID does. */
static void test_dead_locker_cut_back(void **state)
{
    struct fx *f = *state;
    char *status;
    assert_int_equal(deliver(f, f->box, f->datafd, &status), DELIV_OK);
    free(status);
    char *lock = xasprintf("%s.lock", f->box);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct mbox_req r = box_req(f);
        struct mbox_box b;
        if (mbox_open(&r, &b, &status) != DELIV_OK)
            _exit(2);
        (void)write_all(b.fd, FRAGMENT, strlen(FRAGMENT));
        _exit(0); /* dies holding the dot-lock */
    }
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    char *info = slurp(lock);
    char *want = xasprintf("postoffice %ld ", (long)pid);
    assert_true(strncmp(info, want, strlen(want)) == 0);
    assert_int_equal(utimensat(AT_FDCWD, lock, NULL, 0), 0); /* touched: still stale */
    long long t0 = now_ms();
    assert_int_equal(deliver(f, f->box, f->datafd, &status), DELIV_OK);
    free(status);
    assert_true(now_ms() - t0 < 2000);
    char *view = python_view(f->box);
    assert_string_equal(view,
                        "alice@example.org <alice@example.org> user@here one "
                        "'>From the start\\nline two\\n'\n"
                        "alice@example.org <alice@example.org> user@here one "
                        "'>From the start\\nline two\\n'\n");
    assert_int_equal(access(lock, F_OK), -1);
    free(view);
    free(want);
    free(info);
    free(lock);
}

/* A live locker's dot-lock is respected, however it was touched: the
 * delivery defers after lock_wait_ms (4.2.0), and nothing is cut. */
static void test_live_locker_defers(void **state)
{
    struct fx *f = *state;
    char *status;
    int go[2];
    assert_int_equal(pipe(go), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct mbox_req r = box_req(f);
        struct mbox_box b;
        char c;
        close(go[1]);
        if (mbox_open(&r, &b, &status) != DELIV_OK)
            _exit(2);
        (void)write_all(b.fd, FRAGMENT, strlen(FRAGMENT));
        (void)read_all(go[0], &c, 1);
        _exit(0);
    }
    close(go[0]);
    char *lock = xasprintf("%s.lock", f->box);
    for (int i = 0; i < 200; i++) { /* the file has the fragment once the child is done */
        struct stat st;
        if (stat(f->box, &st) == 0 && st.st_size == (off_t)strlen(FRAGMENT))
            break;
        poll(NULL, 0, 10);
    }
    struct mbox_req r = box_req(f);
    assert_int_equal(mbox_deliver(&r, &status), DELIV_DEFER);
    expect_status(status, "4.2.0 ", "other deliveries held the mailbox for ");
    struct stat st;
    assert_int_equal(stat(f->box, &st), 0);
    assert_int_equal(st.st_size, (off_t)strlen(FRAGMENT));
    close(go[1]);
    waitpid(pid, NULL, 0);
    free(lock);
}

/* Our own writers' dot-locks, one after another: a child renames a new lock
 * of its own over the last one every `ms' milliseconds, each noting a size as
 * a writer does, so the lock never goes away until it has made `turns' of them.
 * Returns the child; it ends by removing the lock. */
static pid_t writers_take_turns(const char *box, int turns, int ms)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid != 0)
        return pid;
    char *lock = xasprintf("%s.lock", box), *tmp = xasprintf("%s.lock.next", box);
    for (int i = 0; i < turns; i++) {
        FILE *fp = fopen(tmp, "w");
        if (!fp)
            _exit(2);
        fprintf(fp, "postoffice %ld %d 1 %d\n", (long)getpid(), i, i + 1);
        if (fclose(fp) != 0 || rename(tmp, lock) != 0)
            _exit(2);
        poll(NULL, 0, ms);
    }
    unlink(lock);
    _exit(0);
}

static void wait_for_file(const char *path)
{
    for (int i = 0; i < 500 && access(path, F_OK) < 0; i++)
        poll(NULL, 0, 2);
    assert_int_equal(access(path, F_OK), 0);
}

/* Our deliveries taking turns at a mailbox for longer than lock_wait_ms: the
 * waiter goes on waiting (up to busy_wait_ms) instead of deferring the
 * message to the next queue run; then it delivers. */
static void test_waits_while_our_writers_take_turns(void **state)
{
    struct fx *f = *state;
    char *status, *lock = xasprintf("%s.lock", f->box);
    pid_t turns = writers_take_turns(f->box, 12, 200); /* about 2.4 s in all */
    wait_for_file(lock);
    struct mbox_req r = box_req(f);
    r.lock_wait_ms = 1000; /* room for a loaded machine between two turns */
    r.busy_wait_ms = 10000;
    long long t0 = now_ms();
    assert_int_equal(mbox_deliver(&r, &status), DELIV_OK);
    free(status);
    assert_true(now_ms() - t0 >= 2000);
    int st;
    assert_int_equal(waitpid(turns, &st, 0), turns);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    struct stat sb;
    assert_int_equal(stat(f->box, &sb), 0);
    assert_true(sb.st_size > 0);
    free(lock);
}

/* ...but not past busy_wait_ms, and without busy_wait_ms (or behind one
 * writer that does not move on) no longer than lock_wait_ms. */
static void test_turns_are_bounded(void **state)
{
    struct fx *f = *state;
    char *status, *lock = xasprintf("%s.lock", f->box);
    struct mbox_req r = box_req(f);
    r.lock_wait_ms = 1000;
    static const struct { int turns, ms; long busy; long long min, max; } cases[] = {
        {50, 100, 2500, 2400, 4000},  /* turns for 5 s, 2.5 s allowed */
        {50, 100, 0, 950, 2500},      /* no busy_wait_ms: lock_wait_ms */
        {1, 6000, 10000, 950, 2500},  /* one writer holding on */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        pid_t turns = writers_take_turns(f->box, cases[i].turns, cases[i].ms);
        wait_for_file(lock);
        r.busy_wait_ms = cases[i].busy;
        long long t0 = now_ms();
        assert_int_equal(mbox_deliver(&r, &status), DELIV_DEFER);
        long long took = now_ms() - t0;
        expect_status(status, "4.2.0 ", "other deliveries held the mailbox");
        assert_true(took >= cases[i].min && took <= cases[i].max);
        kill(turns, SIGKILL);
        waitpid(turns, NULL, 0);
        unlink(lock);
    }
    struct stat sb;
    assert_true(stat(f->box, &sb) < 0 || sb.st_size == 0); /* nothing written */
    free(lock);
}

/* A dot-lock made by somebody who is neither the owner, root nor the mail
 * group (planted in a 1777 spool) is removed with a warning, not waited for;
 * one of the mail group is respected. */
static void test_foreign_lock_removed(void **state)
{
    struct fx *f = *state;
    char *status;
    if (geteuid() != 0) {
        print_message("skipped: needs root to plant a lock as another uid\n");
        skip();
    }
    char *lock = xasprintf("%s.lock", f->box);
    close(open(lock, O_WRONLY | O_CREAT | O_EXCL, 0600));
    assert_int_equal(chown(lock, 65534, 65534), 0);
    struct mbox_req r = box_req(f);
    r.lock_wait_ms = 3000;
    long long t0 = now_ms();
    assert_int_equal(mbox_deliver(&r, &status), DELIV_OK);
    free(status);
    assert_true(now_ms() - t0 < 1000);
    assert_int_equal(access(lock, F_OK), -1);
    /* the same lock, but of the spool's mail group: another mail program's */
    close(open(lock, O_WRONLY | O_CREAT | O_EXCL, 0600));
    assert_int_equal(chown(lock, 65534, 65534), 0);
    r.mail_gid = 65534;
    r.lock_wait_ms = 300;
    assert_int_equal(mbox_deliver(&r, &status), DELIV_DEFER);
    expect_status(status, "4.2.0 ", "held by another program");
    assert_int_equal(access(lock, F_OK), 0);
    free(lock);
}

static void test_world_writable_refused(void **state)
{
    struct fx *f = *state;
    char *status;
    int fd = open(f->box, O_WRONLY | O_CREAT, 0600);
    assert_int_equal(fchmod(fd, 0666), 0);
    close(fd);
    assert_int_equal(deliver(f, f->box, f->datafd, &status), DELIV_DEFER);
    expect_status(status, "4.2.0 ", "writable by everybody: chmod 600 it");
}

int main(void)
{

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_new_and_append),      T(test_incomplete_tail),
        T(test_symlink_refused),     T(test_hardlink_refused),
        T(test_not_regular_refused), T(test_wrong_owner_refused),
        T(test_truncate_on_failure), T(test_waits_for_dotlock),
        T(test_waits_for_fcntl_lock), T(test_lock_timeout_defers),
        T(test_stale_dotlock_removed), T(test_empty_own_dotlock_removed),
        T(test_prepend_sanitised),
        T(test_many),                T(test_many_error_midway),
        T(test_killed_writer_cut_back), T(test_dead_locker_cut_back),
        T(test_live_locker_defers),  T(test_foreign_lock_removed),
        T(test_world_writable_refused),
        T(test_waits_while_our_writers_take_turns), T(test_turns_are_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
