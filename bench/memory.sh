#!/bin/bash
# memory.sh - the memory targets of docs/PERFORMANCE.md: RSS flatness in file
# size, the cost of each open SMTP flow, of a closed flow and of a half-open
# SYN, whether a SYN flood changes what is reported, and `compare` against
# analysing its two files one after the other.
#
# Usage: bench/memory.sh BUILD_DIR DATA_DIR WORK_DIR
#   BUILD_DIR: a CMake build (cli/smtpscope, pcaps/synth/smtpscope-synth,
#              bench/smtpscope-gen-flows, bench/smtpscope-rusage); DATA_DIR: what bench/make-data.sh
#              wrote (smtp-only.pcap, mixed.pcap, flow-template.pcap);
#   WORK_DIR:  scratch space for the derived captures and outputs (~2 GB).
# DROP_CACHES=1 (root only) empties the page cache before the flatness runs
# (see there).
# Peak RSS does not depend on the machine's load; the CPU seconds printed
# beside it do a little, the wall clock a lot.  Run by hand, never in CI.
set -u
build=$1
data=$2
work=$3
smtpscope=${SMTPSCOPE:-$build/cli/smtpscope}
gen=$build/bench/smtpscope-gen-flows
synth=$build/pcaps/synth/smtpscope-synth
here=$(cd "$(dirname "$0")" && pwd)
rusage=$build/bench/smtpscope-rusage
tpl=$data/flow-template.pcap
mkdir -p "$work"

# tenth SCENARIO OUT: the scenario with a tenth of every session count and
# of the background (same mix and pace, a tenth of the sessions and bytes).
tenth() {
    python3 - "$here/scenarios/$1.yaml" "$2" <<'EOF'
import re, sys
t = open(sys.argv[1]).read()
t = re.sub(r'count: (\d+)', lambda m: 'count: %d' % max(1, int(m.group(1)) // 10), t)
t = re.sub(r'(tls_flows|dns_queries): (\d+)',
           lambda m: '%s: %d' % (m.group(1), max(1, int(m.group(2)) // 10)), t)
open(sys.argv[2], 'w').write(t)
EOF
}

# gen OUT ARGS...: a many-flows capture from the template (kept if present).
gen() {
    local out=$1
    shift
    [ -s "$out" ] || "$gen" "$@" "$tpl" "$out" 2>/dev/null
}

# measure LABEL CMD...: one run; "LABEL wall_s cpu_s peak_rss_KiB".
measure() {
    local label=$1 w cpu k
    shift
    "$rusage" "$work/ru" "$@" >/dev/null 2>"$work/err"
    read -r w cpu k <"$work/ru"
    printf '%-34s wall %7.2f s  cpu %7.2f s  peak RSS %8d KiB\n' "$label" \
        "$(awk -v x="$w" 'BEGIN{print x/1e6}')" "$(awk -v x="$cpu" 'BEGIN{print x/1e6}')" "$k"
}

an() { measure "$1" "$smtpscope" analyze -q -f json -o "$work/$1.json" "$2"; }

sz() { stat -c %s "$1"; }

echo "## RSS flatness: the same session mix at a tenth of the size against the whole"
# A byte prefix is not the same mix (the background TLS flows of mixed.pcap
# come early): the scenarios are scaled down instead (~55 MB and ~107 MB).
if [ ! -s "$work/smtp-tenth.pcap" ]; then
    tenth smtp-only "$work/smtp-only-tenth.yaml"
    "$synth" -o "$work/smtp-tenth.pcap" "$work/smtp-only-tenth.yaml" >/dev/null
fi
if [ ! -s "$work/mixed-tenth.pcap" ]; then
    for s in mixed-v4 mixed-v6; do
        tenth $s "$work/$s-tenth.yaml"
        "$synth" -o "$work/$s-tenth.pcap" "$work/$s-tenth.yaml" >/dev/null
    done
    mergecap -F pcap -w "$work/mixed-tenth.pcap" "$work/mixed-v4-tenth.pcap" "$work/mixed-v6-tenth.pcap"
fi
# Peak RSS counts the capture's mapped pages, and how many pages a fault maps
# depends on how the file came into the page cache (Linux maps a large folio
# whole, and a file just written has other folios than one read in): a tenth
# synthesized a minute ago against a whole read long before differs by ~2 MiB
# for that alone.  DROP_CACHES=1 (as root) empties the page cache first; every
# input is then read in the same way.
if [ "${DROP_CACHES:-0}" = 1 ]; then
    sync
    echo 3 >/proc/sys/vm/drop_caches
fi
cat "$work/smtp-tenth.pcap" "$data/smtp-only.pcap" "$work/mixed-tenth.pcap" "$data/mixed.pcap" >/dev/null
an smtp-tenth "$work/smtp-tenth.pcap"
an smtp-only "$data/smtp-only.pcap"
an mixed-tenth "$work/mixed-tenth.pcap"
an mixed "$data/mixed.pcap"

echo "## Per-flow cost"
# open-N: N sessions all open at once (they start 1 us apart and each lasts
# the template's 0.2 s); seq: 100k sessions, 1000 open at a time (the rest
# closed, kept 120 s as tombstones); syn-*: 1000 sessions with and without
# 200k half-open SYNs (under max_flows, so none is evicted).
gen "$work/open-10k.pcap" -n 10000 -c 1000000 -s 0
gen "$work/open-100k.pcap" -n 100000 -c 1000000 -s 0
gen "$work/seq-100k.pcap" -n 100000 -c 1000 -s 0
gen "$work/syn-0.pcap" -n 1000 -c 1000 -s 0
gen "$work/syn-200k.pcap" -n 1000 -c 1000 -s 200000
for c in open-10k open-100k seq-100k syn-0 syn-200k; do an "$c" "$work/$c.pcap"; done

echo "## SYN flood: the same 100k sessions with and without 1M half-open SYNs"
gen "$work/flood-0.pcap" -n 100000 -c 10000 -s 0
gen "$work/flood-1m.pcap" -n 100000 -c 10000 -s 1000000
for c in flood-0 flood-1m; do
    an "$c" "$work/$c.pcap"
    # Frame numbers move with the SYNs around them; nothing else may.
    grep '"type":"session"' "$work/$c.json" |
        sed 's/"id":[0-9]*,//; s/"file":"[^"]*",//; s/"first_frame":[0-9]*,"last_frame":[0-9]*,//' \
            >"$work/$c.sessions"
    grep -o '"sessions":[0-9]*,"tcp_flows":[0-9]*,"empty_connections":[0-9]*\|"evicted":[0-9]*' \
        "$work/$c.json" | tr '\n' ' '
    echo
done
if cmp -s "$work/flood-0.sessions" "$work/flood-1m.sessions"; then
    echo "flood: same session records, same order ($(wc -l <"$work/flood-0.sessions") sessions)"
else
    echo "flood: session records DIFFER:"
    diff "$work/flood-0.sessions" "$work/flood-1m.sessions" | head -4 | cut -c1-200
fi

echo "## compare A A against analyze A A (the same capture as both sides)"
for f in "$work/smtp-tenth.pcap" "$data/smtp-only.pcap" "$work/mixed-tenth.pcap" "$data/mixed.pcap"; do
    b=$(basename "$f" .pcap)
    measure "compare $b $b" "$smtpscope" compare -q -f json -o /dev/null "$f" "$f"
    measure "analyze $b $b" "$smtpscope" analyze -q -f json -o /dev/null "$f" "$f"
done
