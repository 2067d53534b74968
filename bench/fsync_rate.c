/* fsync_rate.c - the disk's own rate of small file create + write + fsync, of
 * the same plus rename + directory fsync, and of postoffice's whole enqueue
 * sequence (spool.c: data fdatasync, control fsync, two renames, directory
 * fsync), one process, in the directory given.  The last one is the ceiling
 * for one SMTP client: no session can answer 250 faster than this. */
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
    for (int pass = 0; pass < 3; pass++) {
        double t0 = now();
        for (int i = 0; i < n; i++) {
            snprintf(a, sizeof a, "%s/fsync-bench-%d", dir, i);
            int fd = open(a, O_CREAT | O_WRONLY | O_TRUNC, 0600);
            if (fd < 0 || write(fd, buf, sizeof buf) != (ssize_t)sizeof buf ||
                (pass == 2 ? fdatasync(fd) : fsync(fd)) < 0) {
                perror(a);
                return 1;
            }
            if (pass == 2) {
                /* the spool: data written and flushed above; now the control
                 * temp, its flush, both renames and the directory flush */
                char c[4096], cd[4096], cc[4096];
                snprintf(c, sizeof c, "%s/fsync-bench-c%d", dir, i);
                int cfd = open(c, O_CREAT | O_WRONLY | O_TRUNC, 0600);
                if (cfd < 0 || write(cfd, buf, 150) != 150 || fsync(cfd) < 0) {
                    perror(c);
                    return 1;
                }
                snprintf(cd, sizeof cd, "%s/fsync-bench-d%d", dir, i);
                snprintf(cc, sizeof cc, "%s/fsync-bench-cc%d", dir, i);
                rename(a, cd);
                rename(c, cc);
                fsync(d);
                close(cfd);
                close(fd);
                unlink(cc);
                unlink(cd);
                continue;
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
        static const char *what[] = {
            "create+write+fsync (Postfix's enqueue):",
            "create+write+fsync+rename+dir fsync:",
            "postoffice enqueue (3 flushes, 2 renames):",
        };
        printf("%-44s %8.0f /s\n", what[pass], n / (now() - t0));
    }
    return 0;
}
