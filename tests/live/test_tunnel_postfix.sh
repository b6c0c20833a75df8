#!/bin/sh
# test_tunnel_postfix.sh - a REAL Postfix + swaks session through GRE and
# VXLAN tunnels gives the same session record on the underlay as on the
# overlay.
#
# pcaps/make-postfix-tunnel.sh runs its cases into a temporary directory:
# its private Postfix and swaks in two network namespaces of their own,
# joined only by tunnels over veth underlays (no traffic leaves them);
# tcpdump on the client's underlay veth (GRE or VXLAN packets, outer IPv4
# fragments in postfix-gre-frag) and at the same time on its tunnel device
# (plain packets).  The script checks with tshark that every underlay frame
# is the tunnel's, that the SMTP dialogue is dissected through the tunnel,
# that the underlay carries exactly the overlay's TCP packets, and that the
# fragments are there; it writes both captures and, for each, the
# expect.yaml derived from swaks's transcript (never from smtpscope).  Then,
# for each case:
#
#  1. `smtpscope analyze -f json --transcript` on each capture gives exactly
#     one session, and it matches its expect.yaml in full: addresses,
#     banner, EHLO, keywords, STARTTLS, TLS, envelope, close, gaps, command
#     and reply lists (run_golden --records);
#  2. the underlay session's `encap` is the tunnel path ("gre/ipv4",
#     "gre(42)/ipv4", "vxlan(4242)/ipv4"), the overlay one's "ipv4";
#  3. both session records are the same apart from times, frame numbers,
#     the input name, the TCP details (TTL, options) and encap (jsame), and
#     analyze exits with the same status on both.
#
# Nothing in pcaps/ may change, and no namespace of the script may be left.
#
# Usage: test_tunnel_postfix.sh SMTPSCOPE JSAME REPO_ROOT RUN_GOLDEN
# Exit: 0 pass, 1 fail, 77 skipped (not root, a prerequisite of the script
# missing, no network namespaces, no VXLAN or GRE in the kernel and no TUN).
set -u
bin=$1
jsame=$2
root=$3
run_golden=$4
script=$root/pcaps/make-postfix-tunnel.sh
PATH=$PATH:/usr/sbin:/sbin
export PATH

skip() {
    echo "test_tunnel_postfix: $*: skipped"
    exit 77
}
[ "$(id -u)" = 0 ] || skip "needs root"
for cmd in bash postfix swaks tcpdump tshark ip ethtool; do
    command -v "$cmd" >/dev/null 2>&1 || skip "needs $cmd"
done
ns=sctun$$
ip netns add "$ns" 2>/dev/null || skip "cannot create a network namespace"
ip netns del "$ns"
# The golden script's prerequisites, tshark, and the tunnels: --check
# creates a vxlan device and a gre device (or, on kernels without GRE, the
# TUN device of the userspace GRE endpoint) in a throwaway namespace.
if ! check=$(bash "$script" --check 2>&1); then
    echo "$check"
    skip "the tunnel script's prerequisites are missing"
fi
echo "$check"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM HUP
out=$tmp/out
fails=0
fail() {
    echo "FAIL: $*"
    fails=$((fails + 1))
}

# The committed goldens, to check afterwards that the run left them alone.
sums() { (cd "$root/pcaps" && cksum postfix-*) 2>/dev/null; }
sums >"$tmp/before"
# The script's namespaces are named after this test run.
nsp=sctun$$
leftovers() { ip netns list | awk '{print $1}' | grep "^$nsp-"; }

cases="postfix-gre postfix-gre-tls12 postfix-gre-key postfix-vxlan postfix-gre-frag"
# shellcheck disable=SC2086  # $cases is a list
if ! OUT_DIR=$out KEEP_WORK=0 TUNNEL_NS_PREFIX=$nsp bash "$script" $cases >"$tmp/tunnel.log" 2>&1; then
    tail -n 40 "$tmp/tunnel.log"
    left=$(leftovers)
    [ -z "$left" ] || echo "FAIL: namespaces left behind: $left"
    echo "test_tunnel_postfix: make-postfix-tunnel.sh failed"
    exit 1
fi
grep -E '^== (tunnels|[a-z0-9-]+: tshark:)' "$tmp/tunnel.log"

sums >"$tmp/after"
cmp -s "$tmp/before" "$tmp/after" || fail "pcaps/ changed: $(diff "$tmp/before" "$tmp/after" | tr '\n' ' ')"
left=$(leftovers)
[ -z "$left" ] || fail "namespaces left behind: $left"

# encap_of FILE: the encap value of the session record(s), one per line.
encap_of() {
    sed -n '/"type":"session"/s/.*"encap":\("[^"]*"\|[a-z]*\).*/\1/p' "$1"
}

for c in $cases; do
    before=$fails
    case $c in
    postfix-gre-key) want_encap='"gre(42)/ipv4"' ;;
    postfix-vxlan) want_encap='"vxlan(4242)/ipv4"' ;;
    *) want_encap='"gre/ipv4"' ;;
    esac
    for f in $c.pcap $c.expect.yaml $c-overlay.pcap $c-overlay.expect.yaml; do
        [ -s "$out/$f" ] || fail "$c: the tunnel script wrote no $f"
    done
    [ "$fails" = "$before" ] || continue

    # The expectation must hold the outcome the case is about, or the
    # comparison proves little.
    case $c in
    *-tls12) want='starttls: {offered: true, attempted: true, result: tls_established}' ;;
    *) want='starttls: {offered: false, attempted: false, result: not_offered}' ;;
    esac
    grep -qF "$want" "$out/$c.expect.yaml" || fail "$c: the expectation does not say '$want'"

    for side in underlay overlay; do
        if [ $side = underlay ]; then x=$c; else x=$c-overlay; fi
        "$bin" analyze -q -f json --transcript "$out/$x.pcap" >"$tmp/$x.json" 2>"$tmp/$x.err"
        echo $? >"$tmp/$x.status"
        [ -s "$tmp/$x.err" ] && fail "$c: analyze on the $side capture said: $(cat "$tmp/$x.err")"
        # 1. one session, as swaks's transcript says
        n=$(grep -c '"type":"session"' "$tmp/$x.json")
        [ "$n" = 1 ] || fail "$c: $n sessions in the $side capture, expected 1"
        "$run_golden" --records "$tmp/$x.json" "$out/$x.expect.yaml" >"$tmp/rg.out" 2>&1 ||
            fail "$c: the $side session differs from the expectation: $(grep -v '^  ok$' "$tmp/rg.out" | tr '\n' ' ')"
    done

    # 2. the encapsulation path
    got=$(encap_of "$tmp/$c.json")
    [ "$got" = "$want_encap" ] || fail "$c: underlay encap is '${got:-(none)}', expected $want_encap"
    got=$(encap_of "$tmp/$c-overlay.json")
    [ "$got" = '"ipv4"' ] || fail "$c: overlay encap is '${got:-(none)}', expected \"ipv4\""

    # 3. the same session on both sides of the tunnel.  When the connection
    # ended with RST segments (the expectation then omits close: see
    # check_capture in the tunnel script), a FIN and a RST can cross between
    # the two capture points, so one capture has them in the other order
    # and "fin" or "rst" may differ; close is then left out of the comparison.
    [ "$(cat "$tmp/$c.status")" = "$(cat "$tmp/$c-overlay.status")" ] ||
        fail "$c: analyze exited $(cat "$tmp/$c.status") on the underlay, $(cat "$tmp/$c-overlay.status") on the overlay"
    also=
    grep -qE '^ *close:' "$out/$c.expect.yaml" || also=close
    # shellcheck disable=SC2086
    "$jsame" "$tmp/$c-overlay.json" "$tmp/$c.json" file start end ts frame first_frame last_frame \
        filter elapsed server_hello_frame first_app_data tcp encap $also >"$tmp/jsame.out" 2>&1 ||
        fail "$c: underlay and overlay sessions differ: $(cat "$tmp/jsame.out")"
    [ "$fails" = "$before" ] && echo "$c: ok (underlay $want_encap, overlay \"ipv4\", the same session)"
done

[ "$fails" -eq 0 ] || { echo "test_tunnel_postfix: $fails failures"; exit 1; }
echo "test_tunnel_postfix: all passed"
