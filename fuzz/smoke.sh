#!/usr/bin/env bash
# Fuzz smoke test (CI): builds the clang libFuzzer build with ASan+UBSan and
# -Werror into BUILD_DIR, then runs every fuzz target for SECONDS (default
# 30) from a copy of its seed corpus with fuzz/smtp.dict.  Fails (exit 1)
# when a target crashes, leaks, times out, runs out of memory or breaks one
# of its checks; the report is printed and the reproducer kept in
# BUILD_DIR/smoke/TARGET/.  Prints one line per target:
#   smoke: fuzz_smtp      ok      30 s  execs 41230  cov 1093  ft 4321  corpus 40 -> 612
# New inputs go to a temporary directory, never into the repository.
#
# Usage: fuzz/smoke.sh BUILD_DIR [SECONDS]      (needs clang and libFuzzer)
set -uo pipefail
if [ $# -lt 1 ] || [ $# -gt 2 ]; then
    echo "usage: fuzz/smoke.sh BUILD_DIR [SECONDS]" >&2
    exit 2
fi
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
build=$1
secs=${2:-30}

mkdir -p "$build"
CC=clang cmake -S "$root" -B "$build" -DSMTPSCOPE_FUZZ=ON -DSMTPSCOPE_SANITIZE=ON \
    -DSMTPSCOPE_WERROR=ON >"$build/smoke-configure.log" 2>&1 ||
    {
        cat "$build/smoke-configure.log" >&2
        echo "smoke: configure failed" >&2
        exit 1
    }
cmake --build "$build" -j "$(nproc)" >/dev/null || {
    echo "smoke: build failed" >&2
    exit 1
}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failed=0
for src in "$here"/fuzz_*.c; do
    t=$(basename "$src" .c)
    mkdir -p "$tmp/$t/corpus" "$tmp/$t/artifacts"
    cp "$root/fuzz/corpus/$t"/* "$tmp/$t/corpus/"
    seeds=$(ls "$tmp/$t/corpus" | wc -l)
    extra=()
    case $t in
    fuzz_pcap | fuzz_compare) extra=(-close_fd_mask=2) ;; # smtpscope's own messages
    esac
    log=$tmp/$t/log
    "$build/fuzz/$t" -dict="$here/smtp.dict" -max_total_time="$secs" -timeout=25 \
        -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$tmp/$t/artifacts/" \
        "${extra[@]}" "$tmp/$t/corpus" >"$log" 2>&1
    rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
    ft=$(grep -o 'ft: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
    files=$(ls "$tmp/$t/corpus" | wc -l)
    arts=$(ls "$tmp/$t/artifacts" | wc -l)
    status=ok
    if [ $rc -ne 0 ] || [ "$arts" -ne 0 ]; then
        status=FAILED
        failed=1
    fi
    printf 'smoke: %-14s %-7s %3s s  execs %s  cov %s  ft %s  corpus %s -> %s\n' "$t" "$status" \
        "$secs" "${execs:-?}" "${cov:-?}" "${ft:-?}" "$seeds" "$files"
    if [ $status = FAILED ]; then
        keep=$build/smoke/$t
        mkdir -p "$keep"
        cp "$log" "$keep/log"
        cp "$tmp/$t/artifacts"/* "$keep/" 2>/dev/null
        echo "smoke: $t exited with status $rc; its report (whole log in $keep/log):" >&2
        grep -v -E '^#[0-9]+ ' "$log" | tail -60 >&2
        echo "smoke: reproducers in $keep: $(ls "$tmp/$t/artifacts" | tr '\n' ' ')" >&2
    fi
done
if [ $failed -ne 0 ]; then
    echo "smoke: FAILED (see fuzz/README.md: minimise, add crash-* to the corpus, fix)" >&2
    exit 1
fi
echo "smoke: every target ran $secs s without a finding"
