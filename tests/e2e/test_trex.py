"""The TRex profile a bare-metal bench runs against Weir (perf/trex/weir_l4.py),
compiled by TRex's own client library (lbr-trex-client, installed by
scripts/setup.sh) into the streams a TRex server would be sent, and replayed
here out of the client namespace frame by frame (tests/e2e/trex_replay.py plays
the server's field engine; the TRex server itself cannot run here). What Weir did
with every frame is read from its own counters."""

import json
import subprocess
import time

from weirlab import EQUAL, HERE, ROOT, TREX_PY, WEIR_BIN, base_config, pool, run, service
from test_l4 import DR_VIP, VIP, VIP6, assert_even, start

PROFILE = ROOT / "perf" / "trex" / "weir_l4.py"


def streams(tmp_path, *tunables):
    """The profile's streams as JSON (a file the client namespace can read)."""
    out = run([str(TREX_PY), str(ROOT / "perf" / "trex" / "streams_json.py"), str(PROFILE),
               *tunables]).stdout
    path = tmp_path / "streams.json"
    path.write_text(out)
    return path


def replay(testbed, path, continuous):
    out = testbed.exec("cl", "/usr/bin/python3", str(HERE / "trex_replay.py"), str(path), "eth0",
                       testbed.port_mac(), "--continuous", str(continuous), timeout=120).stdout
    return json.loads(out)


def run_profile(testbed, tmp_path, cfg, tunables, continuous):
    """Weir on `cfg` takes the profile's streams (continuous ones for
    `continuous` packets); returns what was sent, Weir's counters and its
    per-backend figures by backend name."""
    w = start(testbed, tmp_path, cfg)
    path = streams(tmp_path, *tunables)
    try:
        sent = replay(testbed, path, continuous)
        time.sleep(0.5)  # the backends' answers
    finally:
        w.stop()
    backends = {b.split("/")[1]: v for b, v in w.summary["backends"].items()}
    return sent, w.counters(), w.summary["services"], backends


def assert_flows_split_and_kept(backends, flows, packets_per_flow):
    """An even split of the flows, and each flow's packets on its backend."""
    assert_even({b: v["new_flows"] for b, v in backends.items()}, flows)
    for b, v in backends.items():
        assert v["packets_in"] == packets_per_flow * v["new_flows"], (b, v)


def test_established_profile_opens_its_flows_then_keeps_each_on_its_backend(testbed, tmp_path):
    cfg = base_config() + pool("web", EQUAL) + service("web-dr", DR_VIP, 80, "web", mode="dr")
    # 3000 SYNs (30 clients x 100 ports), then every flow's ACK twice.
    sent, c, services, backends = run_profile(
        testbed, tmp_path, cfg, ["--vip", DR_VIP, "--flows", "3000", "--clients", "30"], 6000)
    assert sent == {"open": 3000, "load": 6000}, sent
    svc = services["web-dr"]
    # Every frame was well formed and forwarded; each SYN opened a flow and the
    # ACKs found those flows (none was taken mid-stream).
    assert svc["new_flows"] == 3000 and svc["packets"] == 9000, svc
    assert c["lb_forward"] == 9000 and c["flows_midstream"] == 0, c
    assert c["drop_ipv4_bad_checksum"] == 0 and c["drop_l4_bad_checksum"] == 0, c
    assert_flows_split_and_kept(backends, 3000, 3)


def test_udp_profile_keeps_each_datagram_flow_on_its_fullnat_backend(testbed, tmp_path):
    cfg = base_config() + pool("dns", EQUAL, port=5353) + service("dns", VIP, 53, "dns", protocol="udp")
    sent, c, services, backends = run_profile(
        testbed, tmp_path, cfg,
        ["--vip", VIP, "--port", "53", "--proto", "udp", "--flows", "1500"], 3000)
    assert sent == {"open": 1500, "load": 3000}, sent
    assert services["dns"]["new_flows"] == 1500 and c["lb_forward"] == 4500, (services, c)
    assert c["drop_ipv4_bad_checksum"] == 0 and c["drop_l4_bad_checksum"] == 0, c
    assert_flows_split_and_kept(backends, 1500, 3)
    # The backends echo what they take in; their answers came back through the
    # flows' entries (a kernel may drop some of a burst this fast: most, not all).
    assert c["lb_reverse"] > 4500 // 2 and c["drop_no_flow"] == 0, c


def test_syn_profile_makes_every_packet_a_new_fullnat_connection(testbed, tmp_path):
    cfg = base_config() + pool("web6", EQUAL, v6=True) + service("web6", VIP6, 80, "web6")
    sent, c, services, backends = run_profile(
        testbed, tmp_path, cfg, ["--vip", VIP6, "--kind", "syn", "--clients", "50"], 3000)
    assert sent == {"syn": 3000}, sent
    assert services["web6"]["new_flows"] == 3000 and c["lb_forward"] == 3000, (services, c)
    assert_even({b: v["new_flows"] for b, v in backends.items()}, 3000)
    # The backends' kernels answered every SYN (SYN-ACK, from the local address);
    # Weir took each answer back to its client, whose kernel, holding none of the
    # profile's addresses, says so in a few (rate-limited) ICMPv6 errors, which
    # Weir relays to the backend of the connection they are about.
    assert c["lb_reverse"] >= 3000 and c["drop_no_flow"] == 0, c
    relayed = c["icmp_errors_relayed"]
    assert sum(v["packets_in"] for v in backends.values()) == 3000 + relayed, (backends, c)


def test_the_profile_refuses_what_it_cannot_send():
    for tunables in (["--vip", DR_VIP, "--client", "2001:db8::5"],
                     ["--vip", DR_VIP, "--proto", "udp", "--kind", "syn"],
                     ["--vip", DR_VIP, "--flows", "0"]):
        r = subprocess.run([str(TREX_PY), str(ROOT / "perf" / "trex" / "streams_json.py"),
                            str(PROFILE), *tunables], capture_output=True, text=True)
        assert r.returncode == 2 and "weir_l4.py: error:" in r.stderr, (tunables, r.stderr)


def test_the_bare_metal_example_for_a_trex_bench_passes_weir_check():
    example = ROOT / "examples" / "bare-metal-trex.toml"
    r = run([WEIR_BIN, "check", "--config", str(example)], check=False)
    assert r.returncode == 0 and "OK: 2 worker(s)" in r.stdout, (r.stdout, r.stderr)
