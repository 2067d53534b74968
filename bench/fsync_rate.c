/* fsync_rate.c - the disk's own rate of small file create + write + fsync, and
 * of the same plus rename + directory fsync, in the directory given. */
#define _POSIX_C_SOURCE 200809L
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

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : ".";
    int n = argc > 2 ? atoi(argv[2]) : 500;
    char buf[2048] = {0}, a[4096], b[4096];
    int d = open(dir, O_RDONLY);
    if (d < 0) {
        perror(dir);
        return 1;
    }
    for (int pass = 0; pass < 2; pass++) {
        double t0 = now();
        for (int i = 0; i < n; i++) {
            snprintf(a, sizeof a, "%s/fsync-bench-%d", dir, i);
            int fd = open(a, O_CREAT | O_WRONLY | O_TRUNC, 0600);
            if (fd < 0 || write(fd, buf, sizeof buf) != (ssize_t)sizeof buf || fsync(fd) < 0) {
                perror(a);
                return 1;
            }
            close(fd);
            if (pass) {
                snprintf(b, sizeof b, "%s/fsync-bench-r%d", dir, i);
                rename(a, b);
                fsync(d);
                unlink(b);
            } else {
                unlink(a);
            }
        }
        printf("%-40s %8.0f /s\n", pass ? "create+write+fsync+rename+dir fsync:"
                                        : "create+write+fsync:", n / (now() - t0));
    }
    return 0;
}
