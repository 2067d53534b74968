/* queue_file.h - the queue file format (postoffice-queue(5)): one file per message.
 *
 *   "POQ2 " + 16 lowercase hex digits (the data length L) + "\n"   QF_HDR_LEN bytes
 *   L bytes of message data (LF line ends; the last line may lack its LF)
 *   the control records (queue_records.h) without ctl's "." end marker line
 *   the end line: "." SP 16 lowercase hex digits LF, the checksum of every
 *       byte before it: the XXH64 (seed 0) of the data, continued as the
 *       FNV-1a 64 state over the control records, then the header (the writer
 *       learns L, so the header, only at the end)
 *   Files of the first version ("POQ1 ") are read as well: their checksum is
 *   FNV-1a 64 throughout (data from FNV1A64_INIT).  XXH64 reads 8 bytes a step
 *   in four independent lanes (about 10x FNV's byte-at-a-time multiply chain
 *   on this class of CPU); the short rest stays FNV-1a.
 *   appended status records (queue_records.h), each with its own checksum; a last line
 *       without LF is an interrupted append
 *
 * The header has a fixed width so the enqueue can pwrite() it last, and the
 * checksum covers everything up to the end line: a file whose name was made
 * durable before its contents (a system crash during an enqueue) is short,
 * has a hole, or a wrong checksum, and is recognised as torn. */
#ifndef PO_QUEUE_FILE_H
#define PO_QUEUE_FILE_H

#include <stddef.h>
#include <stdint.h>

#include "envelope.h"
#include "util.h"

#define QF_HDR_LEN 22  /* "POQ2 " + 16 hex + LF */
#define QF_END_LEN 19  /* "." SP 16 hex LF */

/* The header line for data length len: QF_HDR_LEN characters and a NUL. */
void qf_header(long long len, char out[QF_HDR_LEN + 1]);

/* The data checksum of a new queue file (XXH64, seed 0), kept by the writer
 * as it writes.  qf_datasum_new never fails (out of memory exits). */
struct qf_datasum;
struct qf_datasum *qf_datasum_new(void);
void qf_datasum_add(struct qf_datasum *s, const void *p, size_t n);
uint64_t qf_datasum_value(const struct qf_datasum *s);
void qf_datasum_free(struct qf_datasum *s); /* NULL is fine */
uint64_t qf_datasum_of(const void *p, size_t n); /* in one call */

/* Append to out what follows the data of a new queue file: e's control
 * records and the end line.  datasum is the qf_datasum of the len data
 * bytes. */
void qf_seal(const struct envelope *e, uint64_t datasum, long long len, struct buf *out);

struct qf_info {
    long long data_off, data_len; /* the message data */
    long long valid_end;          /* end of the last complete status record;
                                     anything after it is an interrupted append */
    size_t bad_records;           /* status records ignored (ctl_parse_ex) */
};

/* Read the queue file open on fd (pread: the offset is not used), check header,
 * length, end line and (with verify) the checksum, and parse the control and
 * status records into e (env_init'ed by the caller; env_free it on error too).
 * At most ctl_max bytes after the data are read.  0, or -1 with errno: EINVAL
 * when the file is torn, corrupt or not a queue file (*why says which), EFBIG
 * past ctl_max, another errno when it cannot be read. */
int qf_load(int fd, size_t ctl_max, int verify, struct envelope *e, struct qf_info *qi,
            const char **why);

#endif
