/* smtp_auth.c - AUTH PLAIN / LOGIN as a client (see smtp_auth.h).  Runs
 * unprivileged, in the remote-delivery process. */
#include "compat.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "log.h"
#include "smtp_auth.h"
#include "smtp_conn.h"
#include "smtp_reply.h"
#include "util.h"

char *smtp_auth_b64(const char *p, size_t n)
{
    char *out = xmalloc(4 * ((n + 2) / 3) + 1);
    EVP_EncodeBlock((unsigned char *)out, (const unsigned char *)p, (int)n);
    return out;
}

static void wipe_free(char *s)
{
    if (s)
        explicit_bzero(s, strlen(s));
    free(s);
}

/* Send a secret line and read the reply into r.  0 or -1 (k failed). */
static int secret_step(struct smtp_conn *k, char *line, const char *shown, struct smtp_reply *r)
{
    int rc = smtp_send_secret(k, line, shown, smtp_tmo(k, SMTP_TMO_MAIL));
    wipe_free(line);
    if (rc < 0)
        return -1;
    return smtp_read_reply(k, r, smtp_tmo(k, SMTP_TMO_MAIL));
}

/* AUTH PLAIN with the initial response: "\0user\0password". */
static int auth_plain(struct smtp_conn *k, const struct relay_cred *cr, struct smtp_reply *r)
{
    size_t ul = strlen(cr->user), pl = strlen(cr->pass);
    char *raw = xmalloc(ul + pl + 2);
    raw[0] = '\0';
    memcpy(raw + 1, cr->user, ul);
    raw[ul + 1] = '\0';
    memcpy(raw + ul + 2, cr->pass, pl);
    char *b = smtp_auth_b64(raw, ul + pl + 2);
    explicit_bzero(raw, ul + pl + 2);
    free(raw);
    char *line = xasprintf("AUTH PLAIN %s", b);
    wipe_free(b);
    return secret_step(k, line, "AUTH PLAIN (credentials)", r);
}

/* AUTH LOGIN: the user name after the first 334, the password after the second. */
static int auth_login(struct smtp_conn *k, const struct relay_cred *cr, struct smtp_reply *r)
{
    if (smtp_send_cmd(k, "AUTH LOGIN", smtp_tmo(k, SMTP_TMO_MAIL)) < 0 ||
        smtp_read_reply(k, r, smtp_tmo(k, SMTP_TMO_MAIL)) < 0)
        return -1;
    if (r->code != 334)
        return 0;
    if (secret_step(k, smtp_auth_b64(cr->user, strlen(cr->user)), "(user name)", r) < 0)
        return -1;
    if (r->code != 334)
        return 0;
    return secret_step(k, smtp_auth_b64(cr->pass, strlen(cr->pass)), "(password)", r);
}

/* A failure that ends this delivery attempt for every address. */
static int stop(struct smtp_conn *k, const char *st)
{
    smtp_conn_quit(k);
    smtp_conn_fail(k, "%s", st);
    k->final = 1;
    return -1;
}

/* "4.7.8 RELAY: AUTH PLAIN refused: 535 5.7.8 TEXT": the server's enhanced
 * code made temporary (4.7.8 for a 535 without one, else 4.7.0). */
static char *refusal(const struct smtp_conn *k, const char *mech, const struct smtp_reply *r)
{
    char *rs = smtp_reply_status(r); /* "X.Y.Z CODE text" */
    char *sp = strchr(rs, ' ');
    *sp = '\0';
    const char *text = sp + 1 + strspn(sp + 1, "0123456789");
    text += *text == ' ';
    int generic = strcmp(rs + 1, ".0.0") == 0;
    char *st = xasprintf("4%s %s: AUTH %s refused: %d %s %s",
                         generic ? (r->code == 535 ? ".7.8" : ".7.0") : rs + 1, k->relay, mech,
                         r->code, rs, text);
    free(rs);
    return st;
}

int smtp_auth(struct smtp_conn *k, const struct relay_cred *cr)
{
    if (cr->err)
        return stop(k, cr->err);
    if (!k->ext_auth) {
        log_notice("%s does not offer AUTH: sending without it", k->relay);
        return 0;
    }
    char *st = NULL;
    if (!k->tls && !k->c->relay_auth_plaintext) {
        st = xasprintf("4.7.0 %s: not sending the relay-auth credentials over a connection "
                       "without TLS (relay-tls=require, or relay-auth-plaintext)", k->relay);
    } else if (!k->auth_plain && !k->auth_login) {
        st = xasprintf("4.7.0 %s: AUTH offers no mechanism postoffice has (PLAIN, LOGIN)",
                       k->relay);
    }
    if (st) {
        stop(k, st);
        free(st);
        return -1;
    }
    struct smtp_reply r;
    smtp_reply_init(&r);
    const char *mech = k->auth_plain ? "PLAIN" : "LOGIN";
    int rc = k->auth_plain ? auth_plain(k, cr, &r) : auth_login(k, cr, &r);
    if (rc == 0 && r.code / 100 == 2) {
        k->authed = 1;
        log_info("%s: authenticated (AUTH %s)", k->relay, mech);
    } else if (rc == 0) {
        /* a refusal is never final for the message: deferred with the reply */
        st = refusal(k, mech, &r);
        stop(k, st);
        free(st);
        rc = -1;
    } else {
        k->final = 1; /* the connection broke during AUTH: not every address again */
    }
    smtp_reply_free(&r);
    return rc;
}
