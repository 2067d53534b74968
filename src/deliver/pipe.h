/* pipe.h - delivering a message to a program ("|command" in an alias or a
 * .forward file).  Internal to local delivery.
 *
 * Called in the delivery child, already running as the identity (never root).
 * Runs /bin/sh -c COMMAND in its own process group with a cleared environment;
 * the message goes to its stdin with Return-Path: and Delivered-To: first and
 * no From_ line.  See postoffice-local(8). */
#ifndef PO_PIPE_H
#define PO_PIPE_H

#include "local.h"
#include "message_out.h"
#include "privs.h"

#define PIPE_OUTPUT_MAX 4096 /* program output kept for the status text */

struct pipe_req {
    const char *command;    /* given to /bin/sh -c; comes from an alias/.forward only */
    const struct ident *id; /* who we are: HOME, USER, LOGNAME, cwd */
    const char *sender;     /* envelope sender ("" = <>): $SENDER, Return-Path */
    const char *rcpt;       /* $RECIPIENT, Delivered-To */
    struct msgdata data;    /* the queued message (message_out.h) */
    long timeout_ms;        /* the program is killed after this long */
};

/* Run it.  Exit 0: DELIV_OK.  Exit 75 (EX_TEMPFAIL), a timeout, or failing to
 * start: DELIV_DEFER.  Any other exit or a signal: DELIV_FAIL with
 * "5.3.0 program exited N: OUTPUT" (first lines of stdout+stderr, sanitised).
 * *status is malloc'd. */
enum deliv_result pipe_deliver(const struct pipe_req *r, char **status);

/* The environment the program gets (NULL-terminated, malloc'd strings; free
 * with pipe_env_free). */
char **pipe_env(const struct pipe_req *r);
void pipe_env_free(char **env);

/* Turn captured output into one printable line of at most max bytes: line
 * breaks and tabs become "; " / " ", other control bytes "\xHH".  malloc'd. */
char *pipe_summary(const char *out, size_t len, size_t max);

#endif
