/* smtpd_auth.c - the AUTH dialogue of the SMTP server (smtpd_auth.h).
 * Runs in the session child as user=; the password check itself happens in
 * the privileged helper (auth_helper.h). */
#include "compat.h"

#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth_helper.h"
#include "log.h"
#include "route.h"
#include "sasl.h"
#include "smtpd_auth.h"
#include "smtpd_log.h"
#include "util.h"

#define DELAY_MAX_MS 16000

/* How a step of the dialogue ended. */
enum step { STEP_OK, STEP_REPLIED, STEP_CLOSE };

/* Send a reply; a refusal gets its reject line (smtpd_log.h), with the name
 * tried when there is one. */
static int say_user(struct sauth *a, const char *user, int code, const char *text)
{
    io_printf(a->io, "%03d %s\r\n", code, text);
    if (code >= 400) {
        struct slog_who w = { .ptr = a->client_name, .verb = "AUTH",
                              .ip = strcmp(a->client, "local") ? a->client : "",
                              .user = user };
        slog_reject(&w, code, text);
    }
    return code;
}

static int say_code(struct sauth *a, int code, const char *text)
{
    return say_user(a, NULL, code, text);
}

static int say_why(struct sauth *a, const char *mech, const char *why)
{
    char *t = xasprintf("5.5.2 AUTH %s: %s", mech, why);
    say_code(a, 501, t);
    free(t);
    return 501;
}

/* Send a 334 challenge (base64 text) and read the response line into out
 * (decoded).  STEP_REPLIED with *code after an error reply or "*". */
static enum step challenge(struct sauth *a, const char *b64, struct buf *out, int *code)
{
    struct buf line;
    buf_init(&line);
    int bare_cr = 0;
    io_printf(a->io, "334 %s\r\n", b64);
    enum io_status st = io_getline(a->io, &line, SASL_LINE_MAX, &bare_cr);
    enum step r = STEP_OK;
    const char *why = NULL;
    if (st == IO_TIMEOUT) {
        *code = say_code(a, 421, "4.4.2 timeout during AUTH; closing connection");
        r = STEP_CLOSE;
    } else if (st != IO_OK && st != IO_TOOLONG) {
        *code = 0;
        r = STEP_CLOSE;
    } else if (st == IO_TOOLONG) {
        *code = say_code(a, 500, "5.5.6 AUTH response line too long");
        r = STEP_REPLIED;
    } else if (!strcmp(line.s, "*")) {
        *code = say_code(a, 501, "5.7.0 AUTH cancelled");
        r = STEP_REPLIED;
    } else if (bare_cr || strlen(line.s) != line.len ||
               sasl_b64_decode(line.s, line.len, out, &why) < 0) {
        *code = say_code(a, 501, "5.5.2 AUTH response is not valid base64");
        r = STEP_REPLIED;
    }
    sasl_wipe_buf(&line);
    return r;
}

/* An initial response from the AUTH line itself, decoded into out. */
static enum step initial(struct sauth *a, const char *ir, struct buf *out, int *code)
{
    const char *why = NULL;
    if (sasl_b64_decode(ir, strlen(ir), out, &why) < 0) {
        *code = say_code(a, 501, "5.5.2 AUTH initial response is not valid base64");
        return STEP_REPLIED;
    }
    return STEP_OK;
}

/* PLAIN: one message "authzid NUL user NUL password". */
static enum step mech_plain(struct sauth *a, const char *ir, char **user, char **pass, int *code)
{
    struct buf m;
    buf_init(&m);
    enum step r = ir ? initial(a, ir, &m, code) : challenge(a, "", &m, code);
    char *authz = NULL;
    const char *why = NULL;
    if (r == STEP_OK && sasl_plain_parse(m.s, m.len, &authz, user, pass, &why) < 0) {
        *code = say_why(a, "PLAIN", why);
        r = STEP_REPLIED;
    }
    sasl_wipe_buf(&m);
    /* no proxy authorisation: an authzid other than the user itself is
     * a request to act as someone else, refused like a wrong password */
    if (r == STEP_OK && authz[0] && strcmp(authz, *user) != 0) {
        char *u = str_sanitize(*user, strlen(*user)), *z = str_sanitize(authz, strlen(authz));
        log_notice("AUTH PLAIN from %s: user %s asked to act as %s; refused", a->client, u, z);
        free(u);
        free(z);
        sasl_wipe(*pass);
        *pass = NULL; /* sauth_run: failed without asking */
    }
    free(authz);
    return r;
}

/* LOGIN: "Username:" then "Password:" (the first skipped with an initial
 * response). */
static enum step mech_login(struct sauth *a, const char *ir, char **user, char **pass, int *code)
{
    struct buf u, p;
    buf_init(&u);
    buf_init(&p);
    const char *why = NULL;
    enum step r = ir ? initial(a, ir, &u, code) : challenge(a, SASL_LOGIN_USER, &u, code);
    if (r == STEP_OK && sasl_login_field(u.s, u.len, 1, &why) < 0) {
        *code = say_why(a, "LOGIN", why);
        r = STEP_REPLIED;
    }
    if (r == STEP_OK)
        r = challenge(a, SASL_LOGIN_PASS, &p, code);
    if (r == STEP_OK && sasl_login_field(p.s, p.len, 0, &why) < 0) {
        *code = say_why(a, "LOGIN", why);
        r = STEP_REPLIED;
    }
    if (r == STEP_OK) {
        *user = xstrdup(u.s);
        *pass = xstrdup(p.s);
    }
    buf_free(&u);
    sasl_wipe_buf(&p);
    return r;
}

/* Sleep ms milliseconds (no signals, no alarm()). */
static void pause_ms(long ms)
{
    long long end = now_ms() + ms;
    int left;
    while ((left = ms_left(end)) > 0)
        poll(NULL, 0, left);
}

/* The verdict of the helper, answered and logged. */
static int conclude(struct sauth *a, const char *mech, const char *user, enum auth_verdict v,
                    int *closing)
{
    char *name = str_sanitize(user, strlen(user));
    int code;
    if (v == AUTH_YES) {
        log_info("AUTH %s from %s: user %s authenticated", mech, a->client, name);
        code = say_code(a, 235, "2.7.0 authentication successful");
    } else if (v == AUTH_TEMP) {
        log_warn("AUTH %s from %s: user %s: cannot check the password now", mech, a->client,
                 name);
        code = say_user(a, user, 454,
                        "4.7.0 temporary authentication failure; try again later");
    } else {
        a->failures++;
        long max = a->c->auth_failures;
        /* a growing delay: 1, 2, 4 ... seconds, bounded; the session child
         * serves this client only, so nobody else waits */
        long ms = a->failures >= 5 ? DELAY_MAX_MS : 1000L << (a->failures - 1);
        io_flush(a->io);
        pause_ms(ms);
        if (max > 0 && a->failures >= max) {
            code = say_user(a, user, 421, "4.7.0 too many failed authentications; closing "
                                        "connection");
            *closing = 1;
        } else {
            code = say_user(a, user, 535, "5.7.8 authentication credentials invalid");
        }
    }
    free(name);
    return code;
}

int sauth_run(struct sauth *a, const char *arg, char **user, int *closing)
{
    *user = NULL;
    *closing = 0;
    char *copy = xstrdup(arg), *sp = strchr(copy, ' ');
    const char *ir = NULL;
    if (sp) {
        *sp = '\0';
        ir = sp + 1;
    }
    enum sasl_mech mech = sasl_mech_parse(copy);
    int code = 0;
    if (!*copy || (ir && (!*ir || strchr(ir, ' ')))) {
        code = say_code(a, 501, "5.5.4 syntax: AUTH mechanism [initial-response]");
    } else if (mech == SASL_NONE) {
        code = say_code(a, 504, "5.5.4 unrecognised authentication mechanism; use "
                                    SASL_MECHS);
    } else {
        char *u = NULL, *p = NULL;
        const char *name = mech == SASL_PLAIN ? "PLAIN" : "LOGIN";
        enum step r = mech == SASL_PLAIN ? mech_plain(a, ir, &u, &p, &code)
                                         : mech_login(a, ir, &u, &p, &code);
        if (r == STEP_CLOSE) {
            *closing = 1;
        } else if (r == STEP_OK) {
            enum auth_verdict v = p ? auth_helper_ask(a->helper_fd, u, p, a->client)
                                    : AUTH_NO;
            sasl_wipe(p);
            p = NULL;
            code = conclude(a, name, u, v, closing);
            if (v == AUTH_YES)
                *user = xstrdup(u);
        }
        free(u);
        sasl_wipe(p);
    }
    sasl_wipe(copy);
    return code;
}

int sauth_sender_ok(const struct config *c, const char *login, const char *sender)
{
    if (!*sender || !strcasecmp(sender, login))
        return 1;
    if (strchr(login, '@'))
        return 0;
    const char *at = strrchr(sender, '@');
    size_t n = at ? (size_t)(at - sender) : strlen(sender);
    return n == strlen(login) && !strncmp(sender, login, n) &&
           route_is_local_domain(c, at ? at + 1 : NULL);
}

int sauth_mail_param(const char *value)
{
    struct buf b;
    buf_init(&b);
    int ok = sasl_xtext_decode(value, &b) == 0 && b.len > 0 && strlen(b.s) == b.len &&
             (!strcmp(b.s, "<>") || (strchr(b.s, '@') && !strpbrk(b.s, "<> ")));
    buf_free(&b);
    return ok ? 0 : -1;
}
