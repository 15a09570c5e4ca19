#!/usr/bin/env bash
# The netns testbed: one L2 segment (a bridge in its own namespace) joining
#   lb  - where weir runs; its veth end "wan0" has no kernel address (DPDK owns it)
#   cl  - a client, 198.18.0.10 / 2001:db8::10
#   b1..b3 - backends running real HTTP servers (port 80) and UDP servers (5353),
#            198.18.0.11-13 / 2001:db8::11-13, holding the direct-server-return
#            VIPs 198.18.0.200 and 2001:db8::200 on their loopback
# With "split", a second segment (bridge br1) joins lb's "back0" (DPDK-owned, MTU
# 1500) and the backends' eth1 (198.19.0.11-13, 2001:db8:1::11-13), for a weir with
# a client-side and a backend-side port of different MTUs.
# Every name carries the run id, so runs side by side do not collide; `down`
# removes everything `up` made.
#
#   scripts/testbed.sh up RUN_ID [split]  create (prints the namespace prefix)
#   scripts/testbed.sh down RUN_ID    remove
#   scripts/testbed.sh ns RUN_ID HOST print the namespace name of HOST (lb, cl, b1..b3)
set -euo pipefail

usage() { echo "usage: $0 up RUN_ID [split] | down RUN_ID | ns RUN_ID HOST" >&2; exit 2; }
[ $# -ge 2 ] || usage
cmd=$1 rid=$2 split=${3:-}
[[ $rid =~ ^[a-z0-9]{1,6}$ ]] || { echo "RUN_ID: 1-6 lowercase letters/digits" >&2; exit 2; }
HERE=$(cd "$(dirname "$0")" && pwd)
P="wr$rid"                 # interface prefix (<= 8 chars; names stay under 15)
state="/tmp/weir-testbed-$rid"
HOSTS=(lb cl b1 b2 b3)
declare -A V4=([cl]=198.18.0.10 [b1]=198.18.0.11 [b2]=198.18.0.12 [b3]=198.18.0.13)
declare -A V6=([cl]=2001:db8::10 [b1]=2001:db8::11 [b2]=2001:db8::12 [b3]=2001:db8::13)

ns() { echo "$P-$1"; }
inns() { local n; n=$(ns "$1"); shift; ip netns exec "$n" "$@"; }

up() {
  mkdir -p "$state"
  ip netns add "$(ns sw)"
  inns sw ip link set lo up
  # br_netfilter (loaded for docker on many hosts) would validate and drop
  # malformed IP frames on the bridge; the tests need them to reach weir.
  for k in arptables iptables ip6tables; do
    inns sw sysctl -qw "net.bridge.bridge-nf-call-$k=0" 2>/dev/null || true
  done
  inns sw ip link add br0 type bridge mcast_snooping 0
  inns sw sysctl -qw net.ipv6.conf.br0.disable_ipv6=1
  inns sw ip link set br0 up
  for h in "${HOSTS[@]}"; do
    ip netns add "$(ns "$h")"
    inns "$h" ip link set lo up
    ip link add "$P$h" type veth peer name "$P${h}s"
    ip link set "$P${h}s" netns "$(ns sw)"
    # The segment carries jumbo frames; hosts keep MTU 1500 unless a test raises it.
    inns sw ip link set "$P${h}s" mtu 9000 master br0 up
    local ifname=eth0
    [ "$h" = lb ] && ifname=wan0
    ip link set "$P$h" netns "$(ns "$h")" name "$ifname"
    [ "$h" = lb ] && inns lb ip link set wan0 mtu 9000
    if [ "$h" = lb ]; then
      # DPDK owns this end: no kernel address, no IPv6 chatter from the kernel.
      inns lb sysctl -qw net.ipv6.conf.wan0.disable_ipv6=1
      inns lb ip link set wan0 up
      continue
    fi
    # af_packet hands over partial checksums unless TX offload is off.
    inns "$h" ethtool -K eth0 tx off >/dev/null
    inns "$h" ip addr add "${V4[$h]}/24" dev eth0
    inns "$h" ip -6 addr add "${V6[$h]}/64" dev eth0 nodad
    inns "$h" ip link set eth0 up
  done
  for b in b1 b2 b3; do
    # DR: the VIP on the loopback, never announced or answered for on eth0.
    inns "$b" sysctl -qw net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2
    inns "$b" ip addr add 198.18.0.200/32 dev lo
    inns "$b" ip -6 addr add 2001:db8::200/128 dev lo
    # Not through the inns function: `ip netns exec` execs python, so $! is its pid.
    ip netns exec "$(ns "$b")" /usr/bin/python3 "$HERE/backend.py" "$b" >"$state/backend-$b.log" 2>&1 &
    echo $! > "$state/backend-$b.pid"
  done
  [ "$split" = split ] && split_segment
  # Wait until every backend answers locally.
  for b in b1 b2 b3; do
    for _ in $(seq 50); do
      inns "$b" curl -s -o /dev/null "http://${V4[$b]}/" && break
      sleep 0.1
    done
  done
  echo "$P"
}

# The backend-side segment of a split testbed.
split_segment() {
  inns sw ip link add br1 type bridge mcast_snooping 0
  inns sw sysctl -qw net.ipv6.conf.br1.disable_ipv6=1
  inns sw ip link set br1 up
  ip link add "${P}lbk" type veth peer name "${P}lbks"
  ip link set "${P}lbks" netns "$(ns sw)"
  inns sw ip link set "${P}lbks" master br1 up
  ip link set "${P}lbk" netns "$(ns lb)" name back0
  inns lb sysctl -qw net.ipv6.conf.back0.disable_ipv6=1
  inns lb ip link set back0 up
  local i=1
  for b in b1 b2 b3; do
    ip link add "$P${b}k" type veth peer name "$P${b}ks"
    ip link set "$P${b}ks" netns "$(ns sw)"
    inns sw ip link set "$P${b}ks" master br1 up
    ip link set "$P${b}k" netns "$(ns "$b")" name eth1
    inns "$b" ethtool -K eth1 tx off >/dev/null
    inns "$b" ip addr add "198.19.0.1$i/24" dev eth1
    inns "$b" ip -6 addr add "2001:db8:1::1$i/64" dev eth1 nodad
    inns "$b" ip link set eth1 up
    i=$((i + 1))
  done
}

down() {
  for f in "$state"/*.pid; do
    [ -e "$f" ] || continue
    kill "$(cat "$f")" 2>/dev/null || true
  done
  for h in "${HOSTS[@]}" sw; do
    local n; n=$(ns "$h")
    if ip netns list | grep -qw "$n"; then
      # Anything still running in the namespace goes with it.
      for pid in $(ip netns pids "$n" 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
      ip netns del "$n"
    fi
  done
  # veth ends left in the root namespace (a failed `up`).
  for h in "${HOSTS[@]}" lbk b1k b2k b3k; do
    ip link del "$P$h" 2>/dev/null || true
  done
  rm -rf "$state"
}

case $cmd in
  up) [ -z "$split" ] || [ "$split" = split ] || usage; up ;;
  down) down ;;
  ns) [ $# -eq 3 ] || usage; ns "$3" ;;
  *) usage ;;
esac
