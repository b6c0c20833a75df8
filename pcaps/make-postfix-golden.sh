#!/usr/bin/env bash
# make-postfix-golden.sh - produce the "golden" Postfix SMTP captures in pcaps/.
#
# What it does
#   A real Postfix server (Debian package `postfix`) and a real client (`swaks`,
#   or Postfix's own `smtp-source` for the multi-message case) talk over a veth
#   pair between two network namespaces that this script creates:
#
#       netns ssg-cli                        netns ssg-srv
#       ssg-c0   10.99.0.2/24   <-- veth -->  ssg-s0   10.99.0.1/24
#                fd00:99::2/64                         fd00:99::1/64
#       VLAN 100 10.99.100.2/24 <-- 802.1Q on the same veth --> 10.99.100.1/24
#
#   (VLAN 100 uses kernel 802.1Q subinterfaces ssg-c0.100/ssg-s0.100 where the
#   kernel has them, and otherwise a small userspace tagger: see setup_vlan.)
#
#   The postfix-routed case takes a second path through a plain IPv4 router
#   (a third namespace with ip_forward=1, no NAT, no filtering):
#
#       netns ssg-cli          netns ssg-rtr                    netns ssg-srv
#       ssg-c1 10.99.2.2 <--> ssg-r1 10.99.2.254 | ssg-r2 10.99.3.254 <--> ssg-s1 10.99.3.1
#
#   and captures on both router interfaces at once: ssg-r1 is the "outside"
#   vantage, ssg-r2 the "inside" one (see setup_router, case_postfix_routed).
#
#   Checksum/segmentation offloads are switched off on every veth (ethtool),
#   so the captures hold valid TCP checksums and MTU-sized segments, like
#   frames seen on a real wire.
#
#   Each case is captured with tcpdump in the CLIENT namespace and written to
#   pcaps/<case>.pcap, together with pcaps/<case>.expect.yaml (postfix-routed:
#   in the ROUTER namespace, plus pcaps/postfix-routed-inside.{pcap,expect.yaml}).
#
# Where the expectations come from (the "oracle")
#   NEVER from smtpscope.  For swaks cases they are derived from swaks's own
#   transcript (`<-` server line, ` ->` client line, `<~`/` ~>` inside TLS,
#   `<**`/`**>` unexpected lines, `===`/`***` swaks's own notes).  For the
#   smtp-source case (no transcript) they come from the parameters of the run.
#   Facts about the capture itself (link type, both FINs present, no loss) come
#   from tcpdump reading the file back.  Every case is then cross-checked with
#   Postfix's own "disconnect from ... commands=N" log line and, if tshark is
#   installed, with tshark's SMTP dissector; any mismatch aborts the script.
#
# Usage
#   sudo pcaps/make-postfix-golden.sh [case ...]     # default: all cases
#   sudo pcaps/make-postfix-golden.sh --check        # prerequisites only
#   Environment: OUT_DIR (default: the directory of this script),
#                KEEP_WORK=1 keeps the temporary directory for debugging.
#
# Live mode (opt-in, for tests/live/test_live_postfix.sh)
#   LIVE_SMTPSCOPE=/path/to/smtpscope LIVE_OUT=/some/dir sudo -E pcaps/make-postfix-golden.sh CASE...
#   Next to every tcpdump, in the same namespace and on the same interface,
#   runs `smtpscope live -i IFACE -f json -o LIVE_OUT/<case>.live.jsonl
#   --stats-interval 0`, started once the capture is open and before the
#   client connects, and stopped with SIGTERM (and waited for) after tcpdump
#   has stopped.  Captures and expect files go to LIVE_OUT too (OUT_DIR
#   becomes LIVE_OUT; LIVE_OUT may not be pcaps/ itself), so nothing in
#   pcaps/ is overwritten.  The expectations still come from swaks, never
#   from smtpscope: the live records are only written, not judged, here.
#
# It needs root (network namespaces, Postfix, tcpdump).  It installs nothing;
# it never touches the system Postfix (private config/queue/data directories
# under a mktemp -d directory, started with `postfix -c DIR`); and it sends
# traffic only inside the three namespaces it creates.  Everything it started is
# stopped and removed again on exit (trap ... EXIT).

set -euo pipefail

# ----------------------------------------------------------------------------
# Constants
# ----------------------------------------------------------------------------
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
OUT_DIR=${OUT_DIR:-}            # default $SCRIPT_DIR; LIVE_OUT in live mode (setup_output)
LIVE_SMTPSCOPE=${LIVE_SMTPSCOPE:-}      # live mode: the smtpscope binary
LIVE_OUT=${LIVE_OUT:-}                  # live mode: where everything goes

SRV_NS=ssg-srv          # server network namespace
CLI_NS=ssg-cli          # client network namespace
SRV_IF=ssg-s0           # veth end in the server namespace
CLI_IF=ssg-c0           # veth end in the client namespace
SRV4=10.99.0.1
CLI4=10.99.0.2
SRV6=fd00:99::1
CLI6=fd00:99::2
VLAN_ID=100
SRV_VLAN_IF=            # set by setup_vlan()
CLI_VLAN_IF=
SRV_VLAN4=10.99.100.1
CLI_VLAN4=10.99.100.2
# The routed path (postfix-routed): client -- router -- server, two new
# subnets that clash with none of the above.  Server .1 and client .2 as on
# the direct link; the router is .254 on both sides.
RTR_NS=ssg-rtr          # router network namespace (ip_forward=1)
CLI_RT_IF=ssg-c1        # client end of the client--router veth
RTR_CLI_IF=ssg-r1       # router end facing the client: the "outside" capture
RTR_SRV_IF=ssg-r2       # router end facing the server: the "inside" capture
SRV_RT_IF=ssg-s1        # server end of the router--server veth
CLI_RT4=10.99.2.2
RTR_CLI4=10.99.2.254
RTR_SRV4=10.99.3.254
SRV_RT4=10.99.3.1
CLI_RT_NET=10.99.2.0/24
SRV_RT_NET=10.99.3.0/24

DOMAIN=golden.test               # Postfix's myhostname / mydestination
HELO_NAME=client.test            # what the clients say in HELO/EHLO
SENDER=sender@client.test
SASL_LOGIN=alice                 # user in the sasldb (realm $DOMAIN)
SASL_USER=alice@$DOMAIN          # what the client authenticates as
SASL_PASS=Golden-Pass-1
EXPECTED_BANNER="220 $DOMAIN ESMTP smtpscope-golden"

ALL_CASES=(
    postfix-plain
    postfix-starttls-notattempted
    postfix-starttls-tls12
    postfix-starttls-tls13
    postfix-pipelining
    postfix-auth-plain
    postfix-auth-login
    postfix-multi-rcpt
    postfix-rcpt-rejected
    postfix-multi-message
    postfix-ipv6
    postfix-vlan
    postfix-any
    postfix-routed
)

log() { printf '== %s\n' "$*" >&2; }
# yq STRING: STRING as a YAML double-quoted scalar.
yq() { local v=${1//\\/\\\\}; v=${v//\"/\\\"}; printf '"%s"' "$v"; }
die() { printf 'make-postfix-golden: error: %s\n' "$*" >&2; exit 1; }

# ----------------------------------------------------------------------------
# Prerequisites: check, never install.
# ----------------------------------------------------------------------------
check_prerequisites() {
    # command -> Debian package that provides it
    local -A pkg_of=(
        [postfix]=postfix [postconf]=postfix [smtp-source]=postfix
        [swaks]=swaks [tcpdump]=tcpdump [ip]=iproute2 [ss]=iproute2
        [openssl]=openssl [editcap]=wireshark-common
        [saslpasswd2]=sasl2-bin [unshare]=util-linux [mount]=mount
        [base64]=coreutils [awk]=mawk [ethtool]=ethtool [script]=bsdutils
        [python3]=python3 [perl]=perl-base
    )
    local -a missing=()
    local cmd
    # python3 runs the userspace 802.1Q tagger (kernels without 8021q), perl
    # helps check the certificate on the wire.  sbin directories are not
    # always in a non-root PATH; add them.
    PATH=$PATH:/usr/sbin:/sbin
    for cmd in postfix postconf smtp-source swaks tcpdump ip ss openssl \
               editcap saslpasswd2 unshare mount base64 awk ethtool script \
               python3 perl; do
        command -v "$cmd" >/dev/null 2>&1 || missing+=("${pkg_of[$cmd]}")
    done
    # The Cyrus SASL PLAIN/LOGIN mechanisms and the sasldb auxprop plugin are
    # shared objects, not commands.
    compgen -G '/usr/lib/*/sasl2/libplain.so*' >/dev/null || missing+=(libsasl2-modules)
    compgen -G '/usr/lib/*/sasl2/liblogin.so*' >/dev/null || missing+=(libsasl2-modules)
    compgen -G '/usr/lib/*/sasl2/libsasldb.so*' >/dev/null || missing+=(libsasl2-modules-db)
    # swaks needs Perl modules for TLS and IPv6 (only Recommends in Debian).
    if command -v swaks >/dev/null 2>&1; then
        local support
        support=$(swaks --support 2>&1 || true)
        grep -q '^=== TLS supported' <<<"$support" || missing+=(libnet-ssleay-perl)
        grep -q '^=== IPv6 supported' <<<"$support" || missing+=(libio-socket-inet6-perl)
    fi
    if ((${#missing[@]})); then
        local uniq
        uniq=$(printf '%s\n' "${missing[@]}" | sort -u | tr '\n' ' ')
        printf 'make-postfix-golden: missing prerequisites. Install them with:\n' >&2
        printf '  DEBIAN_FRONTEND=noninteractive apt-get install -y %s\n' "${uniq% }" >&2
        exit 1
    fi
    [[ $EUID -eq 0 ]] || die "must run as root (network namespaces, Postfix, tcpdump)"
}

# check_no_leftovers: our namespaces must not exist yet.
check_no_leftovers() {
    local ns
    for ns in "$SRV_NS" "$CLI_NS" "$RTR_NS"; do
        if ip netns list | awk '{print $1}' | grep -qx "$ns"; then
            die "network namespace $ns already exists (another run, or a leftover: 'ip netns del $ns')"
        fi
    done
}

# setup_output: where the captures and expect files go.  In live mode that
# is LIVE_OUT, which must not be the directory of the committed goldens.
setup_output() {
    if [[ -z $LIVE_SMTPSCOPE ]]; then
        [[ -z $LIVE_OUT ]] || die "LIVE_OUT is set but LIVE_SMTPSCOPE is not"
        OUT_DIR=${OUT_DIR:-$SCRIPT_DIR}
        return 0
    fi
    [[ -x $LIVE_SMTPSCOPE && ! -d $LIVE_SMTPSCOPE ]] ||
        die "LIVE_SMTPSCOPE=$LIVE_SMTPSCOPE is not an executable file"
    [[ -n $LIVE_OUT ]] || die "LIVE_SMTPSCOPE needs LIVE_OUT (a directory for the live records and captures)"
    mkdir -p "$LIVE_OUT"
    LIVE_OUT=$(cd "$LIVE_OUT" && pwd -P)
    LIVE_SMTPSCOPE=$(cd "$(dirname "$LIVE_SMTPSCOPE")" && pwd -P)/$(basename "$LIVE_SMTPSCOPE")
    if [[ -n $OUT_DIR && $(cd "$OUT_DIR" 2>/dev/null && pwd -P) != "$LIVE_OUT" ]]; then
        die "live mode writes into LIVE_OUT; OUT_DIR=$OUT_DIR would be ignored (unset it)"
    fi
    [[ $LIVE_OUT != "$(cd "$SCRIPT_DIR" && pwd -P)" ]] ||
        die "LIVE_OUT must not be $SCRIPT_DIR: live mode never overwrites the goldens"
    OUT_DIR=$LIVE_OUT
    log "live mode: smtpscope live next to every tcpdump ($LIVE_SMTPSCOPE)"
}

# ----------------------------------------------------------------------------
# Cleanup: runs on every exit.
# ----------------------------------------------------------------------------
WORK=
TCPDUMP_PIDS=()         # running captures (two at once in postfix-routed)
TCPDUMP_ERRS=()         # their stderr files, same order
LIVE_PIDS=()            # live mode: the smtpscope live beside each tcpdump
LIVE_ERRS=()            # their stderr files, same order
LIVE_CASES=()           # and the case each one records
cleanup() {
    local rc=$? ns pid
    set +e
    for pid in "${TCPDUMP_PIDS[@]}"; do
        kill -INT "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    done
    for pid in "${LIVE_PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    done
    for pid in "${VLAN_TAGGER_PIDS[@]}"; do
        kill "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    done
    # The postfix command checks inet_interfaces, so it must run in the
    # server namespace.
    if [[ -n $WORK && -f $WORK/etc/main.cf ]] && ip netns list 2>/dev/null | grep -q "^$SRV_NS\b"; then
        ip netns exec "$SRV_NS" postfix -c "$WORK/etc" status >/dev/null 2>&1 &&
            ip netns exec "$SRV_NS" postfix -c "$WORK/etc" stop >/dev/null 2>&1
    fi
    for ns in "$CLI_NS" "$RTR_NS" "$SRV_NS"; do
        ip netns list 2>/dev/null | awk '{print $1}' | grep -qx "$ns" || continue
        # Any process still inside one of OUR namespaces was started by us.
        for pid in $(ip netns pids "$ns" 2>/dev/null); do
            kill "$pid" 2>/dev/null
        done
        ip netns del "$ns"
    done
    if [[ -n $WORK && -d $WORK ]]; then
        if [[ ${KEEP_WORK:-0} == 1 ]]; then
            log "keeping $WORK"
        else
            rm -rf "$WORK"
        fi
    fi
    exit "$rc"
}

# ----------------------------------------------------------------------------
# Running things inside the namespaces.
#
# `ip netns exec` already gives the command a private mount namespace; we add
# one more in which /etc/resolv.conf is replaced by "nameserver 127.0.0.1", so
# that any DNS lookup (Postfix's reverse lookup of the client address, for
# instance) goes to the namespace's own loopback, gets "port unreachable" at
# once, and never leaves the machine.
# ----------------------------------------------------------------------------
ns_exec() {
    local ns=$1
    shift
    # shellcheck disable=SC2016  # $0/$@ belong to the inner sh
    ip netns exec "$ns" unshare --mount --propagation private \
        sh -c 'mount --bind "$0" /etc/resolv.conf 2>/dev/null || :; exec "$@"' \
        "$WORK/resolv.conf" "$@"
}
in_srv() { ns_exec "$SRV_NS" "$@"; }
in_cli() { ns_exec "$CLI_NS" "$@"; }

# ns_sysctl NS KEY VALUE: write a /proc/sys/net setting inside a namespace.
ns_sysctl() {
    # shellcheck disable=SC2016  # $0/$1 belong to the inner sh
    ip netns exec "$1" sh -c 'echo "$1" >"/proc/sys/$0"' "$(tr . / <<<"$2")" "$3"
}

# no_offload NS DEV: compute checksums in software and send MTU-sized
# segments, so the captures look like frames on a real wire (with offload, a
# capture taken on the sending veth holds unfinished TCP checksums).
no_offload() {
    ip netns exec "$1" ethtool -K "$2" tx off tso off gso off gro off >/dev/null 2>&1 ||
        ip netns exec "$1" ethtool -K "$2" tx off >/dev/null
}

setup_network() {
    log "creating namespaces $SRV_NS / $CLI_NS"
    ip netns add "$SRV_NS"
    ip netns add "$CLI_NS"
    ip -n "$SRV_NS" link set lo up
    ip -n "$CLI_NS" link set lo up
    # The veth pair is created directly with one end in each namespace.
    ip -n "$CLI_NS" link add "$CLI_IF" type veth peer name "$SRV_IF" netns "$SRV_NS"
    ip -n "$SRV_NS" addr add "$SRV4/24" dev "$SRV_IF"
    ip -n "$CLI_NS" addr add "$CLI4/24" dev "$CLI_IF"
    ip -n "$SRV_NS" addr add "$SRV6/64" dev "$SRV_IF" nodad
    ip -n "$CLI_NS" addr add "$CLI6/64" dev "$CLI_IF" nodad
    no_offload "$SRV_NS" "$SRV_IF"
    no_offload "$CLI_NS" "$CLI_IF"
    setup_vlan
    setup_router
    local ns dev
    for ns in "$SRV_NS" "$CLI_NS" "$RTR_NS"; do
        for dev in $(ip -n "$ns" -o link show | awk -F': ' '{print $2}' | cut -d@ -f1); do
            ip -n "$ns" link set "$dev" up
        done
    done
    # Wait until every veth end reports carrier (state UP); with nodad the
    # IPv6 addresses are usable at once.
    local i up=no
    for i in $(seq 50); do
        up=yes
        for ns in "$CLI_NS" "$SRV_NS" "$RTR_NS"; do
            ip -n "$ns" -o link show | grep -v ' lo:' | grep -qv 'state UP' && up=no
        done
        [[ $up == yes ]] && break
        sleep 0.1
    done
    [[ $up == yes ]] || die "veth links between the namespaces did not come up"
    [[ $VLAN_MODE == userspace ]] && start_vlan_taggers
    setup_routes
}

# ----------------------------------------------------------------------------
# The routed path (postfix-routed): a plain IPv4 router between client and
# server, so that one session can be captured on both sides of a device that
# changes nothing but the TTL (and the Ethernet addresses).  The server keeps
# its direct link for the other cases; the client reaches 10.99.3.0/24 only
# through the router, and the server answers 10.99.2.0/24 only through it.
# ----------------------------------------------------------------------------
setup_router() {
    log "creating router namespace $RTR_NS ($CLI_RT_NET <-> $SRV_RT_NET)"
    ip netns add "$RTR_NS"
    ip -n "$RTR_NS" link set lo up
    # Both veth pairs are created with one end already in the router.
    ip -n "$CLI_NS" link add "$CLI_RT_IF" type veth peer name "$RTR_CLI_IF" netns "$RTR_NS"
    ip -n "$SRV_NS" link add "$SRV_RT_IF" type veth peer name "$RTR_SRV_IF" netns "$RTR_NS"
    local ns dev
    for ns in "$CLI_NS" "$RTR_NS" "$SRV_NS"; do
        for dev in "$CLI_RT_IF" "$RTR_CLI_IF" "$RTR_SRV_IF" "$SRV_RT_IF"; do
            ip -n "$ns" link show "$dev" >/dev/null 2>&1 || continue
            # Valid checksums and MTU-sized segments on the router's wires
            # too; and, as on the VLAN, only IPv4 and ARP: no IPv6 chatter.
            no_offload "$ns" "$dev"
            ns_sysctl "$ns" "net.ipv6.conf.$dev.disable_ipv6" 1
        done
    done
    ip -n "$CLI_NS" addr add "$CLI_RT4/24" dev "$CLI_RT_IF"
    ip -n "$RTR_NS" addr add "$RTR_CLI4/24" dev "$RTR_CLI_IF"
    ip -n "$RTR_NS" addr add "$RTR_SRV4/24" dev "$RTR_SRV_IF"
    ip -n "$SRV_NS" addr add "$SRV_RT4/24" dev "$SRV_RT_IF"
    # Forwarding is per namespace and off in a new one.  Read it back: a
    # kernel that refuses it would otherwise only show up as a swaks timeout.
    ns_sysctl "$RTR_NS" net.ipv4.ip_forward 1 ||
        die "cannot set net.ipv4.ip_forward=1 in namespace $RTR_NS"
    [[ $(ip netns exec "$RTR_NS" cat /proc/sys/net/ipv4/ip_forward) == 1 ]] ||
        die "net.ipv4.ip_forward is not 1 in namespace $RTR_NS"
}

# setup_routes: once the links are up (a gateway must be on a connected
# route, which exists only on an up interface), the two routes through the
# router.  `ip route get` then confirms, without sending anything, that each
# end would use the router and its routed address (ping is not among the
# prerequisites; the swaks session itself proves the path).
setup_routes() {
    ip -n "$CLI_NS" route add "$SRV_RT_NET" via "$RTR_CLI4" dev "$CLI_RT_IF"
    ip -n "$SRV_NS" route add "$CLI_RT_NET" via "$RTR_SRV4" dev "$SRV_RT_IF"
    local got
    got=$(ip -n "$CLI_NS" -o route get "$SRV_RT4")
    [[ $got == *" via $RTR_CLI4 dev $CLI_RT_IF "* && $got == *" src $CLI_RT4 "* ]] ||
        die "client would not route $SRV_RT4 through the router: $got"
    got=$(ip -n "$SRV_NS" -o route get "$CLI_RT4")
    [[ $got == *" via $RTR_SRV4 dev $SRV_RT_IF "* && $got == *" src $SRV_RT4 "* ]] ||
        die "server would not route $CLI_RT4 back through the router: $got"
    got=$(ip -n "$RTR_NS" -o route get "$SRV_RT4")
    [[ $got == *" dev $RTR_SRV_IF "* ]] || die "router would not forward to $SRV_RT4 on $RTR_SRV_IF: $got"
    log "routed path: $CLI_RT4 -> $RTR_CLI4 [$RTR_NS, ip_forward=1] $RTR_SRV4 -> $SRV_RT4"
}

# ----------------------------------------------------------------------------
# VLAN 100.  Preferred: the kernel's 802.1Q subinterfaces (ssg-c0.100 on top
# of ssg-c0, ssg-s0.100 on top of ssg-s0).  Kernels built without
# CONFIG_VLAN_8021Q (some VMs; `ip link add ... type vlan` says "Unknown device
# type") get a userspace tagger instead: in each namespace a second veth pair,
# whose end ssg-c100 / ssg-s100 holds the VLAN address, and a small Python
# program that moves frames between its other end (ssg-c100t / ssg-s100t) and
# the parent veth, inserting the 802.1Q tag towards the parent and removing it
# from frames coming from it.  Either way, the frames on ssg-c0/ssg-s0 are
# real 802.1Q-tagged Ethernet frames, and the capture is taken there.
# ----------------------------------------------------------------------------
VLAN_MODE=
VLAN_TAGGER_PIDS=()
setup_vlan() {
    if ip -n "$CLI_NS" link add link "$CLI_IF" name "$CLI_IF.$VLAN_ID" type vlan id "$VLAN_ID" 2>/dev/null; then
        VLAN_MODE=kernel
        CLI_VLAN_IF=$CLI_IF.$VLAN_ID
        SRV_VLAN_IF=$SRV_IF.$VLAN_ID
        ip -n "$SRV_NS" link add link "$SRV_IF" name "$SRV_VLAN_IF" type vlan id "$VLAN_ID"
    else
        VLAN_MODE=userspace
        command -v python3 >/dev/null 2>&1 ||
            die "this kernel has no 802.1Q support and python3 (for the userspace tagger) is missing: apt-get install -y python3"
        CLI_VLAN_IF=ssg-c$VLAN_ID
        SRV_VLAN_IF=ssg-s$VLAN_ID
        local ns l3
        for ns in "$CLI_NS" "$SRV_NS"; do
            [[ $ns == "$CLI_NS" ]] && l3=$CLI_VLAN_IF || l3=$SRV_VLAN_IF
            ip -n "$ns" link add "$l3" type veth peer name "${l3}t"
            no_offload "$ns" "$l3"
            no_offload "$ns" "${l3}t"
            # Only IPv4 and ARP go over the VLAN; keep IPv6 chatter off it.
            ns_sysctl "$ns" "net.ipv6.conf.$l3.disable_ipv6" 1
            ns_sysctl "$ns" "net.ipv6.conf.${l3}t.disable_ipv6" 1
        done
        write_vlan_tagger
    fi
    ip -n "$SRV_NS" addr add "$SRV_VLAN4/24" dev "$SRV_VLAN_IF"
    ip -n "$CLI_NS" addr add "$CLI_VLAN4/24" dev "$CLI_VLAN_IF"
    log "VLAN $VLAN_ID: $VLAN_MODE 802.1Q ($CLI_VLAN_IF <-> $SRV_VLAN_IF)"
}

write_vlan_tagger() {
    cat >"$WORK/vlan-tagger.py" <<'EOF'
"""Userspace 802.1Q tagger: ACCESS is an untagged veth end, TRUNK the parent
veth.  Frames from ACCESS (IPv4 and ARP only) go to TRUNK with an 802.1Q tag
VID inserted; frames from TRUNK tagged VID go to ACCESS without the tag."""
import select
import socket
import struct
import sys

ETH_P_ALL = 0x0003
SOL_PACKET = 263
PACKET_AUXDATA = 8
PACKET_OUTGOING = 4
TP_STATUS_VLAN_VALID = 0x10
AUX = struct.Struct("IIIHHHH")   # struct tpacket_auxdata

access_dev, trunk_dev, vid = sys.argv[1], sys.argv[2], int(sys.argv[3])


def open_dev(dev):
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    s.setsockopt(SOL_PACKET, PACKET_AUXDATA, 1)
    s.bind((dev, 0))
    return s


access, trunk = open_dev(access_dev), open_dev(trunk_dev)
print("ready", flush=True)
while True:
    for s in select.select([access, trunk], [], [])[0]:
        frame, anc, _flags, addr = s.recvmsg(65536, socket.CMSG_SPACE(AUX.size))
        if addr[2] == PACKET_OUTGOING:          # our own transmissions
            continue
        tci = None                              # the kernel strips the tag
        for level, kind, data in anc:           # into the aux data on receive
            if level == SOL_PACKET and kind == PACKET_AUXDATA:
                status, _, _, _, _, vlan_tci, _ = AUX.unpack(data[:AUX.size])
                if status & TP_STATUS_VLAN_VALID:
                    tci = vlan_tci
        if s is access:
            if tci is None and frame[12:14] in (b"\x08\x00", b"\x08\x06"):
                trunk.send(frame[:12] + struct.pack("!HH", 0x8100, vid) + frame[12:])
        else:
            if tci is None and frame[12:14] == b"\x81\x00":
                tci = struct.unpack("!H", frame[14:16])[0]
                frame = frame[:12] + frame[16:]
            if tci is not None and tci & 0x0FFF == vid:
                access.send(frame)
EOF
}

start_vlan_taggers() {
    local ns l3 trunk out pid i
    for ns in "$CLI_NS" "$SRV_NS"; do
        if [[ $ns == "$CLI_NS" ]]; then l3=$CLI_VLAN_IF trunk=$CLI_IF; else l3=$SRV_VLAN_IF trunk=$SRV_IF; fi
        out=$WORK/vlan-tagger.$ns.out
        ip netns exec "$ns" python3 "$WORK/vlan-tagger.py" "${l3}t" "$trunk" "$VLAN_ID" >"$out" 2>&1 &
        pid=$!
        VLAN_TAGGER_PIDS+=("$pid")
        for i in $(seq 50); do
            grep -q '^ready' "$out" && break
            kill -0 "$pid" 2>/dev/null || { cat "$out" >&2; die "VLAN tagger failed in $ns"; }
            sleep 0.1
        done
    done
}

# ----------------------------------------------------------------------------
# Postfix: private instance under $WORK.
# ----------------------------------------------------------------------------
PF_ETC=        # config_directory
setup_postfix() {
    PF_ETC=$WORK/etc
    mkdir -p "$PF_ETC/sasl" "$WORK/spool" "$WORK/data"
    chown postfix "$WORK/data"     # master.lock, TLS caches

    # Local recipients known to the server; anybody else gets 550 5.1.1.
    printf '%s\t%s\n' alice ok bob ok carol ok >"$PF_ETC/local_recipients"

    # Self-signed certificate for golden.test (private key stays in $WORK).
    openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 3650 \
        -subj "/CN=$DOMAIN" -addext "subjectAltName=DNS:$DOMAIN" \
        -keyout "$PF_ETC/golden.key" -out "$PF_ETC/golden.crt" 2>/dev/null
    chmod 0600 "$PF_ETC/golden.key"

    # Cyrus SASL: sasldb with alice@golden.test / Golden-Pass-1.  Debian's
    # Postfix looks for smtpd.conf in $config_directory/sasl (whatever
    # cyrus_sasl_config_path says), so that is where it goes; main.cf points
    # cyrus_sasl_config_path at the same directory for other builds.
    printf '%s' "$SASL_PASS" |
        saslpasswd2 -p -c -u "$DOMAIN" -f "$PF_ETC/sasl/sasldb2" "$SASL_LOGIN"
    chown postfix "$PF_ETC/sasl/sasldb2"
    chmod 0600 "$PF_ETC/sasl/sasldb2"
    cat >"$PF_ETC/sasl/smtpd.conf" <<EOF
pwcheck_method: auxprop
auxprop_plugin: sasldb
sasldb_path: $PF_ETC/sasl/sasldb2
mech_list: PLAIN LOGIN
EOF

    # main.cf: everything explicit, nothing taken from /etc/postfix/main.cf.
    cat >"$PF_ETC/main.cf" <<EOF
# Private Postfix instance of make-postfix-golden.sh (temporary).
compatibility_level = 3.6
queue_directory = $WORK/spool
data_directory = $WORK/data
mail_owner = postfix
setgid_group = postdrop
maillog_file_prefixes = $WORK
maillog_file = $WORK/maillog

myhostname = $DOMAIN
mydomain = $DOMAIN
myorigin = \$mydomain
mydestination = \$myhostname, localhost
mynetworks = 127.0.0.0/8 [::1]/128
inet_interfaces = $SRV4, [$SRV6], $SRV_VLAN4, $SRV_RT4
inet_protocols = all
smtpd_banner = \$myhostname ESMTP smtpscope-golden
biff = no

# Recipients: alice, bob, carol; unknown local users are rejected 550 5.1.1.
local_recipient_maps = texthash:$PF_ETC/local_recipients
unknown_local_recipient_reject_code = 550
alias_maps =
alias_database =
# Accepted mail is thrown away after the final 250.
local_transport = discard:golden-test
default_transport = discard:golden-test
relayhost =

# No DNS: nothing may leave the namespaces.
smtp_dns_support_level = disabled
disable_dns_lookups = yes
smtp_host_lookup = native

# No client/HELO/sender restrictions, no reject_unknown_*.
smtpd_client_restrictions =
smtpd_helo_required = no
smtpd_helo_restrictions =
smtpd_sender_restrictions =
smtpd_recipient_restrictions =
smtpd_relay_restrictions = permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination

# Answer at once: no tarpit, no rate limits.
smtpd_error_sleep_time = 0
smtpd_soft_error_limit = 100
smtpd_hard_error_limit = 100
smtpd_junk_command_limit = 1000
smtpd_client_connection_rate_limit = 0
smtpd_client_connection_count_limit = 0
smtpd_client_event_limit_exceptions = static:all
smtpd_timeout = 60s

# TLS and SASL are switched per case by configure_server().
smtpd_tls_security_level = none
smtpd_tls_cert_file =
smtpd_tls_key_file =
smtpd_tls_auth_only = no
smtpd_tls_loglevel = 1
smtpd_sasl_auth_enable = no
smtpd_sasl_type = cyrus
smtpd_sasl_path = smtpd
cyrus_sasl_config_path = $PF_ETC/sasl
smtpd_sasl_security_options = noanonymous
broken_sasl_auth_clients = no
EOF

    # master.cf: the standard services, all with chroot = n.
    cat >"$PF_ETC/master.cf" <<'EOF'
# service type  private unpriv  chroot  wakeup  maxproc command + args
smtp      inet  n       -       n       -       -       smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
EOF
    chmod 0644 "$PF_ETC/main.cf" "$PF_ETC/master.cf" "$PF_ETC/local_recipients"
}

# configure_server TLS(yes|no) SASL(yes|no): (re)start Postfix with that profile.
SERVER_PROFILE=
configure_server() {
    local tls=$1 sasl=$2
    [[ $SERVER_PROFILE == "$tls/$sasl" ]] && return 0
    stop_server
    if [[ $tls == yes ]]; then
        postconf -c "$PF_ETC" -e \
            "smtpd_tls_security_level = may" \
            "smtpd_tls_cert_file = $PF_ETC/golden.crt" \
            "smtpd_tls_key_file = $PF_ETC/golden.key"
    else
        postconf -c "$PF_ETC" -e \
            "smtpd_tls_security_level = none" \
            "smtpd_tls_cert_file =" "smtpd_tls_key_file ="
    fi
    postconf -c "$PF_ETC" -e "smtpd_sasl_auth_enable = $sasl"
    log "starting Postfix (TLS=$tls, SASL=$sasl)"
    if ! in_srv postfix -c "$PF_ETC" start >>"$WORK/postfix-start.log" 2>&1; then
        # Postfix prints its fatal errors on stderr only if that is a tty.
        script -qc "ip netns exec $SRV_NS postfix -c $PF_ETC check" /dev/null >&2 || true
        tail -n 5 "$WORK/maillog" >&2 2>/dev/null || true
        die "postfix start failed"
    fi
    # Wait until smtpd's listening sockets exist on all four addresses.
    local i n
    for i in $(seq 100); do
        n=$(ip netns exec "$SRV_NS" ss -Hltn 'sport = :25' | wc -l)
        ((n >= 4)) && { SERVER_PROFILE="$tls/$sasl"; return 0; }
        sleep 0.1
    done
    die "Postfix did not start listening on port 25"
}

stop_server() {
    [[ -n $SERVER_PROFILE ]] || return 0
    in_srv postfix -c "$PF_ETC" stop >>"$WORK/postfix-start.log" 2>&1 || true
    SERVER_PROFILE=
    local i
    for i in $(seq 100); do
        [[ -z $(ip netns exec "$SRV_NS" ss -Hltn 'sport = :25') ]] && return 0
        sleep 0.1
    done
    die "Postfix did not stop"
}

# ----------------------------------------------------------------------------
# Capture.
# ----------------------------------------------------------------------------
# start_capture IFACE FILE FILTER [NAMESPACE]: tcpdump in the client
# namespace, or in NAMESPACE.  Several captures may run at once (the routed
# case records both router interfaces); stop_capture stops them all.  In
# live mode each also gets its smtpscope live (start_live), named after FILE.
start_capture() {
    local iface=$1 file=$2 filter=$3 ns=${4:-$CLI_NS}
    local err=$WORK/tcpdump.${#TCPDUMP_PIDS[@]}.err pid
    : >"$err"
    ip netns exec "$ns" tcpdump -i "$iface" -w "$file" -U --immediate-mode -s 0 -Z root \
        "$filter" 2>"$err" &
    pid=$!
    TCPDUMP_PIDS+=("$pid")
    TCPDUMP_ERRS+=("$err")
    local i started=no
    for i in $(seq 100); do
        grep -q 'listening on' "$err" && { started=yes; break; }
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if [[ $started != yes ]]; then
        cat "$err" >&2
        die "tcpdump did not start on $iface in $ns"
    fi
    [[ -z $LIVE_SMTPSCOPE ]] || start_live "$iface" "$(basename "$file" .pcap)" "$ns"
}

# start_live IFACE CASE NAMESPACE: live mode, `smtpscope live` on the
# interface tcpdump has just opened, records to LIVE_OUT/CASE.live.jsonl.
# Running as root it warns about that on stderr once its capture is open
# (just before it installs its signal handlers): wait for that line, then a
# little longer.
start_live() {
    local iface=$1 case=$2 ns=$3
    local out=$LIVE_OUT/$case.live.jsonl err=$WORK/live.${#LIVE_PIDS[@]}.err pid i
    rm -f "$out"            # smtpscope appends to -o
    : >"$err"
    # ip netns exec execs the command: $! is smtpscope itself.
    ip netns exec "$ns" "$LIVE_SMTPSCOPE" live -i "$iface" -f json -o "$out"         --stats-interval 0 2>"$err" &
    pid=$!
    LIVE_PIDS+=("$pid")
    LIVE_ERRS+=("$err")
    LIVE_CASES+=("$case")
    for i in $(seq 50); do
        [[ -s $err ]] && break
        kill -0 "$pid" 2>/dev/null || { cat "$err" >&2; die "smtpscope live did not start on $iface in $ns"; }
        sleep 0.1
    done
    sleep 0.3
    kill -0 "$pid" 2>/dev/null || { cat "$err" >&2; die "smtpscope live stopped on $iface in $ns"; }
    log "$case: smtpscope live on $iface in $ns -> $out"
}

# stop_live: SIGTERM every smtpscope live, wait for each; it writes its
# summary and exits 0 (no findings) or 1 (findings), 2 on a capture error.
stop_live() {
    local i rc
    for i in "${!LIVE_PIDS[@]}"; do
        kill -TERM "${LIVE_PIDS[$i]}" 2>/dev/null || true   # wait reports how it ended
    done
    for i in "${!LIVE_PIDS[@]}"; do
        rc=0
        wait "${LIVE_PIDS[$i]}" || rc=$?
        sed 's/^/   live| /' "${LIVE_ERRS[$i]}" >&2
        ((rc <= 1)) || die "${LIVE_CASES[$i]}: smtpscope live exited with status $rc"
        log "${LIVE_CASES[$i]}: smtpscope live exited with status $rc"
    done
    LIVE_PIDS=()
    LIVE_ERRS=()
    LIVE_CASES=()
}

# wait_closed: until no TCP connection to/from port 25 in the client
# namespace, nor in the server namespace, is still in a state that will send
# or expect a FIN/ACK.  (With a router in between, the server's side can lag
# behind the client's by one forwarded segment.)
wait_closed() {
    local i
    for i in $(seq 100); do
        if ! ip netns exec "$CLI_NS" ss -Htn state connected '( dport = :25 )' |
                grep -qv TIME-WAIT &&
           ! ip netns exec "$SRV_NS" ss -Htn state connected '( sport = :25 )' |
                grep -qv TIME-WAIT; then
            break
        fi
        sleep 0.1
    done
    sleep 0.5   # let the last ACK reach the capture
}

# stop_capture: SIGINT every running tcpdump, wait for each, insist that none
# dropped anything; then, in live mode, stop the smtpscope live processes.
stop_capture() {
    wait_closed
    local pid err
    for pid in "${TCPDUMP_PIDS[@]}"; do
        kill -INT "$pid"
    done
    for pid in "${TCPDUMP_PIDS[@]}"; do
        wait "$pid" || true
    done
    TCPDUMP_PIDS=()
    for err in "${TCPDUMP_ERRS[@]}"; do
        grep -q '^0 packets dropped by kernel' "$err" ||
            { cat "$err" >&2; die "tcpdump dropped packets"; }
    done
    TCPDUMP_ERRS=()
    stop_live
}

# ----------------------------------------------------------------------------
# Facts read back from a capture with tcpdump (independent of smtpscope).
# ----------------------------------------------------------------------------
pcap_linktype() {   # e.g. EN10MB, LINUX_SLL2
    tcpdump -r "$1" -c 1 2>&1 >/dev/null |
        sed -n 's/.*link-type \([A-Z0-9_]*\) .*/\1/p' | head -n1
}

# pcap_text FILE: one line per packet, numeric, with link-level header.
pcap_text() { tcpdump -nn -e -r "$1" 2>/dev/null; }

# pcap_ttls FILE SRC: the distinct IPv4 TTLs of the packets from SRC, each
# followed by a blank ("64 ").
pcap_ttls() {
    tcpdump -nn -v -r "$1" "src host $2" 2>/dev/null |
        sed -n 's/.*(tos [^ ]* ttl \([0-9]*\),.*/\1/p' | sort -u | tr '\n' ' '
}

# check_capture FILE: insists on exactly one TCP connection (one SYN without
# ACK) and prints how it ended: "fin" when a FIN went in both directions,
# otherwise a sentence for the description (close: is then omitted).
check_capture() {
    local file=$1 text syns fin_c fin_s rst_c rst_s
    text=$(tcpdump -nn -r "$file" 2>/dev/null)
    syns=$(grep -c 'Flags \[S\]' <<<"$text" || true)
    [[ $syns == 1 ]] || die "$file: expected exactly one TCP connection, saw $syns SYNs"
    # Client -> server lines read "... > SERVER.25: Flags", server -> client
    # lines "SERVER.25 > CLIENT.PORT: Flags".
    fin_c=$(grep -E '\.25: Flags \[[^]]*F' <<<"$text" | grep -vc '\.25 > ' || true)
    fin_s=$(grep -E '\.25 > .*Flags \[[^]]*F' <<<"$text" | grep -c . || true)
    rst_c=$(grep -E '\.25: Flags \[[^]]*R' <<<"$text" | grep -vc '\.25 > ' || true)
    rst_s=$(grep -E '\.25 > .*Flags \[[^]]*R' <<<"$text" | grep -c . || true)
    if ((fin_c >= 1 && fin_s >= 1)); then
        echo fin
    elif ((fin_s >= 1 && fin_c == 0 && rst_c >= 1)); then
        echo "The server closed with FIN after its 221 and the client answered with RST (no client FIN), so close is omitted."
    else
        echo "TCP end: client FIN $fin_c, server FIN $fin_s, client RST $rst_c, server RST $rst_s, so close is omitted."
    fi
}

# ----------------------------------------------------------------------------
# The oracle: swaks transcript -> expectation fields.
#
# swaks prefixes every transcript line with 4 characters (see "OUTPUT
# OPTIONS" in swaks(1)): "<-  " expected server line, "<** " unexpected
# (error) server line, " -> " client line, "**> " unexpected client line,
# "<~  ", "<~* ", " ~> ", "*~> " the same inside TLS, "=== " swaks info,
# "*** " swaks error.  This awk program replays the client/server lines in
# order and prints YAML for one session (indented for the sessions: list).
# ----------------------------------------------------------------------------
transcript_to_yaml() {
    awk -v password="$SASL_PASS" '
    function q(s,    r, i, c) {     # YAML double-quoted scalar (portable awk)
        for (i = 1; i <= length(s); i++) {
            c = substr(s, i, 1)
            r = r ((c == "\\" || c == "\"") ? "\\" c : c)
        }
        return "\"" r "\""
    }
    function push(list, item) { return list == "" ? item : list ", " item }
    {
        pfx = substr($0, 1, 4); text = substr($0, 5); sub(/\r$/, "", text)
    }
    pfx == "=== " && text ~ /^TLS started with cipher / {
        tls_started = 1; tls_cipher = substr(text, 25); next
    }
    pfx == "<~  " || pfx == "<~* " { tls_rx++; next }
    pfx == " ~> " || pfx == "*~> " { tls_tx++; next }
    pfx == "<-  " || pfx == "<** " {
        # One server line.  "NNN-" continues a reply, "NNN " or "NNN" ends it.
        code = substr(text, 1, 3); sep = substr(text, 4, 1)
        if (!seen_banner) { banner = text; seen_banner = 1 }
        if (collect_ehlo) {
            if (ehlo_first_seen) ehlo_kw = push(ehlo_kw, q(substr(text, 5)))
            ehlo_first_seen = 1
        }
        if (sep == "-") next
        replies = push(replies, code)
        collect_ehlo = 0
        if (code == "354") in_data = 1
        if (in_auth && code != "334") in_auth = 0
        next
    }
    pfx == " -> " || pfx == "**> " {
        if (in_data) {                      # message content, not a command
            if (text == ".") { messages++; in_data = 0 }
            next
        }
        if (in_auth) {                      # base64 answer to a 334 challenge
            auth_lines[++n_auth_lines] = text
            next
        }
        verb = toupper(text); sub(/[ :].*/, "", verb)
        commands = push(commands, verb)
        if ((verb == "EHLO" || verb == "HELO") && helo == "") {
            helo = text
            if (verb == "EHLO") { collect_ehlo = 1; ehlo_first_seen = 0 }
        }
        if (verb == "MAIL" && mail_from == "") {
            mail_from = text; sub(/^[^:]*: */, "", mail_from); sub(/ .*/, "", mail_from)
        }
        if (verb == "RCPT") rcpt_count++
        if (verb == "STARTTLS") starttls_attempted = 1
        if (verb == "AUTH") {
            in_auth = 1
            split(text, w, " "); auth_mech = toupper(w[2])
            if (w[3] != "") auth_lines[++n_auth_lines] = w[3]   # initial response
        }
        next
    }
    END {
        offered = (ehlo_kw ~ /"STARTTLS"/) ? "true" : "false"
        attempted = starttls_attempted ? "true" : "false"
        if (offered == "false") result = "not_offered"
        else if (!starttls_attempted) result = "not_attempted"
        else if (tls_started && tls_rx > 0 && tls_tx > 0) result = "tls_established"
        else result = "FAILED"
        print "    banner: " q(banner)
        print "    helo: " q(helo)
        print "    ehlo_keywords: [" ehlo_kw "]"
        print "    starttls: {offered: " offered ", attempted: " attempted ", result: " result "}"
        if (tls_started) {
            # MAIL/RCPT/DATA happened inside TLS: invisible on the wire, so
            # mail_from, rcpt_count and messages are deliberately omitted.
            print "    # TLS: " tls_cipher "; MAIL/RCPT/DATA were encrypted, so mail_from, rcpt_count and messages are omitted"
            # swaks: "TLSv1.2:ECDHE-RSA-AES256-GCM-SHA384:256"; the cipher IANA
            # name and the certificate are filled in by finish_swaks_case.
            split(tls_cipher, tc, ":")
            print "    tls: {handshake: established, version: " tc[1] ", cipher: @TLSCIPHER@" tc[2] "@, @TLSCERT@}"
        } else {
            if (mail_from != "") print "    mail_from: " q(mail_from)
            print "    rcpt_count: " rcpt_count + 0
            print "    messages: " messages + 0
        }
        if (auth_mech != "") print "    auth: " auth_mech
        print "    @CAPTURE_FACTS@"
        print "    commands: [" commands "]"
        print "    replies: [" replies "]"
        # Secrets for absent_strings: the password itself and every base64
        # line sent during AUTH that decodes to something containing it.
        for (i = 1; i <= n_auth_lines; i++) {
            cmd = "printf %s " q(auth_lines[i]) " | base64 -d 2>/dev/null"
            decoded = ""
            while ((cmd | getline line) > 0) decoded = decoded line
            close(cmd)
            if (index(decoded, password) > 0) secrets = push(secrets, q(auth_lines[i]))
        }
        if (auth_mech != "") print "@ABSENT@[" q(password) (secrets != "" ? ", " secrets : "") "]"
        if (result == "FAILED") exit 3
    }'
}

# ----------------------------------------------------------------------------
# Cross-checks (a mismatch aborts: fix the script, never the expectation).
# ----------------------------------------------------------------------------
# flat LINES: the lines joined by spaces.
flat() { tr '\n' ' ' <<<"$1" | sed 's/ *$//'; }

# yaml_list KEY FILE: the inline list of KEY, one item per line.
yaml_list() {
    sed -n "s/^    $1: \[\(.*\)\]\$/\1/p" "$2" | tr -d ' "' | tr ',' '\n' | sed '/^$/d'
}

# check_postfix_log CASE EXPECT CLIENT_IP: Postfix logs, on disconnect, how
# many of each command it received ("ehlo=1 mail=1 rcpt=1/2 ... commands=N";
# "1/2" is accepted/total, we compare the total).  For sessions without TLS
# this must equal the cleartext command list.
check_postfix_log() {
    local case=$1 expect=$2 client_ip=$3 line want got
    line=$(grep -F "disconnect from unknown[$client_ip]" "$WORK/maillog" | tail -n1)
    [[ -n $line ]] || die "$case: no disconnect line in the Postfix log"
    got=$(sed 's/.*\]//; s/^ *//' <<<"$line" | tr ' ' '\n' | grep -v '^commands=' |
          sed 's/=[0-9]*\/\([0-9]*\)$/=\1/' | sort | tr '\n' ' ')
    want=$(yaml_list commands "$expect" | tr '[:upper:]' '[:lower:]' | sort | uniq -c |
           awk '{print $2 "=" $1}' | sort | tr '\n' ' ')
    if grep -q '^    # TLS: ' "$expect"; then
        log "$case: Postfix says: ${line#*]: } (includes the encrypted commands)"
        grep -q 'starttls=1' <<<"$line" || die "$case: Postfix did not see STARTTLS"
    elif [[ $got != "$want" ]]; then
        die "$case: Postfix log says '$got', expectation says '$want'"
    else
        log "$case: Postfix log agrees: $got"
    fi
}

# check_tshark CASE PCAP EXPECT: if tshark is installed, compare its SMTP
# commands and reply codes with the expectation, and check for lost segments.
check_tshark() {
    local case=$1 pcap=$2 expect=$3
    command -v tshark >/dev/null 2>&1 || { log "$case: tshark not installed, skipping its cross-check"; return 0; }
    local cmds codes want_cmds want_codes lost
    # Commands: one per client line the dissector calls a request (AUTH
    # continuation lines and message content carry no smtp.req.command).
    # Replies: the dissector gives one smtp.response.code per reply, also for
    # multi-line replies.  Several of either can share one frame.
    cmds=$(tshark -r "$pcap" -Y 'smtp.req.command' -T fields -E occurrence=a \
               -E aggregator='|' -e smtp.req.command 2>/dev/null |
           tr '|' '\n' | tr '[:lower:]' '[:upper:]' | sed '/^$/d')
    codes=$(tshark -r "$pcap" -Y 'smtp.response.code' -T fields -E occurrence=a \
                -E aggregator='|' -e smtp.response.code 2>/dev/null |
            tr '|' '\n' | sed '/^$/d')
    # (tshark's smtp.req.command holds at most 4 characters: "STAR" for
    # STARTTLS, so compare the first four.)
    want_cmds=$(yaml_list commands "$expect" | cut -c1-4)
    want_codes=$(yaml_list replies "$expect")
    [[ $cmds == "$want_cmds" ]] ||
        die "$case: tshark commands [$(flat "$cmds")] != expected [$(flat "$want_cmds")]"
    [[ $codes == "$want_codes" ]] ||
        die "$case: tshark replies [$(flat "$codes")] != expected [$(flat "$want_codes")]"
    lost=$(tshark -r "$pcap" -Y 'tcp.analysis.lost_segment || tcp.analysis.ack_lost_segment' 2>/dev/null | wc -l)
    [[ $lost == 0 ]] || die "$case: tshark reports $lost lost segments"
    log "$case: tshark agrees: commands [$(flat "$cmds")] replies [$(flat "$codes")]"
}

# ----------------------------------------------------------------------------
# Writing one case.
# ----------------------------------------------------------------------------
POSTFIX_VERSION=
SWAKS_VERSION=
DEBIAN_MAJOR=

# CAPTURE_SETUP (set by a case for its finish_swaks_case call) says where
# the capture was taken when that is not the client namespace.
generator_line() {   # generator_line CLIENT_PROGRAM
    printf 'Postfix %s / %s on Debian %s, %s' \
        "$POSTFIX_VERSION" "$1" "$DEBIAN_MAJOR" "${CAPTURE_SETUP:-veth in netns, tcpdump on client side}"
}

# write_expect CASE DESCRIPTION SERVER CLIENT GENERATOR SESSION_YAML_FILE
# Assembles pcaps/CASE.expect.yaml from the oracle output plus capture facts.
write_expect() {
    local case=$1 desc=$2 server=$3 client=$4 generator=$5 body=$6
    local pcap=$OUT_DIR/$case.pcap out=$OUT_DIR/$case.expect.yaml
    local linktype close facts absent
    linktype=$(pcap_linktype "$pcap")
    [[ -n $linktype ]] || die "$case: cannot read the link type of $pcap"
    close=$(check_capture "$pcap")
    facts=""
    if [[ $close == fin ]]; then
        facts="close: fin"$'\n'"    "
    else
        desc+=" $close"
    fi
    facts+="gaps: 0"    # tcpdump dropped nothing (checked) and tshark, if present, sees no loss
    absent=$(sed -n 's/^@ABSENT@//p' "$body")
    {
        echo "# Generated by pcaps/make-postfix-golden.sh from swaks's transcript; regenerate, do not hand-edit."
        if [[ $generator == *smtp-source* ]]; then
            echo "# (smtp-source has no transcript: these expectations come from the parameters of the run.)"
        fi
        printf 'description: %s\n' "$(yq "$desc")"
        printf 'generator: %s\n' "$(yq "$generator")"
        printf 'linktype: %s\n' "$linktype"
        echo "sessions:"
        printf '  - server: "%s"\n' "$server"
        printf '    client: "%s"\n' "$client"
        grep -v '^@ABSENT@' "$body" | awk -v facts="$facts" '{ sub(/@CAPTURE_FACTS@/, facts); print }'
        if [[ -n $absent ]]; then printf 'absent_strings: %s\n' "$absent"; fi
    } >"$out"
    log "wrote $out"
}

# swaks_case CASE IFACE FILTER SERVER_ADDR -- SWAKS_ARGS...
# Captures one swaks run; leaves the transcript in $WORK/run/CASE.swaks.
swaks_case() {
    local case=$1 iface=$2 filter=$3 server=$4
    shift 5
    start_capture "$iface" "$WORK/cap/$case.pcap" "$filter"
    swaks_run "$case" "$server" "$@"
    save_capture "$case" "$case"
    swaks_status "$case"
}

# swaks_run CASE SERVER_ADDR SWAKS_ARGS...: one swaks session while the
# captures already started run, then stop_capture.  The transcript goes to
# $WORK/run/CASE.swaks and swaks's exit status to SWAKS_RC.
swaks_run() {
    local case=$1 server=$2
    shift 2
    local msg=$WORK/run/$case.msg tr=$WORK/run/$case.swaks rc=0
    SWAKS_RC=0
    # A small fixed message (swaks turns LF into CRLF and does dot-stuffing).
    # (printf: no final newline, or swaks would send an empty line before the dot)
    printf '%s' "\
From: <$SENDER>
To: <alice@$DOMAIN>
Subject: smtpscope golden capture $case
Message-ID: <$case@$HELO_NAME>
Date: Thu, 01 Jan 2026 00:00:00 +0000

Golden capture $case for smtpscope.
.leading dot (dot-stuffed on the wire)" >"$msg"
    in_cli swaks --server "$server" --port 25 --ehlo "$HELO_NAME" \
        --from "$SENDER" --data - --timeout 20 --output-file "$tr" "$@" <"$msg" || rc=$?
    stop_capture
    SWAKS_RC=$rc
}

# save_capture CAPTURE CASE: $WORK/cap/CAPTURE.pcap becomes pcaps/CASE.pcap.
save_capture() {
    cp "$WORK/cap/$1.pcap" "$OUT_DIR/$2.pcap"
    chmod 0644 "$OUT_DIR/$2.pcap"
}

# swaks_status CASE: show the transcript; a failed swaks aborts unless the
# case expects it (ALLOW_SWAKS_FAILURE=1).
swaks_status() {
    sed 's/^/   | /' "$WORK/run/$1.swaks" >&2
    if [[ $SWAKS_RC != 0 && ${ALLOW_SWAKS_FAILURE:-0} != 1 ]]; then
        die "$1: swaks exited with status $SWAKS_RC"
    fi
}

# fill_tls_expectation CASE BODY: the cipher swaks names (OpenSSL's name)
# becomes its IANA name through `openssl ciphers -stdname`; the certificate
# is the SHA-256 of the DER of $EXPECT_CERT_PEM (what Postfix was given), or,
# without one, hidden (TLS 1.3 encrypts it).
fill_tls_expectation() {
    local case=$1 body=$2 name std cert
    grep -q '@TLSCIPHER@' "$body" || return 0
    name=$(sed -n 's/.*@TLSCIPHER@\([^@]*\)@.*/\1/p' "$body")
    if [[ $name == TLS_* ]]; then
        std=$name
    else
        std=$(openssl ciphers -stdname -V "$name" 2>/dev/null | awk -v n="$name" '$5 == n { print $3; exit }')
    fi
    [[ -n $std ]] || die "$case: openssl does not know the cipher '$name'"
    if [[ -n ${EXPECT_CERT_PEM:-} ]]; then
        cert="cert_sha256: \"$(openssl x509 -in "$EXPECT_CERT_PEM" -outform DER | openssl dgst -sha256 -r | cut -d' ' -f1)\""
    else
        cert="cert_hidden: true, cert_sha256: null"
    fi
    sed -i "s|@TLSCIPHER@[^@]*@|$std|; s|@TLSCERT@|$cert|" "$body"
}

# finish_swaks_case CASE DESCRIPTION SERVER CLIENT CLIENT_IP
finish_swaks_case() {
    local case=$1 desc=$2 server=$3 client=$4 client_ip=$5
    local body=$WORK/run/$case.yaml
    transcript_to_yaml <"$WORK/run/$case.swaks" >"$body" ||
        die "$case: the swaks transcript does not show an established TLS session"
    fill_tls_expectation "$case" "$body"
    write_expect "$case" "$desc" "$server" "$client" \
        "$(generator_line "swaks $SWAKS_VERSION")" "$body"
    check_postfix_log "$case" "$OUT_DIR/$case.expect.yaml" "$client_ip"
    check_tshark "$case" "$OUT_DIR/$case.pcap" "$OUT_DIR/$case.expect.yaml"
}

# check_certificate_on_wire CASE PCAP PEM: with tshark, the DER certificate in
# the cleartext TLS handshake must be PEM's (SHA-256); with PEM empty, there
# must be no cleartext certificate at all (TLS 1.3 encrypts it).
check_certificate_on_wire() {
    local case=$1 pcap=$2 pem=$3 wire want
    command -v tshark >/dev/null 2>&1 || return 0
    wire=$(tshark -r "$pcap" -Y tls.handshake.certificate -T fields \
               -e tls.handshake.certificate 2>/dev/null | tr -d ':\n')
    if [[ -z $pem ]]; then
        [[ -z $wire ]] || die "$case: a certificate is visible in the clear"
        log "$case: tshark sees no cleartext certificate, as expected"
        return 0
    fi
    [[ -n $wire ]] || die "$case: tshark finds no certificate in the TLS handshake"
    wire=$(perl -ne 'chomp; print pack("H*", $_)' <<<"$wire" | openssl dgst -sha256 -r | cut -d' ' -f1)
    want=$(openssl x509 -in "$pem" -outform DER | openssl dgst -sha256 -r | cut -d' ' -f1)
    [[ $wire == "$want" ]] || die "$case: certificate on the wire ($wire) is not $pem ($want)"
    log "$case: tshark: the certificate on the wire is $(basename "$pem") (sha256 $want)"
}

# The TLS protocol swaks reports ("=== TLS started with cipher TLSv1.2:...").
assert_tls_version() {
    local case=$1 want=$2 got
    got=$(sed -n 's/^=== TLS started with cipher \([^:]*\):.*/\1/p' "$WORK/run/$case.swaks")
    [[ $got == "$want" ]] || die "$case: negotiated '$got', wanted $want"
}

# Everything in the cleartext except the first reply line must be as the case
# intends; these guard against a swaks/Postfix change silently altering a case.
assert_transcript() {   # assert_transcript CASE EXTENDED_REGEX
    grep -qE -- "$2" "$WORK/run/$1.swaks" || die "$1: transcript lacks /$2/"
}

V4_FILTER='tcp port 25'
S4="$SRV4:25" C4="$CLI4:*"

# ----------------------------------------------------------------------------
# The cases.
# ----------------------------------------------------------------------------
case_postfix_plain() {
    local c=postfix-plain
    configure_server no no
    swaks_case $c "$CLI_IF" "$V4_FILTER" "$SRV4" -- --to "alice@$DOMAIN"
    finish_swaks_case $c "Plain ESMTP over IPv4 without TLS (server has no certificate, no STARTTLS keyword): EHLO, one message from sender@client.test to alice@golden.test accepted with 250, QUIT." \
        "$S4" "$C4" "$CLI4"
    editcap -F pcapng "$OUT_DIR/$c.pcap" "$OUT_DIR/$c.pcapng"
    chmod 0644 "$OUT_DIR/$c.pcapng"
}

case_postfix_starttls_notattempted() {
    local c=postfix-starttls-notattempted
    configure_server yes no
    swaks_case $c "$CLI_IF" "$V4_FILTER" "$SRV4" -- --to "alice@$DOMAIN"
    assert_transcript $c '^<-  250-STARTTLS$'
    finish_swaks_case $c "Server offers STARTTLS, but swaks (without -tls) never sends it: the whole session, one message to alice@golden.test, stays in cleartext." \
        "$S4" "$C4" "$CLI4"
}

case_postfix_starttls_tls12() {
    local c=postfix-starttls-tls12
    configure_server yes no
    swaks_case $c "$CLI_IF" "$V4_FILTER" "$SRV4" -- --to "alice@$DOMAIN" \
        -tls --tls-protocol tlsv1_2
    assert_tls_version $c TLSv1.2
    # The certificate is sent in the clear in a TLS 1.2 handshake; keep its
    # public part so a test can compare its SHA-256 fingerprint.
    openssl x509 -in "$PF_ETC/golden.crt" -out "$OUT_DIR/postfix-starttls.cert.pem"
    chmod 0644 "$OUT_DIR/postfix-starttls.cert.pem"
    check_certificate_on_wire $c "$OUT_DIR/$c.pcap" "$OUT_DIR/postfix-starttls.cert.pem"
    EXPECT_CERT_PEM=$OUT_DIR/postfix-starttls.cert.pem finish_swaks_case $c "EHLO, STARTTLS answered 220, then a TLS 1.2 handshake (server certificate for golden.test, see postfix-starttls.cert.pem, visible in cleartext) and the rest of the session (EHLO, one message, QUIT) encrypted." \
        "$S4" "$C4" "$CLI4"
    local fp
    fp=$(openssl x509 -in "$OUT_DIR/postfix-starttls.cert.pem" -noout -fingerprint -sha256 | cut -d= -f2)
    sed -i "s/^linktype:/# server certificate SHA-256 fingerprint: $fp\nlinktype:/" "$OUT_DIR/$c.expect.yaml"
}

case_postfix_starttls_tls13() {
    local c=postfix-starttls-tls13
    configure_server yes no
    swaks_case $c "$CLI_IF" "$V4_FILTER" "$SRV4" -- --to "alice@$DOMAIN" \
        -tls --tls-protocol tlsv1_3
    assert_tls_version $c TLSv1.3
    check_certificate_on_wire $c "$OUT_DIR/$c.pcap" ""
    finish_swaks_case $c "EHLO, STARTTLS answered 220, then a TLS 1.3 handshake (certificate encrypted) and the rest of the session (EHLO, one message, QUIT) encrypted." \
        "$S4" "$C4" "$CLI4"
}

case_postfix_pipelining() {
    local c=postfix-pipelining
    configure_server no no
    swaks_case $c "$CLI_IF" "$V4_FILTER" "$SRV4" -- --to "alice@$DOMAIN" --pipeline
    assert_transcript $c '^<-  250-PIPELINING$'
    # The point of the case: MAIL, RCPT and DATA in ONE client segment.
    local batch="MAIL FROM:<$SENDER>"$'\r\n'"RCPT TO:<alice@$DOMAIN>"$'\r\n'"DATA"$'\r\n'
    tcpdump -nn -r "$OUT_DIR/$c.pcap" 2>/dev/null |
        grep -q "length ${#batch}: SMTP: MAIL FROM:<$SENDER>" ||
        die "$c: MAIL/RCPT/DATA did not go in one segment of ${#batch} bytes"
    finish_swaks_case $c "ESMTP with PIPELINING: swaks sends MAIL FROM, RCPT TO and DATA in one TCP segment, then reads the three replies (250, 250, 354); one message to alice@golden.test." \
        "$S4" "$C4" "$CLI4"
}

case_postfix_auth_plain() {
    local c=postfix-auth-plain
    configure_server yes yes
    swaks_case $c "$CLI_IF" "$V4_FILTER" "$SRV4" -- --to "alice@$DOMAIN" \
        --auth PLAIN --auth-user "$SASL_USER" --auth-password "$SASL_PASS"
    assert_transcript $c '^<-  235 '
    finish_swaks_case $c "AUTH PLAIN in cleartext (STARTTLS offered but not used, smtpd_tls_auth_only = no): the credentials go as the initial response on the AUTH line, 235, then one message to alice@golden.test." \
        "$S4" "$C4" "$CLI4"
}

case_postfix_auth_login() {
    local c=postfix-auth-login
    configure_server yes yes
    swaks_case $c "$CLI_IF" "$V4_FILTER" "$SRV4" -- --to "alice@$DOMAIN" \
        --auth LOGIN --auth-user "$SASL_USER" --auth-password "$SASL_PASS"
    assert_transcript $c '^<-  235 '
    finish_swaks_case $c "AUTH LOGIN in cleartext (STARTTLS offered but not used): two 334 challenges answered with base64 user name and password, 235, then one message to alice@golden.test." \
        "$S4" "$C4" "$CLI4"
}

case_postfix_multi_rcpt() {
    local c=postfix-multi-rcpt
    configure_server no no
    swaks_case $c "$CLI_IF" "$V4_FILTER" "$SRV4" -- \
        --to "alice@$DOMAIN,bob@$DOMAIN,carol@$DOMAIN"
    finish_swaks_case $c "One message with three accepted recipients (alice, bob, carol @golden.test): three RCPT TO, each answered 250." \
        "$S4" "$C4" "$CLI4"
}

case_postfix_rcpt_rejected() {
    local c=postfix-rcpt-rejected
    configure_server no no
    # swaks exits non-zero when any recipient is rejected; that is expected.
    ALLOW_SWAKS_FAILURE=1 swaks_case $c "$CLI_IF" "$V4_FILTER" "$SRV4" -- \
        --to "alice@$DOMAIN,nosuchuser@$DOMAIN"
    log "$c: swaks exit status $SWAKS_RC"
    assert_transcript $c '^<\*\* 550 5\.1\.1 <nosuchuser@golden\.test>'
    RCPT_REJECTED_NOTE=""
    if grep -q '^ -> DATA' "$WORK/run/$c.swaks"; then
        RCPT_REJECTED_NOTE="swaks goes on with DATA for the accepted recipient and the message is accepted with 250."
    else
        RCPT_REJECTED_NOTE="swaks gives up after the rejection and sends no DATA."
    fi
    finish_swaks_case $c "Two recipients: alice@golden.test accepted (250), nosuchuser@golden.test rejected with 550 5.1.1 (User unknown in local recipient table); $RCPT_REJECTED_NOTE" \
        "$S4" "$C4" "$CLI4"
}

case_postfix_multi_message() {
    local c=postfix-multi-message n=3
    configure_server no no
    start_capture "$CLI_IF" "$WORK/cap/$c.pcap" "$V4_FILTER"
    # smtp-source(1): -d keep the connection for the next message; -m N
    # messages; -M name for HELO; -f/-t sender/recipient; -S subject; -l 64
    # bytes of body.  It has no transcript; its stderr is kept for errors.
    in_cli smtp-source -4 -d -m "$n" -M "$HELO_NAME" -f "$SENDER" -t "alice@$DOMAIN" \
        -S "smtpscope golden $c" -l 64 "inet:$SRV4:25" 2>"$WORK/run/$c.smtp-source" ||
        { cat "$WORK/run/$c.smtp-source" >&2; die "$c: smtp-source failed"; }
    stop_capture
    cp "$WORK/cap/$c.pcap" "$OUT_DIR/$c.pcap"
    chmod 0644 "$OUT_DIR/$c.pcap"
    # Expectations from the parameters: smtp-source speaks HELO, not EHLO
    # (its -o option is documented as "don't send HELO"), then n times
    # MAIL/RCPT/DATA/content/dot over the same connection (-d), then QUIT.
    local body=$WORK/run/$c.yaml cmds="HELO" reps="220, 250" i
    for ((i = 0; i < n; i++)); do
        cmds+=", MAIL, RCPT, DATA"
        reps+=", 250, 250, 354, 250"
    done
    cmds+=", QUIT"
    reps+=", 221"
    cat >"$body" <<EOF
    banner: "$EXPECTED_BANNER"
    helo: "HELO $HELO_NAME"
    ehlo_keywords: []
    starttls: {offered: false, attempted: false, result: not_offered}
    mail_from: "<$SENDER>"
    rcpt_count: $n
    messages: $n
    @CAPTURE_FACTS@
    commands: [$cmds]
    replies: [$reps]
EOF
    write_expect $c "Postfix's smtp-source sends $n messages over ONE connection (-d -m $n): HELO client.test (no EHLO, so no keywords), then MAIL FROM:<sender@client.test> / RCPT TO:<alice@golden.test> / DATA / message / 250 three times, then QUIT." \
        "$S4" "$C4" "$(generator_line "smtp-source (Postfix $POSTFIX_VERSION)")" "$body"
    check_postfix_log $c "$OUT_DIR/$c.expect.yaml" "$CLI4"
    check_tshark $c "$OUT_DIR/$c.pcap" "$OUT_DIR/$c.expect.yaml"
}

case_postfix_ipv6() {
    local c=postfix-ipv6
    configure_server no no
    swaks_case $c "$CLI_IF" "$V4_FILTER" "$SRV6" -- --to "alice@$DOMAIN" -6
    finish_swaks_case $c "Like postfix-plain but over IPv6 ([fd00:99::2] to [fd00:99::1]:25): EHLO, one message to alice@golden.test, QUIT." \
        "[$SRV6]:25" "[$CLI6]:*" "$CLI6"
}

case_postfix_vlan() {
    local c=postfix-vlan
    configure_server no no
    # Captured on the parent veth, so every frame carries the 802.1Q tag.
    swaks_case $c "$CLI_IF" "vlan $VLAN_ID and tcp port 25" "$SRV_VLAN4" -- --to "alice@$DOMAIN"
    local tagged total
    total=$(pcap_text "$OUT_DIR/$c.pcap" | grep -c . || true)
    tagged=$(pcap_text "$OUT_DIR/$c.pcap" | grep -c "802.1Q.*vlan $VLAN_ID," || true)
    ((total > 0 && tagged == total)) || die "$c: only $tagged of $total frames carry the VLAN $VLAN_ID tag"
    log "$c: all $total frames carry 802.1Q vlan $VLAN_ID"
    local how="by kernel 802.1Q subinterfaces"
    [[ $VLAN_MODE == userspace ]] &&
        how="by the script's userspace 802.1Q tagger, because this kernel has no 8021q support (the frames on the veth are real tagged Ethernet frames all the same)"
    finish_swaks_case $c "Like postfix-plain but over VLAN $VLAN_ID ($CLI_VLAN4 to $SRV_VLAN4:25), captured on the parent veth so every frame carries an 802.1Q tag, inserted $how: EHLO, one message to alice@golden.test, QUIT." \
        "$SRV_VLAN4:25" "$CLI_VLAN4:*" "$CLI_VLAN4"
}

case_postfix_any() {
    local c=postfix-any
    configure_server no no
    swaks_case $c any "$V4_FILTER" "$SRV4" -- --to "alice@$DOMAIN"
    finish_swaks_case $c "Like postfix-plain but captured with tcpdump -i any in the client namespace (Linux cooked capture): EHLO, one message to alice@golden.test, QUIT." \
        "$S4" "$C4" "$CLI4"
}

case_postfix_routed() {
    local c=postfix-routed ci=postfix-routed-inside
    configure_server no no
    # One session, two vantages: tcpdump on both router interfaces at once.
    # ssg-r1 (facing the client) is the outside capture, ssg-r2 (facing the
    # server) the inside one.  The router neither translates nor filters, so
    # both see the same addresses, ports, sequence numbers and payload; the
    # IP TTL is one lower on the far side of the router, and the Ethernet
    # addresses are those of each link.
    start_capture "$RTR_CLI_IF" "$WORK/cap/$c.pcap" "$V4_FILTER" "$RTR_NS"
    start_capture "$RTR_SRV_IF" "$WORK/cap/$ci.pcap" "$V4_FILTER" "$RTR_NS"
    swaks_run $c "$SRV_RT4" --to "alice@$DOMAIN"
    save_capture $c $c
    save_capture $ci $ci
    swaks_status $c
    # The router must have forwarded the session, not merely seen it: the
    # same number of packets on both interfaces, the client's packets one hop
    # older on the inside, the server's one hop older on the outside.
    local n_out n_in ttl_c_out ttl_c_in ttl_s_out ttl_s_in
    n_out=$(pcap_text "$OUT_DIR/$c.pcap" | grep -c . || true)
    n_in=$(pcap_text "$OUT_DIR/$ci.pcap" | grep -c . || true)
    ((n_out > 0 && n_out == n_in)) || die "$c: $n_out packets outside, $n_in inside"
    ttl_c_out=$(pcap_ttls "$OUT_DIR/$c.pcap" "$CLI_RT4")
    ttl_c_in=$(pcap_ttls "$OUT_DIR/$ci.pcap" "$CLI_RT4")
    ttl_s_out=$(pcap_ttls "$OUT_DIR/$c.pcap" "$SRV_RT4")
    ttl_s_in=$(pcap_ttls "$OUT_DIR/$ci.pcap" "$SRV_RT4")
    [[ $ttl_c_out == "64 " && $ttl_c_in == "63 " && $ttl_s_in == "64 " && $ttl_s_out == "63 " ]] ||
        die "$c: TTLs client->server outside '$ttl_c_out' inside '$ttl_c_in', server->client inside '$ttl_s_in' outside '$ttl_s_out'"
    log "$c: $n_out packets on each side; TTL 64 -> 63 through the router in both directions"
    # Both expect files come from the same transcript: the dialogue is the
    # same on both sides.  No NAT, so the client is $CLI_RT4 on both.
    cp "$WORK/run/$c.swaks" "$WORK/run/$ci.swaks"
    CAPTURE_SETUP="veths through a router netns (ip_forward=1, no NAT), tcpdump on the router's client-facing veth (outside)" \
        finish_swaks_case $c "Like postfix-plain but routed: swaks in the client namespace ($CLI_RT4) reaches Postfix ($SRV_RT4:25) through a plain IPv4 router namespace (ip_forward=1, no NAT, no filtering). This is the OUTSIDE capture, taken on the router's client-facing veth; postfix-routed-inside.pcap is the same session on the server-facing veth, taken at the same time. EHLO, one message to alice@golden.test, QUIT." \
        "$SRV_RT4:25" "$CLI_RT4:*" "$CLI_RT4"
    CAPTURE_SETUP="veths through a router netns (ip_forward=1, no NAT), tcpdump on the router's server-facing veth (inside)" \
        finish_swaks_case $ci "The INSIDE capture of postfix-routed: the same session taken at the same time on the router's server-facing veth. No NAT, so the client is $CLI_RT4 here too; only the IP TTL and the Ethernet addresses differ from the outside capture (the client's packets have passed the router here, TTL 63 instead of 64; the server's have not yet, TTL 64 instead of 63). EHLO, one message to alice@golden.test, QUIT." \
        "$SRV_RT4:25" "$CLI_RT4:*" "$CLI_RT4"
}

# ----------------------------------------------------------------------------
# Main.
# ----------------------------------------------------------------------------
main() {
    if [[ ${1:-} == --check ]]; then
        check_prerequisites
        log "all prerequisites are installed"
        return 0
    fi
    check_prerequisites
    check_no_leftovers
    setup_output
    local -a cases=("$@")
    ((${#cases[@]})) || cases=("${ALL_CASES[@]}")
    local c
    for c in "${cases[@]}"; do
        [[ " ${ALL_CASES[*]} " == *" $c "* ]] || die "unknown case '$c' (known: ${ALL_CASES[*]})"
    done

    trap cleanup EXIT
    trap 'exit 130' INT TERM HUP
    WORK=$(mktemp -d /tmp/smtpscope-golden.XXXXXX)
    chmod 0755 "$WORK"              # Postfix's unprivileged daemons need to traverse it
    mkdir -p "$WORK/cap" "$WORK/run"
    printf 'nameserver 127.0.0.1\noptions timeout:1 attempts:1\n' >"$WORK/resolv.conf"

    POSTFIX_VERSION=$(postconf -d -h mail_version)
    SWAKS_VERSION=$(swaks --version 2>/dev/null | awk '/^swaks version/ {print $3; exit}')
    DEBIAN_MAJOR=$(cut -d. -f1 /etc/debian_version 2>/dev/null || echo '?')
    log "Postfix $POSTFIX_VERSION, swaks $SWAKS_VERSION, Debian $DEBIAN_MAJOR; output in $OUT_DIR"

    setup_network
    setup_postfix
    for c in "${cases[@]}"; do
        log "--- $c"
        "case_${c//-/_}"
    done
    stop_server
    log "done: ${cases[*]}"
}

# Run main only when executed; pcaps/make-postfix-tunnel.sh sources this file
# for its functions and constants.
if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
    main "$@"
fi
