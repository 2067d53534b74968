/* compat.h - feature-test macros; the first include of every source file. */
#ifndef PO_COMPAT_H
#define PO_COMPAT_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1 /* initgroups, getloadavg, pipe2, accept4, memmem */
#endif

#include "config.h" /* written by configure.sh */

#if defined(__GNUC__) || defined(__clang__)
#define PO_PRINTF(f, a) __attribute__((format(printf, f, a)))
#define PO_NORETURN __attribute__((noreturn))
#else
#define PO_PRINTF(f, a)
#define PO_NORETURN
#endif

#endif
