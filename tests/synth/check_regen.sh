#!/usr/bin/env bash
# Regenerates every scenario of pcaps/scenarios/ into a temporary folder and
# checks that the captures and expectation files are byte-identical to the
# committed ones in pcaps/ (the synthesizer is deterministic for a seed).
# Usage: check_regen.sh SYNTH_BINARY REPO_ROOT
set -euo pipefail
synth=$1
root=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$root/pcaps/make-synth.sh" "$synth" "$tmp"
status=0
n=0
for f in "$tmp"/synth-*; do
    n=$((n + 1))
    name=$(basename "$f")
    if [ ! -f "$root/pcaps/$name" ]; then
        echo "check_regen: $name is generated but not committed in pcaps/"
        status=1
    elif ! cmp -s "$f" "$root/pcaps/$name"; then
        echo "check_regen: $name differs from the committed file"
        status=1
    fi
done
for f in "$root"/pcaps/synth-*; do
    name=$(basename "$f")
    [ -f "$tmp/$name" ] || { echo "check_regen: pcaps/$name has no scenario any more"; status=1; }
done
echo "check_regen: $n files regenerated, $([ $status = 0 ] && echo identical || echo DIFFERENT)"
exit $status
