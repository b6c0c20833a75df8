#!/bin/sh
# test_live.sh - `smtpscope live` on a veth pair in a network namespace the
# test creates (no traffic leaves it).
#
#  1. Synthesized captures replayed with tcpreplay onto one end, captured
#     live on the other: the session and finding records must be those of
#     `smtpscope analyze` on the same files, apart from times, frame numbers
#     and the input name.
#  2. SIGTERM while a session is still open: the summary is written, the
#     findings already detected are there, the open session closes as eof,
#     and the exit status is 1 (findings).
#  3. -Z nobody: /proc/PID/status shows a non-root uid while it runs.
#  4. -w: the flagged session's packets are written and analyse again to the
#     same findings.
#  5. SIGHUP: -o is reopened (logrotate moved it).
#  6. A bad filter or interface: exit 2 with a clear message.
#
# Usage: test_live.sh SMTPSCOPE JSAME PCAPS_DIR
# Exit: 0 pass, 1 fail, 77 skipped (not root, no tcpreplay, no netns).
set -u
bin=$1
jsame=$2
pcaps=$3
if [ "$(id -u)" != 0 ] || ! command -v tcpreplay >/dev/null 2>&1 || ! command -v ip >/dev/null 2>&1; then
    echo "test_live: needs root, ip and tcpreplay: skipped"
    exit 77
fi
ns=sclive$$
tmp=$(mktemp -d)
cleanup() {
    [ -n "${pid:-}" ] && kill "$pid" 2>/dev/null
    ip netns del "$ns" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
ip netns add "$ns" || { echo "test_live: cannot create a network namespace: skipped"; exit 77; }
ip -n "$ns" link set lo up
ip -n "$ns" link add va type veth peer name vb
for d in va vb; do
    ip netns exec "$ns" sysctl -qw "net.ipv6.conf.$d.disable_ipv6=1"
    ip -n "$ns" link set "$d" up
done
fails=0
fail() {
    echo "FAIL: $*"
    fails=$((fails + 1))
}
in_ns() { ip netns exec "$ns" "$@"; }

# start_live OUT [ARGS...]: smtpscope live on vb in the background, $pid set
start_live() {
    out=$1
    shift
    # ip netns exec runs the command in its own process: $! is smtpscope.
    ip netns exec "$ns" "$bin" live -i vb -q -f json -o "$out" --stats-interval 0 "$@" \
        2>"$tmp/live.err" &
    pid=$!
    # ready when the capture is open: wait for the root warning or -Z's switch
    for _ in $(seq 1 50); do
        [ -s "$tmp/live.err" ] && break
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    sleep 0.3
}
stop_live() {
    kill -TERM "$pid" 2>/dev/null
    wait "$pid"
    status=$?
    pid=
}

# 1. replay equals analyze
for name in asa-starttls-masked asa-telnet pix-noop clean-starttls busy striptls-454; do
    f=$pcaps/synth-$name.pcap
    start_live "$tmp/$name.live"
    in_ns tcpreplay -q -i va --mbps 200 "$f" >/dev/null 2>&1 || fail "$name: tcpreplay failed"
    sleep 0.5
    stop_live
    "$bin" analyze -q -f json "$f" >"$tmp/$name.file"
    want=$?
    [ "$status" = "$want" ] || fail "$name: live exited $status, analyze $want"
    "$jsame" "$tmp/$name.file" "$tmp/$name.live" file start end ts frame first_frame \
        last_frame filter elapsed server_hello_frame first_app_data >"$tmp/jsame.out" ||
        fail "$name: live and analyze differ: $(cat "$tmp/jsame.out")"
    grep -q '"type":"summary"' "$tmp/$name.live" || fail "$name: no summary"
done

# 2. SIGTERM with a session still open: the first 30 packets hold the first
# session whole and the second up to its STARTTLS.
f=$pcaps/synth-asa-starttls-verb.pcap
start_live "$tmp/term.live"
in_ns tcpreplay -q -i va --limit=30 "$f" >/dev/null 2>&1
sleep 0.5
stop_live
[ "$status" = 1 ] || fail "SIGTERM: exit $status, expected 1 (findings before the signal)"
grep -q '"type":"summary"' "$tmp/term.live" || fail "SIGTERM: no summary"
grep -q '"rule":"starttls_stripped"' "$tmp/term.live" || fail "SIGTERM: findings lost"
grep -q '"close":"eof"' "$tmp/term.live" || fail "SIGTERM: the open session was not closed as eof"

# 3. -Z nobody
start_live "$tmp/z.live" -Z nobody
uid=$(awk '/^Uid:/ {print $2, $3, $4, $5}' "/proc/$pid/status" 2>/dev/null)
case "$uid" in
"" ) fail "-Z: process gone: $(cat "$tmp/live.err")" ;;
"0 "* | *" 0 "* | *" 0") fail "-Z nobody: still root ($uid)" ;;
esac
stop_live
grep -q 'running as root' "$tmp/live.err" && fail "-Z: warned about root anyway"

# 4. -w keeps the flagged session
start_live "$tmp/w.live" -w "$tmp/flagged.pcap"
in_ns tcpreplay -q -i va --mbps 200 "$pcaps/synth-clean-plain.pcap" "$pcaps/synth-asa-starttls-masked.pcap" >/dev/null 2>&1
sleep 0.5
stop_live
"$bin" analyze -q -f json "$tmp/flagged.pcap" >"$tmp/flagged.json"
n=$(grep -c '"type":"session"' "$tmp/flagged.json")
[ "$n" = 1 ] || fail "-w: $n sessions in the written file, expected the flagged one"
grep -q '"rule":"starttls_stripped"' "$tmp/flagged.json" || fail "-w: the written packets lost the evidence"

# 5. SIGHUP reopens -o
start_live "$tmp/rot.live"
in_ns tcpreplay -q -i va "$pcaps/synth-asa-starttls-masked.pcap" >/dev/null 2>&1
sleep 0.5
mv "$tmp/rot.live" "$tmp/rot.live.1"
kill -HUP "$pid"
sleep 0.5
in_ns tcpreplay -q -i va "$pcaps/synth-pix-noop.pcap" >/dev/null 2>&1
sleep 0.5
stop_live
grep -q '"rule":"starttls_stripped"' "$tmp/rot.live.1" || fail "SIGHUP: the old file lost its records"
grep -q '"rule":"ehlo_downgraded"' "$tmp/rot.live" 2>/dev/null || fail "SIGHUP: no new file with the later records"

# 6. errors
in_ns "$bin" live -i vb --bpf 'tcp port banana' >/dev/null 2>"$tmp/err"
[ $? = 2 ] || fail "bad --bpf: not exit 2"
grep -q 'bpf' "$tmp/err" || fail "bad --bpf: unclear message: $(cat "$tmp/err")"
in_ns "$bin" live -i nosuchif0 >/dev/null 2>"$tmp/err"
[ $? = 2 ] || fail "bad interface: not exit 2"
grep -q 'nosuchif0' "$tmp/err" || fail "bad interface: message does not name it"

[ "$fails" -eq 0 ] || { echo "test_live: $fails failures"; exit 1; }
echo "test_live: all passed"
