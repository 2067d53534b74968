/* auth_check.c - is this user/password right (auth_check.h).
 *
 * ROOT: everything here runs as root, in the AUTH helper's short-lived
 * checker child (auth_helper.c): it reads /etc/shadow, PAM and the virtual
 * domains' passwd files.  Input is a user name and a password, bounded in
 * size by the helper; nothing here writes any file. */
#include "compat.h"

#include <errno.h>
#include <pwd.h>
#include <shadow.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#if HAVE_PAM
#include <security/pam_appl.h>
#endif

#include "auth_check.h"
#include "log.h"
#include "pwhash.h"
#include "route.h"
#include "util.h"
#include "vdomain.h"

#define PO_PAM_SERVICE "smtp"

/* A name safe as a lookup key: not empty, no '/', ':' or control bytes, and
 * not starting with '.' (it names a file in the virtual case). */
static int name_ok(const char *s)
{
    if (!*s || *s == '.')
        return 0;
    for (; *s; s++)
        if (*s == '/' || *s == ':' || (unsigned char)*s < 0x20 || *s == 0x7f)
            return 0;
    return 1;
}

static enum auth_verdict check_virtual(const struct config *c, const char *user,
                                       const char *domain, const char *pass)
{
    char *d = vdomain_name(c, domain);
    if (!d || !name_ok(d))
        return free(d), AUTH_NO;
    char *path = xasprintf("%s/%s/passwd", c->vpath, d), *hash = NULL;
    long line = 0;
    int rc = vdomain_passwd_file_at(path, user, &hash, &line);
    enum auth_verdict v = rc < 0 ? AUTH_TEMP : AUTH_NO;
    if (rc == 1) {
        const char *why = NULL;
        enum pwhash_result r = pwhash_check(pass, hash, &why);
        if (r == PWHASH_BADHASH)
            log_err("%s:%ld: the password of %s@%s cannot be used: %s (make it with htpasswd "
                    "-B or mkpasswd)", path, line, user, d, why);
        v = r == PWHASH_MATCH ? AUTH_YES : AUTH_NO;
    }
    if (hash) {
        memset(hash, 0, strlen(hash));
        free(hash);
    }
    free(path);
    free(d);
    return v;
}

#if HAVE_PAM
/* The conversation: the password for every hidden prompt, nothing else. */
static int pam_conv_fn(int n, const struct pam_message **msg, struct pam_response **resp,
                       void *pass)
{
    if (n <= 0 || n > PAM_MAX_NUM_MSG)
        return PAM_CONV_ERR;
    struct pam_response *r = calloc((size_t)n, sizeof *r);
    if (!r)
        return PAM_BUF_ERR;
    for (int i = 0; i < n; i++) {
        if (msg[i]->msg_style == PAM_PROMPT_ECHO_OFF) {
            r[i].resp = strdup(pass);
        } else if (msg[i]->msg_style == PAM_PROMPT_ECHO_ON) {
            for (int k = 0; k < i; k++)
                free(r[k].resp);
            free(r);
            return PAM_CONV_ERR; /* we know no answer but the password */
        }
    }
    *resp = r;
    return PAM_SUCCESS;
}

static enum auth_verdict check_local(const char *name, const char *pass, const char *client)
{
    struct pam_conv conv = { pam_conv_fn, (void *)pass };
    pam_handle_t *h = NULL;
    int rc = pam_start(PO_PAM_SERVICE, name, &conv, &h);
    if (rc == PAM_SUCCESS && client && *client)
        pam_set_item(h, PAM_RHOST, client);
    if (rc == PAM_SUCCESS)
        rc = pam_authenticate(h, PAM_SILENT | PAM_DISALLOW_NULL_AUTHTOK);
    if (rc == PAM_SUCCESS)
        rc = pam_acct_mgmt(h, PAM_SILENT);
    enum auth_verdict v = AUTH_NO;
    if (rc == PAM_SUCCESS)
        v = AUTH_YES;
    else if (rc == PAM_AUTHINFO_UNAVAIL || rc == PAM_SYSTEM_ERR || rc == PAM_BUF_ERR ||
             rc == PAM_ABORT || rc == PAM_CONV_ERR)
        v = AUTH_TEMP;
    if (v == AUTH_TEMP)
        log_err("PAM service %s: %s", PO_PAM_SERVICE, pam_strerror(h, rc));
    if (h)
        pam_end(h, rc);
    return v;
}
#else
static enum auth_verdict check_local(const char *name, const char *pass, const char *client)
{
    (void)client;
    struct spwd *sp = getspnam(name);
    const char *hash = NULL;
    if (sp) {
        long today = (long)(time(NULL) / 86400);
        if (sp->sp_expire > 0 && today >= sp->sp_expire)
            return AUTH_NO; /* the account has expired */
        hash = sp->sp_pwdp;
    } else {
        struct passwd *pw = getpwnam(name);
        hash = pw ? pw->pw_passwd : NULL;
    }
    const char *why = NULL;
    if (!hash || !pwhash_supported(hash, &why))
        return AUTH_NO; /* locked ("!", "*") or no password at all */
    return pwhash_check(pass, hash, &why) == PWHASH_MATCH ? AUTH_YES : AUTH_NO;
}
#endif

enum auth_verdict auth_check(const struct config *c, const char *user, const char *pass,
                             const char *client)
{
    const char *at = strrchr(user, '@');
    char *local = at ? xstrndup(user, (size_t)(at - user)) : xstrdup(user);
    const char *domain = at ? at + 1 : NULL;
    enum auth_verdict v = AUTH_NO;
    if (!name_ok(local)) {
        v = AUTH_NO;
    } else if (domain && vdomain_active(c, domain)) {
        v = check_virtual(c, local, domain, pass);
    } else if (c->auth_local && route_is_local_domain(c, domain)) {
        struct passwd *pw = getpwnam(local);
        if (pw && pw->pw_uid != 0)
            v = check_local(pw->pw_name, pass, client);
    }
    free(local);
    return v;
}
