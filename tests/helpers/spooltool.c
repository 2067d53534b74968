/* spooltool.c - drive the spool from the command line for crash and speed tests.
 *
 *   spooltool enqueue DIR [SIZE]      queue one message (SIZE bytes of body,
 *                                     default 1000), print its qid, exit 0
 *   spooltool rewrite QUEUEDIR QID    lock, add a recipient, rewrite, record
 *   spooltool bench DIR N [SIZE]      queue N messages, print messages/second
 *
 * Run under tests/bin/crashshim.so to kill it at any system call. */
#include "compat.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "envelope.h"
#include "spool.h"
#include "util.h"

static int enqueue(const char *dir, size_t size, char qid[QID_MAX])
{
    struct envelope e;
    env_init(&e);
    free(e.sender);
    e.sender = xstrdup("bench@example.org");
    e.ctime = time(NULL);
    env_add_rcpt(&e, "rcpt@example.org", NULL, NULL);
    env_add_rcpt(&e, "other@example.org", NULL, NULL);
    struct spool_new *sn = spool_new(dir);
    if (!sn)
        return -1;
    char *body = xmalloc(size + 1);
    for (size_t i = 0; i < size; i++)
        body[i] = (i % 64 == 63) ? '\n' : (char)('a' + i % 26);
    int r = spool_new_write(sn, body, size);
    free(body);
    if (r < 0) {
        spool_abort(sn);
    } else {
        r = spool_commit(sn, &e);
        str_copy(qid, e.qid, QID_MAX);
    }
    env_free(&e);
    return r;
}

static int rewrite(const char *q, const char *qid)
{
    struct qmsg *m;
    if (spool_open(q, qid, &m) != 0)
        return 2;
    env_add_rcpt(spool_env(m), "added@example.org", "rcpt@example.org", NULL);
    int r = spool_rewrite(m);
    if (r == 0)
        r = spool_record(m, 0, RS_DONE, "2.0.0 ok", "mx.example.org");
    spool_close(m);
    return r == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    char qid[QID_MAX];
    if (argc >= 3 && strcmp(argv[1], "enqueue") == 0) {
        if (enqueue(argv[2], argc > 3 ? strtoul(argv[3], NULL, 10) : 1000, qid) < 0) {
            perror("spooltool: enqueue");
            return 1;
        }
        printf("%s\n", qid);
        return 0;
    }
    if (argc == 4 && strcmp(argv[1], "rewrite") == 0)
        return rewrite(argv[2], argv[3]);
    if (argc >= 4 && strcmp(argv[1], "bench") == 0) {
        long n = strtol(argv[3], NULL, 10);
        size_t size = argc > 4 ? strtoul(argv[4], NULL, 10) : 1000;
        long long t0 = now_ms();
        for (long i = 0; i < n; i++)
            if (enqueue(argv[2], size, qid) < 0) {
                perror("spooltool: enqueue");
                return 1;
            }
        long long ms = now_ms() - t0;
        printf("%ld messages in %lld ms: %.0f messages/s\n", n, ms,
               ms ? n * 1000.0 / (double)ms : 0.0);
        return 0;
    }
    fprintf(stderr, "usage: spooltool enqueue DIR [SIZE] | rewrite QUEUEDIR QID | "
                    "bench DIR N [SIZE]\n");
    return 64;
}
