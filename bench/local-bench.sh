#!/bin/sh
# local-bench.sh - enqueue and deliver N messages (2 KB) through the sendmail
# front end into local mboxes; prints messages/second, the median time of one
# sendmail call, and the disk's own fsync rate measured beside it.
#   sh bench/local-bench.sh [N]     (default 2000; run from the source tree after make)
set -eu
cd "$(dirname "$0")/.."
N=${1:-2000}
work=$(mktemp -d /tmp/po-bench-XXXXXX)
trap 'rm -rf "$work"' EXIT
me=$(id -un) rcpt=$me spooluser=$me
if [ "$(id -u)" = 0 ]; then
    # mail is never delivered as root: use a throw-away account
    rcpt=pobench spooluser=pobench
    id pobench >/dev/null 2>&1 || useradd -M -d /nonexistent -s /usr/sbin/nologin pobench
    trap 'rm -rf "$work"; userdel pobench 2>/dev/null || true' EXIT
fi
mkdir -p "$work/mail"; chmod 755 "$work"; chmod 1777 "$work/mail"
printf 'postmaster: %s\n' "$rcpt" > "$work/aliases"
cat > "$work/postoffice.cf" <<CF
queuedir=$work/queue
mailspool=$work/mail
aliases=$work/aliases
user=$spooluser
hostname=bench.example
CF
./postoffice -C "$work/postoffice.cf" -bi 2>/dev/null
cc -O2 -o "$work/fsync_rate" bench/fsync_rate.c
echo "== disk: $(df -P "$work" | awk 'NR==2 {print $1}')"
"$work/fsync_rate" "$work" 500
/usr/bin/python3 - "$work" "$N" "$rcpt" <<'PY'
import os, statistics, subprocess, sys, time
work, n, me = sys.argv[1], int(sys.argv[2]), sys.argv[3]
cf = os.path.join(work, "postoffice.cf")
body = ("Subject: bench\n\n" + ("x" * 63 + "\n") * 32).encode()   # ~2 KB
times = []
t0 = time.monotonic()
for i in range(n):
    s = time.monotonic()
    subprocess.run(["./postoffice", "-C", cf, "-i", me], input=body, check=True)
    times.append(time.monotonic() - s)
t_enq = time.monotonic() - t0
mbox = os.path.join(work, "mail", me)
def count():
    try:
        with open(mbox, "rb") as f:
            return sum(1 for l in f if l.startswith(b"From "))
    except FileNotFoundError:
        return 0
deadline = time.monotonic() + 600
while count() < n and time.monotonic() < deadline:
    time.sleep(0.05)
t_all = time.monotonic() - t0
print(f"== {n} messages of ~2 KB through sendmail into one mbox")
print(f"enqueue rate (sendmail calls):          {n / t_enq:8.0f} /s")
print(f"median sendmail call:                   {statistics.median(times) * 1000:8.2f} ms")
print(f"delivered: {count()} in {t_all:.2f} s:            {count() / t_all:8.0f} /s end to end")
PY
