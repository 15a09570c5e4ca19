#!/usr/bin/env bash
# Prepares a Debian bookworm machine to build, run and test Weir. Idempotent:
# installs only missing packages, reserves hugepages only up to the wanted count,
# mounts hugetlbfs only if it is not mounted. Run as root.
#
#   HUGEPAGES=512 scripts/setup.sh      (2 MiB pages; 0 skips the reservation)
set -euo pipefail

PACKAGES=(
  # build: DPDK 22.11 and bindgen's libclang
  dpdk libdpdk-dev libclang-dev clang pkg-config build-essential
  # testbed and test tools
  iproute2 ethtool iputils-ping arping ndisc6 netcat-openbsd curl wrk
  python3 python3-scapy python3-pytest python3-prometheus-client python3-venv tcpdump procps
  util-linux
)
# TRex's client library (PyPI), in a virtualenv of its own: the tests compile the
# TRex profiles in perf/trex/ with it.
TREX_VENV=${TREX_VENV:-/opt/weir-trex}
TREX_CLIENT=lbr-trex-client==3.4.0
HUGEPAGES=${HUGEPAGES:-512}

if [ "$(id -u)" != 0 ]; then
  echo "setup.sh: run as root (it installs packages and reserves hugepages)" >&2
  exit 1
fi

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup.sh: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! "$TREX_VENV/bin/python" -c "import lbr_trex_client" 2>/dev/null; then
  echo "setup.sh: installing $TREX_CLIENT into $TREX_VENV"
  /usr/bin/python3 -m venv "$TREX_VENV"
  "$TREX_VENV/bin/pip" install -q --disable-pip-version-check "$TREX_CLIENT"
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "setup.sh: no cargo on PATH; install a Rust toolchain (rustup, 1.80 or newer)" >&2
  exit 1
fi

if [ "$HUGEPAGES" -gt 0 ]; then
  have=$(cat /proc/sys/vm/nr_hugepages)
  if [ "$have" -lt "$HUGEPAGES" ]; then
    echo "$HUGEPAGES" > /proc/sys/vm/nr_hugepages || true
  fi
  mkdir -p /dev/hugepages
  if ! mountpoint -q /dev/hugepages; then
    mount -t hugetlbfs nodev /dev/hugepages
  fi
  echo "setup.sh: hugepages $(cat /proc/sys/vm/nr_hugepages) x 2 MiB, hugetlbfs on /dev/hugepages"
fi
echo "setup.sh: ready"
