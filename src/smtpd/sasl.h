/* sasl.h - the SASL pieces of SMTP AUTH (RFC 4954) as pure functions: base64
 * (RFC 4648, strict), the PLAIN message (RFC 4616), the LOGIN challenges, the
 * mechanism names we offer, and xtext (RFC 3461 4, for MAIL's AUTH=).
 *
 * No I/O, no allocation beyond the caller's struct buf and malloc'd strings;
 * every input is untrusted network text.  Called by the session child
 * (smtpd_auth.h), as user=; the fuzz harness tests/fuzz/fuzz_sasl.c checks
 * the contracts below.  Failures return -1 and leave a short reason (a static
 * string, safe to send to the client) in *why when why is not NULL. */
#ifndef PO_SASL_H
#define PO_SASL_H

#include <stddef.h>

#include "util.h"

/* Longest user name or password we take (RFC 4616 asks for at least 255
 * octets each); longer is refused, not cut. */
#define SASL_FIELD_MAX 1024

/* Longest client response line to a 334 challenge (RFC 4954 4: 12288
 * octets); the AUTH command line itself keeps the session's line limit. */
#define SASL_LINE_MAX 12288

enum sasl_mech { SASL_NONE = 0, SASL_PLAIN, SASL_LOGIN };

/* The EHLO keyword's mechanism list, "PLAIN LOGIN". */
#define SASL_MECHS "PLAIN LOGIN"

/* The mechanism named by name (any case), or SASL_NONE. */
enum sasl_mech sasl_mech_parse(const char *name);

/* Decode base64 text (len bytes, no white space, '=' padding required as RFC
 * 4648 4 says, unused bits zero) and append the bytes to out.  "=" alone is
 * the empty response (RFC 4954 4).  0, or -1 (nothing appended). */
int sasl_b64_decode(const char *in, size_t len, struct buf *out, const char **why);

/* Append the base64 form of p[n] to out (padded, no line breaks). */
void sasl_b64_encode(const void *p, size_t n, struct buf *out);

/* Split a PLAIN message "authzid NUL authcid NUL passwd" (msg[len]).  Fills
 * malloc'd *authzid ("" when empty), *user, *pass.  -1 when there are not
 * exactly two NULs, the user name is empty, a field is longer than
 * SASL_FIELD_MAX, or the user name holds a control byte (the password may
 * hold anything but NUL).  Nothing is allocated on failure. */
int sasl_plain_parse(const char *msg, size_t len, char **authzid, char **user, char **pass,
                     const char **why);

/* Check one decoded LOGIN response (user name or password, msg[len]): no NUL,
 * at most SASL_FIELD_MAX bytes, a user name not empty and without control
 * bytes.  0 or -1. */
int sasl_login_field(const char *msg, size_t len, int is_user, const char **why);

/* The LOGIN challenges, base64 of "Username:" and "Password:". */
#define SASL_LOGIN_USER "VXNlcm5hbWU6"
#define SASL_LOGIN_PASS "UGFzc3dvcmQ6"

/* Decode xtext (RFC 3461 4: "+XX" for a byte, XX upper-case hex; printable
 * ASCII 0x21..0x7e otherwise, never '=' or a bare '+') into out (reset
 * first).  0 or -1. */
int sasl_xtext_decode(const char *in, struct buf *out);

/* Wipe and free a secret (a password) or a buffer that held one. */
void sasl_wipe(char *secret);
void sasl_wipe_buf(struct buf *b);

#endif
