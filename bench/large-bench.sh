#!/bin/sh
# bench/large-bench.sh - large messages (issue 14): postoffice against Postfix,
# same machine, same run, with the machine's own ceiling beside them.
#
#   sh bench/large-bench.sh        (as root, from the source tree after make)
#
# Environment (defaults in brackets):
#   LOADS="1048576:200:4 10485760:20:2"  SIZE:COUNT:CLIENTS per workload
#                                 (smtp-source -l SIZE, one message per connection)
#   ROUNDS=3                      repeat every measurement (report ranges)
#   PO_BASE=path                  a second postoffice binary measured beside the
#                                 built one ("before" figures in the same run)
#   WHO="postoffice postfix"      which MTAs (PO_BASE adds "base")
#   CEIL=1                        measure smtp-source -> smtp-sink and the disk
#
# Per run: accepted MB/s = COUNT*SIZE / time smtp-source took; delivered MB/s =
# COUNT*SIZE / time until the mbox holds COUNT complete messages (a message
# counts when the next "From " separator follows it, or for the last one when
# the file ends in its blank line and it holds at least SIZE/2 bytes (LF line
# ends make it shorter than SIZE; the body has no empty line): the end
# of the message, not its From line); CPU ms/MB = user+sys of the MTA's whole
# process tree (a cgroup the daemon is started in, v1 cpuacct or v2, so exited
# children count too) from the start of the load to the last delivery, per MB.
#
# Ceiling: smtp-source straight into smtp-sink with the same messages (MB/s),
# and the disk's sequential write + fdatasync rate (dd, 256 MB).
#
# Postfix runs privately as in compare-postfix.sh (unshare -m, bind mounts over
# /etc/postfix, /var/spool/postfix, /var/lib/postfix), with its defaults except
# message_size_limit (raised to 100 MB so the 10 MB load fits).
set -u
cd "$(dirname "$0")/.." || exit 1
[ "$(id -u)" = 0 ] || { echo "large-bench: run as root (private Postfix, mailbox owner)" >&2; exit 77; }
BIN=$PWD/postoffice
[ -x "$BIN" ] || { echo "large-bench: build first: ./configure.sh && make" >&2; exit 69; }
command -v postfix >/dev/null && command -v smtp-source >/dev/null || {
    echo "large-bench: needs postfix and smtp-source (run bench/compare-postfix.sh once: it installs them)" >&2; exit 69; }
# CPU of a process tree: a cgroup (v1 cpuacct, or v2's cpu.stat)
if [ -f /sys/fs/cgroup/cgroup.controllers ]; then CGROOT=/sys/fs/cgroup CGV=2
else CGROOT=/sys/fs/cgroup/cpuacct CGV=1; fi
[ -w "$CGROOT" ] || { echo "large-bench: needs a writable cgroup hierarchy at $CGROOT" >&2; exit 69; }

LOADS=${LOADS:-"1048576:200:4 10485760:20:2"} ROUNDS=${ROUNDS:-3} CEIL=${CEIL:-1}
WHO=${WHO:-"postoffice postfix"}
[ -n "${PO_BASE:-}" ] && WHO="base $WHO"

if [ -z "${PO_CMP_NS:-}" ]; then
    PO_CMP_NS=1 exec unshare --mount --propagation private sh "$0" "$@"
fi

# ---- inside the private mount namespace ----
D=$(mktemp -d /tmp/po-large-XXXXXX)
chmod 755 "$D"
made_user=
id pobench >/dev/null 2>&1 || { useradd -M -d /nonexistent -s /usr/sbin/nologin pobench && made_user=1; }
CG=$CGROOT/po-large-$$
mkdir "$CG" || exit 1
SINKPID= POPID= PFUP=
cleanup() {
    po_stop
    pf_stop
    [ -n "$SINKPID" ] && kill "$SINKPID" 2>/dev/null
    umount /etc/postfix /var/spool/postfix /var/lib/postfix 2>/dev/null
    sleep 0.2
    for p in $(cat "$CG/cgroup.procs" 2>/dev/null); do kill "$p" 2>/dev/null; done
    sleep 0.2
    rmdir "$CG" 2>/dev/null
    rm -rf "$D"
    [ -n "$made_user" ] && userdel pobench 2>/dev/null
}
trap 'cleanup' EXIT
trap 'exit 130' INT TERM

freeport() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
now() { date +%s.%N; }
cpu_ns() {
    if [ "$CGV" = 2 ]; then awk '$1 == "usage_usec" { print $2 * 1000 }' "$CG/cpu.stat"
    else cat "$CG/cpuacct.usage"; fi
}
# run a command inside the cgroup (its children stay there)
in_cg() { sh -c 'echo $$ > "$0/cgroup.procs" && exec "$@"' "$CG" "$@"; }

POPORT=$(freeport) PFPORT=$(freeport) SINKPORT=$(freeport)

# ---- postoffice ----
mkdir -p "$D/po" "$D/mail"
chmod 1777 "$D/mail"
printf 'postmaster: root\n' > "$D/po/aliases"
cat > "$D/po/cf" <<CF
queuedir=$D/po/queue
mailspool=$D/mail
aliases=$D/po/aliases
pidfile=$D/po/pid
user=pobench
hostname=bench.example
listen=127.0.0.1:$POPORT
banner=$D/none
clients=200
clients-per-host=0
load=0
minfree=0
size=100m
CF
po_start() { # BINARY
    in_cg "$1" -C "$D/po/cf" -bd || exit 1
    POPID=$(cat "$D/po/pid")
}
po_stop() {
    [ -n "$POPID" ] || return 0
    kill "$POPID" 2>/dev/null
    i=0
    while kill -0 "$POPID" 2>/dev/null; do i=$((i + 1)); [ $i -gt 100 ] && break; sleep 0.1; done
    POPID=
    rm -f "$D/po/pid"
}
"$BIN" -C "$D/po/cf" -bi >/dev/null 2>&1

# ---- Postfix, private ----
mkdir -p "$D/pf/etc" "$D/pf/spool" "$D/pf/lib"
cp -a /etc/postfix/. "$D/pf/etc/"
rm -f "$D/pf/etc/main.cf" "$D/pf/etc/master.cf"
chown postfix:postfix "$D/pf/lib"
mount --bind "$D/pf/etc" /etc/postfix || exit 1
mount --bind "$D/pf/spool" /var/spool/postfix || exit 1
mount --bind "$D/pf/lib" /var/lib/postfix || exit 1
cat > /etc/postfix/main.cf <<CF
compatibility_level = 3.6
myhostname = bench.example
mydomain = bench.example
myorigin = bench.example
mydestination = bench.example
inet_interfaces = loopback-only
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
alias_maps =
alias_database =
mail_spool_directory = $D/mail
mailbox_command =
mailbox_size_limit = 0
message_size_limit = 104857600
biff = no
smtp_dns_support_level = disabled
CF
cat > /etc/postfix/master.cf <<CF
127.0.0.1:$PFPORT inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
CF
postfix check >/dev/null 2>&1
pf_start() {
    in_cg postfix start >/dev/null 2>&1 || { echo "postfix start failed" >&2; exit 1; }
    PFUP=1
    i=0
    until python3 -c "import socket; socket.create_connection(('127.0.0.1',$PFPORT)).close()" 2>/dev/null; do
        i=$((i + 1)); [ $i -gt 50 ] && { echo "postfix did not come up" >&2; exit 1; }
        sleep 0.1
    done
}
pf_stop() {
    [ -n "$PFUP" ] || return 0
    postfix stop >/dev/null 2>&1
    i=0
    while [ -f /var/spool/postfix/pid/master.pid ] &&
          kill -0 "$(head -1 /var/spool/postfix/pid/master.pid 2>/dev/null)" 2>/dev/null; do
        i=$((i + 1)); [ $i -gt 100 ] && break; sleep 0.1
    done
    PFUP=
}

# ---- one run ----
fresh_mbox() {
    rm -f "$D/mail/pobench"
    : > "$D/mail/pobench"; chown pobench "$D/mail/pobench"; chmod 600 "$D/mail/pobench"
}
# Wait until the mbox holds COUNT complete messages of at least SIZE bytes;
# reads only what was appended since the last look.  Exit 1 after 600 s.
wait_complete() { # COUNT SIZE
    python3 - "$D/mail/pobench" "$1" "$2" <<'PY'
import sys, time, os
path, want, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
sep = b"\n\nFrom "
f = open(path, "rb")
tail = b""          # last bytes kept for separators across reads
pos = 0             # file offset of tail's start
last = None         # file offset of the last separator's "From "
done = 0
t0 = time.time()
while True:
    data = f.read()
    if data:
        buf = tail + data
        if last is None and buf.startswith(b"From "):
            last = pos
        i = buf.find(sep)
        while i >= 0:
            done += 1               # the message before this separator is complete
            last = pos + i + 2
            i = buf.find(sep, i + 1)
        keep = min(len(buf), len(sep) - 1)
        pos += len(buf) - keep
        tail = buf[len(buf) - keep:]
    end = pos + len(tail)
    if last is not None and tail.endswith(b"\n\n") and end - last >= size // 2 and done + 1 >= want:
        sys.exit(0)
    if time.time() - t0 > 600:
        print(f"only {done} complete", file=sys.stderr)
        sys.exit(1)
    time.sleep(0.01)
PY
}
source_run() { # PORT CLIENTS COUNT SIZE
    smtp-source -s "$2" -m "$3" -l "$4" -f bench@client.example -t pobench@bench.example \
        "127.0.0.1:$1" > "$D/source.out" 2>&1 ||
        { echo "smtp-source failed:" >&2; tail -3 "$D/source.out" >&2; }
}
mb() { echo "scale=3; $1 * $2 / 1000000" | bc; }
calc() { echo "$1" | bc | sed 's/^\./0./'; } # bc writes .8 for 0.8
run_one() { # NAME PORT SIZE COUNT CLIENTS -> "accept-MB/s delivered-MB/s cpu-ms/MB"
    fresh_mbox
    c0=$(cpu_ns)
    t0=$(now)
    source_run "$2" "$5" "$4" "$3"
    t1=$(now)
    wait_complete "$4" "$3" || echo "$1: not all delivered" >&2
    t2=$(now)
    c1=$(cpu_ns)
    m=$(mb "$3" "$4")
    echo "$(calc "scale=1; $m / ($t1 - $t0)") $(calc "scale=1; $m / ($t2 - $t0)")" \
         "$(calc "scale=2; ($c1 - $c0) / 1000000 / $m")"
}
run_ceiling() { # SIZE COUNT CLIENTS -> "MB/s"
    t0=$(now)
    smtp-source -s "$3" -m "$2" -l "$1" -f bench@client.example -t x@sink.example \
        "127.0.0.1:$SINKPORT" > "$D/source.out" 2>&1
    t1=$(now)
    calc "scale=1; $(mb "$1" "$2") / ($t1 - $t0)"
}

RES=$D/results
: > "$RES"
record() { echo "$*" >> "$RES"; echo "  $*" >&2; }

echo "== $(date -u '+%Y-%m-%d %H:%M UTC')  $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
echo "== postoffice $(git describe --always --dirty 2>/dev/null)${PO_BASE:+, base $PO_BASE}, Postfix $(postconf -h mail_version)" >&2
if [ "$CEIL" = 1 ]; then
    smtp-sink -u nobody "127.0.0.1:$SINKPORT" 256 > /dev/null 2>&1 &
    SINKPID=$!
    sleep 0.3
fi

r=1
while [ $r -le "$ROUNDS" ]; do
    if [ "$CEIL" = 1 ]; then
        dd if=/dev/zero of="$D/seq" bs=1M count=256 conv=fdatasync 2>&1 |
            sed -n 's/.*, \([0-9.]*\) \([MG]B\)\/s$/\1 \2/p' | {
            read -r v u; [ "$u" = GB ] && v=$(echo "$v * 1000" | bc); record "disk - $v"; }
        rm -f "$D/seq"
    fi
    for load in $LOADS; do
        size=${load%%:*} rest=${load#*:}; count=${rest%%:*} clients=${rest#*:}
        [ "$CEIL" = 1 ] && record "ceiling $size $(run_ceiling "$size" "$count" "$clients")"
        for who in $WHO; do
            case $who in
            postoffice) po_start "$BIN"; record "$who $size $(run_one "$who" "$POPORT" "$size" "$count" "$clients")"; po_stop ;;
            base) po_start "$PO_BASE"; record "$who $size $(run_one "$who" "$POPORT" "$size" "$count" "$clients")"; po_stop ;;
            postfix) pf_start; record "$who $size $(run_one "$who" "$PFPORT" "$size" "$count" "$clients")"; pf_stop ;;
            esac
        done
    done
    r=$((r + 1))
done

# ---- the table ----
echo
echo "large messages: Postfix $(postconf -h mail_version), loads $LOADS (SIZE:COUNT:CLIENTS), $ROUNDS rounds"
awk -v who="$WHO" '
function range(a, b) { return (a == b) ? a : a "-" b }
function put(k, v) {
    if (!(k in lo) || v < lo[k]) lo[k] = v
    if (!(k in hi) || v > hi[k]) hi[k] = v
    sum[k] += v; cnt[k]++
}
function avg(k) { return cnt[k] ? sum[k] / cnt[k] : 0 }
$1 == "disk" { put("disk", $3) }
$1 == "ceiling" { put("ceil " $2, $3); sizes[$2] = 1 }
$1 != "disk" && $1 != "ceiling" { put($1 " " $2 " a", $3); put($1 " " $2 " d", $4); put($1 " " $2 " c", $5); sizes[$2] = 1 }
END {
    if ("disk" in lo) printf "disk: sequential write + fdatasync (dd 256 MB): %s MB/s\n", range(lo["disk"], hi["disk"])
    printf "%-10s %-11s %15s %15s %13s %8s %8s\n", "size", "MTA", "accept MB/s", "delivered MB/s", "CPU ms/MB", "acc x", "done x"
    n = split(who, w, " ")
    for (s in sizes) {
        if (("ceil " s) in lo) printf "%-10s %-11s %15s\n", s, "ceiling", range(lo["ceil " s], hi["ceil " s])
        for (i = 1; i <= n; i++) {
            k = w[i] " " s
            if (!((k " a") in lo)) continue
            pa = avg("postfix " s " a"); pd = avg("postfix " s " d")
            printf "%-10s %-11s %15s %15s %13s %8.2f %8.2f\n", s, w[i],
                range(lo[k " a"], hi[k " a"]), range(lo[k " d"], hi[k " d"]),
                range(lo[k " c"], hi[k " c"]),
                pa ? avg(k " a") / pa : 0, pd ? avg(k " d") / pd : 0
        }
    }
    print "(ranges over the rounds; x = mean / mean of Postfix; delivered = complete in the mbox; CPU = user+sys of the MTA process tree)"
}' "$RES"
