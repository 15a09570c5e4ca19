#!/usr/bin/env bash
# The demo: builds weir, makes the netns testbed (a client, three backends with
# real HTTP servers, weir on a DPDK af_packet port), sends real traffic at the
# appliance and prints a summary. Removes everything it made on exit. Run as root.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
echo "== building weir (release)"
cargo build --release -q -p mgmt
WEIR=$PWD/target/release/weir
RID=demo$$
RID=${RID:0:6}
LOG=$(mktemp -d /tmp/weir-demo.XXXXXX)

cleanup() {
  [ -n "${WEIR_PID:-}" ] && kill -TERM "$WEIR_PID" 2>/dev/null && wait "$WEIR_PID" 2>/dev/null || true
  scripts/testbed.sh down "$RID" >/dev/null 2>&1 || true
}
trap cleanup EXIT

echo "== testbed $RID: client 198.18.0.10, backends 198.18.0.11-13, weir 198.18.0.1"
P=$(scripts/testbed.sh up "$RID")
inns() { local h=$1; shift; ip netns exec "$P-$h" "$@"; }

"$WEIR" check --config examples/weir.toml
echo "== starting weir in $P-lb"
ip netns exec "$P-lb" "$WEIR" run --config examples/weir.toml >"$LOG/summary.json" 2>"$LOG/weir.log" &
WEIR_PID=$!
for _ in $(seq 100); do grep -q "worker(s) running" "$LOG/weir.log" && break; sleep 0.1; done
sed 's/^/   | /' "$LOG/weir.log"

MAC=$(inns lb cat /sys/class/net/wan0/address)
echo "== ARP and neighbour discovery, answered by the dataplane (port MAC $MAC)"
inns cl arping -c 1 -I eth0 198.18.0.1 | sed -n 2p
inns cl ndisc6 -1 2001:db8::1 eth0 | grep -i "link-layer"
echo "== ping and ping -6"
inns cl ping -c 5 -i 0.2 198.18.0.1 | tail -2
inns cl ping -6 -c 5 -i 0.2 2001:db8::1 | tail -2
echo "== TCP to a kernel socket on the appliance, through the host interface"
inns lb sh -c 'echo "hello from the appliance kernel" | timeout 5 nc -l 198.18.0.1 2222' &
sleep 0.3
echo "hello from the client" | inns cl nc -N -w 3 198.18.0.1 2222
wait $!
echo "== the appliance's kernel reaching a backend's HTTP server (future health checks)"
inns lb curl -s -m 3 http://198.18.0.11/
inns lb curl -s -m 3 "http://[2001:db8::12]/"
echo "== L4 load balancing: 9 requests to the fullnat VIP 198.18.0.100 (backends see the local address)"
for i in $(seq 9); do inns cl curl -s -m 3 http://198.18.0.100/; done | sort | uniq -c | sed 's/^/   /'
echo "== the same over IPv6, and direct server return (backends see the client)"
inns cl curl -s -m 3 "http://[2001:db8::100]/"
inns cl curl -s -m 3 http://198.18.0.200/
echo "== UDP through the VIP (port 53 -> backends' 5353)"
echo "hello" | inns cl nc -u -w 1 198.18.0.100 53; echo
echo "== a 3000-byte datagram each way, in IP fragments (the kernel under af_packet joins them; weir cuts them up again)"
inns cl /usr/bin/python3 tests/e2e/udp_probe.py 198.18.0.100 53 3000 --connect --count 2 \
  | /usr/bin/python3 -c 'import json,sys; r=json.load(sys.stdin); print("   %d of 2 answered whole, from %s" % (sum(x["echo_ok"] for x in r["replies"]), ", ".join(sorted({x["from"] for x in r["replies"]})) or "nobody"))'
echo "== wrk: 3 seconds, 16 keep-alive connections through the fullnat VIP"
inns cl wrk -t2 -c16 -d3s http://198.18.0.100/ | grep -E "Requests/sec|requests in|errors" | sed 's/^/   /'
CTL="$WEIR ctl -s /run/weir/admin.sock"
echo "== the admin socket: show servers (health checks run through the host interface)"
$CTL show servers | sed 's/^/   /'
echo "== drain b1: new flows go elsewhere"
$CTL set server web/b1 state drain | sed 's/^/   /'
for i in $(seq 6); do inns cl curl -s -m 3 http://198.18.0.100/; done | cut -d' ' -f1,2 | sort | uniq -c | sed 's/^/   /'
$CTL set server web/b1 state ready | sed 's/^/   /'
echo "== a backend dies: stop b3's server, wait for the health check"
kill "$(cat /tmp/weir-testbed-$RID/backend-b3.pid)"
sleep 4.5
$CTL show servers | grep -E "^backend|web/b3" | sed 's/^/   /'
echo "== show flow for a connection, and show stat"
inns cl curl -s -m 3 --local-port 45678 http://198.18.0.100/ >/dev/null
$CTL show flow tcp 198.18.0.10 45678 198.18.0.100 80 | sed 's/^/   /'
$CTL show stat | sed 's/^/   /'
echo "== Prometheus metrics (a few lines)"
inns lb curl -s http://127.0.0.1:9100/metrics | grep -E '^weir_backend_up|^weir_service_new_flows' | sed 's/^/   /'
echo "== traceroute's first probe: a TTL-1 datagram to the VIP gets time exceeded from it"
inns cl /usr/bin/python3 tests/e2e/icmp_probe.py ttl 198.18.0.100 53 | sed 's/^/   /'
echo "== malformed frames (scapy): counted and dropped"
inns cl /usr/bin/python3 tests/e2e/send_frames.py eth0 "$MAC" 10 \
  ipv4_bad_checksum ipv4_bad_ihl tcp_bad_checksum ipv6_bad_length arp_bad_sizes >/dev/null
inns cl ping -c 2 -i 0.2 198.18.0.1 | tail -2

echo "== stopping weir (SIGTERM)"
kill -TERM "$WEIR_PID"
wait "$WEIR_PID" || true
WEIR_PID=
echo "== summary"
grep -E "rx |answered|balanced|icmp errors|ip fragments|backend web|mbufs|packets:|drops|workers stopped|DOWN|UP|audit" "$LOG/weir.log" | sed 's/^[0-9.]* weir: /   /'
rm -rf "$LOG"
