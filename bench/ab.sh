#!/bin/bash
# ab.sh - two builds (or any commands) against the bare loop, in alternating
# rounds, so that a burst of load on a shared machine hits them alike
# (docs/PERFORMANCE.md, sixth pass).
#
# Usage: [ROUNDS=21] bench/ab.sh BUILD_DIR FILE LABEL=COMMAND...
#
# Each round runs every COMMAND once on FILE (appended as the last
# argument), then BUILD_DIR/bench/smtpscope-pcap-loop FILE, each through
# BUILD_DIR/bench/smtpscope-rusage.  Printed per label: the median CPU time
# (user + system) and peak RSS, and the median over the rounds of that
# round's loop CPU time / the label's (the share of the bare loop's
# throughput the command reaches: the issue's "60% / 75% of the loop").
#
# Example, the old and the new build on the SMTP-only capture:
#   bench/ab.sh build smtp-only.pcap \
#       old="old/cli/smtpscope analyze -q -f json -o /dev/null" \
#       new="build/cli/smtpscope analyze -q -f json -o /dev/null"
# Timings depend on the machine and its load: run by hand, never in CI.
set -u
if [ $# -lt 3 ]; then
    echo "usage: [ROUNDS=21] bench/ab.sh BUILD_DIR FILE LABEL=COMMAND..." >&2
    exit 2
fi
build=$1
file=$2
shift 2
rounds=${ROUNDS:-21}
rusage=$build/bench/smtpscope-rusage
loop=$build/bench/smtpscope-pcap-loop
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

cat "$file" >/dev/null # warm the page cache
: >"$tmp/all"
for r in $(seq "$rounds"); do
    for spec in "$@"; do
        label=${spec%%=*}
        # shellcheck disable=SC2086
        "$rusage" "$tmp/ru" ${spec#*=} "$file" >/dev/null 2>&1
        echo "$r $label $(cat "$tmp/ru")" >>"$tmp/all"
    done
    "$rusage" "$tmp/ru" "$loop" "$file" >/dev/null 2>&1
    echo "$r loop $(cat "$tmp/ru")" >>"$tmp/all"
done

echo "$(basename "$file"), $rounds rounds, $(date -u +%Y-%m-%dT%H:%MZ), load $(cut -d' ' -f1-3 /proc/loadavg)"
awk '
function median(a, n,    i, j, t) {
    for (i = 2; i <= n; i++)
        for (j = i; j > 1 && a[j - 1] > a[j]; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
    return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
{ cpu[$2, $1] = $4; rss[$2, $1] = $5; if (!($2 in seen)) { seen[$2] = 1; order[++nl] = $2 } }
$1 > nr { nr = $1 }
END {
    for (l = 1; l <= nl; l++) {
        lb = order[l]
        n = 0; m = 0; k = 0
        for (r = 1; r <= nr; r++) {
            c[++n] = cpu[lb, r]; s[++m] = rss[lb, r]
            if (lb != "loop" && cpu[lb, r] > 0) q[++k] = cpu["loop", r] / cpu[lb, r]
        }
        printf "%-10s CPU median %7.1f ms  peak RSS median %7d KiB", lb, median(c, n) / 1000, median(s, m)
        if (k) printf "  loop / %s per round: median %.3f", lb, median(q, k)
        printf "\n"
    }
}' "$tmp/all"
