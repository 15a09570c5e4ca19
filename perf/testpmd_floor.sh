#!/usr/bin/env bash
# What DPDK's own forwarders cost on the kind of port weir-perf measures on: runs
# dpdk-testpmd (Debian's dpdk-dev) on a net_ring port looped onto itself, in its
# forwarding modes, and prints cycles per packet (testpmd's --record-core-cycles
# figure) and each mode's ratio to the io run of the same round. It shows how far
# above a bare receive-and-transmit loop a forwarder that touches each packet
# lands on an in-memory port, whatever it does with the packet.
#
#   perf/testpmd_floor.sh                 (ROUNDS=3 SECONDS_PER_RUN=2 by default)
#   ROUNDS=5 MODES="io macswap 5tswap" perf/testpmd_floor.sh
#
# Needs root (hugepages when free, else --no-huge) and two cores: testpmd's main
# lcore and one forwarding lcore.
set -euo pipefail

ROUNDS=${ROUNDS:-3}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-2}
read -r -a MODES <<<"${MODES:-io macswap mac csum 5tswap}"
TESTPMD=${TESTPMD:-dpdk-testpmd}

if ! command -v "$TESTPMD" >/dev/null 2>&1; then
  echo "testpmd_floor.sh: installing dpdk-dev (it holds dpdk-testpmd)" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends dpdk-dev >/dev/null
fi

# 256 MiB from hugepages when that many are free (as weir-perf does), else 4 KiB pages.
free_mb=$(($(awk '/HugePages_Free/ {print $2}' /proc/meminfo) * 2))
if [ "$free_mb" -ge 256 ]; then mem=(-m 256); else mem=(--no-huge -m 256); fi

# One run: cycles per packet of testpmd forwarding in mode $1 for SECONDS_PER_RUN.
# 64 bursts of 32 packets circulate (tx_first), as weir-perf keeps 2048 in flight.
run_mode() {
  local out
  out=$( (
    echo "set fwd $1"
    echo "start tx_first 64"
    sleep "$SECONDS_PER_RUN"
    echo "stop"
    sleep 1
    echo "quit"
  ) | timeout $((SECONDS_PER_RUN + 30)) "$TESTPMD" -l 0-1 --no-pci --in-memory \
    --vdev=net_ring0 "${mem[@]}" --log-level=lib.eal:error -- -i --port-topology=loop \
    --record-core-cycles --nb-cores=1 --rxd=4096 --txd=4096 2>&1) || true
  sed -n 's/.*CPU cycles\/packet=\([0-9.]*\).*/\1/p' <<<"$out" | tail -1
}

# --in-memory leaves only an empty runtime directory behind; take it away too.
trap 'rmdir /var/run/dpdk/rte /var/run/dpdk 2>/dev/null || true' EXIT

declare -A cycles
for r in $(seq 1 "$ROUNDS"); do
  for m in "${MODES[@]}"; do
    c=$(run_mode "$m")
    if [ -z "$c" ]; then
      echo "testpmd_floor.sh: testpmd printed no cycles for mode $m" >&2
      exit 1
    fi
    cycles[$r,$m]=$c
  done
done

echo "dpdk-testpmd on net_ring (looped), cycles per packet; ratio to the io run of the same round"
printf '%-10s' mode
for r in $(seq 1 "$ROUNDS"); do printf '%12s %7s' "run $r" ratio; done
echo
for m in "${MODES[@]}"; do
  printf '%-10s' "$m"
  for r in $(seq 1 "$ROUNDS"); do
    awk -v c="${cycles[$r,$m]}" -v io="${cycles[$r,${MODES[0]}]}" \
      'BEGIN { printf "%12.1f %6.1fx", c, c / io }'
  done
  echo
done
