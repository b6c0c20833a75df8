#!/bin/sh
# same-output.sh - an optimisation must not change what smtpscope reports:
# runs two builds on the same captures and compares their JSON (with the
# transcript and events) and text (-v) output, apart from the elapsed time.
#
# Usage: bench/same-output.sh REFERENCE_SMTPSCOPE NEW_SMTPSCOPE FILE...
# Exits 1 and shows the first differences if the outputs differ.
# Used in docs/PERFORMANCE.md with the reference built from main, on the
# benchmark captures, pcaps/ and ../shared/pcaps.
set -u
ref=$1
new=$2
shift 2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
status=0
for mode in "-f json --transcript" "-v --color=never"; do
    # shellcheck disable=SC2086
    "$ref" analyze -q $mode "$@" 2>"$tmp/ref.err" | sed 's/"elapsed":[0-9.e+-]*//; s/, [0-9.]* s$//' >"$tmp/ref"
    # shellcheck disable=SC2086
    "$new" analyze -q $mode "$@" 2>"$tmp/new.err" | sed 's/"elapsed":[0-9.e+-]*//; s/, [0-9.]* s$//' >"$tmp/new"
    if ! cmp -s "$tmp/ref" "$tmp/new" || ! cmp -s "$tmp/ref.err" "$tmp/new.err"; then
        echo "same-output.sh: outputs differ with $mode:"
        diff "$tmp/ref" "$tmp/new" | cut -c1-200 | head -20
        diff "$tmp/ref.err" "$tmp/new.err" | head -5
        status=1
    else
        echo "same-output.sh: $mode: identical ($(wc -l <"$tmp/new") lines)"
    fi
done
exit $status
