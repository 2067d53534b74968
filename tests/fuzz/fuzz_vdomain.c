/* fuzz_vdomain.c - vdomain.h: domains.cf lines, the passwd lookup, user names.
 * Invariants: a listed domain is non-empty, lower case, without ':', blanks
 * at its ends or a trailing dot, and "owner:DOMAIN:1" / ":0" written back
 * parses to the same domain with the same state; vdomain_user_ok never passes
 * a name that could leave VSPOOL/DOMAIN ('/', a leading '.', '@', ':',
 * control bytes, over 255 bytes); a hash found in a passwd file holds no ':'
 * and no line end, and the user it was found for is found again. */
#include "compat.h"

#include <ctype.h>

#include "fuzz.h"
#include "util.h"
#include "vdomain.c" /* listed_domain is static */

static char path[64];

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    snprintf(path, sizeof path, "/tmp/po-fuzz-vdomain-%ld", (long)getpid());
    return 0;
}

static void check_domain(const char *line)
{
    char *copy = xstrdup(line);
    int active = -1;
    char *d = listed_domain(copy, &active);
    if (d) {
        size_t n = strlen(d);
        FUZZ_CHECK(n > 0, "empty domain listed");
        FUZZ_CHECK(active == 0 || active == 1, "active is neither 0 nor 1");
        FUZZ_CHECK(!strchr(d, ':'), "domain with a colon");
        FUZZ_CHECK(d[n - 1] != '.', "domain with a trailing dot");
        FUZZ_CHECK(!isspace((unsigned char)d[0]) && !isspace((unsigned char)d[n - 1]),
                   "domain with blanks at an end");
        for (const char *p = d; *p; p++)
            FUZZ_CHECK(!(*p >= 'A' && *p <= 'Z'), "domain not in lower case");
        char *again = xasprintf("owner:%s:%d", d, active);
        int a2 = -1;
        char *d2 = listed_domain(again, &a2);
        FUZZ_CHECK(d2 && strcmp(d, d2) == 0 && a2 == active, "domain does not round-trip");
        free(again);
    }
    free(copy);
}

static void check_user(const char *u)
{
    if (!vdomain_user_ok(u))
        return;
    size_t n = strlen(u);
    FUZZ_CHECK(n > 0 && n <= 255, "user name length");
    FUZZ_CHECK(u[0] != '.', "user name with a leading dot");
    FUZZ_CHECK(!strpbrk(u, "/@:"), "user name with / @ or :");
    FUZZ_CHECK(!fuzz_has_ctl(u, n, 0), "user name with a control byte");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fuzz_str(data, size);
    /* every line as a domains.cf line and as a user name */
    for (char *line = text, *next; line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        check_domain(line);
        check_user(line);
    }
    free(text);
    /* the whole input as a passwd file; its first field as the user */
    FILE *f = fopen(path, "w");
    if (!f || fwrite(data, 1, size, f) != size || fclose(f) != 0)
        abort();
    size_t ulen = 0;
    while (ulen < size && ulen < 64 && data[ulen] != ':' && data[ulen] != '\n' && data[ulen])
        ulen++;
    char *user = fuzz_str(data, ulen);
    char *hash = NULL;
    int rc = vdomain_passwd_file(path, user, &hash);
    FUZZ_CHECK(rc == 0 || rc == 1, "vdomain_passwd_file on a readable file");
    if (rc == 1) {
        FUZZ_CHECK(hash != NULL, "found without a hash");
        FUZZ_CHECK(!strchr(hash, ':') && !strchr(hash, '\n'), "hash with ':' or a line end");
        char *h2 = NULL;
        FUZZ_CHECK(vdomain_passwd_file(path, user, &h2) == 1 && strcmp(hash, h2) == 0,
                   "lookup not repeatable");
        free(h2);
    } else {
        FUZZ_CHECK(hash == NULL, "a hash without a user");
    }
    free(hash);
    free(user);
    unlink(path);
    return 0;
}
