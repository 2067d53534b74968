#!/bin/sh
# bench/milter-bench.sh - the SMTP accept rate with one pass-through mail
# filter (tests/milters/testmilter -m pass: libmilter, every step answered
# "continue", the body included) beside the plain rate, for postoffice and
# for Postfix (smtpd_milters) with the same filter, in the same run.
#
#   sh bench/milter-bench.sh            (as root, after make && make milters)
#
# Environment: N (2000 messages), CONC ("10" clients), ROUNDS (2), SIZE (2048).
# It runs bench/compare-postfix.sh's local scenario twice - without a filter,
# then with it - and prints accepted/s (smtp-source's time) and delivered/s.
set -u
cd "$(dirname "$0")/.." || exit 1
[ "$(id -u)" = 0 ] || { echo "milter-bench: run as root" >&2; exit 77; }
M=$PWD/tests/milters/testmilter
[ -x "$M" ] || { echo "milter-bench: make milters first (needs libmilter-dev)" >&2; exit 69; }
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$M" -p "inet:$PORT@127.0.0.1" -m pass &
MPID=$!
trap 'kill -9 $MPID 2>/dev/null' EXIT INT TERM
sleep 0.5
export N=${N:-2000} CONC=${CONC:-10} ROUNDS=${ROUNDS:-2} SIZE=${SIZE:-2048} WHAT=local
echo "== plain (no filter)"
sh bench/compare-postfix.sh 2>&1 | grep -E '^  local|^==' | sed 's/^  /plain /'
echo "== one pass-through filter (inet:$PORT@127.0.0.1)"
PO_CF_EXTRA="filter=inet:$PORT@127.0.0.1" \
PF_CF_EXTRA="smtpd_milters = inet:127.0.0.1:$PORT" \
    sh bench/compare-postfix.sh 2>&1 | grep -E '^  local|not all|failed' | sed 's/^  /filter /'
echo "(columns: scenario MTA clients accepted/s delivered/s)"
