/* verify.h - sendmail -bv: say where each address would go, without sending
 * anything.
 *
 * For each address: a syntax error; a local mailbox (and its owner); an alias
 * or .forward expansion, target by target (mailbox, program, file, remote
 * address); and for remote addresses the hosts a delivery would try (MX hosts
 * by preference, the domain's own address, an address literal, or the
 * relay-host).  Expansion is the queue runner's own (expand.h: .forward files
 * are read by a child running as their owner); DNS answers are read by a
 * child running as user=, never as root.  Called by main for -bv, as the
 * invoking user.  Returns 0 when every address resolved, EX_NOUSER (67) when
 * one is unknown or undeliverable, EX_DATAERR (65) for a syntax error,
 * EX_TEMPFAIL (75) when DNS or a file could not tell now. */
#ifndef PO_VERIFY_H
#define PO_VERIFY_H

#include <stdio.h>

#include "conf.h"
#include "util.h"

int verify_addresses(const struct config *c, const struct strlist *addrs, FILE *out);

#endif
