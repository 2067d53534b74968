/* milter_mods.h - the changes mail filters ask for at the end of a message,
 * and applying them to the stored message and its envelope.
 *
 * Called in the SMTP session child (user=): the milter client (milter.h)
 * records each change as it arrives (mmods_add_*), checked and bounded; the
 * session applies them all (mmods_apply) before the message is committed to
 * the queue, so the queue file and every delivered copy show them.  Every
 * filter sees the message as it was received (as in sendmail); the changes
 * are applied in filter order, each filter's in the order it sent them. */
#ifndef PO_MILTER_MODS_H
#define PO_MILTER_MODS_H

#include <stddef.h>
#include <sys/types.h>

#include "envelope.h"
#include "util.h"

struct spool_new;

/* Reads the stored message: up to n bytes at offset off.  Bytes read, 0 at
 * the end, -1 on error. */
typedef ssize_t (*mmods_read_fn)(void *arg, void *p, size_t n, long long off);

/* One header field of the message: name without the colon, value as stored
 * after it (its leading space and folded lines with LF included). */
struct mhdr {
    char *name;
    char *value;
};

struct mhdrs {
    struct mhdr *v;
    size_t n;
    long long body_off;   /* where the body starts (after the empty line) */
};

/* Read the header block of the stored message (size bytes) into h; at most
 * max bytes of headers (the rest counts as body).  0, or -1 with errno. */
int mmods_read_headers(mmods_read_fn rd, void *arg, long long size, size_t max,
                       struct mhdrs *h);
void mmods_free_headers(struct mhdrs *h);

enum mmod_type { MM_ADDHDR, MM_INSHDR, MM_CHGHDR, MM_ADDRCPT, MM_DELRCPT, MM_CHGFROM };

struct mmod {
    enum mmod_type type;
    long idx;        /* INSHDR: position (0 = first); CHGHDR: nth of that name (1 = first) */
    char *a, *b;     /* header name and value; or the address */
};

struct mmods {
    struct mmod *v;
    size_t n;
    int replace_body;     /* a filter replaced the body: it is in body */
    struct buf body;      /* the new body, LF line ends */
    long long body_max;   /* bound on the new body (bytes); 0 = none */
    char *quarantine;     /* the reason a filter quarantined the message, or NULL */
};

void mmods_init(struct mmods *m, long long body_max);
void mmods_free(struct mmods *m);
void mmods_reset(struct mmods *m);  /* nothing recorded: ready for the next message */
int mmods_any(const struct mmods *m); /* anything to apply to the message data? */

/* Record changes (copied).  A header name must be printable ASCII without
 * a colon or space, a value is cleaned (CR LF -> LF, every line after the
 * first starts with white space, no NUL).  -1 (nothing recorded) when the
 * name or address is malformed. */
int mmods_add_header(struct mmods *m, enum mmod_type t, long idx, const char *name,
                     const char *value);
int mmods_add_addr(struct mmods *m, enum mmod_type t, const char *addr);
/* A filter starts a new body (the first body chunk of its reply). */
void mmods_body_start(struct mmods *m);
/* Append a chunk of the new body (CR LF -> LF).  -1 with errno EFBIG past
 * body_max. */
int mmods_body_add(struct mmods *m, const char *p, size_t n);
void mmods_set_quarantine(struct mmods *m, const char *reason);

/* Apply the envelope changes to e: sender, recipients added (once) and
 * removed (by address, case-insensitively for the domain).  Returns the
 * number of changes made. */
int mmods_apply_envelope(const struct mmods *m, struct envelope *e);

/* Write the changed message: a new spool_new in the same directory gets the
 * headers as changed and the body (the original one, read with rd, or the
 * new one), then takes *sn's place and queue id (spool_new_replace).  0, or
 * -1 with errno (*sn is unchanged). */
int mmods_apply_data(const struct mmods *m, mmods_read_fn rd, void *arg, long long size,
                     const char *dir, struct spool_new **sn);

/* Everything the filters asked for, in one call: the envelope changes, the
 * data changes (mmods_apply_data, when there are any) and the quarantine
 * mark (ENV_QUARANTINE and the reason).  0; 1 when no recipient is left (the
 * message must not be queued); -1 with errno when the data could not be
 * rewritten (*sn unchanged). */
int mmods_apply(const struct mmods *m, mmods_read_fn rd, void *arg, long long size,
                const char *dir, struct spool_new **sn, struct envelope *e);

#endif
