#!/bin/sh
# valgrind memcheck over the golden suite: smtpscope on every bundled capture
# (pcaps/*.pcap, *.pcapng) in each output format, and compare on a two-sided
# pair, must show no invalid read or write, no use of uninitialised memory and
# no definite or indirect leak.  Skipped (77) without valgrind, and in a
# sanitizer build (ASan's shadow memory and valgrind cannot share a process).
#
# Usage: memcheck.sh SMTPSCOPE PCAPS_DIR SANITIZED(0|1)
smtpscope=$1
pcaps=$2
sanitized=$3
if [ "$sanitized" = 1 ]; then
    echo "SKIP: sanitizer build (valgrind cannot run an ASan binary)"
    exit 77
fi
if ! command -v valgrind >/dev/null 2>&1; then
    echo "SKIP: valgrind is not installed (apt-get install valgrind)"
    exit 77
fi
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
set -- "$pcaps"/*.pcap "$pcaps"/*.pcapng
files="$*"
pass=0
failed=0
# run NAME ARGS...: smtpscope under memcheck; status 0 or 1 (findings) is fine,
# valgrind's own 99 or any report on stderr is not.
run() {
    name=$1
    shift
    valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite,indirect \
        --track-origins=yes "$smtpscope" "$@" >"$tmp/out" 2>"$tmp/err"
    rc=$?
    if [ $rc -gt 1 ] || grep -q '^==[0-9]*==' "$tmp/err"; then
        echo "FAIL: $name: exit status $rc"
        head -c 8000 "$tmp/err"
        failed=$((failed + 1))
    else
        echo "ok: $name (exit $rc, $(wc -l <"$tmp/out") output lines)"
        pass=$((pass + 1))
    fi
}
# shellcheck disable=SC2086 # $files is a list of paths without spaces
run "analyze json" analyze -f json --transcript -v $files
# shellcheck disable=SC2086
run "analyze text" analyze --color=always --transcript -v $files
# shellcheck disable=SC2086
run "analyze yaml" analyze -f yaml $files
run "compare" compare -f json -v "$pcaps/synth-asa-starttls-masked.pcap" \
    "$pcaps/synth-asa-starttls-masked-inside.pcap"
run "compare html" compare --html "$tmp/c.html" "$pcaps/postfix-routed.pcap" \
    "$pcaps/postfix-routed-inside.pcap"
echo "$pass passed, $failed failed"
[ $failed -eq 0 ]
