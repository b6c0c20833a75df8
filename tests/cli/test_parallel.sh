#!/bin/sh
# -j N gives exactly the output of one thread: same records, same order,
# same session ids, same summary (apart from the elapsed time), for
#   - every bundled capture at once (ids run on across files; tunnels and IP
#     fragments, which every worker reassembles and one tracks, included),
#   - ../shared/pcaps when it is there,
#   - a generated capture of 3000 interleaved sessions and a SYN flood with
#     the FINs and RSTs taken out and a 1 s idle timeout, so sessions end by
#     idle expiry in many workers at the same frames, and at the end of the
#     capture (needs tcpdump; that part is skipped without it),
#   - standard input (records copied, not handed over from the mapping).
# Usage: test_parallel.sh SMTPSCOPE GEN_FLOWS SOURCE_DIR
set -u
bin=$1
gen=$2
src=$3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
norm() { sed 's/"elapsed":[0-9.e+-]*//; s/, [0-9.]* s$//'; }

# same NAME ARGS...: runs analyze with -j 1, 2 and 4 and compares.
same() {
    name=$1
    shift
    for fmt in "-f json --transcript -v" "-v --color=never"; do
        # shellcheck disable=SC2086
        "$bin" analyze -q $fmt -j 1 "$@" 2>"$tmp/e1" | norm >"$tmp/o1"
        for j in 2 4; do
            # shellcheck disable=SC2086
            "$bin" analyze -q $fmt -j $j "$@" 2>"$tmp/e$j" | norm >"$tmp/o$j"
            if ! cmp -s "$tmp/o1" "$tmp/o$j" || ! cmp -s "$tmp/e1" "$tmp/e$j"; then
                echo "test_parallel: $name ($fmt): -j $j differs from -j 1:"
                diff "$tmp/o1" "$tmp/o$j" | cut -c1-160 | head -8
                diff "$tmp/e1" "$tmp/e$j" | head -4
                fail=1
            fi
        done
    done
    echo "test_parallel: $name: -j 2 and -j 4 as -j 1 ($(wc -l <"$tmp/o1") lines of text)"
}

same bundled "$src"/pcaps/*.pcap "$src"/pcaps/*.pcapng
shared=$src/../shared/pcaps
if [ -d "$shared" ]; then
    # shellcheck disable=SC2046
    same shared $(find "$shared" -name '*.pcap' -o -name '*.pcapng' | sort)
fi
"$gen" -n 3000 -c 300 -s 2000 -S 7 "$src"/pcaps/synth-asa-starttls-masked.pcap "$tmp/g.pcap" \
    >/dev/null 2>&1 || { echo "test_parallel: $gen failed"; exit 1; }
same generated "$tmp/g.pcap"
if command -v tcpdump >/dev/null; then
    tcpdump -r "$tmp/g.pcap" -w "$tmp/idle.pcap" 'tcp[tcpflags] & (tcp-fin|tcp-rst) == 0' \
        2>/dev/null
    printf 'timeouts:\n  idle: 1\n' >"$tmp/idle.yaml"
    same idle -c "$tmp/idle.yaml" "$tmp/idle.pcap"
    timeouts=$("$bin" analyze -q -f json -c "$tmp/idle.yaml" -j 2 "$tmp/idle.pcap" |
        grep -c '"close":"timeout"')
    if [ "$timeouts" -lt 100 ]; then
        echo "test_parallel: only $timeouts sessions ended by idle expiry; the case tests nothing"
        fail=1
    fi
else
    echo "test_parallel: tcpdump not installed, idle-expiry case skipped"
fi
for f in "$src"/pcaps/synth-encap-gre-frag.pcap "$src"/pcaps/postfix-starttls-tls12.pcap; do
    a=$("$bin" analyze -q -f json - <"$f" | norm)
    b=$(cat "$f" | "$bin" analyze -q -f json -j 3 - | norm)
    [ "$a" = "$b" ] || { echo "test_parallel: $f from a pipe differs with -j 3"; fail=1; }
done
"$bin" analyze -j 17 "$src"/pcaps/synth-plain.pcap >/dev/null 2>"$tmp/err"
[ $? = 2 ] && grep -q -- '--jobs' "$tmp/err" || { echo "test_parallel: -j 17 not refused"; fail=1; }
exit $fail
