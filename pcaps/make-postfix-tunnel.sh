#!/usr/bin/env bash
# make-postfix-tunnel.sh - real Postfix/swaks sessions through GRE and VXLAN
# tunnels, captured on the underlay and on the overlay at the same time.
#
# What it does
#   The same private Postfix and the same swaks runs as make-postfix-golden.sh
#   (this script sources it for its functions: the oracle, the cross-checks,
#   the capture and cleanup code), but between two namespaces of its own,
#   sst<PID>-cli and sst<PID>-srv, connected only by tunnels.  Each tunnel has an
#   underlay veth pair of its own; swaks talks to Postfix over the OVERLAY
#   addresses, so every byte of the session crosses the tunnel:
#
#     tunnel             underlay veth (cli <-> srv)         overlay (cli <-> srv)
#     gre1  GRE          sst-c1 10.98.1.2 <-> sst-s1 .1      10.97.1.2 <-> 10.97.1.1
#     gre2  GRE key 42   sst-c2 10.98.2.2 <-> sst-s2 .1      10.97.2.2 <-> 10.97.2.1
#     vx1   VXLAN 4242   sst-c3 10.98.3.2 <-> sst-s3 .1      10.97.3.2 <-> 10.97.3.1
#     gre3  GRE          sst-c4 10.98.4.2 <-> sst-s4 .1      10.97.4.2 <-> 10.97.4.1
#                        (MTU 1400)                          (MTU 1500: fragments)
#
#   Two tcpdumps run in the client namespace for every case: one on the
#   underlay veth (the encapsulated packets: GRE, `ip proto 47`, or VXLAN,
#   `udp port 4789`, every IPv4 fragment included) and one on the tunnel
#   device (the plain packets, `tcp port 25`).  Case X writes
#     OUT_DIR/X.pcap                  the underlay capture (Ethernet)
#     OUT_DIR/X.expect.yaml           its expectation
#     OUT_DIR/X-overlay.pcap          the overlay capture (raw IP on a GRE
#                                     device, Ethernet on VXLAN)
#     OUT_DIR/X-overlay.expect.yaml   its expectation
#   Both expectations come from the same swaks transcript (never from
#   smtpscope), as in make-postfix-golden.sh: one session, the inner
#   (overlay) addresses.
#
# The cases
#   postfix-gre        plain ESMTP through gre1 (GRE without key)
#   postfix-gre-tls12  STARTTLS then TLS 1.2 through gre1 (certificate in
#                      OUT_DIR/postfix-gre-tls12.cert.pem)
#   postfix-gre-key    plain ESMTP through gre2 (GRE key 42, RFC 2890)
#   postfix-vxlan      plain ESMTP through vx1 (VXLAN VNI 4242, UDP 4789)
#   postfix-gre-frag   plain ESMTP with a 3 KB message through gre3: the
#                      overlay carries 1500-byte packets, the underlay only
#                      1400 bytes, outer DF is off, so the kernel fragments
#                      the outer IPv4 packets (checked with tshark)
#
# How the tunnels are made
#   VXLAN: the kernel's vxlan device (`ip link add vx1 type vxlan id 4242
#   local A remote B dstport 4789 dev ...`), fixed MAC addresses and
#   permanent neighbour entries (no ARP through the tunnel).
#   GRE: the kernel's gre device where the kernel has one (`ip link add gre1
#   type gre local A remote B ttl 64 [key 42]`; gre3: `ttl inherit
#   nopmtudisc ignore-df`).  Kernels without CONFIG_NET_IPGRE (`ip link add
#   ... type gre` says "Unknown device type"; the VM kernel this was written
#   on is one) get a userspace GRE endpoint instead, as make-postfix-golden.sh
#   does for 802.1Q: a layer-3 TUN device with the same name holds the
#   overlay address, and a small Python program moves packets between it and
#   a raw IPPROTO_GRE socket bound to the underlay address, adding and
#   removing the GRE header (RFC 2784; key per RFC 2890).  The kernel writes
#   the outer IPv4 header (TTL 64, DF as a kernel GRE device sets it) and
#   fragments it when it exceeds the underlay MTU (gre3 sends without DF),
#   so the frames on the underlay veth are real GRE packets either way.
#   TUNNEL_GRE=kernel or TUNNEL_GRE=userspace forces one method.
#
# Usage
#   sudo OUT_DIR=/tmp/x pcaps/make-postfix-tunnel.sh [case ...]   # default: all cases
#   sudo pcaps/make-postfix-tunnel.sh --check    # prerequisites and tunnel support only
#   Environment: OUT_DIR (required: the tunnel captures are not goldens in
#   pcaps/), KEEP_WORK=1 keeps the temporary directory, TUNNEL_GRE,
#   TUNNEL_NS_PREFIX (the namespaces are PREFIX-cli and PREFIX-srv).
#
# It needs root and the prerequisites of make-postfix-golden.sh plus tshark.
# Traffic goes only between its two namespaces (DNS lookups go to the
# namespace's own loopback).  Everything it started is stopped and removed on
# exit (trap ... EXIT), also on failure.

set -euo pipefail

TUNNEL_SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TUNNEL_OUT_DIR=${OUT_DIR:-}
# shellcheck source-path=SCRIPTDIR source=make-postfix-golden.sh
source "$TUNNEL_SCRIPT_DIR/make-postfix-golden.sh"

# ----------------------------------------------------------------------------
# Constants (some override the golden script's).
# ----------------------------------------------------------------------------
# Namespaces of our own, named after this run (TUNNEL_NS_PREFIX, default
# sst<PID>), so that a golden run or another tunnel run may go on beside us.
TUNNEL_NS_PREFIX=${TUNNEL_NS_PREFIX:-sst$$}
SRV_NS=$TUNNEL_NS_PREFIX-srv
CLI_NS=$TUNNEL_NS_PREFIX-cli
RTR_NS=$TUNNEL_NS_PREFIX-rtr    # never created; the shared cleanup and leftover check look for it
LIVE_SMTPSCOPE=         # no live mode here
LIVE_OUT=
VXLAN_PORT=4789
GRE_KEY=42
VXLAN_VNI=4242

# tunnel -> "KIND UNDERLAY_NUMBER KEY_OR_VNI UNDERLAY_MTU OVERLAY_MTU"; the
# underlay is sst-cN/sst-sN 10.98.N.2/.1, the overlay 10.97.N.2/.1.  GRE's
# overlay MTU is what a kernel gre device takes by default (1500 - 20 - 4,
# - 4 more with a key); gre3 carries 1500-byte packets over a 1400-byte link.
declare -A TUNNEL=(
    [gre1]="gre 1 - 1500 1476"
    [gre2]="gre 2 $GRE_KEY 1500 1472"
    [vx1]="vxlan 3 $VXLAN_VNI 1500 1450"
    [gre3]="gre 4 - 1400 1500"
)
TUNNEL_NAMES=(gre1 gre2 vx1 gre3)

TUNNEL_CASES=(
    postfix-gre
    postfix-gre-tls12
    postfix-gre-key
    postfix-vxlan
    postfix-gre-frag
)

GRE_MODE=               # kernel | userspace (detect_gre)
TUNNEL_HELPER_PIDS=()   # userspace GRE endpoints

die() { printf 'make-postfix-tunnel: error: %s\n' "$*" >&2; exit 1; }

tunnel_field() {        # tunnel_field TUNNEL INDEX: a field of ${TUNNEL[TUNNEL]}
    local -a f
    read -r -a f <<<"${TUNNEL[$1]}"
    printf '%s' "${f[$2]}"
}
under_cli() { printf '10.98.%s.2' "$(tunnel_field "$1" 1)"; }
under_srv() { printf '10.98.%s.1' "$(tunnel_field "$1" 1)"; }
over_cli() { printf '10.97.%s.2' "$(tunnel_field "$1" 1)"; }
over_srv() { printf '10.97.%s.1' "$(tunnel_field "$1" 1)"; }
under_cli_if() { printf 'sst-c%s' "$(tunnel_field "$1" 1)"; }
under_srv_if() { printf 'sst-s%s' "$(tunnel_field "$1" 1)"; }

# ----------------------------------------------------------------------------
# Prerequisites: the golden script's, plus tshark, plus tunnel support
# (probed by creating the devices in a throwaway namespace).
# ----------------------------------------------------------------------------
# detect_gre NS: kernel GRE if `ip link add ... type gre` works in NS, else
# userspace GRE if a TUN device can be made there and python3 exists.
detect_gre() {
    local ns=$1 want=${TUNNEL_GRE:-}
    if [[ $want != userspace ]] &&
        ip -n "$ns" link add sst-gprobe type gre local 10.98.99.2 remote 10.98.99.1 ttl 64 2>/dev/null; then
        ip -n "$ns" link del sst-gprobe
        GRE_MODE=kernel
    elif [[ $want == kernel ]]; then
        die "TUNNEL_GRE=kernel, but this kernel cannot create a gre device (CONFIG_NET_IPGRE)"
    elif [[ -c /dev/net/tun ]] && command -v python3 >/dev/null 2>&1 &&
        ip -n "$ns" tuntap add dev sst-tprobe mode tun 2>/dev/null; then
        ip -n "$ns" link del sst-tprobe
        GRE_MODE=userspace
    else
        die "no GRE: the kernel has no gre device type and no TUN device (/dev/net/tun) for the userspace GRE endpoint"
    fi
}

check_tunnel_support() {
    command -v tshark >/dev/null 2>&1 || {
        printf 'make-postfix-tunnel: missing prerequisites. Install them with:\n' >&2
        printf '  DEBIAN_FRONTEND=noninteractive apt-get install -y tshark\n' >&2
        exit 1
    }
    local ns=sst-probe$$
    ip netns add "$ns" 2>/dev/null || die "cannot create a network namespace"
    # (a subshell, so that the namespace goes away whatever the probes say)
    local rc=0
    (
        trap 'ip netns del "$ns"' EXIT
        ip -n "$ns" link add sst-vprobe type vxlan id "$VXLAN_VNI" local 10.98.99.2 \
            remote 10.98.99.1 dstport "$VXLAN_PORT" 2>/dev/null ||
            die "this kernel cannot create a vxlan device (CONFIG_VXLAN)"
        detect_gre "$ns"
        log "tunnels: kernel VXLAN, $GRE_MODE GRE"
    ) || rc=$?
    return "$rc"
}

# ----------------------------------------------------------------------------
# The network: two namespaces, one underlay veth pair and one tunnel per
# entry of TUNNEL.
# ----------------------------------------------------------------------------
setup_tunnel_network() {
    log "creating namespaces $SRV_NS / $CLI_NS"
    ip netns add "$SRV_NS"
    ip netns add "$CLI_NS"
    ip -n "$SRV_NS" link set lo up
    ip -n "$CLI_NS" link set lo up
    detect_gre "$CLI_NS"
    local t
    for t in "${TUNNEL_NAMES[@]}"; do
        setup_underlay "$t"
        case $(tunnel_field "$t" 0) in
        gre) setup_gre "$t" ;;
        vxlan) setup_vxlan "$t" ;;
        esac
    done
    # Only our devices: a kernel with ip_gre also puts its fallback devices
    # (gre0, gretap0, erspan0) in every namespace; they stay down.
    local ns dev devs=()
    for t in "${TUNNEL_NAMES[@]}"; do
        devs+=("$(under_cli_if "$t")" "$(under_srv_if "$t")" "$t")
    done
    for ns in "$SRV_NS" "$CLI_NS"; do
        for dev in "${devs[@]}"; do
            ip -n "$ns" link show "$dev" >/dev/null 2>&1 || continue
            ip -n "$ns" link set "$dev" up
        done
    done
    [[ $GRE_MODE == userspace ]] && start_gre_endpoints
    # Every device must have its carrier (a TUN device gets it when its
    # endpoint attaches).
    local i up=no
    for i in $(seq 50); do
        up=yes
        for ns in "$CLI_NS" "$SRV_NS"; do
            for dev in "${devs[@]}"; do
                ip -n "$ns" link show "$dev" >/dev/null 2>&1 || continue
                ip -n "$ns" -o link show "$dev" | grep -q 'LOWER_UP' || up=no
            done
        done
        [[ $up == yes ]] && break
        sleep 0.1
    done
    [[ $up == yes ]] || die "the links between the namespaces did not come up"
    # Each overlay address must be reached through its tunnel device.
    local got
    for t in "${TUNNEL_NAMES[@]}"; do
        got=$(ip -n "$CLI_NS" -o route get "$(over_srv "$t")")
        [[ $got == *" dev $t "* && $got == *" src $(over_cli "$t") "* ]] ||
            die "client would not reach $(over_srv "$t") through $t: $got"
    done
}

# setup_underlay TUNNEL: the veth pair the tunnel runs over.  IPv4 only (no
# IPv6 chatter), no offloads (valid checksums, MTU-sized packets).
setup_underlay() {
    local t=$1 mtu c s
    mtu=$(tunnel_field "$t" 3)
    c=$(under_cli_if "$t")
    s=$(under_srv_if "$t")
    ip -n "$CLI_NS" link add "$c" mtu "$mtu" type veth peer name "$s" mtu "$mtu" netns "$SRV_NS"
    no_offload "$CLI_NS" "$c"
    no_offload "$SRV_NS" "$s"
    ns_sysctl "$CLI_NS" "net.ipv6.conf.$c.disable_ipv6" 1
    ns_sysctl "$SRV_NS" "net.ipv6.conf.$s.disable_ipv6" 1
    ip -n "$CLI_NS" addr add "$(under_cli "$t")/24" dev "$c"
    ip -n "$SRV_NS" addr add "$(under_srv "$t")/24" dev "$s"
}

# overlay_common TUNNEL NS ADDR: what every tunnel device gets on both ends.
overlay_common() {
    local t=$1 ns=$2 addr=$3
    ip -n "$ns" link set "$t" mtu "$(tunnel_field "$t" 4)"
    ns_sysctl "$ns" "net.ipv6.conf.$t.disable_ipv6" 1
    no_offload "$ns" "$t" || die "cannot switch the offloads of $t off in $ns"
    ip -n "$ns" addr add "$addr/24" dev "$t"
}

setup_gre() {
    local t=$1 key mtu ns local_ remote
    key=$(tunnel_field "$t" 2)
    mtu=$(tunnel_field "$t" 3)
    for ns in "$CLI_NS" "$SRV_NS"; do
        if [[ $ns == "$CLI_NS" ]]; then
            local_=$(under_cli "$t") remote=$(under_srv "$t")
        else
            local_=$(under_srv "$t") remote=$(under_cli "$t")
        fi
        if [[ $GRE_MODE == kernel ]]; then
            local -a opts=(local "$local_" remote "$remote")
            [[ $key == - ]] || opts+=(key "$key")
            if ((mtu < 1500)); then
                # Fragment the outer packet instead of sending "fragmentation
                # needed" back: no DF on the outer header, inner DF ignored.
                opts+=(ttl inherit nopmtudisc ignore-df)
            else
                opts+=(ttl 64)
            fi
            ip -n "$ns" link add "$t" type gre "${opts[@]}" ||
                die "cannot create GRE device $t (${opts[*]})"
        else
            ip -n "$ns" tuntap add dev "$t" mode tun
        fi
    done
    overlay_common "$t" "$CLI_NS" "$(over_cli "$t")"
    overlay_common "$t" "$SRV_NS" "$(over_srv "$t")"
    local keytext=
    [[ $key == - ]] || keytext=" key $key"
    log "$t: $GRE_MODE GRE$keytext, $(under_cli "$t") <-> $(under_srv "$t") (underlay MTU $mtu), overlay $(over_cli "$t") <-> $(over_srv "$t") (MTU $(tunnel_field "$t" 4))"
}

# setup_vxlan TUNNEL: unicast VXLAN between the two underlay addresses (the
# all-zero FDB entry `remote` creates sends everything to the peer); fixed
# MAC addresses and permanent neighbour entries, so no ARP crosses it.
setup_vxlan() {
    local t=$1 vni n ns local_ remote dev mac peer peer_mac
    vni=$(tunnel_field "$t" 2)
    n=$(tunnel_field "$t" 1)
    for ns in "$CLI_NS" "$SRV_NS"; do
        if [[ $ns == "$CLI_NS" ]]; then
            local_=$(under_cli "$t") remote=$(under_srv "$t") dev=$(under_cli_if "$t")
            mac=02:97:0$n:00:00:02
        else
            local_=$(under_srv "$t") remote=$(under_cli "$t") dev=$(under_srv_if "$t")
            mac=02:97:0$n:00:00:01
        fi
        ip -n "$ns" link add "$t" address "$mac" type vxlan id "$vni" local "$local_" \
            remote "$remote" dstport "$VXLAN_PORT" dev "$dev" ttl 64
    done
    overlay_common "$t" "$CLI_NS" "$(over_cli "$t")"
    overlay_common "$t" "$SRV_NS" "$(over_srv "$t")"
    for ns in "$CLI_NS" "$SRV_NS"; do
        if [[ $ns == "$CLI_NS" ]]; then
            peer=$(over_srv "$t") peer_mac=02:97:0$n:00:00:01
        else
            peer=$(over_cli "$t") peer_mac=02:97:0$n:00:00:02
        fi
        ip -n "$ns" neigh replace "$peer" lladdr "$peer_mac" dev "$t" nud permanent
    done
    log "$t: kernel VXLAN VNI $vni, UDP $VXLAN_PORT, $(under_cli "$t") <-> $(under_srv "$t"), overlay $(over_cli "$t") <-> $(over_srv "$t")"
}

# The userspace GRE endpoint (kernels without a gre device).
write_gre_endpoint() {
    cat >"$WORK/gre-endpoint.py" <<'EOF'
"""Userspace GRE endpoint (RFC 2784; key per RFC 2890).  TUN is a layer-3
TUN device holding the overlay address.  IPv4 packets read from it go to
REMOTE with a GRE header in front, over a raw IPPROTO_GRE socket bound to
LOCAL: the kernel writes the outer IPv4 header (TTL 64; DF set with "df",
as a kernel gre device with pmtudisc does, or clear with "nodf", in which
case the kernel fragments what exceeds the underlay MTU).  GRE packets from
REMOTE (reassembled by the kernel) carrying IPv4 and the expected key, or no
key when KEY is "-", go back into TUN without the GRE header."""
import fcntl
import os
import select
import socket
import struct
import sys

TUNSETIFF = 0x400454CA
IFF_TUN, IFF_NO_PI = 0x0001, 0x1000
IP_MTU_DISCOVER, IP_PMTUDISC_DONT, IP_PMTUDISC_DO = 10, 0, 2
IPPROTO_GRE = 47
GRE_C, GRE_K, GRE_S, GRE_VER = 0x8000, 0x2000, 0x1000, 0x0007
ETH_P_IP = 0x0800

dev, local, remote, key_arg, df = sys.argv[1:6]
key = None if key_arg == "-" else int(key_arg)

tun = os.open("/dev/net/tun", os.O_RDWR)
fcntl.ioctl(tun, TUNSETIFF, struct.pack("16sH", dev.encode(), IFF_TUN | IFF_NO_PI))
sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, IPPROTO_GRE)
sock.bind((local, 0))
sock.connect((remote, 0))               # only GRE from the peer
sock.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, 64)
sock.setsockopt(socket.IPPROTO_IP, IP_MTU_DISCOVER,
                IP_PMTUDISC_DO if df == "df" else IP_PMTUDISC_DONT)
header = struct.pack("!HH", GRE_K if key is not None else 0, ETH_P_IP)
if key is not None:
    header += struct.pack("!I", key)

print("ready", flush=True)
while True:
    for fd in select.select([tun, sock], [], [])[0]:
        try:
            if fd == tun:
                pkt = os.read(tun, 65535)
                if pkt and pkt[0] >> 4 == 4:
                    sock.send(header + pkt)
                continue
            pkt = sock.recv(65535)
        except OSError as e:                # ICMP errors, a full queue
            print("gre-endpoint: %s" % e, file=sys.stderr, flush=True)
            continue
        gre = pkt[(pkt[0] & 0x0F) * 4:]     # a raw socket gets the IPv4 header
        if len(gre) < 4:
            continue
        flags, proto = struct.unpack("!HH", gre[:4])
        if flags & GRE_VER or proto != ETH_P_IP:
            continue
        off = 4 + (4 if flags & GRE_C else 0)
        got = None
        if flags & GRE_K:
            if len(gre) < off + 4:
                continue
            got = struct.unpack("!I", gre[off:off + 4])[0]
            off += 4
        off += 4 if flags & GRE_S else 0
        if got != key or len(gre) <= off:
            continue
        try:
            os.write(tun, gre[off:])
        except OSError as e:
            print("gre-endpoint: %s" % e, file=sys.stderr, flush=True)
EOF
}

start_gre_endpoints() {
    write_gre_endpoint
    local t ns local_ remote key df out pid i
    for t in "${TUNNEL_NAMES[@]}"; do
        [[ $(tunnel_field "$t" 0) == gre ]] || continue
        key=$(tunnel_field "$t" 2)
        df="df"
        (($(tunnel_field "$t" 3) < 1500)) && df=nodf
        for ns in "$CLI_NS" "$SRV_NS"; do
            if [[ $ns == "$CLI_NS" ]]; then
                local_=$(under_cli "$t") remote=$(under_srv "$t")
            else
                local_=$(under_srv "$t") remote=$(under_cli "$t")
            fi
            out=$WORK/gre-endpoint.$t.$ns.out
            ip netns exec "$ns" python3 "$WORK/gre-endpoint.py" "$t" "$local_" "$remote" "$key" "$df" \
                >"$out" 2>&1 &
            pid=$!
            TUNNEL_HELPER_PIDS+=("$pid")
            for i in $(seq 50); do
                grep -q '^ready' "$out" && break
                kill -0 "$pid" 2>/dev/null || { cat "$out" >&2; die "GRE endpoint $t failed in $ns"; }
                sleep 0.1
            done
            grep -q '^ready' "$out" || die "GRE endpoint $t did not start in $ns"
        done
    done
}

tunnel_cleanup() {
    local rc=$? pid
    set +e
    for pid in "${TUNNEL_HELPER_PIDS[@]}"; do
        kill "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    done
    (exit "$rc")
    cleanup         # the golden script's: tcpdumps, Postfix, namespaces, $WORK
}

# check_capture FILE: the golden script's (exactly one connection; "fin" or
# a sentence), stricter about "fin": through the tunnel, the server's TLS
# close_notify can arrive after swaks's own FIN, and the client's kernel then
# answers it with RST although FINs went both ways.  close: fin is claimed
# only for a connection that saw no RST at all.
eval "golden_$(declare -f check_capture)"
check_capture() {
    local how rst
    how=$(golden_check_capture "$1")
    rst=$(tcpdump -nn -r "$1" 2>/dev/null | grep -cE 'Flags \[[^]]*R' || true)
    if [[ $how == fin && $rst != 0 ]]; then
        how="TCP end: FINs went both ways, but $rst RST segments followed (data arriving at a closed socket), so close is omitted."
    fi
    echo "$how"
}

# ----------------------------------------------------------------------------
# Checks on the two captures of a case (tshark; a mismatch aborts).
# ----------------------------------------------------------------------------
tcount() {              # tcount FILE FILTER [tshark options]: matching frames
    local file=$1 filter=$2 out
    shift 2
    out=$(tshark -r "$file" "$@" -Y "$filter" -T fields -e frame.number 2>"$WORK/tshark.err") ||
        die "tshark -r $file $* -Y '$filter': $(grep -v '^Running as user' "$WORK/tshark.err")"
    grep -c . <<<"$out" || true
}

# check_tunnel_captures CASE TUNNEL: the underlay capture holds only the
# tunnel's packets (every frame GRE, or VXLAN with the VNI, between the
# underlay addresses; the key where there is one), fragments only in the
# fragmentation case and there for sure, and, once tshark has reassembled
# the fragments, exactly as many inner TCP packets as the overlay capture,
# which holds plain TCP.  The SMTP frames are dissected through the tunnel.
check_tunnel_captures() {
    local c=$1 t=$2 kind key u o
    kind=$(tunnel_field "$t" 0)
    key=$(tunnel_field "$t" 2)
    u=$OUT_DIR/$c.pcap
    o=$OUT_DIR/$c-overlay.pcap
    local n_u n_o outer frags inner in_frag smtp stacks want_stack nodefrag=(-o ip.defragment:FALSE)
    n_u=$(tcount "$u" frame)
    n_o=$(tcount "$o" frame)
    local hosts
    hosts="ip.src in {$(under_cli "$t"), $(under_srv "$t")} && ip.dst in {$(under_cli "$t"), $(under_srv "$t")}"
    if [[ $kind == gre ]]; then
        outer=$(tcount "$u" "$hosts && ip.proto == 47" "${nodefrag[@]}")
        if [[ $key == - ]]; then
            [[ $(tcount "$u" "gre.key") == 0 ]] || die "$c: GRE packets with a key on an unkeyed tunnel"
        else
            local keyed
            keyed=$(tcount "$u" "gre.key == $key")
            [[ $keyed == "$(tcount "$u" gre)" && $keyed -gt 0 ]] ||
                die "$c: only $keyed GRE packets carry key $key"
        fi
        want_stack=":ip:gre:ip:tcp:smtp"
    else
        outer=$(tcount "$u" "$hosts && udp.dstport == $VXLAN_PORT && vxlan.vni == $key")
        want_stack=":ip:udp:vxlan:eth:ethertype:ip:tcp:smtp"
    fi
    ((n_u > 0 && outer == n_u)) || die "$c: only $outer of $n_u underlay frames are $kind packets of $t"
    frags=$(tcount "$u" "ip.flags.mf == 1 || ip.frag_offset > 0" "${nodefrag[@]}")
    inner=$(tcount "$u" "tcp && ip.src in {$(over_cli "$t"), $(over_srv "$t")}")
    [[ $(tcount "$o" "tcp") == "$n_o" ]] || die "$c: the overlay capture holds more than TCP"
    [[ $(tcount "$o" "gre || vxlan") == 0 ]] || die "$c: the overlay capture holds tunnel packets"
    ((inner == n_o)) || die "$c: $inner inner TCP packets on the underlay, $n_o on the overlay"
    if (($(tunnel_field "$t" 3) < 1500)); then
        in_frag=$(tcount "$u" "ip.fragments && tcp")
        ((frags > 0 && in_frag > 0)) ||
            die "$c: no fragmented outer packets ($frags fragments, $in_frag reassembled TCP packets)"
        log "$c: tshark: $frags outer IPv4 fragments; $in_frag inner TCP packets reassembled from them"
    else
        ((frags == 0)) || die "$c: $frags outer IPv4 fragments where none were expected"
    fi
    smtp=$(tcount "$u" smtp)
    stacks=$(tshark -r "$u" -Y smtp -T fields -e frame.protocols 2>/dev/null | sort -u)
    ((smtp > 0)) || die "$c: tshark finds no SMTP in the underlay capture"
    while read -r s; do
        [[ $s == *"$want_stack"* ]] || die "$c: an SMTP frame dissected as $s, not through $kind"
    done <<<"$stacks"
    log "$c: tshark: $n_u underlay frames, all $kind ($(flat "$stacks")); $n_o overlay frames, plain TCP ($(pcap_linktype "$o")); $inner = $n_o inner TCP packets"
}

# ----------------------------------------------------------------------------
# The cases.
# ----------------------------------------------------------------------------
# tunnel_case CASE TUNNEL DESCRIPTION TLS(yes|no) -- SWAKS_ARGS...
tunnel_case() {
    local c=$1 t=$2 desc=$3 tls=$4 kind filter how setup
    shift 5
    kind=$(tunnel_field "$t" 0)
    configure_server "$tls" no
    if [[ $kind == gre ]]; then
        filter="ip proto 47"        # every fragment carries the protocol number
        how="$GRE_MODE GRE"
    else
        filter="udp port $VXLAN_PORT or (ip[6:2] & 0x1fff != 0)"
        how="kernel VXLAN"
    fi
    start_capture "$(under_cli_if "$t")" "$WORK/cap/$c.pcap" "$filter"
    start_capture "$t" "$WORK/cap/$c-overlay.pcap" "$V4_FILTER"
    swaks_run "$c" "$(over_srv "$t")" --to "alice@$DOMAIN" "$@"
    save_capture "$c" "$c"
    save_capture "$c-overlay" "$c-overlay"
    swaks_status "$c"
    if [[ $tls == yes ]]; then
        assert_tls_version "$c" TLSv1.2
        openssl x509 -in "$PF_ETC/golden.crt" -out "$OUT_DIR/$c.cert.pem"
        chmod 0644 "$OUT_DIR/$c.cert.pem"
        check_certificate_on_wire "$c" "$OUT_DIR/$c.pcap" "$OUT_DIR/$c.cert.pem"
        check_certificate_on_wire "$c" "$OUT_DIR/$c-overlay.pcap" "$OUT_DIR/$c.cert.pem"
    fi
    check_tunnel_captures "$c" "$t"
    cp "$WORK/run/$c.swaks" "$WORK/run/$c-overlay.swaks"
    setup="$how tunnel $t between netns ($(under_cli "$t") <-> $(under_srv "$t")), swaks to $(over_srv "$t") over the overlay"
    local cert=
    [[ $tls == yes ]] && cert=$OUT_DIR/$c.cert.pem
    EXPECT_CERT_PEM=$cert CAPTURE_SETUP="$setup, tcpdump on the client's underlay veth $(under_cli_if "$t")" \
        finish_swaks_case "$c" "$desc This is the UNDERLAY capture, taken on the client's veth $(under_cli_if "$t"): every packet is encapsulated. $c-overlay.pcap is the same session taken at the same time on the tunnel device $t." \
        "$(over_srv "$t"):25" "$(over_cli "$t"):*" "$(over_cli "$t")"
    EXPECT_CERT_PEM=$cert CAPTURE_SETUP="$setup, tcpdump on the client's tunnel device $t" \
        finish_swaks_case "$c-overlay" "$desc This is the OVERLAY capture, taken on the client's tunnel device $t: plain packets. $c.pcap is the same session taken at the same time on the underlay." \
        "$(over_srv "$t"):25" "$(over_cli "$t"):*" "$(over_cli "$t")"
    local x
    for x in "$c" "$c-overlay"; do
        sed -i "1s|^# Generated by pcaps/make-postfix-golden.sh |# Generated by pcaps/make-postfix-tunnel.sh (with make-postfix-golden.sh) |" \
            "$OUT_DIR/$x.expect.yaml"
    done
    if [[ $tls == yes ]]; then
        local fp
        fp=$(openssl x509 -in "$cert" -noout -fingerprint -sha256 | cut -d= -f2)
        for x in "$c" "$c-overlay"; do
            sed -i "s/^linktype:/# server certificate SHA-256 fingerprint: $fp\nlinktype:/" "$OUT_DIR/$x.expect.yaml"
        done
    fi
}

case_postfix_gre() {
    tunnel_case postfix-gre gre1 "Like postfix-plain but through a GRE tunnel (no key): EHLO, one message from sender@client.test to alice@golden.test, QUIT, between the overlay addresses $(over_cli gre1) and $(over_srv gre1)." \
        no --
}

case_postfix_gre_tls12() {
    tunnel_case postfix-gre-tls12 gre1 "Like postfix-starttls-tls12 but through a GRE tunnel (no key): EHLO, STARTTLS answered 220, then a TLS 1.2 handshake (server certificate for golden.test, see postfix-gre-tls12.cert.pem, visible in cleartext) and the rest of the session encrypted." \
        yes -- -tls --tls-protocol tlsv1_2
}

case_postfix_gre_key() {
    tunnel_case postfix-gre-key gre2 "Like postfix-plain but through a GRE tunnel with key $GRE_KEY (RFC 2890): EHLO, one message to alice@golden.test, QUIT, between the overlay addresses $(over_cli gre2) and $(over_srv gre2)." \
        no --
}

case_postfix_vxlan() {
    tunnel_case postfix-vxlan vx1 "Like postfix-plain but through a VXLAN tunnel (VNI $VXLAN_VNI, UDP port $VXLAN_PORT): EHLO, one message to alice@golden.test, QUIT, between the overlay addresses $(over_cli vx1) and $(over_srv vx1)." \
        no --
}

case_postfix_gre_frag() {
    # 40 header lines of 78 bytes: the message (some 3.3 KB) fills two
    # full-sized TCP segments, 1500-byte packets on the overlay, which do
    # not fit the 1400-byte underlay once encapsulated.
    local -a pad=()
    local i
    for ((i = 10; i < 50; i++)); do
        pad+=(--add-header "X-Tunnel-Padding-$i: $(printf '%056d' 0 | tr 0 x)")
    done
    tunnel_case postfix-gre-frag gre3 "Like postfix-plain but through a GRE tunnel whose underlay has an MTU of 1400 bytes while the tunnel device carries 1500-byte packets, with DF off on the outer header: the client's full-sized segments of the 3 KB message travel as two outer IPv4 fragments each. EHLO, one message to alice@golden.test, QUIT, between the overlay addresses $(over_cli gre3) and $(over_srv gre3)." \
        no -- "${pad[@]}"
}

# ----------------------------------------------------------------------------
# Main.
# ----------------------------------------------------------------------------
tunnel_main() {
    if [[ ${1:-} == --check ]]; then
        check_prerequisites
        check_tunnel_support
        log "all prerequisites are installed"
        return 0
    fi
    check_prerequisites
    check_tunnel_support
    check_no_leftovers
    [[ -n $TUNNEL_OUT_DIR ]] ||
        die "set OUT_DIR: the tunnel captures are written there (they are not goldens in pcaps/)"
    mkdir -p "$TUNNEL_OUT_DIR"
    OUT_DIR=$(cd "$TUNNEL_OUT_DIR" && pwd -P)
    local -a cases=("$@")
    ((${#cases[@]})) || cases=("${TUNNEL_CASES[@]}")
    local c
    for c in "${cases[@]}"; do
        [[ " ${TUNNEL_CASES[*]} " == *" $c "* ]] || die "unknown case '$c' (known: ${TUNNEL_CASES[*]})"
    done

    trap tunnel_cleanup EXIT
    trap 'exit 130' INT TERM HUP
    WORK=$(mktemp -d /tmp/smtpscope-tunnel.XXXXXX)
    chmod 0755 "$WORK"              # Postfix's unprivileged daemons need to traverse it
    mkdir -p "$WORK/cap" "$WORK/run"
    printf 'nameserver 127.0.0.1\noptions timeout:1 attempts:1\n' >"$WORK/resolv.conf"

    POSTFIX_VERSION=$(postconf -d -h mail_version)
    SWAKS_VERSION=$(swaks --version 2>/dev/null | awk '/^swaks version/ {print $3; exit}')
    DEBIAN_MAJOR=$(cut -d. -f1 /etc/debian_version 2>/dev/null || echo '?')
    log "Postfix $POSTFIX_VERSION, swaks $SWAKS_VERSION, Debian $DEBIAN_MAJOR; output in $OUT_DIR"

    setup_tunnel_network
    setup_postfix
    # Postfix listens on the server's overlay addresses only (the golden
    # script's addresses do not exist here).
    local t addrs=
    for t in "${TUNNEL_NAMES[@]}"; do
        addrs+="${addrs:+, }$(over_srv "$t")"
    done
    postconf -c "$PF_ETC" -e "inet_interfaces = $addrs" "inet_protocols = ipv4"
    for c in "${cases[@]}"; do
        log "--- $c"
        "case_${c//-/_}"
    done
    stop_server
    log "done: ${cases[*]}"
}

tunnel_main "$@"
