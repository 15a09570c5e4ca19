#!/usr/bin/env bash
# Runs every test: formatting and lints, unit and property tests, then the end-to-end
# tests that start weir on a DPDK port in a netns testbed and drive real clients.
# Installs what it needs first (scripts/setup.sh). Run as root.
#
#   scripts/test.sh                 everything
#   scripts/test.sh -k ping         only the end-to-end tests matching "ping"
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --release --workspace --all-targets -q -- -D warnings
echo "== cargo build --release"
cargo build --release --workspace -q
echo "== cargo test (unit, golden bytes, properties)"
cargo test --release --workspace

echo "== benchmark harness smoke run (perf/; figures are not asserted, dropped packets are)"
target/release/weir-perf --seconds 0.05 --large 20000 >/dev/null
target/release/weir-perf --ring 3,100 >/dev/null
perf/veth_ports.sh --seconds 0.05 --large 20000 --only "established dr" >/dev/null

echo "== end-to-end tests (pytest, netns testbed)"
# Debian's scapy belongs to /usr/bin/python3, not to a python3 earlier on PATH.
WEIR_BIN="$PWD/target/release/weir" /usr/bin/python3 -m pytest -p no:cacheprovider \
  tests/e2e -v "$@"
