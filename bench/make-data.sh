#!/bin/sh
# make-data.sh - generates the benchmark captures of docs/PERFORMANCE.md from
# the fixed-seed scenarios in bench/scenarios/ (same bytes every run).
#
# Usage: bench/make-data.sh BUILD_DIR OUT_DIR
#   BUILD_DIR: a CMake build of this repository (smtpscope-synth,
#              smtpscope-gen-flows); OUT_DIR: where the captures go (several
#              GB: not in the repository; check `df -h` first).
# Writes:
#   smtp-only.pcap   ~520 MB, 100% SMTP (bench/scenarios/smtp-only.yaml)
#   mixed.pcap       ~1 GB: mixed-v4.yaml and mixed-v6.yaml merged in time
#                    order by mergecap (Wireshark; the synthesizer makes one IP
#                    version per scenario); ~60% background TLS/DNS
#   flows.pcap       1,000,000 short SMTP sessions (flow-template.yaml, stamped
#                    out by smtpscope-gen-flows, 10,000 at a time) and a SYN
#                    flood of 1,000,000 half-open connections
#   smtp-50m.pcap    the first 50 MB of smtp-only.pcap (callgrind profiles)
set -eu
build=$1
out=$2
here=$(cd "$(dirname "$0")" && pwd)
synth=$build/pcaps/synth/smtpscope-synth
gen=$build/bench/smtpscope-gen-flows
mkdir -p "$out"
[ -s "$out/smtp-only.pcap" ] || "$synth" -o "$out/smtp-only.pcap" "$here/scenarios/smtp-only.yaml"
if [ ! -s "$out/mixed.pcap" ]; then
    "$synth" -o "$out/mixed-v4.pcap" "$here/scenarios/mixed-v4.yaml"
    "$synth" -o "$out/mixed-v6.pcap" "$here/scenarios/mixed-v6.yaml"
    mergecap -F pcap -w "$out/mixed.pcap" "$out/mixed-v4.pcap" "$out/mixed-v6.pcap"
    rm -f "$out/mixed-v4.pcap" "$out/mixed-v6.pcap"
fi
if [ ! -s "$out/flows.pcap" ]; then
    "$synth" -o "$out/flow-template.pcap" "$here/scenarios/flow-template.yaml"
    "$gen" -n 1000000 -c 10000 -s 1000000 -S 1 "$out/flow-template.pcap" "$out/flows.pcap"
fi
# The first 50 MB (whole packets) of the SMTP-only capture, for callgrind:
# tcpdump -C cuts its output into files of 50 million bytes; keep the first.
if [ ! -s "$out/smtp-50m.pcap" ]; then
    rm -rf "$out/split" && mkdir "$out/split"
    tcpdump -q -r "$out/smtp-only.pcap" -w "$out/split/s" -C 50 -Z root 2>/dev/null
    mv "$out/split/s" "$out/smtp-50m.pcap" && rm -rf "$out/split"
fi
ls -l "$out"
