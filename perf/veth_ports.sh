#!/usr/bin/env bash
# weir-perf on the kind of port the testbed runs Weir on: an af_packet port on
# each end of a veth pair, in a network namespace of its own, instead of the
# in-memory net_ring. The loop under test (the bare loop, or Weir's worker)
# owns one end; weir-perf's traffic source owns the other, so every packet
# crosses the kernel twice per round trip, as it does in front of a real
# appliance on these ports. Arguments go to weir-perf; the default keeps 256
# packets in flight (af_packet's rings hold 512 frames).
#
#   perf/veth_ports.sh --seconds 0.5 --rounds 3 --only established
#
# Run as root, after `cargo build --release`. Removes what it creates.
set -euo pipefail
cd "$(dirname "$0")/.."

bin=target/release/weir-perf
[ -x "$bin" ] || { echo "veth_ports.sh: build first (cargo build --release)" >&2; exit 1; }
ns="weirperf$$"
a=wpa$$ b=wpb$$

cleanup() { ip netns del "$ns" 2>/dev/null || true; }
trap cleanup EXIT

ip netns add "$ns"
ip -n "$ns" link set lo up
ip -n "$ns" link add "$a" type veth peer name "$b"
for i in "$a" "$b"; do
  # DPDK owns both ends: no kernel address, no IPv6 chatter, no offloads that
  # would hand af_packet partial checksums or merged frames.
  ip netns exec "$ns" sysctl -qw "net.ipv6.conf.$i.disable_ipv6=1"
  ip netns exec "$ns" ethtool -K "$i" tx off gro off >/dev/null 2>&1 || true
  ip -n "$ns" link set "$i" up
done

args=("$@")
case " $* " in *" --in-flight "*) ;; *) args+=(--in-flight 256) ;; esac
ip netns exec "$ns" "$bin" --veth "$a,$b" "${args[@]}"
