#!/usr/bin/env bash
# Regenerates every synthesized capture from pcaps/scenarios/*.yaml:
#   pcaps/synth-NAME.pcap[ng]          the outside view (client side of the middlebox)
#   pcaps/synth-NAME.expect.yaml       what the client saw (the oracle for the test)
#   pcaps/synth-NAME-inside.pcap[ng]   the inside view, when the scenario has one
#   pcaps/synth-NAME-inside.expect.yaml  what the server saw
#   pcaps/synth-NAME.streams.yaml      two-sided scenarios: each stream's bytes at
#                                      each vantage (checked against tshark)
#   pcaps/synth-NAME.compare.yaml      two-sided scenarios: the differences
#                                      `smtpscope compare` must find
# Output is byte-identical on every run (the scenarios carry their seeds);
# tests/synth/check_regen.sh checks that.
#
# Usage: pcaps/make-synth.sh [SYNTH_BINARY] [OUTDIR] [SCENARIO_NAME...]
#   (names without .yaml, e.g. encap-gre; none: every scenario)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
synth=${1:-$here/../build/pcaps/synth/smtpscope-synth}
out=${2:-$here}
shift $(($# < 2 ? $# : 2))
if [ ! -x "$synth" ]; then
    echo "make-synth.sh: $synth not found; build first (cmake --build build)" >&2
    exit 1
fi
scenarios=("$here"/scenarios/*.yaml)
if [ $# -gt 0 ]; then
    scenarios=()
    for name in "$@"; do
        [ -f "$here/scenarios/$name.yaml" ] || { echo "make-synth.sh: no scenarios/$name.yaml" >&2; exit 1; }
        scenarios+=("$here/scenarios/$name.yaml")
    done
fi
for sc in "${scenarios[@]}"; do
    name=$(basename "$sc" .yaml)
    ext=pcap
    grep -qE '^\s*capture:.*format:\s*pcapng|^\s*format:\s*pcapng' "$sc" && ext=pcapng
    args=(-q -o "$out/synth-$name.$ext" --expect "$out/synth-$name.expect.yaml")
    if grep -qE 'inside:' "$sc"; then
        args+=(-i "$out/synth-$name-inside.$ext" --expect-inside "$out/synth-$name-inside.expect.yaml"
               --streams "$out/synth-$name.streams.yaml" --compare "$out/synth-$name.compare.yaml")
    fi
    "$synth" "${args[@]}" "$sc"
done
