/* vacation_rules.c - when a vacation reply must not be sent: see
 * vacation_rules.h.  Pure functions over the header text; runs as the user,
 * never as root. */
#include "compat.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "address.h"
#include "util.h"
#include "vacation_rules.h"

/* One header field: its name (pointer, length) and unfolded value. */
struct field {
    const char *name;
    size_t nlen;
    struct buf value;
};

/* The next field of the header block from *pos: 1 with f filled, 0 at the
 * end of the block (an empty line, the end of len, a line that is not a
 * field). */
static int field_next(const char *h, size_t len, size_t *pos, struct field *f)
{
    size_t p = *pos;
    if (p >= len || h[p] == '\n' || (h[p] == '\r' && p + 1 < len && h[p + 1] == '\n'))
        return 0;
    size_t c = p;
    while (c < len && h[c] != ':' && h[c] != '\n' && h[c] > ' ' && h[c] < 0x7f)
        c++;
    if (c == p || c >= len || h[c] != ':')
        return 0;
    f->name = h + p;
    f->nlen = c - p;
    buf_reset(&f->value);
    p = c + 1;
    for (;;) {
        while (p < len && h[p] != '\n') {
            if (h[p] != '\r')
                buf_addc(&f->value, h[p] ? h[p] : ' ');
            p++;
        }
        if (p < len)
            p++; /* the LF */
        if (p >= len || (h[p] != ' ' && h[p] != '\t'))
            break;
    }
    *pos = p;
    return 1;
}

static int name_is(const struct field *f, const char *name)
{
    return f->nlen == strlen(name) && strncasecmp(f->name, name, f->nlen) == 0;
}

/* The first word of a structured value: comments left out, ended by white
 * space, ';', ',' or a comment after it; malloc'd. */
static char *first_word(const char *v)
{
    struct buf w;
    buf_init(&w);
    int depth = 0;
    for (const char *p = v; *p; p++) {
        int space = *p == ' ' || *p == '\t';
        if (*p == '(')
            depth++;
        else if (*p == ')' && depth > 0)
            depth--;
        else if (depth == 0 && !space && *p != ';' && *p != ',')
            buf_addc(&w, *p);
        if (depth == 0 && w.len && (space || *p == ';' || *p == ',' || *p == '('))
            break;
    }
    return buf_steal(&w);
}

/* Does a comma-separated list value name token (case-insensitive)? */
static int list_has(const char *v, const char *token)
{
    struct strlist l;
    sl_init(&l);
    sl_split(&l, v, ", \t");
    int has = sl_contains_ci(&l, token);
    sl_free(&l);
    return has;
}

static int ends_ci(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcasecmp(s + n - k, suffix) == 0;
}

int vac_rules_robot(const char *local)
{
    static const char *const names[] = {"mailer-daemon", "mailer", "postmaster", "uucp",
                                        "listserv", "majordomo", NULL};
    static const char *const suffixes[] = {"-request", "-owner", "-bounces", "-relay", NULL};
    for (size_t i = 0; names[i]; i++)
        if (strcasecmp(local, names[i]) == 0)
            return 1;
    for (size_t i = 0; suffixes[i]; i++)
        if (ends_ci(local, suffixes[i]))
            return 1;
    return str_has_prefix_ci(local, "owner-");
}

/* The rules on the fields themselves (all but the sender's and To/Cc). */
static const char *field_rule(const struct field *f)
{
    const char *v = f->value.s;
    const char *why = NULL;
    if (name_is(f, "Auto-Submitted")) {
        char *w = first_word(v);
        if (strcasecmp(w, "no") != 0)
            why = "Auto-Submitted: (an automatic message)";
        free(w);
    } else if (name_is(f, "X-Auto-Response-Suppress")) {
        if (list_has(v, "OOF") || list_has(v, "All"))
            why = "X-Auto-Response-Suppress: asks for no out-of-office replies";
    } else if (name_is(f, "Precedence")) {
        char *w = first_word(v);
        if (!strcasecmp(w, "bulk") || !strcasecmp(w, "list") || !strcasecmp(w, "junk"))
            why = "Precedence: bulk, list or junk";
        free(w);
    } else if (name_is(f, "X-Spam")) {
        why = "marked as spam (X-Spam:)"; /* no backscatter */
    } else if (name_is(f, "X-Spam-Flag")) {
        char *w = first_word(v);
        if (strcasecmp(w, "yes") == 0)
            why = "marked as spam (X-Spam-Flag: YES)";
        free(w);
    } else if (f->nlen > 5 && strncasecmp(f->name, "List-", 5) == 0) {
        why = "a mailing list (List-* field)";
    }
    return why;
}

/* Is any of self among the addresses of value (an address list)? */
static int names_self(const char *value, const struct strlist *self)
{
    struct strlist a;
    sl_init(&a);
    addr_parse_list(value, &a);
    int found = 0;
    for (size_t i = 0; i < a.n && !found; i++)
        found = sl_contains_ci(self, a.v[i]);
    sl_free(&a);
    return found;
}

/* The rules on the sender's address. */
static const char *sender_rule(const char *sender, const struct strlist *self)
{
    if (!sender || !*sender)
        return "the sender is <> (a bounce or notification)";
    if (sl_contains_ci(self, sender))
        return "the sender is the user's own address";
    char *local, *domain;
    addr_split(sender, &local, &domain);
    int robot = local && vac_rules_robot(local);
    free(local);
    free(domain);
    return robot ? "the sender is a mailer daemon or a list's address" : NULL;
}

int vac_rules_check(const char *sender, const char *hdrs, size_t len,
                    const struct strlist *self, int check_to, const char **why)
{
    *why = sender_rule(sender, self);
    if (*why && (!sender || !*sender))
        return 0; /* <> first: nothing else matters */
    const char *sender_why = *why;
    *why = NULL;
    struct field f = {0};
    buf_init(&f.value);
    size_t pos = 0;
    int addressed = 0;
    while (!*why && field_next(hdrs, len, &pos, &f)) {
        *why = field_rule(&f);
        if (!addressed && (name_is(&f, "To") || name_is(&f, "Cc")))
            addressed = names_self(f.value.s, self);
    }
    buf_free(&f.value);
    if (!*why)
        *why = sender_why;
    if (!*why && check_to && !addressed)
        *why = "none of the user's addresses is in To: or Cc:";
    return *why == NULL;
}
