/* test_spool.c - the queue directory: enqueue, lock, record, rewrite, remove,
 * list, cleanup, crash leftovers, pickup from the maildrop, disk full. */
#include "compat.h"

#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "conf.h"
#include "queue_records.h"
#include "pickup.h"
#include "queue_file.h"
#include "spool.h"
#include "util.h"

struct fx {
    char dir[64];   /* private temp dir */
    char q[96];     /* dir/q: the queue */
};

static int setup(void **st)
{
    struct fx *f = xcalloc(1, sizeof *f);
    str_copy(f->dir, "/tmp/po-spool-XXXXXX", sizeof f->dir);
    if (!mkdtemp(f->dir))
        return -1;
    chmod(f->dir, 0711); /* pickup tests submit as another uid */
    snprintf(f->q, sizeof f->q, "%s/q", f->dir);
    if (spool_setup(f->q, getuid(), getgid()) < 0)
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
    free(f);
    return 0;
}

static int count_files(const char *dir, const char *prefix)
{
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *de;
    assert_non_null(d);
    while ((de = readdir(d)) != NULL)
        if (strncmp(de->d_name, prefix, strlen(prefix)) == 0)
            n++;
    closedir(d);
    return n;
}

static int file_exists(const char *dir, const char *prefix, const char *qid)
{
    char *p = xasprintf("%s/%s%s", dir, prefix, qid);
    struct stat st;
    int r = lstat(p, &st) == 0;
    free(p);
    return r;
}

/* Enqueue body with sender and n recipients r0@x.. into dir; qid into out. */
static int enqueue(const char *dir, const char *sender, int n, const char *body, char *out)
{
    struct envelope e;
    env_init(&e);
    free(e.sender);
    e.sender = xstrdup(sender);
    e.ctime = time(NULL);
    for (int i = 0; i < n; i++) {
        char a[32];
        snprintf(a, sizeof a, "r%d@example.org", i);
        env_add_rcpt(&e, a, NULL, NULL);
    }
    struct spool_new *sn = spool_new(dir);
    if (!sn)
        return -1;
    int r = spool_new_write(sn, body, strlen(body));
    if (r < 0) {
        spool_abort(sn);
    } else {
        r = spool_commit(sn, &e);
        if (r == 0 && out)
            str_copy(out, e.qid, QID_MAX);
    }
    env_free(&e);
    return r;
}

static void write_text(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write_all(fd, text, strlen(text)), 0);
    close(fd);
}

/* The data of an open message, read through spool_data (NUL-terminated). */
static char *data_of(struct qmsg *m)
{
    struct msgdata d = spool_data(m);
    assert_true(d.fd >= 0);
    char *p = xmalloc((size_t)d.len + 1);
    assert_int_equal(pread(d.fd, p, (size_t)d.len, (off_t)d.off), (ssize_t)d.len);
    p[d.len] = '\0';
    return p;
}

/* Is qid among the listed messages? */
static int listed(const char *q, const char *qid)
{
    struct strlist l;
    sl_init(&l);
    assert_int_equal(spool_list(q, &l), 0);
    int r = sl_contains(&l, qid);
    sl_free(&l);
    return r;
}

static void test_qid(void **st)
{
    (void)st;
    char prev[QID_MAX] = "";
    struct strlist seen;
    sl_init(&seen);
    for (int i = 0; i < 500; i++) {
        char q[QID_MAX];
        spool_make_qid(q);
        assert_true(spool_valid_qid(q));
        assert_int_equal(strlen(q), 18);
        assert_false(sl_contains(&seen, q));
        assert_true(strncmp(prev, q, 6) <= 0); /* seconds never go backwards */
        sl_add(&seen, q);
        str_copy(prev, q, sizeof prev);
    }
    sl_free(&seen);
    assert_false(spool_valid_qid(""));
    assert_false(spool_valid_qid("../etc"));
    assert_false(spool_valid_qid("abc def"));
    assert_false(spool_valid_qid("0123456789012345678901234567890123"));
}

static void test_setup_modes(void **st)
{
    struct fx *f = *st;
    struct stat s;
    char *p = xasprintf("%s/maildrop", f->q);
    assert_int_equal(stat(f->q, &s), 0);
    assert_int_equal(s.st_mode & 07777, 0711);
    assert_int_equal(stat(p, &s), 0);
    assert_int_equal(s.st_mode & 07777, 03733);
    free(p);
    p = xasprintf("%s/trigger", f->q);
    assert_int_equal(lstat(p, &s), 0);
    assert_true(S_ISFIFO(s.st_mode));
    free(p);
    /* idempotent, and repairs a mode of ours */
    assert_int_equal(chmod(f->q, 0700), 0);
    assert_int_equal(spool_setup(f->q, getuid(), getgid()), 0);
    assert_int_equal(stat(f->q, &s), 0);
    assert_int_equal(s.st_mode & 07777, 0711);
    /* something else in the way is an error */
    char *bad = xasprintf("%s/notadir", f->dir);
    write_text(bad, "x");
    assert_int_equal(spool_setup(bad, getuid(), getgid()), -1);
    assert_int_equal(errno, ENOTDIR);
    free(bad);
}

static void test_enqueue_commit(void **st)
{
    struct fx *f = *st;
    char qid[QID_MAX];
    assert_int_equal(enqueue(f->q, "alice@example.com", 2, "Subject: hi\n\nbody\n", qid), 0);
    assert_true(file_exists(f->q, "qf", qid));
    assert_int_equal(count_files(f->q, "t"), 1); /* only "trigger" */
    assert_int_equal(count_files(f->q, "df") + count_files(f->q, "cf"), 0);
    struct stat s;
    char *qf = xasprintf("%s/qf%s", f->q, qid);
    assert_int_equal(stat(qf, &s), 0);
    assert_int_equal(s.st_mode & 0777, 0600);
    /* one file: header with the length, the data, the control records, the
     * end line with its checksum */
    struct buf b;
    buf_init(&b);
    assert_int_equal(read_file(qf, &b, 1 << 20), 0);
    assert_int_equal(b.len, s.st_size);
    assert_memory_equal(b.s, "POQ2 0000000000000012\nSubject: hi\n\nbody\nV1\nQ", 42);
    assert_non_null(strstr(b.s, "\nR1 P 0 r1@example.org\n. "));
    assert_int_equal(b.s[b.len - QF_END_LEN], '.');
    assert_int_equal(b.s[b.len - 1], '\n');
    buf_free(&b);
    free(qf);

    struct envelope e;
    long long size;
    env_init(&e);
    assert_int_equal(spool_peek(f->q, qid, &e, &size), 0);
    assert_int_equal(size, 18);
    assert_string_equal(e.sender, "alice@example.com");
    assert_int_equal(e.nrcpts, 2);
    assert_string_equal(e.qid, qid);
    env_free(&e);

    struct strlist l;
    sl_init(&l);
    assert_int_equal(spool_list(f->q, &l), 0);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.v[0], qid);
    sl_free(&l);
}

static void test_abort_and_failed_write(void **st)
{
    struct fx *f = *st;
    struct spool_new *sn = spool_new(f->q);
    assert_non_null(sn);
    assert_int_equal(spool_new_write(sn, "abc", 3), 0);
    assert_int_equal(count_files(f->q, "tf"), 1);
    spool_abort(sn);
    assert_int_equal(count_files(f->q, "tf"), 0);
    assert_int_equal(count_files(f->q, "qf"), 0);
}

static void test_lazy_records(void **st)
{
    struct fx *f = *st;
    char qid[QID_MAX];
    struct qmsg *m;
    assert_int_equal(enqueue(f->q, "", 2, "x\n", qid), 0);
    assert_int_equal(spool_open(f->q, qid, &m), 0);
    spool_set_lazy(m, 1);
    assert_int_equal(spool_record(m, 0, RS_DONE, "2.0.0 sent", "mx.example.org"), 0);
    assert_int_equal(spool_sync(m), 0);
    assert_int_equal(spool_sync(m), 0); /* nothing new: a no-op */
    assert_int_equal(spool_record(m, 1, RS_PENDING, "4.4.1 later", NULL), 0);
    spool_close(m); /* syncs what is left */
    assert_int_equal(spool_open(f->q, qid, &m), 0);
    assert_int_equal(spool_env(m)->rcpts[0].state, RS_DONE);
    assert_string_equal(spool_env(m)->rcpts[1].status, "4.4.1 later");
    /* results that finish the message: removed without a sync */
    spool_set_lazy(m, 1);
    assert_int_equal(spool_record(m, 1, RS_DONE, "2.0.0 sent", NULL), 0);
    assert_int_equal(spool_remove(m), 0);
    spool_close(m);
    assert_false(file_exists(f->q, "qf", qid));
}

/* A deferral's back-off is appended (no rewrite: same inode), read back on
 * the next open; every SPOOL_RETRY_COMPACT-th attempt rewrites the file. */
static void test_retry_appended(void **st)
{
    struct fx *f = *st;
    char qid[QID_MAX];
    struct qmsg *m;
    struct stat s0, s1;
    assert_int_equal(enqueue(f->q, "", 1, "x\n", qid), 0);
    char *qf = xasprintf("%s/qf%s", f->q, qid);
    assert_int_equal(stat(qf, &s0), 0);
    for (int a = 1; a < SPOOL_RETRY_COMPACT; a++) {
        assert_int_equal(spool_open(f->q, qid, &m), 0);
        assert_int_equal(spool_env(m)->attempts, a - 1);
        spool_env(m)->attempts = a;
        spool_env(m)->next_try = 1700000000 + a;
        assert_int_equal(spool_retry(m), 0);
        spool_close(m);
    }
    assert_int_equal(stat(qf, &s1), 0);
    assert_true(s1.st_ino == s0.st_ino); /* appended, never rewritten */
    assert_true(s1.st_size > s0.st_size);
    assert_int_equal(spool_open(f->q, qid, &m), 0);
    assert_int_equal(spool_env(m)->attempts, SPOOL_RETRY_COMPACT - 1);
    assert_int_equal((long long)spool_env(m)->next_try, 1700000000LL + SPOOL_RETRY_COMPACT - 1);
    spool_env(m)->attempts = SPOOL_RETRY_COMPACT;
    spool_env(m)->next_try = 1800000000;
    assert_int_equal(spool_retry(m), 0);
    spool_close(m);
    assert_int_equal(stat(qf, &s1), 0);
    assert_true(s1.st_ino != s0.st_ino); /* compacted by a rewrite */
    assert_true(s1.st_size < s0.st_size + 40);
    assert_int_equal(spool_open(f->q, qid, &m), 0);
    assert_int_equal(spool_env(m)->attempts, SPOOL_RETRY_COMPACT);
    assert_int_equal((long long)spool_env(m)->next_try, 1800000000LL);
    spool_close(m);
    free(qf);
}

static void test_open_record_reopen(void **st)
{
    struct fx *f = *st;
    char qid[QID_MAX];
    struct qmsg *m;
    assert_int_equal(enqueue(f->q, "", 3, "x\n", qid), 0);
    assert_int_equal(spool_open(f->q, qid, &m), 0);
    assert_int_equal(spool_data_size(m), 2);
    char *data = data_of(m);
    assert_string_equal(data, "x\n");
    free(data);
    assert_string_equal(spool_env(m)->sender, "");
    assert_int_equal(spool_record(m, 0, RS_DONE, "2.0.0 delivered", "mx.example.org"), 0);
    assert_int_equal(spool_record(m, 2, RS_PENDING, "4.2.1 mailbox busy\nDforged", NULL), 0);
    assert_int_equal(spool_record(m, 9, RS_DONE, NULL, NULL), -1);
    assert_int_equal(errno, EINVAL);
    assert_int_equal(spool_env(m)->rcpts[0].state, RS_DONE);
    spool_close(m);

    /* an interrupted append (no newline) is cut off at the next open */
    char *cf = xasprintf("%s/qf%s", f->q, qid);
    int fd = open(cf, O_WRONLY | O_APPEND);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "D1 D - 2.0", 10), 10);
    close(fd);
    assert_int_equal(spool_open(f->q, qid, &m), 0);
    struct envelope *e = spool_env(m);
    assert_int_equal(e->rcpts[0].state, RS_DONE);
    assert_string_equal(e->rcpts[0].remote_mta, "mx.example.org");
    assert_int_equal(e->rcpts[1].state, RS_PENDING);
    assert_null(e->rcpts[1].status);
    assert_string_equal(e->rcpts[2].status, "4.2.1 mailbox busy\nDforged");
    assert_int_equal(env_pending(e), 2);
    assert_int_equal(spool_record(m, 1, RS_FAILED, "5.1.1 no such user", NULL), 0);
    spool_close(m);
    struct buf b;
    buf_init(&b);
    assert_int_equal(read_file(cf, &b, 1 << 20), 0);
    assert_null(strstr(b.s, "2.0D1"));
    assert_non_null(strstr(b.s, "\nD1 F - 5.1.1 no such user\t"));
    buf_free(&b);
    assert_int_equal(spool_open(f->q, qid, &m), 0);
    assert_int_equal(spool_env(m)->rcpts[1].state, RS_FAILED);
    /* reload sees what another process (a delivery child) appended */
    fd = open(cf, O_WRONLY | O_APPEND);
    buf_init(&b);
    ctl_format_status(2, RS_DONE, "2.0.0 ok", NULL, &b);
    assert_int_equal(write(fd, b.s, b.len), (ssize_t)b.len);
    buf_free(&b);
    close(fd);
    assert_int_equal(spool_env(m)->rcpts[2].state, RS_PENDING);
    assert_int_equal(spool_reload(m), 0);
    assert_int_equal(spool_env(m)->rcpts[2].state, RS_DONE);
    assert_int_equal(env_pending(spool_env(m)), 0);
    spool_close(m);
    free(cf);
}

/* Status records carry their own checksum: one byte flipped in a record that
 * marks a recipient delivered leaves that recipient pending (delivered again,
 * never lost); records of the older format without a checksum still apply,
 * but not after one that had it. */
static void test_status_record_checksum(void **st)
{
    struct fx *f = *st;
    char qid[QID_MAX];
    struct qmsg *m;
    assert_int_equal(enqueue(f->q, "", 3, "x\n", qid), 0);
    assert_int_equal(spool_open(f->q, qid, &m), 0);
    assert_int_equal(spool_record(m, 0, RS_DONE, "2.0.0 delivered", NULL), 0);
    assert_int_equal(spool_record(m, 1, RS_DONE, "2.0.0 delivered", NULL), 0);
    spool_close(m);
    char *cf = xasprintf("%s/qf%s", f->q, qid);
    struct buf b;
    buf_init(&b);
    assert_int_equal(read_file(cf, &b, 1 << 20), 0);
    char *rec = strstr(b.s, "\nD1 D - 2.0.0 delivered\t");
    assert_non_null(rec);
    int fd = open(cf, O_WRONLY);
    assert_true(fd >= 0);
    off_t at = (off_t)(rec - b.s) + 12; /* the "0" of "2.0.0" */
    assert_int_equal(pwrite(fd, "1", 1, at), 1);
    close(fd);
    assert_int_equal(spool_open(f->q, qid, &m), 0);
    assert_int_equal(spool_env(m)->rcpts[0].state, RS_DONE);
    assert_int_equal(spool_env(m)->rcpts[1].state, RS_PENDING); /* ignored */
    spool_close(m);
    /* a legacy record (no checksum) after checksummed ones is damage too */
    fd = open(cf, O_WRONLY | O_APPEND);
    assert_int_equal(write(fd, "D2 D - 2.0.0 ok\n", 16), 16);
    close(fd);
    assert_int_equal(spool_open(f->q, qid, &m), 0);
    assert_int_equal(spool_env(m)->rcpts[2].state, RS_PENDING);
    spool_close(m);
    buf_free(&b);
    free(cf);

    /* a queue file written before status records had checksums */
    assert_int_equal(enqueue(f->q, "", 2, "y\n", qid), 0);
    cf = xasprintf("%s/qf%s", f->q, qid);
    fd = open(cf, O_WRONLY | O_APPEND);
    assert_int_equal(write(fd, "D0 D - 2.0.0 ok\nD1 F - 5.1.1 no\n", 32), 32);
    close(fd);
    assert_int_equal(spool_open(f->q, qid, &m), 0);
    assert_int_equal(spool_env(m)->rcpts[0].state, RS_DONE);
    assert_int_equal(spool_env(m)->rcpts[1].state, RS_FAILED);
    spool_close(m);
    free(cf);
}

/* Run fn in a child process; returns its exit status. */
static int in_child(int (*fn)(const char *, const char *), const char *q, const char *qid)
{
    pid_t p = fork();
    assert_true(p >= 0);
    if (p == 0)
        _exit(fn(q, qid));
    int status;
    assert_int_equal(waitpid(p, &status, 0), p);
    assert_true(WIFEXITED(status));
    return WEXITSTATUS(status);
}

/* exit 0 locked it, 1 busy, 2 error */
static int child_try_open(const char *q, const char *qid)
{
    struct qmsg *m;
    int r = spool_open(q, qid, &m);
    if (r == 0)
        spool_close(m);
    return r == 0 ? 0 : r == 1 ? 1 : 2;
}

static int child_locked(const char *q, const char *qid)
{
    return spool_locked(q, qid) + 10;
}

static void test_locking_two_processes(void **st)
{
    struct fx *f = *st;
    char qid[QID_MAX];
    struct qmsg *m;
    assert_int_equal(enqueue(f->q, "a@b", 2, "x\n", qid), 0);
    assert_int_equal(in_child(child_try_open, f->q, qid), 0);
    assert_int_equal(in_child(child_locked, f->q, qid), 10);
    assert_int_equal(spool_open(f->q, qid, &m), 0);
    assert_int_equal(in_child(child_try_open, f->q, qid), 1);
    assert_int_equal(in_child(child_locked, f->q, qid), 11);
    /* the lock survives a rewrite: the new inode is locked before the rename */
    env_add_rcpt(spool_env(m), "added@example.org", "r0@example.org", "bob");
    spool_env(m)->next_try = 12345;
    assert_int_equal(spool_rewrite(m), 0);
    assert_int_equal(in_child(child_try_open, f->q, qid), 1);
    assert_int_equal(spool_record(m, 2, RS_DONE, "2.0.0 ok", NULL), 0);
    spool_close(m);
    assert_int_equal(in_child(child_try_open, f->q, qid), 0);
    assert_int_equal(count_files(f->q, "t"), 1); /* no rewrite temp left */

    assert_int_equal(spool_open(f->q, qid, &m), 0);
    struct envelope *e = spool_env(m);
    assert_int_equal(e->nrcpts, 3);
    assert_string_equal(e->rcpts[2].owner, "bob");
    assert_int_equal(e->rcpts[2].state, RS_DONE);
    assert_int_equal(e->next_try, 12345);
    char *data = data_of(m); /* the rewrite kept the data */
    assert_string_equal(data, "x\n");
    free(data);
    assert_int_equal(spool_remove(m), 0);
    spool_close(m);
    assert_false(file_exists(f->q, "qf", qid));
    assert_int_equal(spool_open(f->q, qid, &m), -1);
    assert_int_equal(errno, ENOENT);
    assert_int_equal(spool_locked(f->q, qid), -1);
}

static void test_list_order_and_incomplete(void **st)
{
    struct fx *f = *st;
    char q1[QID_MAX], q2[QID_MAX], q3[QID_MAX];
    assert_int_equal(enqueue(f->q, "a@b", 1, "1\n", q1), 0);
    assert_int_equal(enqueue(f->q, "a@b", 1, "2\n", q2), 0);
    assert_int_equal(enqueue(f->q, "a@b", 1, "3\n", q3), 0);
    /* incomplete: no end line */
    char *p = xasprintf("%s/qf0000000000000000zz", f->q);
    write_text(p, "POQ1 0000000000000002\nx\nV1\nQ0000000000000000zz\nT1\nF\n");
    free(p);
    p = xasprintf("%s/qfbad.name", f->q);
    write_text(p, "V1\n.\n");
    free(p);
    struct strlist l;
    sl_init(&l);
    assert_int_equal(spool_list(f->q, &l), 0);
    assert_int_equal(l.n, 3);
    assert_true(strcmp(l.v[0], l.v[1]) < 0 && strcmp(l.v[1], l.v[2]) < 0);
    assert_true(sl_contains(&l, q1) && sl_contains(&l, q2) && sl_contains(&l, q3));
    sl_free(&l);
    struct qmsg *m;
    assert_int_equal(spool_open(f->q, "0000000000000000zz", &m), -1);
    assert_int_equal(errno, EINVAL);
    assert_int_equal(spool_open(f->q, "../../etc/passwd", &m), -1);
    assert_int_equal(errno, EINVAL);
}

/* A child that holds a write lock on path until killed (a live writer). */
static pid_t hold_lock(const char *path)
{
    int pfd[2];
    assert_int_equal(pipe(pfd), 0);
    pid_t p = fork();
    assert_true(p >= 0);
    if (p == 0) {
        int fd = open(path, O_RDWR);
        struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
        _exit(fd >= 0 && fcntl(fd, F_SETLK, &fl) == 0 && write(pfd[1], "x", 1) == 1 && pause()
                  ? 0 : 1);
    }
    char ch;
    assert_int_equal(read(pfd[0], &ch, 1), 1);
    close(pfd[0]);
    close(pfd[1]);
    return p;
}

static void stop(pid_t p)
{
    kill(p, SIGKILL);
    waitpid(p, NULL, 0);
}

/* Leftovers of crashed writers: temporaries, removed at once when unlocked. */
static void test_cleanup_temps(void **st)
{
    struct fx *f = *st;
    char qid[QID_MAX], *p;
    assert_int_equal(enqueue(f->q, "a@b", 1, "data\n", qid), 0);
    /* a crashed enqueue or rewrite: tf<qid>, no lock */
    p = xasprintf("%s/tf00000000000000001", f->q);
    write_text(p, "partial");
    free(p);
    p = xasprintf("%s/maildrop/tf00000000000000002", f->q);
    write_text(p, "a user's crashed sendmail");
    free(p);
    /* a live enqueue's temporary is locked by its writer (another process:
     * a process's own locks never conflict with it) and kept */
    int pfd[2];
    assert_int_equal(pipe(pfd), 0);
    pid_t writer = fork();
    assert_true(writer >= 0);
    if (writer == 0) {
        struct spool_new *live = spool_new(f->q);
        _exit(live && write(pfd[1], "x", 1) == 1 && pause() ? 0 : 1);
    }
    char ch;
    assert_int_equal(read(pfd[0], &ch, 1), 1);
    close(pfd[0]);
    close(pfd[1]);
    /* crashed writers hold no lock: removed at once, however young */
    assert_int_equal(spool_cleanup(f->q, 3600), 2);
    assert_int_equal(count_files(f->q, "tf"), 1); /* the live one */
    stop(writer);
    assert_int_equal(spool_cleanup(f->q, 3600), 1); /* now it is an orphan */
    assert_int_equal(count_files(f->q, "t"), 1);    /* trigger */
    assert_true(listed(f->q, qid));                 /* the message is untouched */
    assert_int_equal(spool_cleanup(f->q, 3600), 0);
}

/* Damage a queue file the ways a system crash during its enqueue can (the
 * name durable, the contents not): cut short, a hole (a zeroed block), no end
 * line, no header; or a flipped bit in its data. */
static void tear(const char *q, const char *qid, int how)
{
    char *p = xasprintf("%s/qf%s", q, qid);
    int fd = open(p, O_RDWR);
    struct stat st;
    assert_true(fd >= 0);
    assert_int_equal(fstat(fd, &st), 0);
    char zero[4096] = {0}, c;
    switch (how) {
    case 0:
        assert_int_equal(ftruncate(fd, st.st_size / 2), 0);
        break;
    case 1:
        assert_int_equal(pread(fd, &c, 1, QF_HDR_LEN + 100), 1);
        c ^= 0x20;
        assert_int_equal(pwrite(fd, &c, 1, QF_HDR_LEN + 100), 1);
        break;
    case 2:
        assert_int_equal(pwrite(fd, zero, sizeof zero, 4096), (ssize_t)sizeof zero);
        break;
    case 3:
        assert_int_equal(ftruncate(fd, st.st_size - 5), 0);
        break;
    default:
        assert_int_equal(pwrite(fd, zero, QF_HDR_LEN, 0), QF_HDR_LEN);
        break;
    }
    close(fd);
    free(p);
}

static void test_torn_queue_file(void **st)
{
    struct fx *f = *st;
    char *body = xmalloc(10001);
    for (int i = 0; i < 10000; i++)
        body[i] = i % 50 == 49 ? '\n' : (char)('a' + i % 26);
    body[10000] = '\0';
    char good[QID_MAX];
    assert_int_equal(enqueue(f->q, "a@b", 1, body, good), 0);
    for (int how = 0; how < 5; how++) {
        char qid[QID_MAX];
        assert_int_equal(enqueue(f->q, "a@b", 2, body, qid), 0);
        assert_true(listed(f->q, qid));
        tear(f->q, qid, how);
        assert_false(listed(f->q, qid));
        struct qmsg *m;
        assert_int_equal(spool_open(f->q, qid, &m), -1);
        assert_int_equal(errno, EINVAL);
        struct envelope e;
        env_init(&e);
        /* peek checks the structure only: a tear inside the data passes */
        assert_int_equal(spool_peek(f->q, qid, &e, NULL), how == 1 || how == 2 ? 0 : -1);
        env_free(&e);
        if (how == 0) { /* locked: its writer may still be at work, left alone */
            char *p = xasprintf("%s/qf%s", f->q, qid);
            pid_t h = hold_lock(p);
            assert_int_equal(spool_open(f->q, qid, &m), 1); /* busy */
            assert_int_equal(spool_cleanup(f->q, 3600), 0);
            assert_true(file_exists(f->q, "qf", qid));
            stop(h);
            free(p);
        }
        /* set aside for the admin, never listed */
        assert_int_equal(spool_cleanup(f->q, 3600), 1);
        assert_false(file_exists(f->q, "qf", qid));
        assert_true(file_exists(f->q, "xf", qid));
        assert_false(listed(f->q, qid));
        assert_int_equal(spool_open(f->q, qid, &m), -1);
        assert_int_equal(errno, ENOENT);
    }
    assert_int_equal(count_files(f->q, "xf"), 5);
    assert_true(listed(f->q, good)); /* intact messages are not touched */
    struct qmsg *m;
    assert_int_equal(spool_open(f->q, good, &m), 0);
    char *data = data_of(m);
    assert_string_equal(data, body);
    free(data);
    spool_close(m);
    free(body);
}

/* The original postoffice's cm<id> + dm<id> for id, its text dated when. */
static void original(const char *q, const char *id, const char *cm, time_t when)
{
    char *c = xasprintf("%s/cm%s", q, id), *d = xasprintf("%s/dm%s", q, id);
    write_text(d, "Subject: orig\r\n\r\nbody\r\n");
    write_text(c, cm);
    struct timespec t[2] = {{.tv_sec = when}, {.tv_sec = when}};
    assert_int_equal(utimensat(AT_FDCWD, d, t, 0), 0);
    free(c);
    free(d);
}

/* The original postoffice's queue: converted once (a run that crashed after
 * the conversion does not convert it again), malformed ones set aside. */
static void test_convert_original(void **st)
{
    struct fx *f = *st;
    const char *cm = "S451 later\nFold@example.org\nTa@example.net|example.net\n"
                     "Tb@example.net|example.net\n!F ;has from:\n!H ;has headers\n"
                     "++ ;additional headers\nReceived: by old\n";
    original(f->q, "Ab12Cd", cm, 1700000000);
    assert_int_equal(spool_cleanup(f->q, 3600), 1);
    assert_false(file_exists(f->q, "cm", "Ab12Cd"));
    assert_false(file_exists(f->q, "dm", "Ab12Cd"));
    struct strlist l;
    sl_init(&l);
    assert_int_equal(spool_list(f->q, &l), 0);
    assert_int_equal(l.n, 1);
    assert_int_equal(strlen(l.v[0]), 12);
    assert_string_equal(l.v[0] + 6, "Ab12Cd");
    struct qmsg *m;
    assert_int_equal(spool_open(f->q, l.v[0], &m), 0);
    struct envelope *e = spool_env(m);
    assert_string_equal(e->sender, "old@example.org");
    assert_int_equal(e->nrcpts, 2);
    assert_string_equal(e->rcpts[1].addr, "b@example.net");
    assert_int_equal(e->ctime, 1700000000);
    char *data = data_of(m);
    assert_string_equal(data, "Received: by old\nSubject: orig\n\nbody\n");
    free(data);
    spool_close(m);
    /* a crash after the conversion, before cm (and dm) were removed */
    original(f->q, "Ab12Cd", cm, 1700000000);
    assert_int_equal(spool_cleanup(f->q, 3600), 1);
    char *d = xasprintf("%s/dmAb12Cd", f->q);
    unlink(d);
    free(d);
    original(f->q, "Ab12Cd", cm, 1700000000);
    d = xasprintf("%s/dmAb12Cd", f->q);
    unlink(d);
    free(d);
    assert_int_equal(spool_cleanup(f->q, 3600), 1);
    assert_int_equal(count_files(f->q, "qf"), 1);
    assert_int_equal(count_files(f->q, "cm") + count_files(f->q, "dm"), 0);
    /* malformed: set aside, twice under one name without overwriting */
    for (int k = 0; k < 2; k++) {
        original(f->q, "Bad000", "S\nFx@example.org\nZwhat\n", 1700000000);
        assert_int_equal(spool_cleanup(f->q, 3600), 1);
    }
    assert_true(file_exists(f->q, "xf", "cmBad000"));
    assert_true(file_exists(f->q, "xf", "cmBad000.1"));
    assert_true(file_exists(f->q, "xf", "dmBad000.1"));
    assert_int_equal(count_files(f->q, "qf"), 1);
    /* a data file that is a hard link (to some file root can read) is left alone */
    original(f->q, "Lnk000", cm, 1700000000);
    char *dm = xasprintf("%s/dmLnk000", f->q), *other = xasprintf("%s/secret", f->dir);
    write_text(other, "secret\n");
    unlink(dm);
    assert_int_equal(link(other, dm), 0);
    assert_int_equal(spool_cleanup(f->q, 3600), 0);
    assert_true(file_exists(f->q, "cm", "Lnk000"));
    assert_int_equal(count_files(f->q, "qf"), 1);
    free(dm);
    free(other);
    sl_free(&l);
}

/* Write an old-format control file for qid (with a status record appended). */
static void old_cf(const char *q, const char *qid)
{
    struct envelope e;
    struct buf b;
    env_init(&e);
    buf_init(&b);
    str_copy(e.qid, qid, sizeof e.qid);
    free(e.sender);
    e.sender = xstrdup("old@example.org");
    e.ctime = 1700000000;
    env_add_rcpt(&e, "done@example.org", NULL, NULL);
    env_add_rcpt(&e, "later@example.org", NULL, NULL);
    ctl_format(&e, &b);
    buf_adds(&b, "D0 D mx.example.org 2.0.0 ok\n");
    char *p = xasprintf("%s/cf%s", q, qid);
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write_all(fd, b.s, b.len), 0);
    close(fd);
    free(p);
    buf_free(&b);
    env_free(&e);
}

/* Queued mail of the old two-file format survives an upgrade. */
static void test_convert_old_format(void **st)
{
    struct fx *f = *st;
    const char *q1 = "1xUubn3sV0062T3FLW", *q2 = "1xUubn3sV0062T3FLX";
    old_cf(f->q, q1);
    char *p = xasprintf("%s/df%s", f->q, q1);
    write_text(p, "Subject: old\n\nold body\n");
    free(p);
    /* the old version's crash window: the data still named td<qid> */
    old_cf(f->q, q2);
    p = xasprintf("%s/td%s", f->q, q2);
    write_text(p, "Subject: two\n\n");
    free(p);
    /* old orphans: a data file without control file, a control temporary */
    p = xasprintf("%s/df00000000000000003", f->q);
    write_text(p, "orphan\n");
    free(p);
    p = xasprintf("%s/tc00000000000000004", f->q);
    write_text(p, "V1\n");
    free(p);
    assert_int_equal(spool_cleanup(f->q, 3600), 4);
    assert_int_equal(count_files(f->q, "df") + count_files(f->q, "cf") +
                     count_files(f->q, "td") + count_files(f->q, "tc"), 0);
    assert_true(listed(f->q, q1) && listed(f->q, q2));
    struct qmsg *m;
    assert_int_equal(spool_open(f->q, q1, &m), 0);
    struct envelope *e = spool_env(m);
    assert_string_equal(e->sender, "old@example.org");
    assert_int_equal(e->ctime, 1700000000);
    assert_int_equal(e->nrcpts, 2);
    assert_int_equal(e->rcpts[0].state, RS_DONE); /* the recorded result kept */
    assert_string_equal(e->rcpts[0].remote_mta, "mx.example.org");
    assert_int_equal(e->rcpts[1].state, RS_PENDING);
    char *data = data_of(m);
    assert_string_equal(data, "Subject: old\n\nold body\n");
    free(data);
    assert_int_equal(spool_record(m, 1, RS_DONE, "2.0.0 ok", NULL), 0);
    spool_close(m);
    assert_int_equal(spool_open(f->q, q2, &m), 0);
    data = data_of(m);
    assert_string_equal(data, "Subject: two\n\n");
    free(data);
    spool_close(m);
    /* a crash after the conversion but before the old files went: they are
     * removed, the converted message (with its newer results) is kept */
    old_cf(f->q, q1);
    p = xasprintf("%s/df%s", f->q, q1);
    write_text(p, "Subject: old\n\nold body\n");
    free(p);
    assert_int_equal(spool_cleanup(f->q, 3600), 1);
    assert_int_equal(count_files(f->q, "df") + count_files(f->q, "cf"), 0);
    assert_int_equal(count_files(f->q, "qf"), 2);
    assert_int_equal(spool_open(f->q, q1, &m), 0);
    assert_int_equal(spool_env(m)->rcpts[1].state, RS_DONE);
    spool_close(m);
}

static void test_trigger(void **st)
{
    struct fx *f = *st;
    struct config c;
    config_defaults(&c);
    free(c.queuedir);
    c.queuedir = xstrdup(f->q);
    c.minfree = 1;
    assert_int_equal(spool_below_minfree(&c), 0);
    c.minfree = LLONG_MAX; /* more than any file system has */
    assert_int_equal(spool_below_minfree(&c), 1);
    c.minfree = 0; /* no limit: not even looked at */
    free(c.queuedir);
    c.queuedir = xstrdup("/nonexistent/queue");
    assert_int_equal(spool_below_minfree(&c), 0);
    c.minfree = 1;
    assert_int_equal(spool_below_minfree(&c), -1);
    config_free(&c);
    assert_int_equal(spool_trigger(f->q), -1); /* no daemon */
    assert_int_equal(errno, ENXIO);
    char *p = xasprintf("%s/trigger", f->q);
    int rd = open(p, O_RDONLY | O_NONBLOCK);
    assert_true(rd >= 0);
    assert_int_equal(spool_trigger(f->q), 0);
    assert_int_equal(spool_trigger(f->q), 0);
    char buf[8];
    assert_int_equal(read(rd, buf, sizeof buf), 2);
    close(rd);
    free(p);
}

/* ---- maildrop pickup (needs root to submit as another uid) ---- */

static int child_submit(const char *q, const char *kind)
{
    struct passwd *pw = getpwnam("nobody");
    if (!pw || setgid(pw->pw_gid) < 0 || setuid(pw->pw_uid) < 0)
        return 90;
    char *md = xasprintf("%s/maildrop", q);
    struct envelope e;
    env_init(&e);
    free(e.sender);
    e.sender = xstrdup("president@whitehouse.gov");
    e.flags = ENV_BOUNCE | ENV_8BIT;
    e.attempts = 99;
    size_t i = env_add_rcpt(&e, strcmp(kind, "pipe") == 0 ? "|/bin/sh -c evil" : "bob@example.org",
                            NULL, "root");
    e.rcpts[i].state = RS_DONE; /* a submitter cannot mark recipients done */
    e.rcpts[i].notify = DSN_SUCCESS;
    struct spool_new *sn = spool_new(md);
    if (!sn)
        return 91;
    if (spool_new_write(sn, "Subject: x\n\nhello\n", 18) < 0)
        return 92;
    int r = spool_commit(sn, &e);
    env_free(&e);
    free(md);
    return r == 0 ? 0 : 93;
}

static int submit_as_nobody(const char *q, const char *kind)
{
    pid_t p = fork();
    assert_true(p >= 0);
    if (p == 0)
        _exit(child_submit(q, kind));
    int status;
    waitpid(p, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 99;
}

static void test_pickup(void **st)
{
    struct fx *f = *st;
    if (geteuid() != 0 || !getpwnam("nobody"))
        skip(); /* submitting as another uid needs root and a "nobody" account */
    char *md = xasprintf("%s/maildrop", f->q);
    struct strlist picked;
    struct config c;
    config_defaults(&c);
    free(c.queuedir);
    c.queuedir = xstrdup(f->q);
    c.minfree = 0;
    c.size = 0;
    sl_init(&picked);

    assert_int_equal(submit_as_nobody(f->q, "plain"), 0);
    assert_int_equal(count_files(md, "qf"), 1);
    assert_int_equal(count_files(md, "t"), 0);
    assert_int_equal(pickup_maildrop(&c, &picked), 1);
    assert_int_equal(picked.n, 1);
    assert_int_equal(count_files(md, "qf"), 0);
    struct qmsg *m;
    assert_int_equal(spool_open(f->q, picked.v[0], &m), 0);
    struct envelope *e = spool_env(m);
    assert_string_equal(e->sender, "nobody");        /* forced to the owner's login */
    assert_string_equal(e->local_user, "nobody");
    assert_int_equal(e->attempts, 0);
    assert_int_equal(e->flags, ENV_8BIT);            /* ENV_BOUNCE not taken */
    assert_int_equal(e->nrcpts, 1);
    assert_int_equal(e->rcpts[0].state, RS_PENDING);
    assert_null(e->rcpts[0].owner);                  /* never "root" */
    assert_int_equal(e->rcpts[0].notify, DSN_SUCCESS);
    assert_int_equal(spool_data_size(m), 18);
    spool_close(m);

    /* a trusted user keeps the sender */
    sl_add(&c.trusted_users, "nobody");
    sl_free(&picked);
    assert_int_equal(submit_as_nobody(f->q, "plain"), 0);
    assert_int_equal(pickup_maildrop(&c, &picked), 1);
    assert_int_equal(spool_open(f->q, picked.v[0], &m), 0);
    assert_string_equal(spool_env(m)->sender, "president@whitehouse.gov");
    spool_close(m);

    /* a program recipient is queued failed, to be bounced, never as a target */
    sl_free(&picked);
    assert_int_equal(submit_as_nobody(f->q, "pipe"), 0);
    assert_int_equal(pickup_maildrop(&c, &picked), 1);
    assert_int_equal(count_files(md, "qf"), 0);
    assert_int_equal(spool_open(f->q, picked.v[0], &m), 0);
    e = spool_env(m);
    assert_int_equal(e->nrcpts, 1);
    assert_int_equal(e->rcpts[0].state, RS_FAILED);
    assert_string_equal(e->rcpts[0].addr, "\"|/bin/sh -c evil\"");
    assert_true(str_has_prefix_ci(e->rcpts[0].status, "5.1.3 "));
    spool_close(m);

    /* over size=: not copied; its header block queued with 5.3.4 failures */
    sl_free(&picked);
    c.size = 10;
    assert_int_equal(submit_as_nobody(f->q, "plain"), 0);
    assert_int_equal(pickup_maildrop(&c, &picked), 1);
    assert_int_equal(spool_open(f->q, picked.v[0], &m), 0);
    e = spool_env(m);
    assert_int_equal(e->rcpts[0].state, RS_FAILED);
    assert_true(str_has_prefix_ci(e->rcpts[0].status, "5.3.4 "));
    assert_true(e->flags & ENV_RET_HDRS);
    assert_int_equal(spool_data_size(m), 12); /* "Subject: x\n\n" */
    spool_close(m);
    c.size = 0;

    /* short of minfree=: left in the maildrop for a later run */
    sl_free(&picked);
    c.minfree = 1LL << 62;
    assert_int_equal(submit_as_nobody(f->q, "plain"), 0);
    assert_int_equal(pickup_maildrop(&c, &picked), 0);
    assert_int_equal(count_files(md, "qf"), 1);
    c.minfree = 0;
    assert_int_equal(pickup_maildrop(&c, &picked), 1);
    assert_int_equal(count_files(md, "qf"), 0);

    /* still locked by its writer (a commit in progress): waits */
    assert_int_equal(submit_as_nobody(f->q, "plain"), 0);
    char *qf = NULL;
    DIR *d = opendir(md);
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        if (strncmp(de->d_name, "qf", 2) == 0)
            qf = xasprintf("%s/%s", md, de->d_name);
    closedir(d);
    assert_non_null(qf);
    pid_t h = hold_lock(qf);
    assert_int_equal(pickup_maildrop(&c, &picked), 0);
    assert_int_equal(count_files(md, "qf"), 1);
    stop(h);
    /* a second link to it (someone else's file hard-linked in): refused */
    char *other = xasprintf("%s/other", f->dir);
    assert_int_equal(link(qf, other), 0);
    assert_int_equal(pickup_maildrop(&c, &picked), 0);
    assert_int_equal(count_files(md, "qf"), 0);
    unlink(other);
    free(other);

    /* torn (cut short): refused and removed */
    assert_int_equal(submit_as_nobody(f->q, "plain"), 0);
    d = opendir(md);
    while ((de = readdir(d)) != NULL)
        if (strncmp(de->d_name, "qf", 2) == 0)
            tear(md, de->d_name + 2, 3);
    closedir(d);
    assert_int_equal(pickup_maildrop(&c, &picked), 0);
    assert_int_equal(count_files(md, "qf"), 0);

    /* a symlink is never followed: refused, the target untouched */
    char *secret = xasprintf("%s/secret", f->dir), *link = xasprintf("%s/qf0000000000000000ab", md);
    write_text(secret, "root's secret\n");
    assert_int_equal(symlink(secret, link), 0);
    assert_int_equal(pickup_maildrop(&c, &picked), 0);
    assert_false(file_exists(md, "qf", "0000000000000000ab"));
    assert_int_equal(access(secret, F_OK), 0);
    free(secret);
    free(link);
    free(qf);
    config_free(&c);
    sl_free(&picked);
    free(md);
}

/* ---- disk full (tmpfs of 64k, root only) ---- */

static void test_enospc(void **st)
{
    struct fx *f = *st;
    char *mnt = xasprintf("%s/small", f->dir);
    assert_int_equal(mkdir(mnt, 0700), 0);
    if (geteuid() != 0 || mount("tmpfs", mnt, "tmpfs", 0, "size=64k,mode=0700") < 0) {
        rmdir(mnt);
        free(mnt);
        skip(); /* needs root and permission to mount a tmpfs */
    }
    char *q = xasprintf("%s/q", mnt);
    assert_int_equal(spool_setup(q, getuid(), getgid()), 0);
    /* 1: the data does not fit */
    struct spool_new *sn = spool_new(q);
    assert_non_null(sn);
    char block[4096];
    memset(block, 'x', sizeof block);
    block[sizeof block - 1] = '\n';
    int r = 0;
    for (int i = 0; i < 64 && r == 0; i++)
        r = spool_new_write(sn, block, sizeof block);
    assert_int_equal(r, -1);
    assert_int_equal(errno, ENOSPC);
    assert_int_equal(count_files(q, "tf"), 0); /* removed at once */
    spool_abort(sn);
    /* 2: the data fits (one page with the header), the control records do not */
    char *fill = xasprintf("%s/filler", mnt);
    int fd = open(fill, O_WRONLY | O_CREAT, 0600);
    off_t sz = 0;
    while (write(fd, block, sizeof block) == (ssize_t)sizeof block)
        sz += (off_t)sizeof block;
    assert_int_equal(ftruncate(fd, sz - 4096), 0); /* one free page: the data's */
    close(fd);
    struct envelope e;
    env_init(&e);
    env_add_rcpt(&e, "a@b", NULL, NULL);
    sn = spool_new(q);
    assert_non_null(sn);
    assert_int_equal(spool_new_write(sn, block, 4096 - QF_HDR_LEN - 8), 0);
    assert_int_equal(spool_commit(sn, &e), -1);
    assert_int_equal(errno, ENOSPC);
    assert_int_equal(count_files(q, "tf") + count_files(q, "qf"), 0);
    /* 3: with room again it works */
    unlink(fill);
    char qid[QID_MAX];
    assert_int_equal(enqueue(q, "a@b", 1, "ok\n", qid), 0);
    env_free(&e);
    /* 4: a status record that does not fit leaves the control file as it was */
    struct qmsg *m;
    assert_int_equal(spool_open(q, qid, &m), 0);
    char *cf = xasprintf("%s/qf%s", q, qid);
    struct buf before, after;
    buf_init(&before);
    buf_init(&after);
    assert_int_equal(read_file(cf, &before, 1 << 20), 0);
    fd = open(fill, O_WRONLY | O_CREAT, 0600);
    while (write(fd, block, sizeof block) > 0)
        ;
    close(fd);
    char *longstatus = xmalloc(6001);
    memset(longstatus, 's', 6000);
    longstatus[6000] = '\0';
    assert_int_equal(spool_record(m, 0, RS_DONE, longstatus, NULL), -1);
    assert_int_equal(errno, ENOSPC);
    assert_int_equal(spool_env(m)->rcpts[0].state, RS_PENDING);
    assert_int_equal(read_file(cf, &after, 1 << 20), 0);
    assert_int_equal(after.len, before.len);
    unlink(fill);
    assert_int_equal(spool_record(m, 0, RS_DONE, "2.0.0 ok", NULL), 0);
    spool_close(m);
    assert_int_equal(spool_open(q, qid, &m), 0);
    assert_int_equal(spool_env(m)->rcpts[0].state, RS_DONE);
    spool_close(m);
    free(longstatus);
    free(cf);
    buf_free(&before);
    buf_free(&after);
    umount(mnt);
    rmdir(mnt);
    free(fill);
    free(q);
    free(mnt);
}

/* ---- crash at every system call (tests/bin/crashshim.so + spooltool) ---- */

#define SHIM "tests/bin/crashshim.so"
#define TOOL "tests/bin/spooltool"

/* Run spooltool args... killed at the at-th wrapped call (before it runs, or
 * right after it when after).  Returns its exit code, or 137 when killed. */
static int run_crashing(long at, int after, char *const argv[])
{
    pid_t p = fork();
    assert_true(p >= 0);
    if (p == 0) {
        char n[32];
        snprintf(n, sizeof n, "%ld", at);
        setenv("LD_PRELOAD", SHIM, 1);
        setenv("PO_CRASH_CALL", "any", 1);
        setenv("PO_CRASH_AT", n, 1);
        if (after)
            setenv("PO_CRASH_AFTER", "1", 1);
        int devnull = open("/dev/null", O_WRONLY);
        dup2(devnull, 1);
        execv(TOOL, argv);
        _exit(127);
    }
    int status;
    assert_int_equal(waitpid(p, &status, 0), p);
    if (WIFSIGNALED(status))
        return 137;
    return WEXITSTATUS(status);
}

/* The crash shim is an LD_PRELOAD library: it cannot go in front of a
 * sanitizer runtime, so the sanitizer build skips these two tests. */
#if defined(__SANITIZE_ADDRESS__)
#define PO_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define PO_SANITIZED 1
#endif
#endif

static int helpers_built(void)
{
#ifdef PO_SANITIZED
    return 0;
#else
    return access(SHIM, R_OK) == 0 && access(TOOL, X_OK) == 0;
#endif
}

static void empty_queue(const char *q)
{
    struct strlist l;
    sl_init(&l);
    assert_int_equal(spool_list(q, &l), 0);
    for (size_t i = 0; i < l.n; i++) {
        struct qmsg *m;
        assert_int_equal(spool_open(q, l.v[i], &m), 0);
        spool_remove(m);
        spool_close(m);
    }
    sl_free(&l);
}

/* Guarantee 2: killed at any instant of an enqueue, the queue holds either
 * nothing or the complete message, and cleanup leaves no temporary. */
static void test_crash_during_enqueue(void **st)
{
    struct fx *f = *st;
    if (!helpers_built())
        skip(); /* build tests/bin with make (tests/helpers.mk) and run from the top dir */
    char *argv[] = {TOOL, "enqueue", f->q, "5000", NULL};
    int completed = 0, crashes = 0;
    for (long at = 1; at < 200 && !completed; at++) {
        for (int after = 0; after <= 1; after++) {
            int rc = run_crashing(at, after, argv);
            assert_true(rc == 0 || rc == 137);
            if (rc == 0)
                completed = 1;
            crashes += rc == 137;
            spool_cleanup(f->q, 0);
            struct strlist l;
            sl_init(&l);
            assert_int_equal(spool_list(f->q, &l), 0);
            if (rc == 0)
                assert_int_equal(l.n, 1); /* exit 0 means it is there */
            assert_true(l.n <= 1);
            for (size_t i = 0; i < l.n; i++) {
                struct qmsg *m;
                assert_int_equal(spool_open(f->q, l.v[i], &m), 0);
                assert_int_equal(spool_data_size(m), 5000); /* never partial */
                assert_int_equal(spool_env(m)->nrcpts, 2);
                spool_close(m);
            }
            assert_int_equal(count_files(f->q, "tf") + count_files(f->q, "xf"), 0);
            assert_int_equal(count_files(f->q, "qf"), (int)l.n);
            sl_free(&l);
            empty_queue(f->q);
        }
    }
    assert_true(completed);
    /* data, tail, header, rename, fsync (and the directory fsync where the
     * file system needs it); before and after each */
    assert_true(crashes >= 10);
}

/* Killed at any instant of a rewrite + record, the message is still there,
 * readable, with either the old or the new envelope. */
static void test_crash_during_rewrite(void **st)
{
    struct fx *f = *st;
    if (!helpers_built())
        skip(); /* build tests/bin with make (tests/helpers.mk) and run from the top dir */
    char qid[QID_MAX];
    assert_int_equal(enqueue(f->q, "a@b", 2, "body\n", qid), 0);
    char *argv[] = {TOOL, "rewrite", f->q, qid, NULL};
    int completed = 0;
    for (long at = 1; at < 200 && !completed; at++) {
        for (int after = 0; after <= 1; after++) {
            int rc = run_crashing(at, after, argv);
            assert_true(rc == 0 || rc == 137);
            spool_cleanup(f->q, 0);
            struct qmsg *m;
            assert_int_equal(spool_open(f->q, qid, &m), 0);
            size_t n = spool_env(m)->nrcpts;
            assert_true(n == 2 || n == 3);
            if (rc == 0) {
                completed = 1;
                assert_int_equal(n, 3);
                assert_int_equal(spool_env(m)->rcpts[0].state, RS_DONE);
            }
            if (n == 3) { /* back to the start for the next crash point */
                spool_env(m)->nrcpts = 2;
                free(spool_env(m)->rcpts[2].addr);
                free(spool_env(m)->rcpts[2].orig);
                spool_env(m)->rcpts[0].state = RS_PENDING;
                assert_int_equal(spool_rewrite(m), 0);
            }
            spool_close(m);
            assert_int_equal(count_files(f->q, "tf"), 0);
        }
    }
    assert_true(completed);
}

/* spool_new_data / spool_new_insert: a header line put in after the first
 * line of a message bigger than the copy buffer; the checksum still holds. */
static void test_insert(void **st)
{
    struct fx *f = *st;
    struct buf body;
    buf_init(&body);
    buf_adds(&body, "Received: by us\nSubject: big\n\n");
    while (body.len < 40000)
        buf_adds(&body, "0123456789abcdefghijklmnopqrstuvwxyz\n");
    struct spool_new *sn = spool_new(f->q);
    assert_non_null(sn);
    assert_int_equal(spool_new_write(sn, body.s, 16), 0); /* "Received: by us\n" */
    long long at = spool_new_data(sn).len;
    assert_int_equal(at, 16);
    assert_int_equal(spool_new_write(sn, body.s + 16, body.len - 16), 0);
    struct msgdata d = spool_new_data(sn);
    assert_int_equal(d.len, (long long)body.len);
    char first[17] = {0};
    assert_int_equal(pread(d.fd, first, 16, (off_t)d.off), 16);
    assert_string_equal(first, "Received: by us\n");
    static const char add[] = "X-Spam: flagged\n";
    assert_int_equal(spool_new_insert(sn, at, add, strlen(add)), 0);
    assert_int_equal(spool_new_write(sn, "", 0), 0);
    struct envelope e;
    env_init(&e);
    env_add_rcpt(&e, "r@example.org", NULL, NULL);
    assert_int_equal(spool_commit(sn, &e), 0);
    struct qmsg *m;
    assert_int_equal(spool_open(f->q, e.qid, &m), 0); /* checksum verified */
    char *got = data_of(m);
    char *want = xasprintf("Received: by us\n%s%s", add, body.s + 16);
    assert_string_equal(got, want);
    free(got);
    free(want);
    spool_close(m);
    env_free(&e);
    buf_free(&body);
    sn = spool_new(f->q);
    assert_int_equal(spool_new_insert(sn, 5, "x", 1), -1); /* beyond the data */
    spool_abort(sn);
}

int main(void)
{
#define T(t) cmocka_unit_test_setup_teardown(t, setup, teardown)
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_qid),
        T(test_setup_modes),
        T(test_enqueue_commit),
        T(test_abort_and_failed_write),
        T(test_open_record_reopen),
        T(test_status_record_checksum),
        T(test_convert_original),
        T(test_locking_two_processes),
        T(test_list_order_and_incomplete),
        T(test_lazy_records), T(test_retry_appended),
        T(test_cleanup_temps),
        T(test_torn_queue_file),
        T(test_convert_old_format),
        T(test_trigger),
        T(test_pickup),
        T(test_enospc),
        T(test_crash_during_enqueue),
        T(test_crash_during_rewrite),
        T(test_insert),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
