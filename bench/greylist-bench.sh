#!/bin/sh
# bench/greylist-bench.sh - SMTP accept rate with greylisting on (every
# triplet known: the sender approved beforehand with authexpire -a) beside the
# plain rate, in the same run, rounds alternating.  Loopback clients may relay
# and are never greylisted, so the client runs in a network namespace of its
# own: two namespaces joined by a veth pair (both ends inside namespaces;
# 198.51.100.10 the daemon, 198.51.100.1 smtp-source).  Needs root and
# postfix's smtp-source (package postfix; postfix itself is never started).
#
#   sh bench/greylist-bench.sh [MESSAGES] [CONCURRENCY] [ROUNDS]   (2000 10 3)
#
# Prints one line per measurement and the ratio of the means.
set -u
cd "$(dirname "$0")/.." || exit 1
N=${1:-2000}
C=${2:-10}
ROUNDS=${3:-3}
BIN=$PWD/postoffice
EXPIRE=$PWD/authexpire
[ -x "$BIN" ] && [ -x "$EXPIRE" ] || { echo "build first: ./configure.sh && make" >&2; exit 69; }
command -v smtp-source >/dev/null || { echo "apt-get install postfix (for smtp-source)" >&2; exit 69; }
[ "$(id -u)" = 0 ] || { echo "run as root (network namespaces, a mailbox owner)" >&2; exit 77; }
id pobench >/dev/null 2>&1 || useradd -M -d /nonexistent -s /usr/sbin/nologin pobench

TAG=gb$$
SRV=198.51.100.10 CLI=198.51.100.1
D=$(mktemp -d /tmp/po-greybench-XXXXXX)
chmod 755 "$D"
mkdir -p "$D/mail" && chmod 1777 "$D/mail"
printf 'postmaster: root\n' > "$D/aliases"

cleanup() {
    [ -f "$D/pid" ] && kill "$(cat "$D/pid")" 2>/dev/null
    ip netns del $TAG-srv 2>/dev/null
    ip netns del $TAG-cli 2>/dev/null
    rm -rf "$D"
}
trap cleanup EXIT
trap 'exit 130' INT TERM  # exit (running cleanup), do not carry on

ip netns add $TAG-srv && ip netns add $TAG-cli || exit 71
ip link add ${TAG}s type veth peer name ${TAG}c
ip link set ${TAG}s netns $TAG-srv
ip link set ${TAG}c netns $TAG-cli
ip -n $TAG-srv addr add $SRV/24 dev ${TAG}s
ip -n $TAG-cli addr add $CLI/24 dev ${TAG}c
for n in srv cli; do
    ip -n $TAG-$n link set lo up
    ip -n $TAG-$n link set ${TAG}$(echo $n | cut -c1) up
done

config() { # GREYLIST(0|1)
    cat > "$D/postoffice.cf" <<CF
queuedir=$D/queue
mailspool=$D/mail
aliases=$D/aliases
pidfile=$D/pid
user=pobench
hostname=bench.example
listen=$SRV:25
banner=$D/none
clients=200
clients-per-host=0
load=0
minfree=0
verify-from=0
resolver=$SRV:53
dns-timeout=1
dns-tries=1
greylist=$1
greylist-db=$D/smtpauth
delay=1h
CF
}

now() { date +%s.%N; }
count() { grep -c '^From ' "$1" 2>/dev/null || echo 0; }
wait_count() { # FILE N TIMEOUT
    w0=$(date +%s)
    while [ "$(count "$1")" -lt "$2" ]; do
        [ $(( $(date +%s) - w0 )) -gt "$3" ] && return 1
        sleep 0.2
    done
}
start() {
    ip netns exec $TAG-srv "$BIN" -C "$D/postoffice.cf" -bd || exit 1
    for _ in $(seq 50); do
        ip netns exec $TAG-cli python3 -c "import socket; socket.create_connection(('$SRV', 25), 1)" \
            2>/dev/null && return
        sleep 0.1
    done
    echo "the daemon does not answer" >&2; exit 1
}
stop() {
    pid=$(cat "$D/pid")
    kill "$pid" 2>/dev/null
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    rm -f "$D/pid"
}
probe() { # the first RCPT's reply code for a sender
    ip netns exec $TAG-cli /usr/bin/python3 -c "
import smtplib; s = smtplib.SMTP('$SRV', 25, timeout=10); s.ehlo('c.example')
s.mail('$1'); print(s.rcpt('pobench@bench.example')[0]); s.quit()"
}

# the greylist database, with the benchmark's sender approved
config 1
"$BIN" -C "$D/postoffice.cf" -bi >/dev/null
start
[ "$(probe new@client.example)" = 451 ] || { echo "greylisting is not on" >&2; exit 1; }
"$EXPIRE" -C "$D/postoffice.cf" -a "bench@[$CLI]" || exit 1
[ "$(probe bench@client.example)" = 250 ] || { echo "the approved sender is refused" >&2; exit 1; }
stop

echo "greylist bench: $N messages, $C clients, $ROUNDS rounds, load $(cut -d' ' -f1-3 /proc/loadavg)"
sums="0 0"
for r in $(seq "$ROUNDS"); do
    for g in 0 1; do
        config $g
        start
        : > "$D/mail/pobench"; chown pobench "$D/mail/pobench"
        t0=$(now)
        ip netns exec $TAG-cli smtp-source -s "$C" -m "$N" -l 2048 -f bench@client.example \
            -t pobench@bench.example "$SRV:25" >"$D/source.out" 2>&1 ||
            { echo "smtp-source failed:" >&2; tail -3 "$D/source.out" >&2; }
        t1=$(now)
        wait_count "$D/mail/pobench" "$N" 300 || echo "not all delivered ($(count "$D/mail/pobench") of $N)" >&2
        stop
        rate=$(echo "$N / ($t1 - $t0)" | bc)
        [ $g = 1 ] && what=greylist || what=plain
        echo "round $r $what accepted/s=$rate"
        sums=$(echo "$sums" | awk -v g=$g -v r="$rate" '{ if (g) $2 += r; else $1 += r; print }')
    done
done
echo "$sums" | awk -v n="$ROUNDS" '{ printf "mean plain %.0f/s greylist %.0f/s ratio %.3f\n", $1/n, $2/n, $2/$1 }'
"$EXPIRE" -C "$D/postoffice.cf" -l -w | grep -F "bench@[$CLI]"
