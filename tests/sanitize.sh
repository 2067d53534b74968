#!/bin/sh
# tests/sanitize.sh - build a copy of the tree with ASan+UBSan (or, with
# "valgrind" as argument, a plain -O0 build whose unit tests run under valgrind)
# and run the whole suite on it.  Prints the usual "N passed, N failed" line.
set -eu
cd "$(dirname "$0")/.."
mode=${1:-asan}
dir=$(mktemp -d /tmp/po-sanitize-XXXXXX)
chmod 755 "$dir"   # tests run the binary as other accounts too
trap 'rm -rf "$dir"' EXIT
# the tracked sources (an unpacked tarball: the tree without build products)
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    git ls-files -z | xargs -0 tar -cf - | tar -xf - -C "$dir"
else
    tar --exclude='*.o' --exclude='*.a' --exclude=./tests/fuzz/build --exclude=./tests/bin \
        -cf - . | tar -xf - -C "$dir"
    (cd "$dir" && rm -f postoffice Makefile config.h config.log)
fi
cd "$dir"
case $mode in
asan)
    CFLAGS="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" \
        ./configure.sh >/dev/null
    make -j2 >/dev/null && make unit >/dev/null && make milters >/dev/null
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1 sh tests/run
    ;;
valgrind)
    CFLAGS="-O0 -g" ./configure.sh >/dev/null
    make -j2 >/dev/null && make unit >/dev/null
    fail=0
    for t in tests/unit/test_*; do
        case $t in *.c) continue ;; esac
        if valgrind -q --error-exitcode=9 --leak-check=full --errors-for-leak-kinds=definite \
            --trace-children=no "$t" >/dev/null 2>"$t.vg"; then echo "$t: valgrind clean"
        else echo "$t: valgrind errors:"; cat "$t.vg"; fail=1; fi
    done
    exit $fail
    ;;
*) echo "usage: tests/sanitize.sh [asan|valgrind]" >&2; exit 64 ;;
esac
