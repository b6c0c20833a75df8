#!/usr/bin/env bash
# Checks every encapsulated synthesized capture (pcaps/synth-encap-*.pcap) against the plain
# capture of the same dialogue, with tshark as the independent reader.  Each scenario
# pcaps/scenarios/encap-NAME.yaml names its plain scenario in a "# base: BASE" comment and the
# protocol stack tshark must see in its first frame in a "# tshark: eth:..." comment.  For each:
#   - tshark's protocol stack of frame 1 is the one the scenario announces;
#   - with IP, TCP and UDP checksum validation on, no frame is malformed and no expert item
#     of warning severity or above is raised;
#   - after decapsulation (and IP reassembly), the TCP segments (time, ports, sequence and
#     acknowledgment numbers, length, flags), the SMTP commands and reply codes, and the bytes
#     of every TCP stream are those of synth-BASE.pcap (its outside capture);
#   - tshark finds as many TCP conversations as the expect file lists sessions;
#   - the expect file equals synth-BASE.expect.yaml apart from description, generator and the
#     sessions' encap path.
# Prints one summary line per capture.  Exits 77 (skipped) without tshark.
# Usage: check_encap.sh PCAPS_DIR
set -euo pipefail
dir=${1:?usage: check_encap.sh PCAPS_DIR}
command -v tshark >/dev/null || { echo "check_encap: tshark not installed, skipped"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
ts() { tshark -n -r "$@" 2>/dev/null; }
status=0
n=0
bad() { echo "check_encap: $name: $*"; status=1; }
printf '%-20s %-66s %6s %4s %4s %4s %5s %5s\n' capture "tshark protocols (frame 1)" frames conv cmds rpls frags reasm
for sc in "$dir"/scenarios/encap-*.yaml; do
    name=$(basename "$sc" .yaml)
    base=$(sed -n 's/^# base: *//p' "$sc")
    want=$(sed -n 's/^# tshark: *//p' "$sc")
    cap=$dir/synth-$name.pcap
    bcap=$dir/synth-$base.pcap
    n=$((n + 1))
    if [ -z "$base" ] || [ -z "$want" ] || [ ! -f "$cap" ] || [ ! -f "$bcap" ]; then
        bad "needs # base: and # tshark: comments, $cap and $bcap"
        continue
    fi
    got=$(ts "$cap" -c 1 -T fields -e frame.protocols)
    [ "$got" = "$want" ] || bad "frame 1 is $got, the scenario says $want"
    chk=(-o tcp.check_checksum:TRUE -o ip.check_checksum:TRUE -o udp.check_checksum:TRUE)
    warn=$(ts "$cap" "${chk[@]}" -Y '_ws.malformed or _ws.expert.severity >= warning' | wc -l)
    [ "$warn" = 0 ] || bad "$warn frames malformed or with expert warnings"
    for k in e b; do
        c=$([ $k = e ] && echo "$cap" || echo "$bcap")
        # One pass for the fields, one for the conversations and every stream's bytes.
        ts "$c" -T fields -E separator='|' -e tcp.stream -e frame.time_epoch -e tcp.srcport \
            -e tcp.dstport -e tcp.seq_raw -e tcp.ack_raw -e tcp.len -e tcp.flags \
            -e smtp.req.command -e smtp.response.code -e ip.flags.mf -e ip.frag_offset \
            -e ipv6.fraghdr.ident -e ip.fragment.count -e ipv6.fragment.count >"$tmp/$k.fields"
        awk -F'|' '$1 != ""' "$tmp/$k.fields" | cut -d'|' -f1-8 >"$tmp/$k.tcp"
        cut -d'|' -f9,10 "$tmp/$k.fields" | grep -v '^|$' >"$tmp/$k.smtp" || true
        follow=()
        for s in $(cut -d'|' -f1 "$tmp/$k.fields" | grep . | sort -un); do
            follow+=(-z "follow,tcp,raw,$s")
        done
        ts "$c" -q -z conv,tcp "${follow[@]}" >"$tmp/$k.z"
        grep -cE '<->' "$tmp/$k.z" >"$tmp/$k.conv" || true
        sed -n '/^Node 0/,/^====/p' "$tmp/$k.z" >"$tmp/$k.follow"
    done
    cmp -s "$tmp/e.tcp" "$tmp/b.tcp" || bad "TCP segments differ from synth-$base.pcap"
    cmp -s "$tmp/e.smtp" "$tmp/b.smtp" || bad "SMTP dialogue differs from synth-$base.pcap"
    cmp -s "$tmp/e.follow" "$tmp/b.follow" || bad "TCP stream bytes differ from synth-$base.pcap"
    [ -s "$tmp/e.follow" ] || bad "no TCP stream"
    conv=$(cat "$tmp/e.conv")
    sessions=$(grep -c '^  - server:' "$dir/synth-$name.expect.yaml" || true)
    [ "$conv" = "$sessions" ] || bad "$conv TCP conversations, $sessions sessions expected"
    [ "$conv" = "$(cat "$tmp/b.conv")" ] || bad "not as many TCP conversations as synth-$base.pcap"
    filt() { grep -vE '^(description|generator):|^    encap:' "$1"; }
    diff -u <(filt "$dir/synth-$base.expect.yaml") <(filt "$dir/synth-$name.expect.yaml") \
        >"$tmp/expect.diff" || bad "expect file differs from synth-$base.expect.yaml: $(cat "$tmp/expect.diff")"
    grep -q '^    encap: "' "$dir/synth-$name.expect.yaml" || bad "no encap path in the expect file"
    frames=$(wc -l <"$tmp/e.fields")
    cmds=$(cut -d'|' -f1 "$tmp/e.smtp" | tr ',' '\n' | grep -c . || true)
    replies=$(cut -d'|' -f2 "$tmp/e.smtp" | tr ',' '\n' | grep -c . || true)
    # A fragment: MF set or a non-zero offset in any IP header of the frame; a reassembly: a
    # frame that lists its fragments.
    frags=$(awk -F'|' '$11 ~ /1/ || $12 ~ /[1-9]/ || $13 != "" {n++} END {print n + 0}' "$tmp/e.fields")
    reasm=$(awk -F'|' '$14 != "" || $15 != "" {n++} END {print n + 0}' "$tmp/e.fields")
    printf '%-20s %-66s %6s %4s %4s %4s %5s %5s\n' "$name" "$got" "$frames" "$conv" "$cmds" \
        "$replies" "$frags" "$reasm"
done
echo "check_encap: $n captures, $([ $status = 0 ] && echo "all as their plain versions" || echo FAILED)"
exit $status
