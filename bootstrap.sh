#!/bin/sh
# bootstrap.sh - install what is missing (Debian 12), build, then:
#   ./bootstrap.sh demo   run the daemon in the foreground on a sandbox in ./sandbox
#                         (loopback port 2525; queue, mail spool and aliases there)
#   ./bootstrap.sh test   run the whole test suite (make check)
set -eu
cd "$(dirname "$0")"

BUILD_DEPS="gcc make libgdbm-dev libc-ares-dev libssl-dev libcrypt-dev libwrap0-dev libmilter-dev libcmocka-dev libpam0g-dev libxxhash-dev"
TEST_DEPS="python3 python3-pytest swaks bsd-mailx procmail openssl iproute2 passwd debhelper dpkg-dev fakeroot mmdebstrap lintian dovecot-core dovecot-lmtpd apache2-utils python3-aiosmtpd python3-dnslib whois msmtp miltertest opendkim opendkim-tools python3-dkim pyspf-milter python3-gdbm"

need_pkgs() {
    missing=
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing="$missing $p"
    done
    [ -z "$missing" ] && return 0
    echo "bootstrap: installing:$missing"
    if [ "$(id -u)" = 0 ]; then SUDO=; elif command -v sudo >/dev/null; then SUDO=sudo; else
        echo "bootstrap: run as root: apt-get install -y$missing" >&2; exit 69
    fi
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq || true
    # bsd-mailx depends on some MTA (exim4 on a fresh system), and dovecot-core
    # would start a system dovecot: keep package scripts from starting any
    # daemon while we install, as container builds do (the dovecot test runs
    # its own, with a private configuration and no listener)
    guard=
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
        $SUDO chmod 755 /usr/sbin/policy-rc.d
        guard=1
    fi
    # shellcheck disable=SC2086
    rc=0
    $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null || rc=$?
    [ -n "$guard" ] && $SUDO rm -f /usr/sbin/policy-rc.d
    [ $rc -eq 0 ] || { echo "bootstrap: apt-get install failed" >&2; exit 69; }
}

build() {
    need_pkgs $BUILD_DEPS
    [ -f Makefile ] && [ Makefile -nt configure.sh ] && [ Makefile -nt Makefile.in ] || ./configure.sh
    make -j2
}

demo() {
    build
    sb=$PWD/sandbox
    me=$(id -un) spooluser=$(id -un) rcpt=$(id -un)
    if [ "$(id -u)" = 0 ]; then
        # mail is never delivered as root: sessions run as "mail", and root's
        # mail goes to a file through an alias
        spooluser=mail rcpt=root
        if ! runuser -u mail -- test -x "$PWD" 2>/dev/null; then
            sb=/var/tmp/postoffice-sandbox   # the source tree is not reachable by mail
        fi
    fi
    mkdir -p "$sb/mail"
    chmod 755 "$sb"; chmod 1777 "$sb/mail"
    if [ ! -f "$sb/aliases" ]; then
        if [ "$rcpt" = root ]; then
            printf 'root: %s/mail/root\npostmaster: root\nMAILER-DAEMON: postmaster\n' "$sb" > "$sb/aliases"
        else
            printf 'postmaster: %s\nMAILER-DAEMON: postmaster\n' "$me" > "$sb/aliases"
        fi
    fi
    cat > "$sb/postoffice.cf" <<CF
# sandbox configuration written by ./bootstrap.sh demo
queuedir=$sb/queue
mailspool=$sb/mail
aliases=$sb/aliases
pidfile=$sb/postoffice.pid
banner=$sb/issue.smtp
listen=127.0.0.1:2525,[::1]:2525
user=$spooluser
hostname=localhost
load=0
CF
    ./postoffice -C "$sb/postoffice.cf" -bi
    cat <<MSG

postoffice is starting in the foreground on 127.0.0.1:2525 and [::1]:2525
(Ctrl-C stops it).  Send it a message from another terminal, for example:
    swaks --server 127.0.0.1:2525 --to $rcpt@localhost
    echo hello | $PWD/postoffice -C $sb/postoffice.cf $rcpt
It lands in $sb/mail/$rcpt (read it with: mail -f $sb/mail/$rcpt).
The queue: $PWD/postoffice -C $sb/postoffice.cf -bp

MSG
    exec ./postoffice -C "$sb/postoffice.cf" -bD -q5m
}

tests() {
    extra=
    [ -f tests/deps.txt ] && extra=$(grep -v '^#' tests/deps.txt | tr '\n' ' ')
    # shellcheck disable=SC2086
    need_pkgs $TEST_DEPS $extra
    build
    make check
}

case ${1:-} in
demo) demo ;;
test) tests ;;
build) build ;;
*) echo "usage: ./bootstrap.sh demo | test | build" >&2; exit 64 ;;
esac
