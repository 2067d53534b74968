/* mailbox_limits.c - how many bytes a mailbox may hold (mailbox_limits.h).
 * Never runs as root: the admin's limits files are read by the mailbox
 * writer and the SMTP session. */
#include "compat.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf.h"
#include "mailbox_limits.h"
#include "util.h"

/* Does the line's name match user or user@domain? */
static int name_matches(const char *name, const char *user, const char *domain)
{
    size_t ul = strlen(user);
    if (strcasecmp(name, user) == 0)
        return 1;
    return domain != NULL && strncasecmp(name, user, ul) == 0 && name[ul] == '@' &&
           strcasecmp(name + ul + 1, domain) == 0;
}

/* One line: 1 a match (*limit), 0 not this user, -1 bad (*why). */
static int parse_line(char *line, const char *user, const char *domain, long long *limit,
                      char **why)
{
    char *p = line + strspn(line, " \t");
    if (*p == '\0' || *p == '#' || *p == '\n')
        return 0;
    char *name = p;
    p += strcspn(p, " \t\n");
    if (*p != ' ' && *p != '\t') {
        *why = xasprintf("\"%s\" has no size", name);
        return -1;
    }
    *p++ = '\0';
    p += strspn(p, " \t");
    char *size = p;
    p += strcspn(p, " \t\n#");
    char *rest = p + strspn(p, " \t\n");
    if (*rest != '\0' && *rest != '#') {
        *why = xasprintf("%s: more than a name and a size", name);
        return -1;
    }
    *p = '\0';
    long long v;
    if (config_parse_size(size, &v) < 0) {
        *why = xasprintf("%s: \"%s\" is not a size such as 100m or 2g", name, size);
        return -1;
    }
    if (!name_matches(name, user, domain))
        return 0;
    *limit = v;
    return 1;
}

static int scan(FILE *f, const char *path, const char *user, const char *domain,
                long long *limit, char **why)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    long no = 0;
    int rc = 0;
    while (rc == 0 && (len = getline(&line, &cap, f)) >= 0) {
        no++;
        char *err = NULL;
        if (len > MLIMIT_LINE_MAX)
            err = xasprintf("longer than %d bytes", MLIMIT_LINE_MAX);
        else if (memchr(line, '\0', (size_t)len))
            err = xasprintf("holds a NUL byte");
        else
            rc = parse_line(line, user, domain, limit, &err);
        if (err != NULL) {
            *why = xasprintf("%s line %ld: %s", path, no, err);
            free(err);
            rc = -1;
        }
    }
    if (rc == 0 && ferror(f)) {
        *why = xasprintf("cannot read %s: %s", path, strerror(errno));
        rc = -1;
    }
    free(line);
    return rc;
}

int mlimit_lookup_text(const char *text, size_t len, const char *name, const char *user,
                       const char *domain, long long *limit, char **why)
{
    *why = NULL;
    if (len == 0)
        return 0;
    FILE *f = fmemopen((void *)text, len, "r");
    if (f == NULL) {
        *why = xasprintf("cannot read %s: %s", name, strerror(errno));
        return -1;
    }
    int rc = scan(f, name, user, domain, limit, why);
    fclose(f);
    return rc;
}

int mlimit_lookup_file(const char *path, const char *user, const char *domain,
                       int missing_ok, long long *limit, char **why)
{
    *why = NULL;
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        if (errno == ENOENT && missing_ok)
            return 0;
        *why = xasprintf("cannot read %s: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (st.st_mode & S_IWOTH)) {
        *why = xasprintf("%s is not a regular file only its owner may write", path);
        close(fd);
        return -1;
    }
    FILE *f = fdopen(fd, "r");
    if (f == NULL) {
        *why = xasprintf("cannot read %s: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    int rc = scan(f, path, user, domain, limit, why);
    fclose(f);
    return rc;
}

long long mlimit_local(const struct config *c, const char *user, char **why)
{
    long long v;
    *why = NULL;
    if (c->mailbox_limits != NULL) {
        int rc = mlimit_lookup_file(c->mailbox_limits, user, c->hostname, 0, &v, why);
        if (rc != 0)
            return rc > 0 ? v : -1;
    }
    return c->mailbox_limit;
}

long long mlimit_virtual(const struct config *c, const char *user, const char *domain,
                         char **why)
{
    long long v;
    *why = NULL;
    if (c->vpath != NULL) {
        char *path = xasprintf("%s/%s/limits", c->vpath, domain);
        int rc = mlimit_lookup_file(path, user, domain, 1, &v, why);
        free(path);
        if (rc != 0)
            return rc > 0 ? v : -1;
    }
    if (c->mailbox_limits != NULL) {
        char *full = xasprintf("%s@%s", user, domain);
        /* only user@domain lines: a bare name there is a local account */
        int rc = mlimit_lookup_file(c->mailbox_limits, full, NULL, 0, &v, why);
        free(full);
        if (rc != 0)
            return rc > 0 ? v : -1;
    }
    return c->mailbox_limit;
}
