/* bench/mkqueue.c - fill a queue directory with N queue files, fast (no
 * fsync: a benchmark fixture, never a real queue), for timing mailq and a
 * queue run over a large queue (issue 14).
 *
 *   cc -O2 -Isrc/lib -Isrc/queue -o /tmp/mkqueue bench/mkqueue.c libpo.a -lxxhash
 *   /tmp/mkqueue QUEUEDIR N [SIZE [VERSION [DEFER]]]
 *
 * SIZE bytes of message text (default 2048); VERSION 1 writes the first
 * format (POQ1, FNV-1a throughout: readable by older builds), 2 (default)
 * today's; DEFER seconds: every message was tried once and waits that long
 * for its next try (default 0: all due now).  Files belong to whoever runs it:
 * chown -R the queue to user= afterwards. */
#include "compat.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "envelope.h"
#include "queue_file.h"
#include "queue_records.h"
#include "util.h"

static void make_qid(unsigned long n, char qid[QID_MAX])
{
    static const char b62[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    char tail[8];
    for (int i = 6; i >= 0; i--, n /= 62)
        tail[i] = b62[n % 62];
    tail[7] = '\0';
    snprintf(qid, QID_MAX, "1xUubn3sV00%s", tail);
}

static void build(struct buf *f, const struct envelope *e, const char *data, size_t n, int v)
{
    char hdr[QF_HDR_LEN + 1];
    if (v == 2) {
        qf_header((long long)n, hdr);
        buf_add(f, hdr, QF_HDR_LEN);
        buf_add(f, data, n);
        qf_seal(e, qf_datasum_of(data, n), (long long)n, f);
        return;
    }
    struct buf ctl;
    buf_init(&ctl);
    ctl_format(e, &ctl);
    buf_truncate(&ctl, ctl.len - 2);
    snprintf(hdr, sizeof hdr, "POQ1 %016llx\n", (unsigned long long)n);
    uint64_t h = fnv1a64(fnv1a64(fnv1a64(FNV1A64_INIT, data, n), ctl.s, ctl.len), hdr, QF_HDR_LEN);
    buf_add(f, hdr, QF_HDR_LEN);
    buf_add(f, data, n);
    buf_add(f, ctl.s, ctl.len);
    buf_addf(f, ". %016llx\n", (unsigned long long)h);
    buf_free(&ctl);
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: mkqueue QUEUEDIR N [SIZE [VERSION [DEFER]]]\n");
        return 64;
    }
    unsigned long count = strtoul(argv[2], NULL, 10);
    size_t size = argc > 3 ? strtoul(argv[3], NULL, 10) : 2048;
    int v = argc > 4 ? atoi(argv[4]) : 2;
    long defer = argc > 5 ? atol(argv[5]) : 0;
    char *data = xmalloc(size + 64);
    int k = snprintf(data, 64, "Subject: queued\n\n");
    for (size_t i = (size_t)k; i < size; i++)
        data[i] = (i % 64 == 63) ? '\n' : (char)('a' + i % 26);
    struct buf f;
    buf_init(&f);
    time_t now = time(NULL);
    for (unsigned long i = 0; i < count; i++) {
        struct envelope e;
        env_init(&e);
        free(e.sender);
        e.sender = xstrdup("bench@example.org");
        e.ctime = now - 60;
        make_qid(i, e.qid);
        env_add_rcpt(&e, "rcpt@remote.example", NULL, NULL);
        if (defer) {
            e.attempts = 1;
            e.next_try = now + defer;
            env_set_status(&e, 0, "4.4.1 connection refused");
        }
        buf_reset(&f);
        build(&f, &e, data, size, v);
        char *path = xasprintf("%s/qf%s", argv[1], e.qid);
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd < 0 || write_all(fd, f.s, f.len) < 0 || close(fd) < 0) {
            perror(path);
            return 74;
        }
        free(path);
        env_free(&e);
    }
    buf_free(&f);
    free(data);
    return 0;
}
