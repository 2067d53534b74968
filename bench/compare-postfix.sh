#!/bin/sh
# bench/compare-postfix.sh - postoffice against Postfix, same machine, same run,
# same load generator (postfix's smtp-source), same delivery target.
#
#   sh bench/compare-postfix.sh            (as root, from the source tree after make)
#
# Environment (defaults in brackets):
#   N=5000 SIZE=2048        messages per run and smtp-source payload bytes
#   CONC="1 10 50"          parallel smtp-source clients, local delivery (issue 3)
#   RCONC="10"              parallel clients for the relay runs (issue 4)
#   ROUNDS=1                repeat every measurement this many times (report ranges)
#   SYNC_N=500              messages for the strace count of synchronous commits (0: skip)
#   WHAT="local relay sync" which parts to run
#   PO_CF_EXTRA="opt=val"   extra postoffice.cf lines (experiments)
#   PF_CF_EXTRA="p = v"     extra Postfix main.cf lines (bench/milter-bench.sh)
#   PO_BIN=path            another postoffice binary (experiments)
#   WHO="postoffice postfix" which MTAs to measure
#   CPU=1                   also the CPU time of the MTA's processes per message
#                           (a cgroup v1 cpuacct group for the daemon: robust to
#                           the shared machine's load, unlike the rates)
#   PO_PRELOAD=lib.so       LD_PRELOAD for the postoffice daemon (experiments,
#                           e.g. a library that turns fsync into a no-op)
#
# Scenarios, each for postoffice and for Postfix back to back:
#   local: smtp-source -> MTA on 127.0.0.1 -> mbox of user pobench in a private
#          mail spool; accepted/s = N / time smtp-source took, delivered/s = N /
#          time until the mbox holds N messages (from the start of the run).
#   relay: smtp-source -> MTA -> relay host [127.0.0.1]:SINKPORT = smtp-sink;
#          end to end = N / time until the sink counted N messages.  postoffice
#          runs with `immediate` (the daemon hands SMTP-accepted ids to a delivery
#          child at once, in batches through runq_messages, sharing connections);
#          Postfix with its defaults (qmgr + smtp, connection cache on demand).
#   sync:  strace -f -c over a short run of each scenario: fsync, fdatasync,
#          syncfs, sync_file_range and msync calls per message.
#
# Postfix runs privately: this script re-executes itself in a private mount
# namespace (unshare -m) where temporary directories are bind-mounted over
# /etc/postfix, /var/spool/postfix and /var/lib/postfix, so `postfix start`
# finds its own configuration without alternate_config_directories and the
# system's Postfix files are never touched.  Both MTAs listen on loopback ports
# chosen at random (never 25).  If postfix is missing it is installed with
# apt-get while /usr/sbin/policy-rc.d forbids starting daemons.
set -u
cd "$(dirname "$0")/.." || exit 1
[ "$(id -u)" = 0 ] || { echo "compare-postfix: run as root (private Postfix, mailbox owner)" >&2; exit 77; }
BIN=${PO_BIN:-$PWD/postoffice}
[ -x "$BIN" ] || { echo "compare-postfix: build first: ./configure.sh && make" >&2; exit 69; }

N=${N:-5000} SIZE=${SIZE:-2048} CONC=${CONC:-"1 10 50"} RCONC=${RCONC:-10}
ROUNDS=${ROUNDS:-1} SYNC_N=${SYNC_N:-500} WHAT=${WHAT:-"local relay sync"}
WHO=${WHO:-"postoffice postfix"}
want() { case " $WHO " in *" $1 "*) return 0 ;; esac; return 1; }

install_postfix() {
    command -v postfix >/dev/null && command -v smtp-source >/dev/null &&
        command -v smtp-sink >/dev/null && return 0
    echo "compare-postfix: installing postfix (no daemon is started)" >&2
    made_policy=
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        made_policy=1
    fi
    echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
    DEBIAN_FRONTEND=noninteractive apt-get install -y postfix >/dev/null
    rc=$?
    [ -n "$made_policy" ] && rm -f /usr/sbin/policy-rc.d
    [ $rc = 0 ] || { echo "compare-postfix: apt-get install postfix failed" >&2; exit 69; }
}

if [ -z "${PO_CMP_NS:-}" ]; then
    install_postfix
    command -v unshare >/dev/null || { echo "compare-postfix: unshare (util-linux) missing" >&2; exit 69; }
    PO_CMP_NS=1 exec unshare --mount --propagation private sh "$0" "$@"
fi

# ---- from here on: inside the private mount namespace ----
D=$(mktemp -d /tmp/po-cmp-XXXXXX)
chmod 755 "$D"
made_user=
id pobench >/dev/null 2>&1 || { useradd -M -d /nonexistent -s /usr/sbin/nologin pobench && made_user=1; }
SINKPID= POPID=
cleanup() {
    po_stop
    pf_stop
    [ -n "$SINKPID" ] && kill "$SINKPID" 2>/dev/null
    umount /etc/postfix /var/spool/postfix /var/lib/postfix 2>/dev/null
    rm -rf "$D"
    [ -n "$made_user" ] && userdel pobench 2>/dev/null
    [ -n "$CG" ] && rmdir "$CG" 2>/dev/null
}
trap 'cleanup' EXIT
trap 'exit 130' INT TERM

freeport() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
now() { date +%s.%N; }
# CPU=1: the daemons start in their own cpuacct group (children follow)
CG=
if [ "${CPU:-0}" = 1 ] && [ -d /sys/fs/cgroup/cpuacct ]; then
    CG=/sys/fs/cgroup/cpuacct/pobench.$$
    mkdir "$CG" || CG=
fi
in_cg() { # COMMAND...: run it (and what it forks) in the group
    if [ -n "$CG" ]; then
        sh -c 'echo $$ > "$0/cgroup.procs" && exec "$@"' "$CG" "$@"
    else
        "$@"
    fi
}
cg_ns() { if [ -n "$CG" ]; then cat "$CG/cpuacct.usage"; else echo 0; fi; }
cpu_ms() { echo "scale=3; ($2 - $1) / $3 / 1000000" | bc; } # NS0 NS1 N
rate() { echo "scale=0; $1 / ($3 - $2)" | bc; }

POPORT=$(freeport) PFPORT=$(freeport) SINKPORT=$(freeport)

# ---- the relay target: smtp-sink, counting messages on stdout ----
smtp-sink -c -u nobody "127.0.0.1:$SINKPORT" 256 > "$D/sink.out" 2>&1 &
SINKPID=$!
sink_count() {
    tail -c 100 "$D/sink.out" | tr '\r' '\n' | sed -n 's/.*mesg=\([0-9]*\).*/\1/p' | tail -1
}

# ---- postoffice ----
mkdir -p "$D/po" "$D/mail"
chmod 1777 "$D/mail"
printf 'postmaster: root\n' > "$D/po/aliases"
po_conf() { # EXTRA-LINES
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
relay-host=[127.0.0.1]:$SINKPORT
$1
${PO_CF_EXTRA:-}
CF
}
POSTRACE=
po_start() { # [strace-output]
    if [ -n "${1:-}" ]; then
        strace -f -c -o "$1" -e trace=fsync,fdatasync,syncfs,sync_file_range,msync \
            "$BIN" -C "$D/po/cf" -bD >/dev/null 2>&1 &
        POSTRACE=$!
        i=0
        until [ -s "$D/po/pid" ]; do
            i=$((i + 1)); [ $i -gt 100 ] && { echo "postoffice did not start" >&2; exit 1; }
            sleep 0.1
        done
        POPID=$(cat "$D/po/pid")
    else
        in_cg ${PO_PRELOAD:+env LD_PRELOAD=$PO_PRELOAD} "$BIN" -C "$D/po/cf" -bd || exit 1
        POPID=$(cat "$D/po/pid")
    fi
}
po_stop() {
    [ -n "$POPID" ] || return 0
    kill "$POPID" 2>/dev/null
    i=0
    while kill -0 "$POPID" 2>/dev/null; do i=$((i + 1)); [ $i -gt 100 ] && break; sleep 0.1; done
    [ -n "$POSTRACE" ] && wait "$POSTRACE" 2>/dev/null
    POPID= POSTRACE=
    rm -f "$D/po/pid"
}

po_conf ""
"$BIN" -C "$D/po/cf" -bi >/dev/null 2>&1 # an aliases database, as any real setup has

# ---- Postfix, private ----
PFDIR=$(postconf -h daemon_directory)
mkdir -p "$D/pf/etc" "$D/pf/spool" "$D/pf/lib"
cp -a /etc/postfix/. "$D/pf/etc/"
rm -f "$D/pf/etc/main.cf" "$D/pf/etc/master.cf"
chown postfix:postfix "$D/pf/lib"
mount --bind "$D/pf/etc" /etc/postfix || exit 1
mount --bind "$D/pf/spool" /var/spool/postfix || exit 1
mount --bind "$D/pf/lib" /var/lib/postfix || exit 1
pf_conf() { # RELAY(0|1)
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
biff = no
relayhost = [127.0.0.1]:$SINKPORT
smtp_dns_support_level = disabled
${PF_CF_EXTRA:-}
CF
    [ -n "${PFLOG:-}" ] && printf 'maillog_file_prefixes = /tmp\nmaillog_file = %s\n' "$D/pf/maillog" >> /etc/postfix/main.cf
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
}
PFSTRACE=
pf_start() { # [strace-output]
    PFSTRACE=${1:-}
    if [ -n "$PFSTRACE" ]; then
        strace -f -c -o "$PFSTRACE" -e trace=fsync,fdatasync,syncfs,sync_file_range,msync \
            "$PFDIR/master" -d >/dev/null 2>&1 &
        PFSTRACE=$!
    else
        in_cg postfix start >/dev/null 2>&1 || { echo "postfix start failed:" >&2; postfix start; exit 1; }
    fi
    # ready when the smtpd port answers
    i=0
    until python3 -c "import socket; socket.create_connection(('127.0.0.1',$PFPORT)).close()" 2>/dev/null; do
        i=$((i + 1)); [ $i -gt 50 ] && { echo "postfix did not come up" >&2; exit 1; }
        sleep 0.1
    done
}
pf_stop() {
    if [ -n "$PFSTRACE" ]; then
        kill "$(head -1 /var/spool/postfix/pid/master.pid 2>/dev/null)" 2>/dev/null
        wait "$PFSTRACE" 2>/dev/null
        PFSTRACE=
    else
        postfix stop >/dev/null 2>&1
    fi
    # wait for the master to be gone (its lock file is released)
    i=0
    while [ -f /var/spool/postfix/pid/master.pid ] &&
          kill -0 "$(head -1 /var/spool/postfix/pid/master.pid 2>/dev/null)" 2>/dev/null; do
        i=$((i + 1)); [ $i -gt 100 ] && break; sleep 0.1
    done
}
pf_queue_empty() {
    [ -z "$(find /var/spool/postfix/incoming /var/spool/postfix/active \
              /var/spool/postfix/deferred /var/spool/postfix/maildrop -type f 2>/dev/null | head -1)" ]
}
pf_conf
postfix check >/dev/null 2>&1  # creates the private queue directories

# ---- one run ----
mbox_count() { grep -c '^From ' "$D/mail/pobench" 2>/dev/null || echo 0; }
wait_mbox() { # N: the mbox size is checked first, grep only when it can be complete
    w0=$(date +%s)
    while :; do
        sz=$(stat -c %s "$D/mail/pobench" 2>/dev/null || echo 0)
        if [ "$sz" -ge $(($1 * SIZE)) ] && [ "$(mbox_count)" -ge "$1" ]; then return 0; fi
        [ $(( $(date +%s) - w0 )) -gt 600 ] && return 1
        sleep 0.05
    done
}
wait_sink() { # TARGET
    w0=$(date +%s)
    while :; do
        n=$(sink_count)
        [ "${n:-0}" -ge "$1" ] && return 0
        [ $(( $(date +%s) - w0 )) -gt 600 ] && return 1
        sleep 0.05
    done
}
source_run() { # PORT CLIENTS COUNT RCPT
    smtp-source -s "$2" -m "$3" -l "$SIZE" -f bench@client.example -t "$4" \
        "127.0.0.1:$1" > "$D/source.out" 2>&1 ||
        { echo "smtp-source failed:" >&2; tail -3 "$D/source.out" >&2; }
}
fresh_mbox() {
    rm -f "$D/mail/pobench"
    : > "$D/mail/pobench"; chown pobench "$D/mail/pobench"; chmod 600 "$D/mail/pobench"
}

run_local() { # WHO PORT CLIENTS -> "accepted delivered cpu-ms-per-message"
    fresh_mbox
    c0=$(cg_ns)
    t0=$(now)
    source_run "$2" "$3" "$N" pobench@bench.example
    t1=$(now)
    wait_mbox "$N" || echo "$1: not all delivered ($(mbox_count))" >&2
    t2=$(now)
    echo "$(rate "$N" "$t0" "$t1") $(rate "$N" "$t0" "$t2") $(cpu_ms "$c0" "$(cg_ns)" "$N")"
}
run_relay() { # WHO PORT CLIENTS -> "accepted end-to-end"
    base=$(sink_count); base=${base:-0}
    t0=$(now)
    source_run "$2" "$3" "$N" x@remote.example
    t1=$(now)
    wait_sink $((base + N)) || echo "$1: the sink counted only $(( $(sink_count) - base ))" >&2
    t2=$(now)
    echo "$(rate "$N" "$t0" "$t1") $(rate "$N" "$t0" "$t2")"
}

RES=$D/results
: > "$RES"
record() { echo "$*" >> "$RES"; echo "  $*" >&2; }

echo "== $(date -u '+%Y-%m-%d %H:%M UTC')  $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
echo "== postoffice $(git describe --always --dirty 2>/dev/null), Postfix $(postconf -h mail_version)" >&2
cc -O2 -o "$D/fsync_rate" bench/fsync_rate.c && "$D/fsync_rate" "$D" 500 | sed 's/^/== disk: /' >&2

for w in $WHAT; do
  case $w in
  local)
    r=1
    while [ $r -le "$ROUNDS" ]; do
        for c in $CONC; do
            if want postoffice; then
                po_conf ""; po_start
                record "local postoffice $c $(run_local postoffice "$POPORT" "$c")"
                po_stop
            fi
            if want postfix; then
                pf_conf; pf_start
                record "local postfix $c $(run_local postfix "$PFPORT" "$c")"
                pf_stop
            fi
        done
        r=$((r + 1))
    done ;;
  relay)
    r=1
    while [ $r -le "$ROUNDS" ]; do
        for c in $RCONC; do
            if want postoffice; then
                po_conf "immediate"; po_start
                record "relay postoffice $c $(run_relay postoffice "$POPORT" "$c")"
                po_stop
            fi
            if want postfix; then
                pf_conf; pf_start
                record "relay postfix $c $(run_relay postfix "$PFPORT" "$c")"
                pf_stop
            fi
        done
        r=$((r + 1))
    done ;;
  sync)
    [ "$SYNC_N" -gt 0 ] || continue
    SAVEN=$N; N=$SYNC_N
    for kind in local relay; do
        imm=; [ $kind = relay ] && imm=immediate
        po_conf "$imm"; po_start "$D/st.po"
        run_$kind postoffice "$POPORT" 10 >/dev/null
        po_stop
        pf_conf; pf_start "$D/st.pf"
        run_$kind postfix "$PFPORT" 10 >/dev/null
        sleep 1   # let the queue manager finish its bookkeeping
        pf_stop
        for who in po pf; do
            calls=$(awk '$NF ~ /^(fsync|fdatasync|syncfs|sync_file_range|msync)$/ {n += $4} END {print n + 0}' "$D/st.$who")
            detail=$(awk '$NF ~ /^(fsync|fdatasync|syncfs|sync_file_range|msync)$/ {printf "%s=%s ", $NF, $4}' "$D/st.$who")
            name=postoffice; [ $who = pf ] && name=postfix
            record "sync $name $kind $(echo "scale=2; $calls / $N" | bc) $detail"
        done
    done
    N=$SAVEN ;;
  esac
done

# ---- the table ----
echo
echo "postoffice vs Postfix $(postconf -h mail_version): $N messages, smtp-source -l $SIZE, one message per connection"
awk -v syncn="$SYNC_N" '
function range(a, b) { return (a == b) ? a : a "-" b }
function put(k, v) {
    if (!(k in lo) || v < lo[k]) lo[k] = v
    if (!(k in hi) || v > hi[k]) hi[k] = v
    sum[k] += v; cnt[k]++
}
function avg(k) { return cnt[k] ? sum[k] / cnt[k] : 0 }
function ratio(a, b) { return avg(b) ? avg(a) / avg(b) : 0 }
$1 == "local" || $1 == "relay" {
    put($1 " " $3 " " $2 " a", $4); put($1 " " $3 " " $2 " d", $5); seen[$1 " " $3] = 1
    if ($6 != "" && $6 > 0) { put($1 " " $3 " " $2 " c", $6); cpu[$1 " " $3] = 1 }
}
$1 == "sync" { sync[$2 " " $3] = $4; sdet[$2 " " $3] = $5 " " $6 " " $7 }
END {
    printf "%-26s %7s %13s %13s %13s %13s %6s %6s\n", "scenario", "clients",
        "po accept/s", "pf accept/s", "po done/s", "pf done/s", "acc x", "done x"
    n = split("local relay", kinds, " ")
    for (i = 1; i <= n; i++) for (c = 1; c <= 500; c++) {
        k = kinds[i] " " c
        if (!(k in seen)) continue
        name = (kinds[i] == "local") ? "SMTP -> mbox (issue 3)" : "SMTP -> relay -> sink (4)"
        printf "%-26s %7s %13s %13s %13s %13s %6.2f %6.2f\n", name, c,
            range(lo[k " postoffice a"], hi[k " postoffice a"]),
            range(lo[k " postfix a"], hi[k " postfix a"]),
            range(lo[k " postoffice d"], hi[k " postoffice d"]),
            range(lo[k " postfix d"], hi[k " postfix d"]),
            ratio(k " postoffice a", k " postfix a"), ratio(k " postoffice d", k " postfix d")
    }
    for (k in cpu)
        printf "CPU ms per message, MTA processes (%s clients): postoffice %s, Postfix %s, x %.2f\n",
            k, range(lo[k " postoffice c"], hi[k " postoffice c"]),
            range(lo[k " postfix c"], hi[k " postfix c"]), ratio(k " postoffice c", k " postfix c")
    for (k in sync)
        printf "sync calls per message (strace -f -c, %s messages, 10 clients): %-18s %5s  (%s)\n",
            syncn, k, sync[k], sdet[k]
    print "(ranges over the rounds; x = mean postoffice / mean Postfix; done = in the mbox / counted by the sink)"
}' "$RES"
