/* test_verdict.c - the spam=/forbidden= actions applied to a message
 * (verdict.h): bounce, accept with X-Spam, folder rewriting the recipients. */
#include "compat.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "conf.h"
#include "envelope.h"
#include "verdict.h"

static int setup(void **state)
{
    struct config *c = calloc(1, sizeof *c);
    config_defaults(c);
    free(c->mailspool);
    c->mailspool = strdup("/spool");
    *state = c;
    return 0;
}

static int teardown(void **state)
{
    config_free(*state);
    free(*state);
    return 0;
}

static void set(struct config *c, const char *opt)
{
    struct config_ctx ctx = {1, 0};
    assert_int_equal(config_set(c, opt, "test", &ctx), 0);
}

static void test_bounce(void **state)
{
    struct config *c = *state;
    struct envelope e;
    struct buf hdr, why;
    env_init(&e);
    buf_init(&hdr);
    buf_init(&why);
    env_add_rcpt(&e, "nobody", "nobody", NULL);
    assert_int_equal(verdict_message(c, VERDICT_SPAM, "Eicar FOUND\nmore", &e, &hdr, &why), 554);
    assert_string_equal(why.s, "5.7.1 message refused: Eicar FOUND more");
    assert_int_equal(hdr.len, 0);
    set(c, "spam=bounce:I do believe you contain a germ");
    assert_int_equal(verdict_message(c, VERDICT_SPAM, "Eicar", &e, &hdr, &why), 554);
    assert_string_equal(why.s, "5.7.1 message refused: I do believe you contain a germ");
    assert_true(verdict_refuses(c, VERDICT_FORBIDDEN));
    env_free(&e);
    buf_free(&hdr);
    buf_free(&why);
}

static void test_accept(void **state)
{
    struct config *c = *state;
    struct envelope e;
    struct buf hdr, why;
    env_init(&e);
    buf_init(&hdr);
    buf_init(&why);
    set(c, "spam=accept");
    env_add_rcpt(&e, "nobody", "nobody", NULL);
    assert_int_equal(verdict_message(c, VERDICT_SPAM, " bad\r\nthing\x01 \xe9 ", &e, &hdr, &why), 0);
    assert_string_equal(hdr.s, "X-Spam: bad  thing  \\xE9\n");
    assert_string_equal(e.rcpts[0].addr, "nobody");
    /* forbidden= is a separate option */
    assert_true(verdict_refuses(c, VERDICT_FORBIDDEN));
    env_free(&e);
    buf_free(&hdr);
    buf_free(&why);
}

static void test_folder(void **state)
{
    struct config *c = *state;
    struct envelope e;
    struct buf hdr, why;
    env_init(&e);
    buf_init(&hdr);
    buf_init(&why);
    set(c, "forbidden=folder:junk");
    env_add_rcpt(&e, "nobody", "nobody", NULL);
    env_add_rcpt(&e, "root", "root", NULL);               /* uid 0: never */
    env_add_rcpt(&e, "a@remote.example", "a@remote.example", NULL);
    env_add_rcpt(&e, "no-such-account-here", NULL, NULL);
    env_add_rcpt(&e, "NOBODY", "NOBODY", NULL);           /* the same folder: once */
    assert_int_equal(verdict_message(c, VERDICT_FORBIDDEN, "listed", &e, &hdr, &why), 0);
    assert_string_equal(hdr.s, "X-Spam: listed\n");
    assert_int_equal(e.nrcpts, 4);
    assert_string_equal(e.rcpts[0].addr, "/spool/nobody:junk");
    assert_string_equal(e.rcpts[0].orig, "nobody");
    assert_string_equal(e.rcpts[0].owner, "nobody");
    assert_true(rcpt_is_target(&e.rcpts[0]));
    assert_string_equal(e.rcpts[1].addr, "root");
    assert_string_equal(e.rcpts[2].addr, "a@remote.example");
    assert_string_equal(e.rcpts[3].addr, "no-such-account-here");
    env_free(&e);
    buf_free(&hdr);
    buf_free(&why);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_bounce, setup, teardown),
        cmocka_unit_test_setup_teardown(test_accept, setup, teardown),
        cmocka_unit_test_setup_teardown(test_folder, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
