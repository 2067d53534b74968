/* crashshim.c - LD_PRELOAD fault injection: SIGKILL the process at the Nth
 * call of a chosen system call (a crash at that exact instant).
 *
 *   PO_CRASH_CALL=fsync|fdatasync|rename|write|pwrite|unlink|ftruncate|syncfs|any
 *   PO_CRASH_AT=N        1-based; the call is killed BEFORE it runs
 *   PO_CRASH_AFTER=1     kill right AFTER the Nth call instead
 *
 * Test code only: the counter is the one piece of state it needs. */
#define _GNU_SOURCE 1
#include <dlfcn.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

static long calls;

static int armed(const char *name)
{
    const char *want = getenv("PO_CRASH_CALL");
    const char *at = getenv("PO_CRASH_AT");
    if (!want || !at || (strcmp(want, name) != 0 && strcmp(want, "any") != 0))
        return 0;
    return ++calls == atol(at);
}

static void crash(void)
{
    kill(getpid(), SIGKILL);
    _exit(137);
}

/* before: crash before the real call when armed and not AFTER mode */
#define WRAP(ret, name, params, args)                                    \
    ret name params                                                      \
    {                                                                    \
        static ret (*real) params;                                       \
        if (!real)                                                       \
            real = (ret(*) params)dlsym(RTLD_NEXT, #name);               \
        int hit = armed(#name);                                          \
        int after = getenv("PO_CRASH_AFTER") != NULL;                    \
        if (hit && !after)                                               \
            crash();                                                     \
        ret r = real args;                                               \
        if (hit)                                                         \
            crash();                                                     \
        return r;                                                        \
    }

WRAP(int, fsync, (int fd), (fd))
WRAP(int, fdatasync, (int fd), (fd))
WRAP(int, rename, (const char *a, const char *b), (a, b))
WRAP(ssize_t, write, (int fd, const void *p, size_t n), (fd, p, n))
WRAP(ssize_t, pwrite, (int fd, const void *p, size_t n, off_t off), (fd, p, n, off))
WRAP(int, unlink, (const char *p), (p))
WRAP(int, ftruncate, (int fd, off_t len), (fd, len))
WRAP(int, syncfs, (int fd), (fd))
