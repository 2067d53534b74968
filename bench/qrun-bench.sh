#!/bin/sh
# bench/qrun-bench.sh - a forced queue run (postoffice -q) over N deferred
# messages to a relay host that refuses connections (a closed port on
# 127.0.0.1), issue 14.  Wall time per run; the queue is made afresh with
# bench/mkqueue.c (2 KB messages, one recipient, tried once) before each run.
#
#   sh bench/qrun-bench.sh           (as root, from the source tree after make)
#
# Environment: NS="20000 100000" ROUNDS=3, PO_BASE=path (a second binary timed
# beside the built one in the same rounds: "before" figures).
set -u
cd "$(dirname "$0")/.." || exit 1
[ "$(id -u)" = 0 ] || { echo "qrun-bench: run as root" >&2; exit 77; }
BIN=$PWD/postoffice
[ -x "$BIN" ] || { echo "qrun-bench: build first: ./configure.sh && make" >&2; exit 69; }
NS=${NS:-"20000 100000"} ROUNDS=${ROUNDS:-3}
D=$(mktemp -d /tmp/po-qrun-XXXXXX)
chmod 755 "$D"
made_user=
id pobench >/dev/null 2>&1 || { useradd -M -d /nonexistent -s /usr/sbin/nologin pobench && made_user=1; }
trap 'rm -rf "$D"; [ -n "$made_user" ] && userdel pobench 2>/dev/null' EXIT
trap 'exit 130' INT TERM
cc -O2 -I. -Isrc/lib -Isrc/queue -o "$D/mkqueue" bench/mkqueue.c libpo.a -lxxhash || exit 1
# a port nothing listens on: bound then closed
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$D/mail"
printf 'postmaster: root\n' > "$D/aliases"
cat > "$D/cf" <<CF
queuedir=$D/queue
mailspool=$D/mail
aliases=$D/aliases
user=pobench
hostname=bench.example
relay-host=[127.0.0.1]:$PORT
connect-timeout=2
load=0
minfree=0
CF
"$BIN" -C "$D/cf" -bi >/dev/null 2>&1
one() { # BINARY N -> seconds
    rm -rf "$D/queue"
    mkdir -p "$D/queue"
    "$D/mkqueue" "$D/queue" "$2" 2048 2 || exit 1
    chown -R pobench "$D/queue"
    chmod 711 "$D/queue"
    sync
    t0=$(date +%s.%N)
    "$1" -C "$D/cf" -q >/dev/null 2>"$D/err"
    t1=$(date +%s.%N)
    left=$(ls "$D/queue" | grep -c '^qf')
    [ "$left" = "$2" ] || echo "qrun-bench: $left of $2 messages left" >&2
    echo "$t1 - $t0" | bc | sed 's/^\./0./'
}
echo "== $(date -u '+%Y-%m-%d %H:%M UTC') $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg); postoffice $(git describe --always --dirty 2>/dev/null)${PO_BASE:+, base $PO_BASE}"
r=1
while [ "$r" -le "$ROUNDS" ]; do
    for n in $NS; do
        [ -n "${PO_BASE:-}" ] && echo "round $r n=$n base $(one "$PO_BASE" "$n") s"
        echo "round $r n=$n po   $(one "$BIN" "$n") s"
    done
    r=$((r + 1))
done
