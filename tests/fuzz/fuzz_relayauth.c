/* fuzz_relayauth.c - relay_auth.h: the relay-auth= file parser.  Invariants:
 * success gives a user name without ':' and a password, both non-empty, at
 * most RELAY_CRED_MAX bytes, without control bytes, and the user:password
 * line is in the input; failure gives a reason and nothing else; the reason
 * never quotes the input (it may be a password): it is one of the fixed texts,
 * digits aside. */
#include "compat.h"

#include "fuzz.h"
#include "relay_auth.h"
#include "util.h"

static void check_part(const char *s)
{
    size_t n = strlen(s);
    FUZZ_CHECK(n >= 1 && n <= RELAY_CRED_MAX, "credential length out of range");
    for (size_t i = 0; i < n; i++)
        FUZZ_CHECK((unsigned char)s[i] >= 0x20 && s[i] != 0x7f, "control byte in credential");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *user, *pass, *why;
    const char *text = (const char *)data;
    int rc = relay_cred_parse(text, size, &user, &pass, &why);
    if (rc == 0) {
        FUZZ_CHECK(user && pass && !why, "success without both parts");
        check_part(user);
        check_part(pass);
        FUZZ_CHECK(!strchr(user, ':'), "user name with a colon");
        char *line = xasprintf("%s:%s", user, pass);
        FUZZ_CHECK(memmem(text, size, line, strlen(line)) != NULL, "line not in the input");
        free(line);
        free(user);
        free(pass);
        return 0;
    }
    FUZZ_CHECK(rc == -1 && why && !user && !pass, "failure without a reason, or with parts");
    /* the reason is one of the fixed texts (digits aside): it quotes nothing */
    char *t = xstrdup(why);
    size_t k = 0;
    for (const char *q = why; *q; q++)
        if (*q < '0' || *q > '9')
            t[k++] = *q;
    t[k] = '\0';
    static const char *const fixed[] = {
        "no user:password line in it", "line  is not user:password",
        "line : a second account (only the first line is used: remove the others)",
        "line : user name or password longer than  bytes or with control characters"};
    int known = 0;
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        known |= strcmp(t, fixed[i]) == 0;
    FUZZ_CHECK(known, "the reason is not one of the fixed texts");
    free(t);
    free(why);
    return 0;
}
