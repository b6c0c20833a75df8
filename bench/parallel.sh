#!/bin/bash
# parallel.sh - analyze -j N against -j 1 on the same input, in the same run
# (docs/PERFORMANCE.md, "Parallelism").
#
# Usage: [RUNS=5] [JOBS="1 2"] bench/parallel.sh BUILD_DIR NAME FILE... [-- NAME FILE...]
#   Each group (NAME and its files) is analysed as one run, -j 1 and -j N in
#   turn (round robin), RUNS times.  Prints the median wall-clock time with
#   min and max, the median CPU time (user + system), the median peak RSS,
#   and the speed-up of each -j N over -j 1 (wall clock), and checks that
#   every -j N output is byte-identical to -j 1's (apart from the elapsed
#   time in the summary).  Each round also runs two -j 1 processes on the
#   same input at once: the row "2 × -j 1" is the machine's own ceiling (two
#   independent copies of the same work, no sharing), against which the -j
#   speed-up is read: its speed-up column is 2 × (-j 1 time) / (time of the
#   pair).  On a 2-core machine with nothing else running it is near 2.00×;
#   less means the cores are not all ours (shared host, SMT siblings,
#   frequency).  Timings depend on the machine and its load: run by hand on
#   an otherwise idle machine, never in CI.
set -u
build=$1
shift
runs=${RUNS:-5}
jobs=${JOBS:-"1 2"}
bin=${SMTPSCOPE:-$build/cli/smtpscope}
rusage=$build/bench/smtpscope-rusage
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

med() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

group() {
    local name=$1
    shift
    local bytes
    bytes=$(cat "$@" | wc -c)
    cat "$@" >/dev/null
    for j in $jobs; do : >"$tmp/t$j"; done
    : >"$tmp/tpair"
    for ((r = 1; r <= runs; r++)); do
        for j in $jobs; do
            "$rusage" "$tmp/ru" "$bin" analyze -q -f json -j "$j" -o "$tmp/out$j" "$@" >/dev/null 2>&1
            cat "$tmp/ru" >>"$tmp/t$j"
        done
        local t0 t1
        t0=$(date +%s%N)
        "$bin" analyze -q -f json -j 1 -o /dev/null "$@" >/dev/null 2>&1 &
        "$bin" analyze -q -f json -j 1 -o /dev/null "$@" >/dev/null 2>&1
        wait
        t1=$(date +%s%N)
        echo $(((t1 - t0) / 1000)) >>"$tmp/tpair"
    done
    echo
    echo "### $name ($(awk -v b="$bytes" 'BEGIN { printf "%.0f", b / 1e6 }') MB, $# file(s), $runs runs, $(date -u +%Y-%m-%dT%H:%MZ), load $(cut -d' ' -f1-3 /proc/loadavg))"
    echo
    echo "| -j | wall s median | min | max | MB/s | CPU s | peak RSS MiB | speed-up | output |"
    echo "|---|---|---|---|---|---|---|---|---|"
    local base=""
    sed -i 's/"elapsed":[0-9.e+-]*//' "$tmp"/out*
    for j in $jobs; do
        local w c m mn mx same=identical
        w=$(awk '{ print $1 / 1e6 }' "$tmp/t$j" | med)
        mn=$(awk '{ print $1 / 1e6 }' "$tmp/t$j" | sort -n | head -1)
        mx=$(awk '{ print $1 / 1e6 }' "$tmp/t$j" | sort -n | tail -1)
        c=$(awk '{ print $2 / 1e6 }' "$tmp/t$j" | med)
        m=$(awk '{ print $3 / 1024 }' "$tmp/t$j" | med)
        [ -z "$base" ] && base=$w
        cmp -s "$tmp/out1" "$tmp/out$j" || same=DIFFERENT
        awk -v j="$j" -v w="$w" -v mn="$mn" -v mx="$mx" -v c="$c" -v m="$m" -v b="$base" \
            -v by="$bytes" -v s="$same" 'BEGIN {
            printf "| %s | %.3f | %.3f | %.3f | %.0f | %.3f | %.1f | %.2f× | %s |\n",
                j, w, mn, mx, by / 1e6 / w, c, m, b / w, s }'
    done
    local pw pmn pmx
    pw=$(awk '{ print $1 / 1e6 }' "$tmp/tpair" | med)
    pmn=$(awk '{ print $1 / 1e6 }' "$tmp/tpair" | sort -n | head -1)
    pmx=$(awk '{ print $1 / 1e6 }' "$tmp/tpair" | sort -n | tail -1)
    awk -v w="$pw" -v mn="$pmn" -v mx="$pmx" -v b="$base" -v by="$bytes" 'BEGIN {
        printf "| 2 × -j 1 (ceiling) | %.3f | %.3f | %.3f | %.0f | | | %.2f× | |\n",
            w, mn, mx, 2 * by / 1e6 / w, 2 * b / w }'
}

while [ $# -gt 0 ]; do
    name=$1
    shift
    files=()
    while [ $# -gt 0 ] && [ "$1" != -- ]; do
        files+=("$1")
        shift
    done
    [ $# -gt 0 ] && shift
    group "$name" "${files[@]}"
done
