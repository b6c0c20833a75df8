#!/bin/bash
# run.sh - throughput and peak memory of smtpscope against the reference
# readers, measured in the same run on the same files (docs/PERFORMANCE.md).
#
# Usage: [RUNS=5] [TOOLS="cat loop smtpscope tshark suricata"] \
#            bench/run.sh BUILD_DIR FILE...
#
# For each file the page cache is warmed first (the file is read twice), then
# every tool reads it RUNS times in turn (round robin, so a burst of load on
# the machine hits every tool alike).  Each run goes through
# BUILD_DIR/bench/smtpscope-rusage: wall-clock time, CPU time (user + system)
# and peak RSS from wait4().  The table gives, per tool, the median MB/s
# (10^6 bytes of file per wall-clock second) with the minimum and maximum, the
# median MB per CPU second (steadier than the wall clock when the machine is
# shared), the median peak RSS, and smtpscope's throughput as a ratio of the
# tool's, on the wall clock and on CPU time (>1: smtpscope is faster).
#
# The tools:
#   cat        cat FILE >/dev/null (the ceiling: reading the bytes)
#   loop       BUILD_DIR/bench/smtpscope-pcap-loop FILE (bare pcap_next_ex loop)
#   smtpscope  smtpscope analyze -q -f json -o /dev/null FILE (full analysis,
#              JSON records written and thrown away)
#   tshark     tshark -r FILE -q -Y smtp with TCP and SMTP reassembly on
#   suricata   suricata --runmode single -r FILE -k none (default
#              configuration, logs to a temporary directory), when installed
# Timings depend on the machine and its load: run by hand, never in CI.
set -u
build=$1
shift
runs=${RUNS:-5}
tools=${TOOLS:-"cat loop smtpscope tshark suricata"}
smtpscope=${SMTPSCOPE:-$build/cli/smtpscope}
loop=$build/bench/smtpscope-pcap-loop
rusage=$build/bench/smtpscope-rusage
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

have() { command -v "$1" >/dev/null 2>&1; }

# run_tool TOOL FILE: runs once; prints "wall_us cpu_us peak_rss_kib", skip or fail.
run_tool() {
    local tool=$1 f=$2 cmd
    case $tool in
    cat) cmd=(cat "$f") ;;
    loop) cmd=("$loop" "$f") ;;
    smtpscope) cmd=("$smtpscope" analyze -q -f json -o /dev/null "$f") ;;
    tshark)
        have tshark || { echo skip; return; }
        cmd=(tshark -r "$f" -q -Y smtp -o tcp.desegment_tcp_streams:TRUE
            -o tcp.reassemble_out_of_order:TRUE -o smtp.desegment_lines:TRUE
            -o smtp.desegment_data:TRUE) ;;
    suricata)
        have suricata || { echo skip; return; }
        rm -rf "$tmp/suri" && mkdir "$tmp/suri"
        cmd=(suricata --runmode single -r "$f" -k none -l "$tmp/suri") ;;
    *) echo "run.sh: unknown tool $tool" >&2; echo fail; return ;;
    esac
    "$rusage" "$tmp/ru" "${cmd[@]}" >/dev/null 2>"$tmp/err"
    local rc=$?
    # smtpscope exits 1 when it has findings: that is a successful run.
    if [ $rc -ne 0 ] && ! { [ "$tool" = smtpscope ] && [ $rc -eq 1 ]; }; then
        echo "run.sh: $tool failed on $f (exit $rc):" >&2
        tail -3 "$tmp/err" >&2
        echo fail
        return
    fi
    cat "$tmp/ru"
}

# stats: reads run_tool lines; prints
# "med_mbs min_mbs max_mbs med_cpu_mbs med_rss_mib".
stats() {
    awk -v size="$1" '
        function sort(a, n,   i, j, t) {
            for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++)
                if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
        }
        function med(a, n) { return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2 }
        { us[NR] = $1; cpu[NR] = $2 > 0 ? $2 : 1; rss[NR] = $3 }
        END {
            n = NR
            sort(us, n); sort(cpu, n); sort(rss, n)
            printf "%.1f %.1f %.1f %.1f %.1f\n", size / med(us, n), size / us[n], size / us[1],
                size / med(cpu, n), med(rss, n) / 1024
        }'
}

for f in "$@"; do
    size=$(stat -c %s "$f")
    cat "$f" >/dev/null
    cat "$f" >/dev/null
    for tool in $tools; do : >"$tmp/$tool"; done
    for ((r = 1; r <= runs; r++)); do
        for tool in $tools; do
            res=$(run_tool "$tool" "$f")
            case $res in skip | fail) echo "$res" >"$tmp/$tool.state" ;; *) echo "$res" >>"$tmp/$tool" ;; esac
        done
    done
    echo
    echo "### $(basename "$f") ($(awk -v s="$size" 'BEGIN{printf "%.1f", s/1e6}') MB, $runs runs, $(date -u +%Y-%m-%dT%H:%MZ), load $(cut -d' ' -f1-3 /proc/loadavg))"
    echo
    echo "| reader | MB/s median | min | max | MB per CPU s | peak RSS MiB | smtpscope / reader (wall) | (CPU) |"
    echo "|---|---|---|---|---|---|---|---|"
    sm=""
    [ -s "$tmp/smtpscope" ] && sm=$(stats "$size" <"$tmp/smtpscope")
    for tool in $tools; do
        if [ ! -s "$tmp/$tool" ]; then
            echo "| $tool | $(cat "$tmp/$tool.state" 2>/dev/null || echo -) | | | | | | |"
            continue
        fi
        read -r med mn mx cpu rss < <(stats "$size" <"$tmp/$tool")
        ratio=$(echo "$sm" | awk -v b="$med" -v c="$cpu" '{ printf "%.2f | %.2f", $1 / b, $4 / c }')
        echo "| $tool | $med | $mn | $mx | $cpu | $rss | ${ratio:--} |"
    done
done
