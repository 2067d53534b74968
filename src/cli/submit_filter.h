/* submit_filter.h - the mail filters (filter=) for a message the sendmail
 * front end is queueing, when filter-local= is on (postoffice.cf(5)).
 *
 * Called by submit.c, as the invoking user (root for root's own mail),
 * after the message is written and before it is committed: the filters are
 * told of a local connection ("localhost", no address), HELO with our host
 * name, the sender, each recipient, DATA, the message and its end, as for an
 * SMTP client; their changes are applied (milter_mods.h) under the same
 * queue id. */
#ifndef PO_SUBMIT_FILTER_H
#define PO_SUBMIT_FILTER_H

#include "conf.h"
#include "envelope.h"

struct spool_new;

/* 0: commit the message (*sn and *e as the filters left them); 1: it must
 * not be queued and nobody is told (discarded, or no recipient left: logged);
 * otherwise a <sysexits.h> code after saying on stderr why (EX_UNAVAILABLE
 * for a filter's 5xx refusal, EX_TEMPFAIL for a 4xx or a filter that is not
 * available under filter-fail=tempfail, EX_IOERR when the changed message
 * cannot be written).  *sn is left for the caller to commit or abort. */
int sfilter_run(const struct config *c, const char *dir, struct spool_new **sn,
                struct envelope *e);

#endif
