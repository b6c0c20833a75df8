#!/bin/sh
# test_split.sh - compare --split on one capture that holds both legs.
#
# Merges the outside and inside captures of two-sided scenarios into one
# file (mergecap, from Wireshark), splits it back by VLAN, MAC or TTL, and
# checks that the differences found are the ones compare finds on the two
# files: the same (kind, rule) per pair, the same number of pairs.
#
# Usage: test_split.sh SMTPSCOPE PCAPS_DIR
# Exit: 0 pass, 1 fail, 77 mergecap not installed (skipped).
set -u
bin=$1
pcaps=$2
command -v mergecap >/dev/null 2>&1 || { echo "test_split: mergecap not installed: skipped"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0

# The (kind rule) lines of the differences above info, and the pair count.
digest() {
    grep '"type":"diff"' "$1" | grep -v '"severity":"info"' |
        sed 's/.*"kind":"\([^"]*\)".*"rule":\("[^"]*"\|null\).*/\1 \2/' | sort -u
    grep -c '"type":"pair"' "$1"
}

check() { # MODE SCENARIO
    mode=$1
    name=$2
    out=$pcaps/synth-$name.pcap
    in=$pcaps/synth-$name-inside.pcap
    mergecap -F pcap -w "$tmp/$name.pcap" "$out" "$in" || { echo "FAIL: mergecap $name"; fails=$((fails + 1)); return; }
    "$bin" compare -q -f json "$out" "$in" >"$tmp/two.json"
    "$bin" compare -q -f json --split "$mode" "$tmp/$name.pcap" >"$tmp/one.json" 2>"$tmp/err"
    digest "$tmp/two.json" >"$tmp/two.txt"
    digest "$tmp/one.json" >"$tmp/one.txt"
    if ! cmp -s "$tmp/two.txt" "$tmp/one.txt"; then
        echo "FAIL: $name split by $mode differs from the two files:"
        diff "$tmp/two.txt" "$tmp/one.txt"
        fails=$((fails + 1))
    elif [ "$(tail -1 "$tmp/one.txt")" -lt 1 ]; then
        echo "FAIL: $name split by $mode: no pair"
        fails=$((fails + 1))
    else
        echo "ok   $name split by $mode ($(head -n -1 "$tmp/one.txt" | wc -l) kinds of difference)"
    fi
}

check vlan vlan-qinq
check vlan asa-nat-isn
check mac asa-starttls-masked
check mac alg-delete-some
check mac pix-noop
check ttl asa-starttls-masked
check ttl asa-telnet

# Bad use: one leg only, an unknown mode, two files.
if "$bin" compare --split vlan "$pcaps/synth-asa-starttls-masked.pcap" >/dev/null 2>"$tmp/err"; then
    echo "FAIL: one untagged leg split by VLAN succeeded"
    fails=$((fails + 1))
elif ! grep -q 'needs two VLANs' "$tmp/err"; then
    echo "FAIL: no clear message for one VLAN: $(cat "$tmp/err")"
    fails=$((fails + 1))
fi
"$bin" compare --split color x.pcap >/dev/null 2>&1
[ $? -eq 2 ] || { echo "FAIL: --split color accepted"; fails=$((fails + 1)); }

[ "$fails" -eq 0 ] || { echo "test_split: $fails failures"; exit 1; }
echo "test_split: all passed"
