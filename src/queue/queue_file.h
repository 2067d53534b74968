/* queue_file.h - the queue file format (postoffice-queue(5)): one file per message.
 *
 *   "POQ1 " + 16 lowercase hex digits (the data length L) + "\n"   QF_HDR_LEN bytes
 *   L bytes of message data (LF line ends; the last line may lack its LF)
 *   the control records (queue_records.h) without ctl's "." end marker line
 *   the end line: "." SP 16 lowercase hex digits LF, the FNV-1a 64 checksum of
 *       every byte before it, fed in the order data, control records, header
 *       (the writer learns L, so the header, only at the end)
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

#define QF_HDR_LEN 22  /* "POQ1 " + 16 hex + LF */
#define QF_END_LEN 19  /* "." SP 16 hex LF */

/* The header line for data length len: QF_HDR_LEN characters and a NUL. */
void qf_header(long long len, char out[QF_HDR_LEN + 1]);

/* Append to out what follows the data of a new queue file: e's control
 * records and the end line.  datasum is fnv1a64 of the len data bytes from
 * FNV1A64_INIT (the writer hashes as it writes). */
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
