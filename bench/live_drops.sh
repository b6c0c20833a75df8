#!/bin/sh
# live_drops.sh - at what replay rate does `smtpscope live` start dropping?
#
# Replays a capture with tcpreplay into one end of a veth pair (in a network
# namespace of its own: nothing leaves it) at each rate given, captures on the
# other end with `smtpscope live`, and prints the kernel's drop count, the
# sessions reported and how many of them have gaps.  Run by hand as root;
# never part of the test suite (timings depend on the machine and its load).
#
# Usage: [LIVE_ARGS="-B 64"] bench/live_drops.sh SMTPSCOPE CAPTURE RATE...
#   RATE: Mbit/s for tcpreplay --mbps, or "top" for --topspeed.
# The capture used in docs/PERFORMANCE.md: smtpscope-synth -o live-load.pcap
#   bench/scenarios/live-load.yaml
bin=$1; pcap=$2; shift 2
ns=scmeas
ip netns del $ns 2>/dev/null
ip netns add $ns; ip -n $ns link add va type veth peer name vb
for d in va vb; do ip netns exec $ns sysctl -qw net.ipv6.conf.$d.disable_ipv6=1; ip -n $ns link set $d up; done
for rate in "$@"; do
  ip netns exec $ns $bin live -i vb ${LIVE_ARGS:-} -q -f json -o /tmp/meas.json --stats-interval 0 2>/dev/null &
  pid=$!; sleep 1
  if [ "$rate" = top ]; then opt=--topspeed; else opt="--mbps=$rate"; fi
  res=$(ip netns exec $ns tcpreplay -i va $opt "$pcap" 2>&1 | grep -E "Actual:|Rated:" | tr '\n' ' ')
  sleep 2; kill -TERM $pid; wait $pid
  drops=$(grep '"type":"summary"' /tmp/meas.json | sed 's/.*"drops":\([0-9]*\).*/\1/')
  sess=$(grep -c '"type":"session"' /tmp/meas.json)
  gaps=$(grep '"type":"session"' /tmp/meas.json | grep -vc '"gaps":0,')
  echo "rate=$rate drops=$drops sessions=$sess with_gaps=$gaps :: $res"
  rm -f /tmp/meas.json
done
ip netns del $ns
