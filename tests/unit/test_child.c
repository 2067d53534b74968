/* test_child.c - the child runner: reports read to their end, a hanging
 * child and its grandchildren killed at the deadline, an oversized report
 * refused, the identity change (as root), how a child ended in words. */
#include "compat.h"

#include <errno.h>
#include <pwd.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "child.h"
#include "msg.h"
#include "util.h"

static void say_hello(void *arg, int fd)
{
    (void)arg;
    (void)write_all(fd, "hello", 5);
    _exit(0);
}

static void exit_with(void *arg, int fd)
{
    (void)fd;
    _exit(*(int *)arg);
}

static void kill_self(void *arg, int fd)
{
    (void)arg;
    (void)fd;
    kill(getpid(), SIGKILL);
    _exit(0);
}

static void hang(void *arg, int fd)
{
    (void)arg;
    (void)fd;
    for (;;)
        pause();
}

/* Starts a grandchild that hangs too, and reports its pid. */
static void hang_with_grandchild(void *arg, int fd)
{
    (void)arg;
    pid_t g = fork();
    if (g == 0)
        hang(NULL, -1);
    char line[32];
    int n = snprintf(line, sizeof line, "%ld\n", (long)g);
    (void)write_all(fd, line, (size_t)n);
    hang(NULL, -1);
}

static void too_much(void *arg, int fd)
{
    (void)arg;
    char big[100];
    memset(big, 'x', sizeof big);
    (void)write_all(fd, big, sizeof big);
    _exit(0);
}

static void report_uid(void *arg, int fd)
{
    (void)arg;
    struct buf b;
    buf_init(&b);
    msg_put_u32(&b, (uint32_t)getuid());
    msg_put_u32(&b, (uint32_t)geteuid());
    msg_put_str(&b, "done");
    _exit(msg_send(fd, MSG_TEST, b.s, b.len, -1) == 0 ? 0 : 1);
}

static void test_report_read(void **state)
{
    (void)state;
    struct child_spec spec = {.title = "test hello", .report = 1, .deadline_ms = 5000};
    struct child ch;
    struct child_end end;
    struct buf out;
    assert_int_equal(child_start(&ch, &spec, say_hello, NULL), 0);
    buf_init(&out); /* after the fork: the child leaves it to _exit */
    assert_int_equal(child_finish(&ch, &out, 64, &end), 0);
    assert_string_equal(out.s, "hello");
    assert_int_equal(end.exited, 1);
    assert_int_equal(end.code, 0);
    assert_int_equal(end.timed_out, 0);
    buf_free(&out);
}

static void test_exit_and_signal_texts(void **state)
{
    (void)state;
    struct child_spec spec = {.title = "test exit"};
    struct child ch;
    struct child_end end;
    char t[64];
    int code = 3;
    assert_int_equal(child_start(&ch, &spec, exit_with, &code), 0);
    assert_int_equal(ch.fd, -1);
    child_wait(&ch, &end);
    assert_int_equal(end.exited, 1);
    assert_int_equal(end.code, 3);
    assert_string_equal(child_end_text(&end, t, sizeof t), "exit 3");

    assert_int_equal(child_start(&ch, &spec, kill_self, NULL), 0);
    child_wait(&ch, &end);
    assert_int_equal(end.exited, 0);
    assert_int_equal(end.signal, SIGKILL);
    assert_string_equal(child_end_text(&end, t, sizeof t), "killed by signal 9");
}

static int gone(pid_t pid)
{
    for (int i = 0; i < 200; i++) {
        char path[64], st = 0;
        snprintf(path, sizeof path, "/proc/%ld/stat", (long)pid);
        FILE *f = fopen(path, "r");
        if (f == NULL)
            return 1;
        /* a zombie waiting for init is dead too */
        int ok = fscanf(f, "%*d (%*[^)]) %c", &st) == 1 && st == 'Z';
        fclose(f);
        if (ok)
            return 1;
        usleep(10000);
    }
    return 0;
}

static void test_deadline_kills_group(void **state)
{
    (void)state;
    struct child_spec spec = {.title = "test hang", .report = 1, .own_group = 1,
                              .deadline_ms = 300};
    struct child ch;
    struct child_end end;
    struct buf out;
    long long t0 = now_ms();
    assert_int_equal(child_start(&ch, &spec, hang_with_grandchild, NULL), 0);
    buf_init(&out); /* after the fork: the child leaves it to _exit */
    pid_t pid = ch.pid;
    /* read the grandchild's pid ourselves first: the report is cut off */
    char line[32] = {0};
    for (size_t got = 0; got == 0 || line[got - 1] != '\n';) {
        ssize_t r = read(ch.fd, line + got, sizeof line - 1 - got);
        assert_true(r > 0);
        got += (size_t)r;
    }
    pid_t g = (pid_t)atol(line);
    assert_true(g > 0);
    assert_int_equal(child_finish(&ch, &out, 64, &end), -1);
    assert_true(now_ms() - t0 >= 290);
    assert_true(now_ms() - t0 < 5000);
    assert_int_equal(end.timed_out, 1);
    assert_int_equal(end.exited, 0);
    assert_int_equal(end.signal, SIGKILL);
    char t[64];
    assert_string_equal(child_end_text(&end, t, sizeof t), "timed out after 1 seconds");
    assert_int_equal(kill(pid, 0), -1);
    assert_true(gone(g));
    buf_free(&out);
}

static void test_wait_deadline(void **state)
{
    (void)state;
    struct child_spec spec = {.title = "test hang", .own_group = 1, .deadline_ms = 200};
    struct child ch;
    struct child_end end;
    long long t0 = now_ms();
    assert_int_equal(child_start(&ch, &spec, hang, NULL), 0);
    child_wait(&ch, &end);
    assert_true(now_ms() - t0 >= 190);
    assert_int_equal(end.timed_out, 1);
    assert_int_equal(end.signal, SIGKILL);

    assert_int_equal(child_start(&ch, &spec, hang, NULL), 0);
    pid_t pid = ch.pid;
    child_kill(&ch);
    assert_int_equal(kill(pid, 0), -1);
}

static void test_oversized_report(void **state)
{
    (void)state;
    struct child_spec spec = {.title = "test big", .report = 1, .deadline_ms = 5000};
    struct child ch;
    struct child_end end;
    struct buf out;
    assert_int_equal(child_start(&ch, &spec, too_much, NULL), 0);
    buf_init(&out); /* after the fork: the child leaves it to _exit */
    assert_int_equal(child_finish(&ch, &out, 10, &end), -1);
    assert_int_equal(out.len, 0);
    assert_int_equal(end.timed_out, 0);
    /* exactly the limit is fine */
    assert_int_equal(child_start(&ch, &spec, too_much, NULL), 0);
    assert_int_equal(child_finish(&ch, &out, 100, &end), 0);
    assert_int_equal(out.len, 100);
    buf_free(&out);
}

static void test_msg_report(void **state)
{
    (void)state;
    struct child_spec spec = {.title = "test msg", .report = 1, .deadline_ms = 5000};
    struct child ch;
    struct child_end end;
    struct msg m;
    assert_int_equal(child_start(&ch, &spec, report_uid, NULL), 0);
    assert_int_equal(msg_recv(ch.fd, &m, 64, ch.deadline), 1);
    child_wait(&ch, &end);
    assert_int_equal(end.code, 0);
    struct msg_reader r;
    uint32_t uid, euid;
    char *s;
    msg_reader_init(&r, &m);
    assert_int_equal(msg_get_u32(&r, &uid), 0);
    assert_int_equal(msg_get_u32(&r, &euid), 0);
    assert_int_equal(msg_get_str(&r, &s), 0);
    assert_int_equal(msg_get_end(&r), 0);
    assert_int_equal(uid, getuid());
    assert_string_equal(s, "done");
    free(s);
    msg_free(&m);
}

static void test_become(void **state)
{
    (void)state;
    if (geteuid() != 0) {
        skip(); /* needs root to change identity */
        return;
    }
    struct ident nobody;
    assert_int_equal(privs_lookup("nobody", &nobody), 0);
    struct child_spec spec = {.title = "test become", .report = 1, .deadline_ms = 5000,
                              .become = &nobody, .extra_gid = (gid_t)-1};
    struct child ch;
    struct child_end end;
    struct msg m;
    assert_int_equal(child_start(&ch, &spec, report_uid, NULL), 0);
    assert_int_equal(msg_recv(ch.fd, &m, 64, ch.deadline), 1);
    child_wait(&ch, &end);
    struct msg_reader r;
    uint32_t uid, euid;
    msg_reader_init(&r, &m);
    assert_int_equal(msg_get_u32(&r, &uid), 0);
    assert_int_equal(msg_get_u32(&r, &euid), 0);
    assert_int_equal(uid, nobody.uid);
    assert_int_equal(euid, nobody.uid);
    msg_free(&m);

    /* root is never an identity to become: the child ends before fn */
    struct ident root = nobody;
    root.uid = 0;
    root.gid = 0;
    spec.become = &root;
    assert_int_equal(child_start(&ch, &spec, report_uid, NULL), 0);
    assert_int_equal(msg_recv(ch.fd, &m, 64, ch.deadline), 0);
    child_wait(&ch, &end);
    assert_int_equal(end.code, CHILD_EX_PRIVS);
    privs_free(&nobody);
}

static void title_child(void *arg, int fd)
{
    (void)arg;
    char comm[32] = {0}, cmd[64] = {0};
    FILE *f = fopen("/proc/self/comm", "r");
    if (f && fgets(comm, sizeof comm, f))
        (void)write_all(fd, comm, strlen(comm));
    if (f)
        fclose(f);
    /* what ps shows: the arguments, written over */
    f = fopen("/proc/self/cmdline", "r");
    if (f && fread(cmd, 1, sizeof cmd - 1, f) > 0)
        (void)write_all(fd, cmd, strlen(cmd));
    if (f)
        fclose(f);
    _exit(0);
}

static void test_title_comm(void **state)
{
    (void)state;
    struct child_spec spec = {.title = "mailbox alice", .report = 1, .deadline_ms = 5000};
    struct child ch;
    struct child_end end;
    struct buf out;
    char self[32] = {0};
    FILE *f = fopen("/proc/self/comm", "r");
    int plain = f && fgets(self, sizeof self, f) && strncmp(self, "test_child", 10) == 0;
    if (f)
        fclose(f);
    if (!plain) {
        skip(); /* under valgrind the process is valgrind's, not ours to name */
        return;
    }
    assert_int_equal(child_start(&ch, &spec, title_child, NULL), 0);
    buf_init(&out); /* after the fork: the child leaves it to _exit */
    assert_int_equal(child_finish(&ch, &out, 64, &end), 0);
    assert_string_equal(out.s, "po-mailbox\npostoffice: mailbox alice"); /* po- and the first word */
    buf_free(&out);
}

int main(int argc, char **argv)
{
    child_set_argv(argc, argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_report_read),
        cmocka_unit_test(test_exit_and_signal_texts),
        cmocka_unit_test(test_deadline_kills_group),
        cmocka_unit_test(test_wait_deadline),
        cmocka_unit_test(test_oversized_report),
        cmocka_unit_test(test_msg_report),
        cmocka_unit_test(test_become),
        cmocka_unit_test(test_title_comm),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
