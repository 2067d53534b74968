#!/bin/sh
# bench/tls-bench.sh - SMTP with STARTTLS: postoffice against Postfix, same
# machine, same run, same load client (bench/tls_load.c), same certificate,
# same delivery target (an mbox in a private mail spool).
#
#   sh bench/tls-bench.sh            (as root, from the source tree after make)
#
# Environment (defaults in brackets):
#   N=2000 SIZE=2048   messages per run, message bytes
#   CLIENTS=10         parallel clients; one new connection per message
#   ROUNDS=1           repeat each measurement
#   IDLE=50            idle TLS sessions for the PSS figure (0: skip)
#   WHO="postoffice postfix"
#   KEY=ecdsa|rsa      the server certificate's key type [ecdsa]
#   PO_BIN=path        another postoffice binary (A/B runs)
#   PO_EXTRA="a=b"     a line added to postoffice's configuration
#                      (PO_EXTRA=tls-proxies=2)
#   CPU=1              also the CPU time of the MTA's processes per message
#                      (a cgroup v1 cpuacct group around each daemon)
#
# Scenarios, each for postoffice and then Postfix:
#   full:    STARTTLS and a full handshake for every message (TLS 1.3)
#   resumed: every client offers its previous session (tickets; TLS 1.3)
#   tls12:   resumed, TLS 1.2
#   idle:    IDLE sessions after STARTTLS and the second EHLO, then the sum of
#            the session processes' Pss (/proc/PID/smaps_rollup), and
#            postoffice's TLS proxy's, / IDLE
# Rates are messages accepted per second as the client saw them (all its
# messages answered 250), delivery to the mbox running at the same time.
#
# Postfix runs privately as in compare-postfix.sh: a private mount namespace
# with temporary directories over /etc/postfix, /var/spool/postfix and
# /var/lib/postfix; tlsmgr runs, so Postfix issues session tickets too.
set -u
cd "$(dirname "$0")/.." || exit 1
[ "$(id -u)" = 0 ] || { echo "tls-bench: run as root (private Postfix, mailbox owner)" >&2; exit 77; }
BIN=${PO_BIN:-$PWD/postoffice}
[ -x "$BIN" ] || { echo "tls-bench: build first: ./configure.sh && make" >&2; exit 69; }
command -v postfix >/dev/null || { echo "tls-bench: postfix missing (sh bench/compare-postfix.sh installs it)" >&2; exit 69; }

N=${N:-2000} SIZE=${SIZE:-2048} CLIENTS=${CLIENTS:-10} ROUNDS=${ROUNDS:-1} IDLE=${IDLE:-50}
WHO=${WHO:-"postoffice postfix"} KEY=${KEY:-ecdsa}

if [ -z "${PO_TLS_NS:-}" ]; then
    PO_TLS_NS=1 exec unshare --mount --propagation private sh "$0" "$@"
fi

D=$(mktemp -d /tmp/po-tls-XXXXXX)
chmod 755 "$D"
made_user=
id pobench >/dev/null 2>&1 || { useradd -M -d /nonexistent -s /usr/sbin/nologin pobench && made_user=1; }
POPID=
cleanup() {
    [ -n "$POPID" ] && kill "$POPID" 2>/dev/null
    postfix stop >/dev/null 2>&1
    sleep 0.5
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
POPORT=$(freeport) PFPORT=$(freeport)

cc -O2 -o "$D/tls_load" bench/tls_load.c -lssl -lcrypto || exit 69

# ---- one certificate for both ----
if [ "$KEY" = rsa ]; then
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$D/key.pem" 2>/dev/null
else
    openssl ecparam -name prime256v1 -genkey -noout -out "$D/key.pem"
fi
openssl req -x509 -new -key "$D/key.pem" -out "$D/cert.pem" -days 2 -subj /CN=bench.example
chmod 600 "$D/key.pem"

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
tls-cert=$D/cert.pem
tls-key=$D/key.pem
CF
[ -n "${PO_EXTRA:-}" ] && printf '%s\n' "$PO_EXTRA" >> "$D/po/cf"
"$BIN" -C "$D/po/cf" -bi >/dev/null 2>&1
# CPU=1: the daemons start in their own cpuacct group (children follow)
CG=
if [ "${CPU:-0}" = 1 ] && [ -d /sys/fs/cgroup/cpuacct ]; then
    CG=/sys/fs/cgroup/cpuacct/potls.$$
    mkdir "$CG" || CG=
fi
in_cg() {
    if [ -n "$CG" ]; then
        sh -c 'echo $$ > "$0/cgroup.procs" && exec "$@"' "$CG" "$@"
    else
        "$@"
    fi
}
cg_ns() { if [ -n "$CG" ]; then cat "$CG/cpuacct.usage"; else echo 0; fi; }
po_start() { in_cg "$BIN" -C "$D/po/cf" -bd || exit 1; POPID=$(cat "$D/po/pid"); }
po_stop() {
    kill "$POPID" 2>/dev/null
    while kill -0 "$POPID" 2>/dev/null; do sleep 0.1; done
    POPID=
}

# ---- Postfix, private, with TLS ----
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
biff = no
smtpd_client_connection_count_limit = 0
smtpd_client_connection_rate_limit = 0
default_process_limit = 200
smtpd_tls_cert_file = $D/cert.pem
smtpd_tls_key_file = $D/key.pem
smtpd_tls_security_level = may
smtpd_tls_session_cache_database = btree:\${data_directory}/smtpd_scache
smtpd_tls_received_header = yes
CF
cat > /etc/postfix/master.cf <<CF
127.0.0.1:$PFPORT inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
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
    in_cg postfix start >/dev/null 2>&1 || { echo "postfix start failed" >&2; postfix start; exit 1; }
    i=0
    until python3 -c "import socket; socket.create_connection(('127.0.0.1',$PFPORT)).close()" 2>/dev/null; do
        i=$((i + 1)); [ $i -gt 50 ] && { echo "postfix did not come up" >&2; exit 1; }
        sleep 0.1
    done
}
pf_stop() {
    postfix stop >/dev/null 2>&1
    i=0
    while [ -f /var/spool/postfix/pid/master.pid ] &&
          kill -0 "$(head -1 /var/spool/postfix/pid/master.pid 2>/dev/null)" 2>/dev/null; do
        i=$((i + 1)); [ $i -gt 100 ] && break; sleep 0.1
    done
}

fresh_mbox() {
    rm -f "$D/mail/pobench"
    : > "$D/mail/pobench"; chown pobench "$D/mail/pobench"; chmod 600 "$D/mail/pobench"
}

# load PORT FLAGS -> "rate cpu-ms-per-message" (the MTA's, 0 without CPU=1)
load() {
    fresh_mbox
    c0=$(cg_ns)
    out=$("$D/tls_load" -p "$1" -n "$N" -c "$CLIENTS" -s "$SIZE" -t pobench@bench.example $2)
    echo "$out" | sed 's/^/    /' >&2
    echo "$(echo "$out" | sed -n 's/.*rate=\([0-9.]*\).*/\1/p') $(echo "scale=3; ($(cg_ns) - $c0) / $N / 1000000" | bc)"
}

# idle_pss PORT WHO -> KiB per session
idle_pss() {
    "$D/tls_load" -p "$1" -n "$IDLE" -c "$IDLE" -I 8 > "$D/idle.out" &
    lp=$!
    i=0
    until grep -q "idle sessions" "$D/idle.out" 2>/dev/null; do
        i=$((i + 1)); [ $i -gt 300 ] && break; sleep 0.1
    done
    sleep 1
    if [ "$2" = postoffice ]; then
        pids=$(for k in $(cat /proc/"$POPID"/task/"$POPID"/children); do
                   [ "$(cat /proc/$k/comm 2>/dev/null)" = po-session ] && echo "$k"; done)
    else
        pids=$(pgrep -x smtpd)
    fi
    tot=0 n=0
    for p in $pids; do
        v=$(awk '/^Pss:/ {print $2}' /proc/"$p"/smaps_rollup 2>/dev/null)
        [ -n "$v" ] && { tot=$((tot + v)); n=$((n + 1)); }
    done
    # postoffice's TLS proxy holds every session's TLS state: it counts
    px=0
    if [ "$2" = postoffice ]; then
        for k in $(cat /proc/"$POPID"/task/"$POPID"/children); do
            [ "$(cat /proc/$k/comm 2>/dev/null)" = po-tls ] || continue
            v=$(awk '/^Pss:/ {print $2}' /proc/"$k"/smaps_rollup 2>/dev/null)
            [ -n "$v" ] && px=$((px + v))
        done
        tot=$((tot + px))
    fi
    wait "$lp"
    echo "    $2: $n session processes, $tot KiB Pss (the TLS proxy's $px included)" >&2
    [ "$n" -gt 0 ] && echo $((tot / n)) || echo 0
}

RES=$D/results
: > "$RES"
echo "== $(date -u '+%Y-%m-%d %H:%M UTC')  $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
echo "== postoffice $(git describe --always --dirty 2>/dev/null), Postfix $(postconf -h mail_version), $(openssl version), $KEY key" >&2
r=1
while [ $r -le "$ROUNDS" ]; do
    for who in $WHO; do
        case " $WHO " in *" $who "*) ;; *) continue ;; esac
        if [ $who = postoffice ]; then po_start; port=$POPORT; else pf_start; port=$PFPORT; fi
        echo "  $who full" >&2;    echo "full $who $(load $port "")" >> "$RES"
        echo "  $who resumed" >&2; echo "resumed $who $(load $port -r)" >> "$RES"
        echo "  $who tls12" >&2;   echo "tls12 $who $(load $port "-r -V 1.2")" >> "$RES"
        [ "$IDLE" -gt 0 ] && echo "idle $who $(idle_pss $port $who)" >> "$RES"
        if [ $who = postoffice ]; then po_stop; else pf_stop; fi
    done
    r=$((r + 1))
done

echo
echo "STARTTLS, $N messages of $SIZE bytes, $CLIENTS clients, a new connection per message ($KEY certificate)"
awk '
function put(k, v) { sum[k] += v; cnt[k]++; if (!(k in lo) || v < lo[k]) lo[k] = v; if (!(k in hi) || v > hi[k]) hi[k] = v }
function avg(k) { return cnt[k] ? sum[k] / cnt[k] : 0 }
function range(k,  f) { f = k ~ /^cpu/ ? "%.2f" : "%.0f"
    return lo[k] == hi[k] ? sprintf(f, lo[k]) : sprintf(f "-" f, lo[k], hi[k]) }
{ put($1 " " $2, $3) }
$4 != "" && $4 > 0 { put("cpu" $1 " " $2, $4) }
END {
    printf "%-34s %14s %14s %7s\n", "scenario", "postoffice", "postfix", "po/pf"
    n = split("full resumed tls12 idle cpufull cpuresumed cputls12", s, " ")
    for (i = 1; i <= n; i++) {
        name = s[i] == "full" ? "msg/s, full handshake (TLS 1.3)" : s[i] == "resumed" ? \
            "msg/s, resumed (TLS 1.3 tickets)" : s[i] == "tls12" ? "msg/s, resumed (TLS 1.2)" : \
            s[i] == "idle" ? "KiB Pss per idle TLS session" : \
            "CPU ms/msg (MTA), " substr(s[i], 4)
        a = s[i] " postoffice"; b = s[i] " postfix"
        if (!(a in cnt) && !(b in cnt)) continue
        printf "%-34s %14s %14s %7.2f\n", name, range(a), range(b), avg(b) ? avg(a) / avg(b) : 0
    }
}' "$RES"
