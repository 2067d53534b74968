#!/bin/sh
# bench/pss-idle.sh - proportional set size per idle SMTP session: start the
# daemon in a private sandbox, open N idle connections (default 50), sum the
# Pss of the session children (/proc/PID/smaps_rollup).  Needs root.
set -u
cd "$(dirname "$0")/.." || exit 1
N=${1:-50}
BIN=$PWD/postoffice
[ -x "$BIN" ] || { echo "build first" >&2; exit 69; }
D=$(mktemp -d /tmp/po-pss-XXXXXX)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$D/cf" <<CF
queuedir=$D/queue
mailspool=$D
aliases=$D/aliases
pidfile=$D/pid
hostname=bench.example
listen=127.0.0.1:$PORT
clients-per-host=0
load=0
user=nobody
CF
: > "$D/aliases"
"$BIN" -C "$D/cf" -bd || exit 1
python3 - "$PORT" "$N" "$(cat "$D/pid")" <<'PY'
import socket, sys, time, os
port, n, master = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
conns = []
for _ in range(n):
    s = socket.create_connection(("127.0.0.1", port))
    s.recv(512)
    s.sendall(b"EHLO idle.example\r\n")
    s.recv(512)
    conns.append(s)
time.sleep(0.5)
kids = open("/proc/%d/task/%d/children" % (master, master)).read().split()
def pss(pid):
    for line in open("/proc/%s/smaps_rollup" % pid):
        if line.startswith("Pss:"):
            return int(line.split()[1])
    return 0
total = sum(pss(k) for k in kids)
print("sessions=%d  total Pss=%d KiB  per session=%.1f KiB  master Pss=%d KiB"
      % (len(kids), total, total / max(1, len(kids)), pss(master)))
PY
kill "$(cat "$D/pid")"
rm -rf "$D"
