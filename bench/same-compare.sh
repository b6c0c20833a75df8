#!/bin/bash
# same-compare.sh - an optimisation of `compare` must not change what it
# reports: runs two builds on the same pairs of captures and compares every
# output (text, JSON and YAML, each with and without -v, the --html report,
# standard error and the exit status), and the --split modes.
#
# Usage: bench/same-compare.sh REFERENCE_SMTPSCOPE NEW_SMTPSCOPE [DIR...]
# Pairs: each pcaps/X.pcap that has an X.compare.yaml with X-inside.pcap,
# four fixed pairs of pcaps/, and every capture found under each DIR (for
# example ../shared/pcaps) against itself.  Prints each pair that differs
# and a count; exits 1 if any differ.  Used in docs/PERFORMANCE.md (seventh
# pass).
set -u
if [ $# -lt 2 ]; then
    echo "usage: bench/same-compare.sh REFERENCE_SMTPSCOPE NEW_SMTPSCOPE [DIR...]" >&2
    exit 2
fi
ref=$1
new=$2
shift 2
pcaps=$(cd "$(dirname "$0")/../pcaps" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

pairs=()
for y in "$pcaps"/*.compare.yaml; do
    b=${y%.compare.yaml}
    [ -f "$b.pcap" ] && [ -f "$b-inside.pcap" ] && pairs+=("$b.pcap $b-inside.pcap")
done
for p in "postfix-routed.pcap postfix-routed-inside.pcap" "postfix-plain.pcap postfix-starttls.pcap" \
    "synth-alg-delete.pcap synth-alg-delete.pcap" "postfix-any.pcap postfix-multi-message.pcap"; do
    read -r x y <<<"$p"
    pairs+=("$pcaps/$x $pcaps/$y")
done
for d in "$@"; do
    while IFS= read -r f; do
        pairs+=("$f $f")
    done < <(find "$d" -name '*.pcap' -o -name '*.pcapng' | sort)
done

runs=0
bad=0
# run BIN OUT ARGS...: OUT.out, OUT.html, OUT.err, OUT.rc
run() {
    local bin=$1 out=$2
    shift 2
    rm -f "$out.html"
    "$bin" compare -q "$@" -o "$out.out" >/dev/null 2>"$out.err"
    echo $? >"$out.rc"
}
same() {
    local x
    for x in out err rc; do
        cmp -s "$tmp/r.$x" "$tmp/n.$x" || return 1
    done
    if [ -f "$tmp/r.html" ] || [ -f "$tmp/n.html" ]; then
        cmp -s "$tmp/r.html" "$tmp/n.html" || return 1
    fi
    return 0
}
for p in "${pairs[@]}"; do
    for fmt in text json yaml; do
        for v in "" -v; do
            runs=$((runs + 1))
            # shellcheck disable=SC2086
            run "$ref" "$tmp/r" -f $fmt $v --html "$tmp/r.html" $p
            # shellcheck disable=SC2086
            run "$new" "$tmp/n" -f $fmt $v --html "$tmp/n.html" $p
            if ! same; then
                bad=$((bad + 1))
                echo "differs: $p -f $fmt $v"
            fi
        done
    done
done
for how in vlan mac ttl encap; do
    for f in postfix-vlan.pcap postfix-routed.pcap; do
        runs=$((runs + 1))
        run "$ref" "$tmp/r" -f json --split $how "$pcaps/$f"
        run "$new" "$tmp/n" -f json --split $how "$pcaps/$f"
        if ! same; then
            bad=$((bad + 1))
            echo "differs: --split $how $f"
        fi
    done
done
echo "same-compare.sh: $runs runs, $bad differ"
[ "$bad" -eq 0 ]
