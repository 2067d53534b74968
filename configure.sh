#!/bin/sh
# configure.sh - find the compiler and libraries, write Makefile and config.h.
# Hand-written POSIX sh, in the tradition of the original; run ./configure.sh --help.
set -u

prefix=/usr/local
sbindir= bindir= libexecdir= mandir= confdir=/etc
queuedir=/var/spool/postoffice
mailspool=
vhostdir=/etc/virtual vspool=/var/spool/virtual vuser=mail
with_tcpwrappers=auto
with_milter=auto
with_pam=no
mailname=
systemdunitdir=
auth_local=0
CC=${CC:-}
CFLAGS=${CFLAGS:--O2 -g}

usage() {
    cat <<USAGE
Usage: ./configure.sh [options]
  --prefix=DIR          install under DIR (/usr/local)
  --sbindir=DIR         postoffice, sendmail, smtpd (PREFIX/sbin)
  --bindir=DIR          mailq, runq, newaliases (PREFIX/bin)
  --libexecdir=DIR      authexpire (PREFIX/libexec)
  --mandir=DIR          man pages (PREFIX/share/man)
  --confdir=DIR         postoffice.cf, aliases (/etc)
  --with-queuedir=DIR   the queue (/var/spool/postoffice)
  --with-mailspool=DIR  users' mailboxes (the system's, /var/mail on Debian)
  --with-vhost[=DIR]    virtual domains' configuration, vhostdir= (/etc/virtual)
  --with-vspool=DIR     virtual domains' mailboxes, vspool= (/var/spool/virtual)
  --with-vuser=USER     owner of the virtual mailboxes, vuser= (mail)
  --with-tcpwrappers    require libwrap (default: use it when found)
  --without-tcpwrappers build without libwrap
  --with-milter / --without-milter   milter support (default: when libmilter headers are found)
  --with-auth[=passwd]  SMTP AUTH is always built; =passwd makes auth-local=yes
                        the default (local accounts may authenticate)
  --with-pam            local accounts authenticate through PAM (service "smtp")
                        instead of shadow passwords (needs libpam0g-dev)
  --with-mailname=FILE  take the default hostname= from FILE when it exists
                        (Debian's /etc/mailname; default: none, the node name)
  --with-systemdunitdir=DIR  where make install puts postoffice.service
                        (/lib/systemd/system for --prefix=/usr, else PREFIX/lib/systemd/system)
  --with-av=PROG        the default av= message scanner ("/path [args]"; none)
  --help                this text
Environment: CC, CFLAGS, LDFLAGS.
USAGE
}

for arg in "$@"; do
    case $arg in
    --prefix=*) prefix=${arg#*=} ;;
    --sbindir=*) sbindir=${arg#*=} ;;
    --bindir=*) bindir=${arg#*=} ;;
    --libexecdir=*|--libexec=*) libexecdir=${arg#*=} ;;
    --mandir=*) mandir=${arg#*=} ;;
    --confdir=*) confdir=${arg#*=} ;;
    --with-queuedir=*) queuedir=${arg#*=} ;;
    --with-mailspool=*) mailspool=${arg#*=} ;;
    --with-vhost) ;;
    --with-vhost=*) vhostdir=${arg#*=} ;;
    --with-vspool=*) vspool=${arg#*=} ;;
    --with-vuser=*) vuser=${arg#*=} ;;
    --with-tcpwrappers) with_tcpwrappers=yes ;;
    --without-tcpwrappers) with_tcpwrappers=no ;;
    --with-milter) with_milter=yes ;;
    --without-milter) with_milter=no ;;
    --with-pam) with_pam=yes ;;
    --with-mailname=*) mailname=${arg#*=} ;;
    --with-systemdunitdir=*) systemdunitdir=${arg#*=} ;;
    --with-auth) ;;
    --with-auth=*)
        case $(printf '%s' "${arg#*=}" | tr 'A-Z' 'a-z') in
        passwd) auth_local=1 ;;
        *) echo "configure.sh: --with-auth takes no value or =passwd" >&2; exit 64 ;;
        esac ;;
    --with-av=*) with_av=${arg#*=}; with_av=${with_av#|} ;;
    --help|-h) usage; exit 0 ;;
    *) echo "configure.sh: unknown option $arg (see --help)" >&2; exit 64 ;;
    esac
done

: "${sbindir:=$prefix/sbin}" "${bindir:=$prefix/bin}"
: "${libexecdir:=$prefix/libexec}" "${mandir:=$prefix/share/man}"
if [ -z "$systemdunitdir" ]; then
    if [ "$prefix" = /usr ]; then systemdunitdir=/lib/systemd/system
    else systemdunitdir=$prefix/lib/systemd/system; fi
fi
for d in "$queuedir" "$confdir" "$vhostdir" "$vspool"; do
    case $d in /*) ;; *) echo "configure.sh: $d must be an absolute path" >&2; exit 64 ;; esac
done
case $vuser in
''|-*|*[!A-Za-z0-9._-]*) echo "configure.sh: --with-vuser takes an account name, not $vuser" >&2; exit 64 ;;
esac
case ${with_av:=} in
'') ;;
*[\"\\]*) echo "configure.sh: --with-av: no quotes or backslashes in the program" >&2; exit 64 ;;
/*) ;;
*) echo "configure.sh: --with-av=$with_av must start with an absolute path" >&2; exit 64 ;;
esac
if [ -z "$mailspool" ]; then
    if [ -d /var/mail ]; then mailspool=/var/mail; else mailspool=/var/spool/mail; fi
fi

log=config.log
: > $log
say() { printf '%s\n' "$*"; }

# --- compiler ---
if [ -z "$CC" ]; then
    for c in cc gcc clang; do
        if command -v $c >/dev/null 2>&1; then CC=$c; break; fi
    done
fi
[ -n "$CC" ] || { say "configure.sh: no C compiler found: apt-get install gcc" >&2; exit 69; }
say "compiler: $CC"

tmp=$(mktemp -d) || exit 71
trap 'rm -rf "$tmp"' EXIT

# try_link HEADER FUNCTION LIBS: can a program using FUNCTION from HEADER link?
try_link() {
    printf '#include <%s>\nint main(void){ (void)%s; return 0; }\n' "$1" "$2" > "$tmp/t.c"
    echo "--- $1 $2 $3" >> $log
    $CC $CFLAGS "$tmp/t.c" -o "$tmp/t" $3 >> $log 2>&1
}

# need HEADER FUNCTION LIBS PACKAGE: fail with the Debian package to install.
need() {
    if try_link "$1" "$2" "$3"; then
        say "found: $2 ($3)"
    else
        say "configure.sh: cannot use $2 from <$1> with $3: install the Debian package $4" >&2
        exit 69
    fi
}

LIBS=
need gdbm.h gdbm_open -lgdbm libgdbm-dev;          LIBS="$LIBS -lgdbm"
need ares.h ares_init_options -lcares libc-ares-dev; LIBS="$LIBS -lcares"
need openssl/ssl.h SSL_CTX_new "-lssl -lcrypto" libssl-dev; LIBS="$LIBS -lssl -lcrypto"
need crypt.h crypt -lcrypt libcrypt-dev;            LIBS="$LIBS -lcrypt"
need xxhash.h XXH64 -lxxhash libxxhash-dev;          LIBS="$LIBS -lxxhash"

HAVE_LIBWRAP=0 WRAP_LIBRARY=
if [ $with_tcpwrappers != no ]; then
    # libwrap is loaded with dlopen where a table has a rule (src/smtpd/tcp_wrappers.c), not
    # linked: find its run-time name and whether dlopen needs -ldl
    wraplib=$($CC -print-file-name=libwrap.so.0 2>/dev/null)
    if try_link tcpd.h hosts_access -lwrap && [ -f "$wraplib" ]; then
        HAVE_LIBWRAP=1; WRAP_LIBRARY=libwrap.so.0
        try_link dlfcn.h dlopen "" || LIBS="$LIBS -ldl"
        say "found: libwrap (tcp wrappers, loaded when a table has a rule: $WRAP_LIBRARY)"
    elif [ $with_tcpwrappers = yes ]; then
        say "configure.sh: --with-tcpwrappers needs libwrap: install the Debian package libwrap0-dev" >&2
        exit 69
    else
        say "not found: libwrap (tcp wrappers off; install libwrap0-dev)"
    fi
fi

HAVE_MILTER=0
if [ $with_milter != no ]; then
    printf '#include <libmilter/mfdef.h>\nint main(void){ return SMFIC_OPTNEG; }\n' > "$tmp/m.c"
    if $CC $CFLAGS "$tmp/m.c" -o "$tmp/m" >> $log 2>&1; then
        HAVE_MILTER=1; say "found: libmilter headers (milter support)"
    elif [ $with_milter = yes ]; then
        say "configure.sh: --with-milter needs libmilter/mfdef.h: install the Debian package libmilter-dev" >&2
        exit 69
    else
        say "not found: libmilter headers (milter support off; install libmilter-dev)"
    fi
fi

HAVE_PAM=0
if [ $with_pam = yes ]; then
    need security/pam_appl.h pam_authenticate -lpam libpam0g-dev
    HAVE_PAM=1; LIBS="$LIBS -lpam"
fi

TESTLIBS=
if try_link cmocka.h _cmocka_run_group_tests "-lcmocka" 2>/dev/null || \
   { printf '#include <stdarg.h>\n#include <stddef.h>\n#include <stdint.h>\n#include <setjmp.h>\n#include <cmocka.h>\nint main(void){ return 0; }\n' > "$tmp/c.c" && $CC "$tmp/c.c" -o "$tmp/c" -lcmocka >> $log 2>&1; }; then
    TESTLIBS=-lcmocka; say "found: cmocka (unit tests)"
else
    say "not found: cmocka (unit tests need libcmocka-dev)"
fi

# Resolve every symbol at start and make the relocated data read-only
# (-z now, -z relro): the daemon's forked session children then never write
# GOT pages, which would otherwise become private memory in each of them.
BINDNOW=
printf 'int main(void){ return 0; }\n' > "$tmp/z.c"
if $CC $CFLAGS -Wl,-z,relro -Wl,-z,now "$tmp/z.c" -o "$tmp/z" >> $log 2>&1; then
    BINDNOW="-Wl,-z,relro -Wl,-z,now"; say "linking with: $BINDNOW"
else
    say "linker does not take -z relro -z now (idle sessions use a little more memory)"
fi

WARN="-Wall -Wextra -Werror -Wshadow -Wpointer-arith -Wstrict-prototypes -Wmissing-prototypes -Wno-unused-parameter"
VERSION=$(cat VERSION)

sed -e "s|@CC@|$CC|g" -e "s|@CFLAGS@|$CFLAGS|g" -e "s|@WARN@|$WARN|g" \
    -e "s|@LIBS@|$LIBS|g" -e "s|@TESTLIBS@|$TESTLIBS|g" -e "s|@LDFLAGS@|${LDFLAGS:-}|g" -e "s|@BINDNOW@|$BINDNOW|g" \
    -e "s|@prefix@|$prefix|g" -e "s|@sbindir@|$sbindir|g" -e "s|@bindir@|$bindir|g" \
    -e "s|@libexecdir@|$libexecdir|g" -e "s|@mandir@|$mandir|g" -e "s|@confdir@|$confdir|g" \
    -e "s|@queuedir@|$queuedir|g" -e "s|@mailspool@|$mailspool|g" \
    -e "s|@VERSION@|$VERSION|g" -e "s|@systemdunitdir@|$systemdunitdir|g" \
    Makefile.in > Makefile || exit 73
sed -e "s|@sbindir@|$sbindir|g" -e "s|@confdir@|$confdir|g" -e "s|@queuedir@|$queuedir|g" \
    contrib/postoffice.service.in > contrib/postoffice.service || exit 73

cat > config.h <<H
/* config.h - written by configure.sh; do not edit. */
#ifndef PO_CONFIG_GEN_H
#define PO_CONFIG_GEN_H
#define PO_VERSION "$VERSION"
#define PATH_CONFDIR "$confdir"
#define PATH_CONFIG "$confdir/postoffice.cf"
#define PATH_ALIASES "$confdir/aliases"
#define PATH_QUEUEDIR "$queuedir"
#define PATH_MAILSPOOL "$mailspool"
#define PATH_PIDFILE "/run/postoffice.pid"
#define PATH_BANNER "/etc/issue.smtp"
#define PATH_GREYLIST "/var/db/smtpauth"
#define PATH_VIRTUAL "$vhostdir"
#define PATH_VSPOOL "$vspool"
#define PATH_VUSER "$vuser"
#define PATH_SBINDIR "$sbindir"
#define PATH_LIBEXECDIR "$libexecdir"
#define PATH_MAILNAME "$mailname"
#define HAVE_LIBWRAP $HAVE_LIBWRAP
#define WRAP_LIBRARY "$WRAP_LIBRARY"
#define WRAP_ALLOW_TABLE "/etc/hosts.allow"
#define WRAP_DENY_TABLE "/etc/hosts.deny"
#define HAVE_MILTER $HAVE_MILTER
#define HAVE_PAM $HAVE_PAM
#define AUTH_LOCAL_DEFAULT $auth_local
#define AV_PROGRAM "$with_av"
#endif
H
say "wrote Makefile and config.h (prefix $prefix, queue $queuedir, mail spool $mailspool)"
