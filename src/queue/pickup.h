/* pickup.h - move local users' submissions from QUEUEDIR/maildrop into the
 * queue (the sendmail front end writes them there for every user but root and
 * the queue owner).
 *
 * Run it as the queue owner, NEVER as root: it parses users' files. */
#ifndef PO_PICKUP_H
#define PO_PICKUP_H

#include "conf.h"
#include "util.h"

/* Take every complete submission in c->queuedir/maildrop into the queue,
 * oldest first, appending the new qids to picked (may be NULL).
 *
 * The sender is the file owner's login name (bare: the caller qualifies it)
 * unless that uid is root or listed in trusted-users= (then as written);
 * local_user is always the login.  Only recipients, NOTIFY, ENVID and the
 * 8BITMIME/SMTPUTF8/RET=HDRS flags are taken from the file.
 *
 * Nothing a submitter wrote is dropped unannounced:
 *  - a recipient that is not an address (addr_parse_mailbox refuses it: a
 *    program or file name, bad syntax) is queued already failed (5.1.3), so
 *    the queue run delivers to the others and bounces it to the sender;
 *  - a message larger than size= is not copied: its header block is queued
 *    with every recipient failed (5.3.4), which bounces it with RET=HDRS.
 * Refused and removed, with a log line: a file that is not a plain file with
 * one link, a torn or malformed one, one without recipients, one whose uid has
 * no account.  Left for the next run: files still locked by their writer (a
 * commit in progress), and every file while the queue's file system has less
 * than minfree= free.
 *
 * Returns the number picked up, -1 on an error of our own (the maildrop
 * cannot be read, the queue cannot be written): the rest waits. */
int pickup_maildrop(const struct config *c, struct strlist *picked);

#endif
