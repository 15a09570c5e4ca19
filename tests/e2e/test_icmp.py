"""ICMP errors about balanced flows reach the other end of the flow, translated,
and real kernels act on them: a backend's "port unreachable" becomes
ECONNREFUSED on the client's socket; a client-side router's "fragmentation
needed" / "packet too big" lowers the path MTU the backend's kernel keeps. And
a packet whose TTL runs out at weir gets "time exceeded", as traceroute expects."""

import json
from pathlib import Path
import re

import pytest

from test_l4 import DR_VIP, DR_VIP6, LOCAL4, VIP, VIP6
from weirlab import EQUAL, base_config, pool, service, start_weir as start

PROBE = str(Path(__file__).parent / "icmp_probe.py")
LOCAL6 = "2001:db8::2"
CLIENT = {4: "198.18.0.10", 6: "2001:db8::10"}


def probe(testbed, *args):
    out = testbed.exec("cl", "/usr/bin/python3", PROBE, *args, timeout=60).stdout
    return json.loads(out)


def path_mtu(testbed, backend, dst):
    """The MTU backend's kernel keeps for the route to dst (None: the link's)."""
    out = testbed.exec(backend, "ip", "route", "get", dst).stdout
    m = re.search(r"\bmtu (\d+)", out)
    return int(m.group(1)) if m else None


@pytest.mark.parametrize("workers", [1, 2])
def test_backend_port_unreachable_reaches_the_client(testbed, tmp_path, workers):
    # Nothing listens on 5999 on the backends: their kernels answer each datagram
    # with "port unreachable" to the local address, about the datagram weir sent.
    cfg = (
        base_config(workers=workers)
        + pool("closed", EQUAL, port=5999)
        + pool("closed6", EQUAL, port=5999, v6=True)
        + service("closed", VIP, 5999, "closed", protocol="udp")
        + service("closed6", VIP6, 5999, "closed6", protocol="udp")
    )
    for b in ("b1", "b2", "b3"):
        # The kernel's own rate limit would drop some of the backends' errors.
        testbed.exec(b, "sysctl", "-qw", "net.ipv4.icmp_ratelimit=0", "net.ipv6.icmp.ratelimit=0")
    w = start(testbed, tmp_path, cfg, neighbours=6)
    r4 = probe(testbed, "refused", VIP, "5999", "12")
    r6 = probe(testbed, "refused", VIP6, "5999", "12")
    w.stop()
    c = w.counters()
    assert r4 == {"refused": 12, "answered": 0, "silent": 0}, (r4, c)
    assert r6 == {"refused": 12, "answered": 0, "silent": 0}, (r6, c)
    assert c["icmp_errors_relayed"] == 24, c
    assert c["drop_icmp_no_flow"] == 0, c
    for s in ("closed", "closed6"):
        # Each datagram, and the error that came back about it (a client port
        # reused by chance finds its earlier flow: new flows may be fewer).
        assert w.summary["services"][s]["packets"] == 24, w.summary["services"][s]
        assert 8 <= w.summary["services"][s]["new_flows"] <= 12, w.summary["services"][s]


@pytest.mark.parametrize("family", [4, 6])
def test_too_big_from_the_client_side_reaches_the_backend(testbed, tmp_path, family):
    # A router on the client's side says the backend's replies are too big. In
    # fullnat the backend hears it about the flow it knows (to the local address),
    # in dr about its own reply to the client; either way its kernel lowers the
    # path MTU for that destination, and the other backends hear nothing.
    v6 = family == 6
    fullnat_vip, dr_vip = (VIP6, DR_VIP6) if v6 else (VIP, DR_VIP)
    cfg = (
        base_config()
        + pool("dns", EQUAL, port=5353, v6=v6)
        + service("dns", fullnat_vip, 53, "dns", protocol="udp")
        + service("dns-dr", dr_vip, 5353, "dns", protocol="udp", mode="dr")
    )
    w = start(testbed, tmp_path, cfg)
    mtu = 1300 if v6 else 1200
    args = ("too-big", "eth0", testbed.port_mac())
    nat = probe(testbed, *args, fullnat_vip, "53", str(mtu))
    dr = probe(testbed, *args, dr_vip, "5353", str(mtu))
    # An error about no flow of weir's: dropped and counted.
    probe(testbed, *args, fullnat_vip, "53", str(mtu), "--no-flow")
    w.stop()
    c = w.counters()
    local, client = (LOCAL6 if v6 else LOCAL4), CLIENT[family]
    for b in ("b1", "b2", "b3"):
        want_nat = mtu if b == nat["backend"] else None
        want_dr = mtu if b == dr["backend"] else None
        assert path_mtu(testbed, b, local) == want_nat, (b, nat, c)
        assert path_mtu(testbed, b, client) == want_dr, (b, dr, c)
    assert c["icmp_errors_relayed"] == 2, c
    assert c["drop_icmp_no_flow"] == 1, c


@pytest.mark.parametrize("vip", [VIP, VIP6, DR_VIP])
def test_ttl_running_out_at_weir_gets_time_exceeded(testbed, tmp_path, vip):
    v6 = ":" in vip
    cfg = (
        base_config()
        + pool("dns", EQUAL, port=5353, v6=v6)
        + service("dns", vip, 5353, "dns", protocol="udp", mode="dr" if vip == DR_VIP else "fullnat")
    )
    w = start(testbed, tmp_path, cfg)
    hop1 = probe(testbed, "ttl", vip, "5353")
    # With the TTL it needs, the same datagram is answered.
    answer = testbed.exec("cl", "/usr/bin/python3", "-c", (
        "import socket,sys\n"
        f"s=socket.socket(socket.AF_INET{'6' if v6 else ''},socket.SOCK_DGRAM); s.settimeout(2)\n"
        f"s.connect(('{vip}',5353)); s.send(b'hop 2'); print(s.recv(2048).decode())\n"
    )).stdout
    w.stop()
    c = w.counters()
    want = {"origin": "icmp6", "type": 3, "code": 0} if v6 else {"origin": "icmp", "type": 11, "code": 0}
    assert hop1 == dict(want, offender=vip), (hop1, c)
    assert answer.startswith("backend b") and answer.rstrip().endswith("hop 2"), answer
    assert c["icmp_time_exceeded_sent"] == 1, c
