/* subaddress.c - user+tag addresses (subaddress.h). */
#include "compat.h"

#include <string.h>
#include <strings.h>

#include "subaddress.h"
#include "util.h"

int subaddr_delim_ok(const char *d)
{
    return d && (d[0] == '\0' || (d[1] == '\0' && strchr(SUBADDR_DELIMS, d[0])));
}

/* Names that are one address whatever the delimiter: the role accounts
 * every domain must have, and (with "-") the list owners' and requests'. */
static int never_split(const char *local, char delim)
{
    if (strcasecmp(local, "postmaster") == 0 || strcasecmp(local, "mailer-daemon") == 0)
        return 1;
    if (delim != '-')
        return 0;
    size_t n = strlen(local);
    return strncasecmp(local, "owner-", 6) == 0 ||
           (n > 8 && strcasecmp(local + n - 8, "-request") == 0);
}

int subaddr_split(const char *delim, const char *local, char **user, const char **tag)
{
    *user = NULL;
    *tag = NULL;
    if (!delim || !delim[0] || !local)
        return 0;
    const char *d = strchr(local, delim[0]);
    if (!d || d == local || never_split(local, delim[0]))
        return 0;
    *user = xstrndup(local, (size_t)(d - local));
    *tag = d + 1;
    return 1;
}
