#!/bin/sh
# test_live_postfix.sh - `smtpscope live` on a REAL Postfix + swaks session.
#
# pcaps/make-postfix-golden.sh runs, in its live mode (LIVE_SMTPSCOPE,
# LIVE_OUT), the cases postfix-plain and postfix-starttls-tls12 into a
# temporary directory: its private Postfix and swaks in network namespaces
# of their own (no traffic leaves them), tcpdump in the client namespace,
# and `smtpscope live` on the same interface next to it.  The script writes
# the capture, the expect.yaml derived from swaks's transcript (never from
# smtpscope) and the live JSON Lines.  Then, for each case:
#
#  1. the live output holds exactly one session record;
#  2. that record has the banner, helo, ehlo_keywords, starttls (offered,
#     attempted, result), server, client and gaps of the expect.yaml, and
#     for postfix-plain also mail_from, rcpt_count and messages, for
#     postfix-starttls-tls12 the tls mapping (version, cipher, certificate)
#     (run_golden --records);
#  3. the live summary record is there and reports drops 0;
#  4. the live session record is what `smtpscope analyze -f json` gives on
#     the tcpdump capture of the same run, apart from times, frame numbers
#     and the input name (jsame), and live exited with analyze's status.
#
# Nothing in pcaps/ may change: the golden captures are checked unchanged.
#
# Usage: test_live_postfix.sh SMTPSCOPE JSAME REPO_ROOT RUN_GOLDEN
# Exit: 0 pass, 1 fail, 77 skipped (not root, a prerequisite of the golden
# script missing, no network namespaces).
set -u
bin=$1
jsame=$2
root=$3
run_golden=$4
script=$root/pcaps/make-postfix-golden.sh
PATH=$PATH:/usr/sbin:/sbin
export PATH

skip() {
    echo "test_live_postfix: $*: skipped"
    exit 77
}
[ "$(id -u)" = 0 ] || skip "needs root"
for cmd in bash postfix swaks tcpdump ip ethtool; do
    command -v "$cmd" >/dev/null 2>&1 || skip "needs $cmd"
done
# Everything else the golden script needs (editcap, saslpasswd2, the SASL
# modules, swaks's TLS support...): its own check says.
if ! check=$(bash "$script" --check 2>&1); then
    echo "$check"
    skip "the golden script's prerequisites are missing"
fi
ns=sclpf$$
ip netns add "$ns" 2>/dev/null || skip "cannot create a network namespace"
ip netns del "$ns"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
out=$tmp/out
fails=0
fail() {
    echo "FAIL: $*"
    fails=$((fails + 1))
}

# The committed goldens, to check afterwards that the live run left them alone.
sums() { (cd "$root/pcaps" && cksum postfix-*) 2>/dev/null; }
sums >"$tmp/before"

cases="postfix-plain postfix-starttls-tls12"
# shellcheck disable=SC2086  # $cases is a list
if ! OUT_DIR='' KEEP_WORK=0 LIVE_SMTPSCOPE=$bin LIVE_OUT=$out \
    bash "$script" $cases >"$tmp/golden.log" 2>&1; then
    tail -n 40 "$tmp/golden.log"
    echo "test_live_postfix: make-postfix-golden.sh failed"
    exit 1
fi

sums >"$tmp/after"
cmp -s "$tmp/before" "$tmp/after" || fail "pcaps/ changed: $(diff "$tmp/before" "$tmp/after" | tr '\n' ' ')"

for c in $cases; do
    before=$fails
    live=$out/$c.live.jsonl
    exp=$out/$c.expect.yaml
    pcap=$out/$c.pcap
    for f in "$live" "$exp" "$pcap"; do
        [ -s "$f" ] || fail "$c: the golden script wrote no $(basename "$f")"
    done
    [ "$fails" = "$before" ] || continue

    # 1. exactly one session
    n=$(grep -c '"type":"session"' "$live")
    [ "$n" = 1 ] || fail "$c: $n session records in the live output, expected 1"

    # 2. the fields swaks's transcript fixes (the expectation must hold the
    # outcome the case is about, or the comparison proves little)
    case $c in
    postfix-plain)
        want='starttls: {offered: false, attempted: false, result: not_offered}'
        keys="mail_from rcpt_count messages"
        ;;
    *)
        want='starttls: {offered: true, attempted: true, result: tls_established}'
        keys="tls"
        ;;
    esac
    grep -qF "$want" "$exp" || fail "$c: the expectation does not say '$want'"
    # shellcheck disable=SC2086  # $keys is a list
    "$run_golden" --records "$live" "$exp" server client banner helo ehlo_keywords starttls \
        gaps $keys >"$tmp/rg.out" 2>&1 ||
        fail "$c: live record differs from the expectation: $(cat "$tmp/rg.out")"

    # 3. the summary, without drops
    summary=$(grep '"type":"summary"' "$live")
    if [ -z "$summary" ]; then
        fail "$c: no summary record"
    else
        case $summary in
        *'"drops":0,'* | *'"drops":0}'*) ;;
        *) fail "$c: the summary does not report drops 0: $summary" ;;
        esac
    fi

    # 4. the same as analyze on the capture of the same run
    "$bin" analyze -q -f json "$pcap" >"$tmp/$c.file"
    want_status=$?
    status=$(sed -n "s/^== $c: smtpscope live exited with status \([0-9]*\)\$/\1/p" "$tmp/golden.log")
    [ "$status" = "$want_status" ] || fail "$c: live exited '$status', analyze $want_status"
    "$jsame" "$tmp/$c.file" "$live" file start end ts frame first_frame last_frame filter \
        elapsed server_hello_frame first_app_data >"$tmp/jsame.out" ||
        fail "$c: live and analyze differ: $(cat "$tmp/jsame.out")"
    [ "$fails" = "$before" ] && echo "$c: ok ($(grep -c . "$live") live records)"
done

[ "$fails" -eq 0 ] || { echo "test_live_postfix: $fails failures"; exit 1; }
echo "test_live_postfix: all passed"
