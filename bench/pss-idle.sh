#!/bin/sh
# bench/pss-idle.sh [N] [idle|rules|message] - proportional set size per idle
# SMTP session: start the daemon in a private sandbox, open N idle connections
# (default 50), sum the Pss of the session children (/proc/PID/smaps_rollup).
#   idle     after EHLO (the default; the issue's figure)
#   rules    the same with a tcp wrappers rule in hosts-deny= (libwrap is asked)
#   message  after EHLO and one 50 KB message each (queued for a remote domain)
# Needs root.
#
# Figures (2-core test machine, Debian 12, glibc 2.36, 50 sessions; the same
# run with the tree before the pss branch in brackets):
#   idle     64-74 KiB PSS per session   [109-116]
#   rules    73 KiB                      [120]
#   message  86-98 KiB                   [195-228]
# (PSS includes a share of library text that moves with the machine's load.)
# A fresh idle child has 11-12 private dirty pages: ld.so's _rtld_global (2;
# fork resets its locks), the TLS/thread block (2; errno, tid), libc's malloc
# arena and fork state (2), the heap (4: tcache, chunks reused from the
# master's free lists, our buffers), the stack (1-2); the rest is its share
# of library text.  What keeps it there: -z relro -z now; no big stack
# buffers on the session's path; 1 KiB command reads; openlog deferred and the
# log identity in TLS; libwrap skipped without rules and run in a short-lived
# child with them; malloc_trim after each message.
set -u
cd "$(dirname "$0")/.." || exit 1
N=${1:-50}
MODE=${2:-idle}
case $MODE in idle|rules|message) ;; *) echo "mode: idle, rules or message" >&2; exit 64 ;; esac
BIN=$PWD/postoffice
[ -x "$BIN" ] || { echo "build first" >&2; exit 69; }
D=$(mktemp -d /tmp/po-pss-XXXXXX)
chmod 755 "$D" # the session user reaches the queue below it
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
if [ "$MODE" = rules ]; then
    echo "sshd: ALL" > "$D/deny"
    echo "hosts-deny=$D/deny" >> "$D/cf"
fi
: > "$D/aliases"
"$BIN" -C "$D/cf" -bd || exit 1
python3 - "$PORT" "$N" "$(cat "$D/pid")" "$MODE" <<'PY'
import smtplib, sys, time
port, n, master, mode = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
body = b"Subject: pss\r\n\r\n" + (b"y" * 70 + b"\r\n") * 700
conns = []
for _ in range(n):
    s = smtplib.SMTP("127.0.0.1", port)
    s.ehlo("idle.example")
    if mode == "message":
        s.sendmail("a@example.org", ["x@remote.example"], body)
    conns.append(s)
time.sleep(0.5)
def comm(pid):
    return open("/proc/%s/comm" % pid).read().strip()
# sessions only (po-session): not the spare, not delivery workers
kids = [k for k in open("/proc/%d/task/%d/children" % (master, master)).read().split()
        if comm(k) == "po-session"]
def pss(pid):
    for line in open("/proc/%s/smaps_rollup" % pid):
        if line.startswith("Pss:"):
            return int(line.split()[1])
    return 0
total = sum(pss(k) for k in kids)
print("%s: sessions=%d  total Pss=%d KiB  per session=%.1f KiB  master Pss=%d KiB"
      % (mode, len(kids), total, total / max(1, len(kids)), pss(master)))
PY
kill "$(cat "$D/pid")"
rm -rf "$D"
