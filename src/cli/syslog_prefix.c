/* syslog_prefix.c - syslog prefixes in their usual forms (syslog_prefix.h). */
#include "compat.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "syslog_prefix.h"

/* The names postoffice logs under (log_open's idents, main.c's personalities). */
static const char *const idents[] = {
    "postoffice", "smtpd", "runq", "sendmail", "send-mail", "mailq", "newaliases",
    "auth", "authexpire", "smtp", NULL,
};

int syslog_ident_ours(const char *ident)
{
    for (size_t i = 0; idents[i]; i++)
        if (!strcmp(ident, idents[i]))
            return 1;
    return !strncmp(ident, "postoffice/", 11);
}

/* n digits at p as a number, or -1. */
static int digits(const char *p, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)p[i]))
            return -1;
        v = v * 10 + (p[i] - '0');
    }
    return v;
}

/* "YYYY-MM-DDThh:mm:ss" then anything up to a space: its length, else 0.
 * Each check reads only bytes the ones before showed to be there. */
static size_t iso_time(const char *p, struct syslog_prefix *sp)
{
    int y, mo, d, h;
    if ((y = digits(p, 4)) < 0 || p[4] != '-' || (mo = digits(p + 5, 2)) < 1 || mo > 12 ||
        p[7] != '-' || (d = digits(p + 8, 2)) < 1 || d > 31 ||
        (p[10] != 'T' && p[10] != ' ') || (h = digits(p + 11, 2)) < 0 || h > 23 ||
        p[13] != ':')
        return 0;
    sp->have_date = 1;
    sp->year = y;
    sp->mon = mo;
    sp->mday = d;
    sp->hour = h;
    return p[10] == ' ' ? 13 + strcspn(p + 13, " ") : strcspn(p, " ");
}

/* "Mmm dd hh:mm:ss" (day space- or zero-padded): its length, else 0. */
static size_t bsd_time(const char *p, struct syslog_prefix *sp)
{
    static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
    int mon = 0;
    for (int i = 0; i < 12 && !mon; i++)
        if (!strncmp(p, months + 3 * i, 3))
            mon = i + 1;
    int d, h;
    if (!mon || p[3] != ' ' ||
        (d = p[4] == ' ' ? digits(p + 5, 1) : digits(p + 4, 2)) < 1 || d > 31 ||
        p[6] != ' ' || (h = digits(p + 7, 2)) < 0 || h > 23 || p[9] != ':' ||
        digits(p + 10, 2) < 0 || p[12] != ':' || digits(p + 13, 2) < 0)
        return 0;
    size_t n = 15;
    n += strspn(p + n, "0123456789."); /* high-precision forms: fractions */
    sp->have_date = 1;
    sp->year = 0;
    sp->mon = mon;
    sp->mday = d;
    sp->hour = h;
    return n;
}

/* "ident[pid]: " or "ident: " at p: fills ident and msg; 0 or -1. */
static int tag(const char *p, struct syslog_prefix *sp)
{
    size_t n = strcspn(p, "[: ");
    if (n == 0 || n >= sizeof sp->ident)
        return -1;
    const char *q = p + n;
    if (*q == '[') {
        size_t d = strspn(q + 1, "0123456789");
        if (d == 0 || q[1 + d] != ']')
            return -1;
        q += d + 2;
    }
    if (q[0] != ':' || (q[1] != ' ' && q[1] != '\0'))
        return -1;
    memcpy(sp->ident, p, n);
    sp->ident[n] = '\0';
    sp->msg = q + 1 + (q[1] == ' ');
    return 0;
}

/* Skip one space-separated field and the space after it. */
static const char *field(const char *p)
{
    size_t n = strcspn(p, " ");
    return p[n] == ' ' && n > 0 ? p + n + 1 : NULL;
}

/* RFC 5424 after "<PRI>1 ". */
static int rfc5424(const char *p, struct syslog_prefix *sp)
{
    if (!iso_time(p, sp) && strncmp(p, "- ", 2))
        return -1;
    const char *host = field(p), *app = host ? field(host) : NULL;
    const char *procid = app ? field(app) : NULL, *msgid = procid ? field(procid) : NULL;
    const char *sd = msgid ? field(msgid) : NULL;
    if (!sd)
        return -1;
    size_t n = strcspn(app, " ");
    if (n >= sizeof sp->ident)
        return -1;
    memcpy(sp->ident, app, n);
    sp->ident[n] = '\0';
    if (*sd == '-') {
        sd++;
    } else {
        while (*sd == '[') { /* SD-ELEMENTs; '\]' inside a value is escaped */
            for (sd++; *sd && *sd != ']'; sd++)
                if (*sd == '\\' && sd[1])
                    sd++;
            if (*sd++ != ']')
                return -1;
        }
    }
    if (*sd == ' ')
        sd++;
    else if (*sd)
        return -1;
    if (!strncmp(sd, "\xEF\xBB\xBF", 3))
        sd += 3;
    sp->msg = sd;
    return 0;
}

int syslog_prefix_parse(const char *line, struct syslog_prefix *sp)
{
    memset(sp, 0, sizeof *sp);
    const char *p = line;
    if (*p == '<') {
        size_t d = strspn(p + 1, "0123456789");
        if (d == 0 || d > 3 || p[1 + d] != '>')
            return -1;
        p += d + 2;
        if (p[0] == '1' && p[1] == ' ')
            return rfc5424(p + 2, sp);
    }
    size_t t = iso_time(p, sp);
    if (!t)
        t = bsd_time(p, sp);
    if (t) {
        if (p[t] != ' ')
            return -1;
        const char *host = p + t + 1;
        const char *after = field(host);
        /* a message without a host name has the tag at once: taken when
         * the host form gives none of our idents and this does */
        struct syslog_prefix alt = *sp;
        if (after && tag(after, sp) == 0 &&
            (syslog_ident_ours(sp->ident) || tag(host, &alt) < 0 ||
             !syslog_ident_ours(alt.ident)))
            return 0;
        if (tag(host, &alt) < 0)
            return -1;
        *sp = alt;
        return 0;
    }
    return tag(p, sp);
}
