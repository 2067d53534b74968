#!/bin/sh
# relay-bench.sh - remote delivery throughput to postfix's smtp-sink on loopback.
#   sh bench/relay-bench.sh [N]    (default 5000; from the source tree after make)
# 1. the SMTP client alone: tests/bin/po-remote sends one ~2 KB message N times
#    over one (cached) connection, then N/10 times one process per message;
# 2. the queue: N messages queued with sendmail -odq, then one runq through
#    relay-host (needs a postoffice that builds and runs here).
# The end-to-end figure the issue asks for (accepted by our SMTP server to
# received by the sink, against Postfix doing the same): bench/compare-postfix.sh.
set -eu
cd "$(dirname "$0")/.."
N=${1:-5000}
SINK=$(command -v smtp-sink || echo /usr/sbin/smtp-sink)
[ -x "$SINK" ] || { echo "relay-bench: smtp-sink not found: apt-get install postfix" >&2; exit 69; }
work=$(mktemp -d /tmp/po-rbench-XXXXXX); chmod 755 "$work"
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
sinkuser=$(id -un); [ "$(id -u)" = 0 ] && sinkuser=nobody
"$SINK" -u "$sinkuser" 127.0.0.1:"$port" 256 >/dev/null 2>&1 &
sinkpid=$!
trap 'kill $sinkpid 2>/dev/null; rm -rf "$work"' EXIT
sleep 0.3
/usr/bin/python3 -c 'import sys; sys.stdout.write("Subject: bench\nFrom: a@b.example\n\n" + ("x" * 63 + "\n") * 31)' > "$work/msg"
now() { /usr/bin/python3 -c 'import time; print(time.monotonic())'; }
rate() { /usr/bin/python3 -c "print(f'{$1 / ($3 - $2):8.0f} /s')"; }

echo "== $N messages of $(wc -c < "$work/msg") bytes to smtp-sink on 127.0.0.1:$port"
t0=$(now)
tests/bin/po-remote -o "relay-host=[127.0.0.1]:$port" -r "$N" send s@bench.example "$work/msg" x@remote.example >/dev/null 2>&1
t1=$(now)
echo "client, one connection (RSET between):   $(rate "$N" "$t0" "$t1")"
M=$((N / 10))
t0=$(now)
i=0
while [ $i -lt $M ]; do
    tests/bin/po-remote -o "relay-host=[127.0.0.1]:$port" send s@bench.example "$work/msg" x@remote.example >/dev/null 2>&1
    i=$((i + 1))
done
t1=$(now)
echo "client, one process+connection each:     $(rate "$M" "$t0" "$t1")"

if [ "$(id -u)" != 0 ]; then
    echo "queue run: skipped (relay-host is root-only: run as root)"
    exit 0
fi
mkdir -p "$work/queue" "$work/mail"; chmod 1777 "$work/mail"
echo "postmaster: root" > "$work/aliases"
cat > "$work/po.cf" <<CF
queuedir=$work/queue
mailspool=$work/mail
aliases=$work/aliases
user=nobody
hostname=bench.example
relay-host=[127.0.0.1]:$port
CF
t0=$(now)
i=0
while [ $i -lt "$N" ]; do
    ./postoffice -C "$work/po.cf" -odq -i x@remote.example < "$work/msg"
    i=$((i + 1))
done
t1=$(now)
chown -R nobody "$work/queue" # until the spool hands data files to user= (see report)
./postoffice -C "$work/po.cf" -q >/dev/null 2>&1
t2=$(now)
left=$(ls "$work/queue" | grep -c '^qf' || true)
echo "enqueue (sendmail -odq):                  $(rate "$N" "$t0" "$t1")"
echo "one queue run via relay-host:             $(rate "$N" "$t1" "$t2")  ($left left in the queue)"
