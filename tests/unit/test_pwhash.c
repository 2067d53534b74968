/* test_pwhash.c - apr1 known answers from Apache's htpasswd -nbm, and every
 * hash format htpasswd and mkpasswd write (pwhash.h): the right password
 * matches, a wrong one does not, plaintext/{SHA}/locked/malformed are refused. */
#include "compat.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "apr1.h"
#include "pwhash.h"

/* htpasswd -nbm u PASSWORD (Apache 2.4.57) */
static const struct { const char *pw, *hash; } apr1_kat[] = {
    { "secret", "$apr1$2CkcR1UE$o6aR4Hv4Pp8ENmZeA8Vst." },
    { "", "$apr1$qtbL79MI$MjrrDKi55HPstSoTBkW3M1" },
    { "p@ss w0rd!", "$apr1$gDIxhzvs$tNBIC8/dgkZBQPY55SRT6/" },
    { "a-very-long-password-that-is-longer-than-sixteen-bytes",
      "$apr1$9LDmdDvp$oUQtH3DKFC3n.Ttmm3BN71" },
    { "S3cret pw", "$apr1$98fiIiDI$L9yHn.OXXkvmYzIy93pDw." },
};

static void test_apr1_known_answers(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof apr1_kat / sizeof apr1_kat[0]; i++) {
        char *h = apr1_crypt(apr1_kat[i].pw, apr1_kat[i].hash);
        assert_non_null(h);
        assert_string_equal(h, apr1_kat[i].hash);
        free(h);
    }
    /* the salt alone as setting gives the same hash */
    char *h = apr1_crypt("secret", "$apr1$2CkcR1UE");
    assert_string_equal(h, "$apr1$2CkcR1UE$o6aR4Hv4Pp8ENmZeA8Vst.");
    free(h);
    assert_null(apr1_crypt("secret", "$1$2CkcR1UE$"));
}

/* "S3cret pw" hashed by htpasswd -d -m -B -2 -5 and mkpasswd -m ... */
static const char *const good[] = {
    "0FoTYWO4SIAEY", /* htpasswd -d: DES, only "S3cret p" counts */
    "$apr1$98fiIiDI$L9yHn.OXXkvmYzIy93pDw.",
    "$2y$05$zITqLI64gVIpEOSY9hWtm.Dm0X/lNrXSAKzc.eQuY3/9jbVcim0ga",
    "$5$0Q5M7dH89/bTv5g4$YdybFPblKOilR6uESJndWHxvtBcL38e3X0GbU23BMfC",
    "$6$QCGLWGl7jKWci6K.$U92Q8shDEmUdHcfp7GlZx18HQsBcN5o5QNVG0P79y3F5s8LuuUyak33vGYInz18fWn8d"
    ".Ls7v9FsgJe/Mgw9l/",
    "$y$j9T$hBU6JLWUXmVDH8gC/OvQm0$l4oBnYwI7MgpMJ3XhL4XUiqixBC8v4rRK0GbNkqrvS/",
    "$6$Bwc2Cb8u5Wlenmzd$2h29jbOQBMWANppkd7AZlJJPZxMZ1HFuOB7hIf1r4h5jkql4hvN5eu//99gJuM0AX1H"
    "FjjEGRfwHkwAkwRksd0",
    "$5$WDvgwK2vXPVyZUHl$cKpyucLN0Z6yaDec6SQl63NaJNtnIW7HBVy3Z4KAbm2",
    "$1$6BgavTwg$lDIlM9CPJENFTKz3A3hJ0/",
    "Y.DAym0V9E1ag",
    "$2b$05$KftsBokA3RR.eFo0fQUAHO5ExqQ7LR75rMuMRGedtoxFUDNQvcWxy",
    "$7$CU..../....c3ityk8cq3ijJV4eyllct1$iScEbm1.fBTGBmuF3cCbnnbsn6OkDtskimcBH.e8YvA",
    "$gy$j9T$aMyWym03CY.iOys9zHVio/$M9V8kdkWu5LTWM4GQcyphtIM0ZK7X7m.2Jb.Fp6cIIB",
};

static void test_every_format_verifies(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        const char *why = NULL;
        assert_int_equal(pwhash_supported(good[i], &why), 1);
        assert_int_equal(pwhash_check("S3cret pw", good[i], &why), PWHASH_MATCH);
        assert_int_equal(pwhash_check("S3cret pX", good[i], &why),
                         i == 0 || i == 9 ? PWHASH_MATCH : PWHASH_NOMATCH); /* DES: 8 chars */
        assert_int_equal(pwhash_check("s3cret pw", good[i], &why), PWHASH_NOMATCH);
        assert_int_equal(pwhash_check("", good[i], &why), PWHASH_NOMATCH);
    }
}

static void test_refused_formats(void **state)
{
    (void)state;
    const char *why = NULL;
    assert_int_equal(pwhash_check("S3cret pw", "S3cret pw", &why), PWHASH_BADHASH);
    assert_string_equal(why, "plaintext or unknown hash format");
    assert_int_equal(pwhash_check("S3cret pw", "{SHA}AORsQDDUR9lCGoHYfNXgusvMNDY=", &why),
                     PWHASH_BADHASH);
    assert_non_null(strstr(why, "{SHA}"));
    assert_int_equal(pwhash_check("", "", &why), PWHASH_BADHASH);
    assert_string_equal(why, "locked or empty");
    assert_int_equal(pwhash_check("x", "!$6$abc$def", &why), PWHASH_BADHASH);
    assert_int_equal(pwhash_check("x", "*", &why), PWHASH_BADHASH);
    assert_int_equal(pwhash_check("x", "$2y$99$zITqLI64gVIpEOSY9hWtm.Dm0X/lNrXSAKzc.eQuY3/9jbVcim0ga",
                                  &why), PWHASH_BADHASH);
    assert_string_equal(why, "malformed hash");
    assert_int_equal(pwhash_check("x", "$9$whatever", &why), PWHASH_BADHASH);
    /* a plaintext password that happens to be 13 DES characters never verifies */
    assert_int_equal(pwhash_check("abcdefghijklm", "abcdefghijklm", &why), PWHASH_NOMATCH);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_apr1_known_answers),
        cmocka_unit_test(test_every_format_verifies),
        cmocka_unit_test(test_refused_formats),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
