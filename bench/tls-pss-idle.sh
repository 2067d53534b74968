#!/bin/sh
# bench/tls-pss-idle.sh [N] [tls|plain] [BIN] - memory per idle SMTP session
# of a daemon with TLS configured, postoffice alone (tls-bench.sh's idle
# figure without Postfix and the rate runs): N sessions (default 50), each
# after STARTTLS and the second EHLO (tls) or after EHLO in plaintext
# (plain), then per session: Pss, Pss_Anon and Private_Dirty
# (/proc/PID/smaps_rollup): the session processes' and the TLS proxy's
# (po-tls, which holds every connection's TLS state), over N.  Private_Dirty does not move with other
# processes mapping the same libraries, so it is the figure to compare two
# builds with (BIN=another binary, runs alternating).
# COW=1 also lists, for the last session, the pages it holds privately that
# the master still shares (bench/cow-pages.py; COW_V=1: what is on each
# private heap page).  Needs root.
set -u
cd "$(dirname "$0")/.." || exit 1
N=${1:-50}
MODE=${2:-tls}
BIN=${3:-$PWD/postoffice}
case $MODE in tls|plain) ;; *) echo "mode: tls or plain" >&2; exit 64 ;; esac
[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 77; }
[ -x "$BIN" ] || { echo "build first" >&2; exit 69; }
D=$(mktemp -d /tmp/po-tlspss-XXXXXX)
chmod 755 "$D"
trap 'kill "$(cat "$D/pid" 2>/dev/null)" 2>/dev/null; rm -rf "$D"' EXIT
cc -O2 -o "$D/tls_load" bench/tls_load.c -lssl -lcrypto || exit 69
openssl ecparam -name prime256v1 -genkey -noout -out "$D/key.pem"
openssl req -x509 -new -key "$D/key.pem" -out "$D/cert.pem" -days 2 -subj /CN=bench.example 2>/dev/null
chmod 600 "$D/key.pem"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$D/cf" <<CF
queuedir=$D/queue
mailspool=$D
aliases=$D/aliases
pidfile=$D/pid
user=nobody
hostname=bench.example
listen=127.0.0.1:$PORT
clients=200
clients-per-host=0
load=0
minfree=0
tls-cert=$D/cert.pem
tls-key=$D/key.pem
CF
: > "$D/aliases"
"$BIN" -C "$D/cf" -bd || exit 1
MASTER=$(cat "$D/pid")
if [ "$MODE" = tls ]; then
    "$D/tls_load" -p "$PORT" -n "$N" -c "$N" -I 10 > "$D/out" &
else
    /usr/bin/python3 -c '
import smtplib, sys, time
c = []
for _ in range(int(sys.argv[2])):
    s = smtplib.SMTP("127.0.0.1", int(sys.argv[1])); s.ehlo("idle.example"); c.append(s)
print("idle sessions", flush=True)
time.sleep(10)' "$PORT" "$N" > "$D/out" &
fi
LP=$!
i=0
until grep -q "idle sessions" "$D/out" 2>/dev/null; do
    i=$((i + 1)); [ $i -gt 300 ] && break; sleep 0.1
done
sleep 1
PIDS=$(for k in $(cat /proc/"$MASTER"/task/"$MASTER"/children); do
           [ "$(cat /proc/"$k"/comm 2>/dev/null)" = po-session ] && echo "$k"; done)
# the TLS proxy holds every session's TLS state: its share counts
PROXY=$(for k in $(cat /proc/"$MASTER"/task/"$MASTER"/children); do
           [ "$(cat /proc/"$k"/comm 2>/dev/null)" = po-tls ] && echo "$k"; done)
{ for p in $PIDS; do echo "S"; cat /proc/"$p"/smaps_rollup; done
  for p in $PROXY; do echo "P"; cat /proc/"$p"/smaps_rollup; done; } | awk -v mode="$MODE" '
/^S$/ { who = "s"; n++ } /^P$/ { who = "p" }
/^Pss:/ { pss[who] += $2 } /^Pss_Anon:/ { anon[who] += $2 } /^Private_Dirty:/ { pd[who] += $2 }
END { if (n) {
        printf "%s: %d sessions, per session: %.0f KiB Pss, %.0f Pss_Anon, %.0f Private_Dirty\n",
               mode, n, (pss["s"] + pss["p"]) / n, (anon["s"] + anon["p"]) / n, (pd["s"] + pd["p"]) / n
        printf "  of which the session process %.0f KiB Pss (%.0f Private_Dirty), the TLS proxy %.0f KiB Pss in all (%.0f Private_Dirty)\n",
               pss["s"] / n, pd["s"] / n, pss["p"], pd["p"] } }'
if [ "${COW:-0}" = 1 ] && [ -n "$PIDS" ]; then
    /usr/bin/python3 bench/cow-pages.py "$(echo $PIDS | awk '{print $NF}')" "$MASTER" ${COW_V:+-v}
fi
wait "$LP"
