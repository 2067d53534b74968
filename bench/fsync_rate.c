/* fsync_rate.c - the disk's own rate, one process, in the directory given, of:
 *   0. small file create + write + fsync (Postfix's enqueue: one queue file);
 *   1. the same plus rename + directory fsync;
 *   2. the two-file enqueue postoffice used before the one-file queue: data
 *      file written, control temp created and written, one syncfs() for
 *      both, two renames, fsync(directory);
 *   3. the same with a flush per file (fdatasync data, fsync control) instead
 *      of the syncfs;
 *   4. the one-file enqueue with a directory flush, as spool_commit() does it
 *      on file systems other than ext3/ext4/xfs/btrfs: tf written, renamed to
 *      qf, fsync(file), fsync(directory);
 *   5. the one-file enqueue as spool_commit() does it on ext3/ext4/xfs/btrfs,
 *      where the file's fsync also makes the rename durable: no directory
 *      flush.
 * 5 is the ceiling for one SMTP client here: no session can answer 250
 * faster. */
#define _GNU_SOURCE 1
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static char buf[2048];

static int create(const char *path, size_t len)
{
    int fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0600);
    if (fd < 0 || write(fd, buf, len) != (ssize_t)len) {
        perror(path);
        exit(1);
    }
    return fd;
}

static void one(const char *dir, int d, int pass, int i)
{
    char a[4096], b[4096], c[4096], cc[4096];
    snprintf(a, sizeof a, "%s/fsync-bench-%d", dir, i);
    snprintf(b, sizeof b, "%s/fsync-bench-r%d", dir, i);
    int fd = create(a, sizeof buf);
    if (pass >= 4) { /* rename first, then the flush(es) */
        rename(a, b);
        if (fsync(fd) < 0 || (pass == 4 && fsync(d) < 0))
            perror("fsync");
        close(fd);
        unlink(b);
        return;
    }
    if (pass < 2) {
        if (fsync(fd) < 0)
            perror("fsync");
        close(fd);
        if (pass == 1) {
            rename(a, b);
            fsync(d);
            unlink(b);
        } else {
            unlink(a);
        }
        return;
    }
    snprintf(c, sizeof c, "%s/fsync-bench-c%d", dir, i);
    snprintf(cc, sizeof cc, "%s/fsync-bench-cc%d", dir, i);
    int cfd = create(c, 150);
    if (pass == 2) {
        if (syncfs(fd) < 0) /* postoffice's enqueue: one syncfs for both files */
            perror("syncfs");
    } else if (fdatasync(fd) < 0 || fsync(cfd) < 0) {
        perror("fsync");
    }
    rename(a, b);
    rename(c, cc);
    fsync(d);
    close(cfd);
    close(fd);
    unlink(cc);
    unlink(b);
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : ".";
    int n = argc > 2 ? atoi(argv[2]) : 500;
    static const char *what[] = {
        "create+write+fsync (Postfix's enqueue):",
        "create+write+fsync+rename+dir fsync:",
        "postoffice enqueue (syncfs, 2 renames, dir):",
        "same with a flush per file (no syncfs):",
        "one-file enqueue (rename, fsync file, dir):",
        "one-file enqueue (rename, fsync file):",
    };
    int d = open(dir, O_RDONLY);
    if (d < 0) {
        perror(dir);
        return 1;
    }
    for (int pass = 0; pass < 6; pass++) {
        double t0 = now();
        for (int i = 0; i < n; i++)
            one(dir, d, pass, i);
        printf("%-44s %8.0f /s\n", what[pass], n / (now() - t0));
    }
    return 0;
}
