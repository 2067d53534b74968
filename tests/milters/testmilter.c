/* testmilter.c - a mail filter written with sendmail's libmilter, for the
 * tests: one behaviour per run, chosen with -m.  Every event and every macro
 * it is given is appended to the -l file ("EVENT name=value ..."), so the
 * tests can check what postoffice sends.
 *
 *   testmilter -p SOCKET -m MODE [-l LOGFILE] [-a ARG]
 *
 * MODE: pass, reject (at end of message), tempfail, discard, replycode (550
 * with the text ARG), rcptreject (recipients containing "bad"), mailreject,
 * connreject, headers (add X-Test-Added, insert X-Test-Inserted first,
 * change Subject, delete X-Remove-Me), body (replace the body with ARG or a
 * fixed text), addrcpt (ARG), delrcpt (ARG), chgfrom (ARG), quarantine (ARG
 * as the reason), stall (sleep 30 s at end of message), die (exit in the
 * middle of the body), skip (SMFIS_SKIP on the first body chunk, then add a
 * header counting the body chunks it saw), noreply (a filter that asks for
 * no replies to headers: NR_HDR). */
#include <errno.h>
#include <libmilter/mfapi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *mode = "pass";
static const char *arg = NULL;
static FILE *logf = NULL;
static int body_chunks = 0;

static void logev(SMFICTX *ctx, const char *ev, const char *detail)
{
    static const char *const macros[] = {
        "j", "_", "i", "{daemon_name}", "{if_name}", "{if_addr}", "{client_addr}",
        "{client_port}", "{client_name}", "{client_ptr}", "{mail_addr}", "{mail_mailer}",
        "{rcpt_addr}", "{rcpt_mailer}", "{auth_authen}", "{tls_version}", "{cipher}", NULL};
    if (!logf)
        return;
    fprintf(logf, "%s %s", ev, detail ? detail : "-");
    for (int i = 0; macros[i]; i++) {
        char *v = smfi_getsymval(ctx, (char *)macros[i]);
        if (v)
            fprintf(logf, " %s=%s", macros[i], v);
    }
    fputc('\n', logf);
    fflush(logf);
}

static int is(const char *m)
{
    return strcmp(mode, m) == 0;
}

static sfsistat x_connect(SMFICTX *ctx, char *host, _SOCK_ADDR *sa)
{
    (void)sa;
    logev(ctx, "CONNECT", host);
    return is("connreject") ? SMFIS_REJECT : SMFIS_CONTINUE;
}

static sfsistat x_helo(SMFICTX *ctx, char *helo)
{
    logev(ctx, "HELO", helo);
    return SMFIS_CONTINUE;
}

static sfsistat x_envfrom(SMFICTX *ctx, char **argv)
{
    logev(ctx, "MAIL", argv[0]);
    body_chunks = 0;
    return is("mailreject") ? SMFIS_REJECT : SMFIS_CONTINUE;
}

static sfsistat x_envrcpt(SMFICTX *ctx, char **argv)
{
    logev(ctx, "RCPT", argv[0]);
    if (is("rcptreject") && strstr(argv[0], "bad"))
        return SMFIS_REJECT;
    return SMFIS_CONTINUE;
}

static sfsistat x_data(SMFICTX *ctx)
{
    logev(ctx, "DATA", NULL);
    return SMFIS_CONTINUE;
}

static sfsistat x_header(SMFICTX *ctx, char *name, char *value)
{
    if (logf) {
        fprintf(logf, "HEADER %s: %s\n", name, value);
        fflush(logf);
    }
    (void)ctx;
    return is("noreply") ? SMFIS_NOREPLY : SMFIS_CONTINUE;
}

static sfsistat x_eoh(SMFICTX *ctx)
{
    logev(ctx, "EOH", NULL);
    return SMFIS_CONTINUE;
}

static sfsistat x_body(SMFICTX *ctx, unsigned char *p, size_t n)
{
    body_chunks++;
    if (logf) {
        fprintf(logf, "BODY %zu ", n);
        fwrite(p, 1, n, logf);
        fputc('\n', logf);
        fflush(logf);
    }
    if (is("die"))
        _exit(3);
    (void)ctx;
    return is("skip") ? SMFIS_SKIP : SMFIS_CONTINUE;
}

static sfsistat eom_changes(SMFICTX *ctx)
{
    if (is("headers")) {
        smfi_addheader(ctx, "X-Test-Added", "added by testmilter");
        smfi_insheader(ctx, 0, "X-Test-Inserted", "inserted first");
        smfi_chgheader(ctx, "Subject", 1, "changed by testmilter");
        smfi_chgheader(ctx, "X-Remove-Me", 1, NULL);
    } else if (is("body")) {
        const char *b = arg ? arg : "The body was replaced.\r\nSecond line.\r\n";
        smfi_replacebody(ctx, (unsigned char *)b, (int)strlen(b));
    } else if (is("addrcpt")) {
        smfi_addrcpt(ctx, (char *)arg);
    } else if (is("delrcpt")) {
        smfi_delrcpt(ctx, (char *)arg);
    } else if (is("chgfrom")) {
        smfi_chgfrom(ctx, (char *)arg, NULL);
    } else if (is("quarantine")) {
        smfi_quarantine(ctx, (char *)(arg ? arg : "test quarantine"));
    } else if (is("skip")) {
        char n[32];
        snprintf(n, sizeof n, "%d", body_chunks);
        smfi_addheader(ctx, "X-Body-Chunks", n);
    }
    return SMFIS_CONTINUE;
}

static sfsistat x_eom(SMFICTX *ctx)
{
    logev(ctx, "EOM", NULL);
    if (is("reject"))
        return SMFIS_REJECT;
    if (is("tempfail"))
        return SMFIS_TEMPFAIL;
    if (is("discard"))
        return SMFIS_DISCARD;
    if (is("replycode")) {
        smfi_setreply(ctx, "550", "5.7.0", (char *)(arg ? arg : "no thanks"));
        return SMFIS_REJECT;
    }
    if (is("stall")) {
        sleep(30);
        return SMFIS_CONTINUE;
    }
    return eom_changes(ctx);
}

static sfsistat x_abort(SMFICTX *ctx)
{
    logev(ctx, "ABORT", NULL);
    return SMFIS_CONTINUE;
}

static sfsistat x_close(SMFICTX *ctx)
{
    logev(ctx, "CLOSE", NULL);
    return SMFIS_CONTINUE;
}

static sfsistat x_negotiate(SMFICTX *ctx, unsigned long f0, unsigned long f1,
                            unsigned long f2, unsigned long f3, unsigned long *pf0,
                            unsigned long *pf1, unsigned long *pf2, unsigned long *pf3)
{
    (void)ctx;
    (void)f2;
    (void)f3;
    *pf0 = f0; /* every action offered */
    *pf1 = 0;
    if (is("skip") && (f1 & SMFIP_SKIP))
        *pf1 |= SMFIP_SKIP;
    if (is("noreply") && (f1 & SMFIP_NR_HDR))
        *pf1 |= SMFIP_NR_HDR;
    *pf2 = 0;
    *pf3 = 0;
    return SMFIS_CONTINUE;
}

static struct smfiDesc desc = {
    "testmilter", SMFI_VERSION, SMFIF_ADDHDRS | SMFIF_CHGHDRS | SMFIF_CHGBODY |
                                    SMFIF_ADDRCPT | SMFIF_DELRCPT | SMFIF_QUARANTINE |
                                    SMFIF_CHGFROM,
    x_connect, x_helo, x_envfrom, x_envrcpt, x_header, x_eoh, x_body, x_eom, x_abort,
    x_close, NULL, x_data, x_negotiate,
};

int main(int argc, char **argv)
{
    const char *sock = NULL, *logpath = NULL;
    int c;
    while ((c = getopt(argc, argv, "p:m:l:a:")) != -1) {
        switch (c) {
        case 'p': sock = optarg; break;
        case 'm': mode = optarg; break;
        case 'l': logpath = optarg; break;
        case 'a': arg = optarg; break;
        default:
            fprintf(stderr, "usage: testmilter -p SOCKET -m MODE [-l LOG] [-a ARG]\n");
            return 64;
        }
    }
    if (!sock) {
        fprintf(stderr, "testmilter: -p SOCKET is needed\n");
        return 64;
    }
    if (logpath && !(logf = fopen(logpath, "a"))) {
        fprintf(stderr, "testmilter: %s: %s\n", logpath, strerror(errno));
        return 73;
    }
    if (strncmp(sock, "unix:", 5) == 0)
        unlink(sock + 5);
    umask(0);
    if (smfi_setconn((char *)sock) == MI_FAILURE || smfi_register(desc) == MI_FAILURE) {
        fprintf(stderr, "testmilter: cannot set up %s\n", sock);
        return 71;
    }
    return smfi_main() == MI_SUCCESS ? 0 : 1;
}
