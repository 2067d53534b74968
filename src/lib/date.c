/* date.c - RFC 5322 and asctime dates (see date.h).  No privileges needed. */
#include "compat.h"

#include <time.h>

#include "date.h"
#include "util.h"

static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

/* Broken-down local time of t and its offset from UTC in minutes; the epoch
 * in UTC (offset 0) when t cannot be converted: -1 then. */
static int local_tm(time_t t, struct tm *tm, long *off)
{
    if (localtime_r(&t, tm)) {
        *off = tm->tm_gmtoff / 60;
        return 0;
    }
    time_t zero = 0; /* a time we can't represent: say so plainly rather than guess */
    gmtime_r(&zero, tm);
    *off = 0;
    return -1;
}

int date_rfc5322(time_t t, struct buf *out)
{
    struct tm tm;
    long off;
    int rc = local_tm(t, &tm, &off);
    char sign = off < 0 ? '-' : '+';
    if (off < 0)
        off = -off;
    buf_addf(out, "%s, %d %s %04d %02d:%02d:%02d %c%02ld%02ld", days[tm.tm_wday % 7],
             tm.tm_mday, months[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
             tm.tm_sec, sign, off / 60 % 100, off % 60);
    return rc;
}

int date_asctime(time_t t, struct buf *out)
{
    struct tm tm;
    long off;
    int rc = local_tm(t, &tm, &off);
    buf_addf(out, "%s %s %2d %02d:%02d:%02d %d", days[tm.tm_wday % 7], months[tm.tm_mon % 12],
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, tm.tm_year + 1900);
    return rc;
}
