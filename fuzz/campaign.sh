#!/usr/bin/env bash
# A fuzzing campaign: every target for a budget of CPU seconds, under nice 19,
# its corpus kept outside the repository so campaigns accumulate, and one line
# per run appended to fuzz/campaign-log.tsv (see docs/FUZZING.md).
#
# Usage: fuzz/campaign.sh [-s SECONDS] [-r ROUNDS] [-j JOBS] [-u HH:MM] [-b BUILD_DIR]
#                         [-w WORK_DIR] [TARGET...]
#   -s  CPU seconds per target (default 1800), split into ROUNDS runs
#   -r  rounds (default 1): with -r 3 every target runs 600 s, then every
#       target again, so that a campaign stopped early has spread its time
#   -j  fuzzers at a time (default 2), one process per target
#   -u  UTC time (HH:MM, today) at which running fuzzers are stopped and no
#       new run starts; SIGTERM to this script does the same at once
#   -b  clang libFuzzer build with ASan+UBSan (default WORK_DIR/build) of
#       the committed tree: HEAD is exported (git archive) to WORK_DIR/src
#       before each run (only changed files rewritten), so work in progress
#       in the checkout never reaches the campaign; each target is rebuilt
#       just before its run and its binary copied to WORK_DIR/bin, so a
#       later commit does not change a running fuzzer
#   -w  work directory (default /work/fuzzwork): WORK_DIR/TARGET/corpus (the
#       growing corpus, seeded from fuzz/corpus/TARGET), WORK_DIR/TARGET/
#       artifacts (crash-*, leak-*, timeout-*, oom-*), WORK_DIR/logs/
#   TARGET...  default: every fuzz_*.c of fuzz/
#
# A run ends when the fuzzer has used its CPU seconds (read from /proc every
# 2 s; SIGUSR1 asks libFuzzer to stop and print its final statistics), when it
# finds a crash, or at the -u time.  Its line in campaign-log.tsv:
#   date  commit  target  cpu_seconds  execs  cov  ft  corpus_files  crashes
# (date UTC when the run ended; commit = the HEAD it was built from; cov
# and ft from the last status line; crashes = artifacts it wrote).  A target whose build fails is put back
# at the end of the queue (three tries).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)

secs=1800
rounds=1
jobs=2
until_hm=
build=
work=/work/fuzzwork
while getopts "s:r:j:u:b:w:h" opt; do
    case $opt in
    s) secs=$OPTARG ;;
    r) rounds=$OPTARG ;;
    j) jobs=$OPTARG ;;
    u) until_hm=$OPTARG ;;
    b) build=$OPTARG ;;
    w) work=$OPTARG ;;
    *)
        sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'
        exit 2
        ;;
    esac
done
shift $((OPTIND - 1))
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    for f in "$here"/fuzz_*.c; do targets+=("$(basename "$f" .c)"); done
fi
deadline=0
if [ -n "$until_hm" ]; then
    deadline=$(date -u -d "today $until_hm" +%s) || exit 2
fi
slice=$(((secs + rounds - 1) / rounds))
build=${build:-$work/build}
src=$work/src
tsv=$here/campaign-log.tsv
mkdir -p "$work/bin" "$work/logs"

say() { echo "campaign: $(date -u +%H:%M:%S) $*"; }

if [ ! -f "$tsv" ]; then
    printf 'date\tcommit\ttarget\tcpu_seconds\texecs\tcov\tft\tcorpus_files\tcrashes\n' >"$tsv"
fi

# sync_src: WORK_DIR/src becomes HEAD's tree; files whose bytes did not
# change keep their time stamps, so make rebuilds only what changed.
synced=
sync_src() {
    local head
    head=$(git -C "$root" rev-parse --short HEAD) || return 1
    [ "$head" = "$synced" ] && return 0
    rm -rf "$src.new"
    mkdir -p "$src.new" "$src"
    git -C "$root" archive "$head" | tar -x -C "$src.new" || return 1
    (cd "$src.new" && find . -type f) | while read -r f; do
        if ! cmp -s "$src.new/$f" "$src/$f"; then
            mkdir -p "$(dirname "$src/$f")"
            cp "$src.new/$f" "$src/$f"
        fi
    done
    (cd "$src" && find . -type f) | while read -r f; do
        [ -e "$src.new/$f" ] || rm -f "$src/$f"
    done
    rm -rf "$src.new"
    synced=$head
}

# findings DIR: crash-, leak-, timeout- and oom- files (not slow-unit-).
findings() {
    find "$1" -maxdepth 1 \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' -o -name 'oom-*' \) |
        wc -l
}

# run TARGET SECONDS COMMIT: one fuzzer run, then its line in the TSV.
run() {
    local t=$1 budget=$2 commit=$3
    local dir=$work/$t stamp log pid cpu=0 rc ticks
    stamp=$(date -u +%Y%m%dT%H%M%S)
    log=$work/logs/$t-$stamp.log
    mkdir -p "$dir/corpus" "$dir/artifacts"
    cp -n "$src/fuzz/corpus/$t"/* "$dir/corpus/" 2>/dev/null
    local before
    before=$(findings "$dir/artifacts")
    local extra=()
    case $t in
    fuzz_pcap | fuzz_compare) extra=(-close_fd_mask=2) ;;
    esac
    # -timeout is wall-clock: generous, since nice 19 on a shared machine
    # can slow an input many times over.  -max_total_time bounds the wall
    # time of a fuzzer that gets little CPU.
    nice -n 19 "$work/bin/$t" -dict="$src/fuzz/smtp.dict" -timeout=60 -rss_limit_mb=2048 \
        -max_total_time=$((budget * 6)) -print_final_stats=1 \
        -artifact_prefix="$dir/artifacts/" "${extra[@]}" "$dir/corpus" >"$log" 2>&1 &
    pid=$!
    ticks=$(getconf CLK_TCK)
    while kill -0 "$pid" 2>/dev/null; do
        local st
        st=$(cat "/proc/$pid/stat" 2>/dev/null) || break
        st=${st##*) }
        read -r -a f <<<"$st"
        cpu=$(((f[11] + f[12]) / ticks))
        if [ "$cpu" -ge "$budget" ] || { [ "$deadline" -gt 0 ] && [ "$(date +%s)" -ge "$deadline" ]; } ||
            [ -f "$work/stop" ]; then
            kill -USR1 "$pid" 2>/dev/null
            break
        fi
        sleep 2
    done
    wait "$pid"
    rc=$?
    local execs cov ft files crashes
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
    ft=$(grep -o 'ft: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
    files=$(ls "$dir/corpus" | wc -l)
    crashes=$(($(findings "$dir/artifacts") - before))
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$commit" "$t" \
        "$cpu" "${execs:-0}" "${cov:-0}" "${ft:-0}" "$files" "$crashes" >>"$tsv"
    say "$t: exit $rc, ${cpu} CPU s, ${execs:-?} execs, cov ${cov:-?} ft ${ft:-?}," \
        "$files files, $crashes new artifacts ($log)"
}

stopping=0
trap 'stopping=1; touch "$work/stop"' TERM INT
rm -f "$work/stop"

queue=()
for ((i = 0; i < rounds; i++)); do queue+=("${targets[@]}"); done
declare -A fails
say "${#queue[@]} runs of $slice CPU s, $jobs at a time, work $work, build $build"
while [ ${#queue[@]} -gt 0 ] && [ $stopping -eq 0 ]; do
    if [ "$deadline" -gt 0 ] && [ "$(date +%s)" -ge "$deadline" ]; then
        say "deadline reached"
        break
    fi
    while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do
        wait -n 2>/dev/null
        [ $stopping -eq 1 ] && break 2
    done
    if [ "$deadline" -gt 0 ] && [ "$(date +%s)" -ge "$((deadline - 60))" ]; then
        say "deadline reached"
        break
    fi
    t=${queue[0]}
    queue=("${queue[@]:1}")
    # Configure (again: a target added since the last run is unknown to the
    # generated makefiles until then).
    if ! sync_src >"$work/logs/build-$t.log" 2>&1 ||
        ! CC=clang nice -n 19 cmake -S "$src" -B "$build" -DSMTPSCOPE_FUZZ=ON \
            -DSMTPSCOPE_SANITIZE=ON -DBUILD_TESTING=OFF >>"$work/logs/build-$t.log" 2>&1 ||
        ! nice -n 19 cmake --build "$build" --target "$t" >>"$work/logs/build-$t.log" 2>&1; then
        fails[$t]=$((${fails[$t]:-0} + 1))
        say "$t: build failed (${fails[$t]}), see $work/logs/build-$t.log"
        [ "${fails[$t]}" -lt 3 ] && queue+=("$t")
        sleep 60
        continue
    fi
    cp "$build/fuzz/$t" "$work/bin/$t.new" && mv "$work/bin/$t.new" "$work/bin/$t"
    commit=$synced
    say "$t: start, $slice CPU s"
    run "$t" "$slice" "$commit" &
done
wait
rm -f "$work/stop"
say "done"
