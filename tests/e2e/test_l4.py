"""Issue 3 end to end: TCP and UDP services on VIPs balanced over the testbed's
three backends in fullnat and dr, IPv4 and IPv6, with the split, consistency,
stickiness, restart, expiry, full-table and two-worker behaviour measured from
what the backends answered and from weir's own counters."""

import hashlib
from pathlib import Path
import re
import subprocess
import time

import pytest

from weirlab import (
    start_weir as start,
    log_time,
    EXAMPLE_CONFIG,
    weir_check,
    GET_FN,
    KeepAlive,
    CLIENT4,
    EQUAL,
    Weir,
    admin_section,
    base_config,
    ctl,
    http_clients,
    pool,
    service,
)

VIP = "198.18.0.100"
VIP6 = "2001:db8::100"
DR_VIP = "198.18.0.200"
DR_VIP6 = "2001:db8::200"
LOCAL4 = "198.18.0.2"


def assert_even(counts, total, names=("b1", "b2", "b3"), weights=(1, 1, 1)):
    wsum = sum(weights)
    for name, wgt in zip(names, weights):
        want = total * wgt / wsum
        got = counts.get(name, 0)
        assert abs(got - want) <= 0.10 * want, (name, got, want, counts)


def test_fullnat_and_dr_over_ipv4_and_ipv6(testbed, tmp_path):
    cfg = (
        base_config()
        + pool("web", EQUAL)
        + pool("web6", EQUAL, v6=True)
        + service("web", VIP, 80, "web")
        + service("web6", VIP6, 80, "web6")
        + service("web-dr", DR_VIP, 80, "web", mode="dr")
        + service("web-dr6", DR_VIP6, 80, "web6", mode="dr")
    )
    w = start(testbed, tmp_path, cfg, neighbours=6)
    # curl, as a user would.
    out = testbed.exec("cl", "curl", "-s", "-m", "3", f"http://{VIP}/").stdout
    assert re.fullmatch(rf"backend b[123] from {LOCAL4}:\d+\n", out), out
    for addr, source in [(VIP, LOCAL4), (VIP6, "2001:db8::2"),
                         (DR_VIP, CLIENT4), (DR_VIP6, "2001:db8::10")]:
        r = http_clients(testbed, addr, 80, 60)
        assert r["errors"] == 0, r
        assert set(r["backends"]) == {"b1", "b2", "b3"}, (addr, r)
        # fullnat: the backend sees the local address; dr: the client itself.
        assert set(r["sources"]) == {source}, (addr, r["sources"])
    # wrk: keep-alive load through the fullnat VIP and the IPv6 dr VIP, no errors.
    for addr in (VIP, f"[{DR_VIP6}]"):
        wrk = testbed.exec("cl", "wrk", "-t2", "-c16", "-d3s", f"http://{addr}/", timeout=30).stdout
        m = re.search(r"(\d+) requests in", wrk)
        assert m and int(m.group(1)) > 500, (addr, wrk)
        assert "Socket errors" not in wrk and "Non-2xx" not in wrk, (addr, wrk)
    w.stop()
    c = w.counters()
    assert c["drop_no_flow"] == 0 and c["drop_no_neighbor"] == 0, c
    assert c["lb_forward"] > 0 and c["lb_reverse"] > 0
    assert w.summary["services"]["web-dr"]["new_flows"] == 60
    assert w.summary["services"]["web6"]["new_flows"] == 60


def test_udp_request_reply(testbed, tmp_path):
    cfg = base_config() + pool("dns", EQUAL, port=5353) + service("dns", VIP, 53, "dns", protocol="udp")
    w = start(testbed, tmp_path, cfg)
    script = (
        "import socket,sys\n"
        "seen={}\n"
        "for i in range(60):\n"
        "  s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); s.settimeout(2)\n"
        "  s.sendto(b'q%d'%i,('198.18.0.100',53)); d,a=s.recvfrom(2048)\n"
        "  assert a==('198.18.0.100',53), a\n"
        "  assert d.endswith(b'q%d'%i) and b'from 198.18.0.2:' in d, d\n"
        "  b=d.split()[1].decode(); seen[b]=seen.get(b,0)+1\n"
        "print(seen)\n"
    )
    out = testbed.exec("cl", "/usr/bin/python3", "-c", script).stdout
    assert set(eval(out)) == {"b1", "b2", "b3"}, out
    w.stop()
    # 60 requests and 60 replies through the service (a client port reused by
    # chance finds its old entry, so new_flows may be fewer than 60).
    assert w.summary["services"]["dns"]["packets"] == 120
    assert 50 <= w.summary["services"]["dns"]["new_flows"] <= 60


def test_split_is_even_and_follows_weights(testbed, tmp_path):
    cfg = (
        base_config()
        + pool("web", EQUAL)
        + pool("weighted", [("b1", 1), ("b2", 2), ("b3", 3)])
        + service("web", VIP, 80, "web")
        + service("weighted", VIP, 8080, "weighted")
    )
    # Backends listen on 80: the weighted pool's port is set per backend.
    cfg = cfg.replace('weight = 2\n', 'weight = 2\nport = 80\n').replace(
        'weight = 3\n', 'weight = 3\nport = 80\n')
    cfg = cfg.replace('name = "b1"\naddress = "198.18.0.11"\nweight = 1\n[[pool.backend]]\nname = "b2"\naddress = "198.18.0.12"\nweight = 2',
                      'name = "b1"\naddress = "198.18.0.11"\nweight = 1\nport = 80\n[[pool.backend]]\nname = "b2"\naddress = "198.18.0.12"\nweight = 2')
    w = start(testbed, tmp_path, cfg)
    # 3000 flows with fixed source ports: the hash of a fixed set of 5-tuples is
    # fixed, so the measured split is repeatable, not a coin toss per run.
    r = http_clients(testbed, VIP, 80, 3000, sport_base=30000, threads=16)
    assert r["errors"] == 0, r
    assert_even(r["backends"], 3000)
    r = http_clients(testbed, VIP, 8080, 3000, sport_base=30000, threads=16)
    assert r["errors"] == 0, r
    assert_even(r["backends"], 3000, weights=(1, 2, 3))
    w.stop()


def test_same_tuple_same_backend_and_removal_moves_only_that_backend(testbed, tmp_path):
    full = base_config() + pool("web", EQUAL) + service("web", VIP, 80, "web")
    w = start(testbed, tmp_path, full)
    first = http_clients(testbed, VIP, 80, 300, sport_base=20000)["by_sport"]
    again = http_clients(testbed, VIP, 80, 300, sport_base=20000)["by_sport"]
    assert len(first) == 300 and first == again
    w.stop()
    # Same config after a restart: the fixed-seed hash picks the same backends.
    w = start(testbed, tmp_path, full)
    assert http_clients(testbed, VIP, 80, 300, sport_base=20000)["by_sport"] == first
    w.stop()
    # b2 taken out of the pool.
    less = base_config() + pool("web", [("b1", 1), ("b3", 1)]) + service("web", VIP, 80, "web")
    w = start(testbed, tmp_path, less, neighbours=2)
    after = http_clients(testbed, VIP, 80, 300, sport_base=20000)["by_sport"]
    w.stop()
    moved = [s for s in first if first[s] != after[s]]
    on_b2 = [s for s in first if first[s] == "b2"]
    assert sorted(moved) == sorted(on_b2), "only b2's flows may move"
    assert 70 < len(on_b2) < 130
    # A service keyed by a secret: the same picks on every start with it (two
    # appliances of a pair given the same secret), other picks than the
    # published seed's for about two thirds of the flows.
    keyed = base_config() + pool("web", EQUAL) + service(
        "web", VIP, 80, "web", hash_secret="the pair's own secret")
    picks = []
    for _ in range(2):
        w = start(testbed, tmp_path, keyed)
        picks.append(http_clients(testbed, VIP, 80, 300, sport_base=20000)["by_sport"])
        w.stop()
    assert len(picks[0]) == 300 and picks[0] == picks[1]
    moved = [s for s in first if first[s] != picks[0][s]]
    assert 150 < len(moved) < 250, len(moved)


def test_round_robin_and_weighted_round_robin_split_exactly(testbed, tmp_path):
    """One worker takes every new flow in turn: round_robin gives three equal
    backends exactly a third each, weighted_round_robin 1:2:3 exactly."""
    cfg = (
        base_config()
        + pool("web", EQUAL)
        + pool("weighted", [("b1", 1), ("b2", 2), ("b3", 3)], port=80)
        + service("rr", VIP, 80, "web", scheduler="round_robin")
        + service("wrr", VIP, 8080, "weighted", scheduler="weighted_round_robin")
    )
    w = start(testbed, tmp_path, cfg)
    r = http_clients(testbed, VIP, 80, 600, threads=16)
    assert r["errors"] == 0, r
    assert r["backends"] == {"b1": 200, "b2": 200, "b3": 200}, r
    r = http_clients(testbed, VIP, 8080, 600, threads=16)
    assert r["errors"] == 0, r
    assert r["backends"] == {"b1": 100, "b2": 200, "b3": 300}, r
    w.stop()
    assert w.summary["services"]["wrr"]["new_flows"] == 600


def test_least_conn_sends_each_new_connection_to_the_least_loaded_backend(testbed, tmp_path):
    """Held connections, opened one after another, land where least_conn puts
    them (fewest connections per unit of weight, the first on a tie); once
    some have closed and expired, the next go to the backend they left; a
    weight changed counts what each backend already holds."""
    cfg = (
        base_config(timeouts={"tcp_fin_timeout": 1, "tcp_close_timeout": 1})
        + pool("web", [("b1", 1), ("b2", 1), ("b3", 2)])
        + service("web", VIP, 80, "web", scheduler="least_conn")
        + admin_section(testbed.rid)
    )
    w = start(testbed, tmp_path, cfg)
    held = []
    try:
        a = KeepAlive(testbed, VIP, 2)
        held.append(a)
        assert a.backends() == ["b1", "b2"]
        # b3 (weight 2, none yet) takes the next two; then each in turn.
        b = KeepAlive(testbed, VIP, 6)
        held.append(b)
        assert b.backends() == ["b3", "b3", "b1", "b2", "b3", "b3"]

        def active():
            servers = ctl(testbed, "show", "servers", json_out=True)
            return {s["name"]: s["active"] for s in servers}

        assert active() == {"web/b1": 2, "web/b2": 2, "web/b3": 4}
        # b's six close (one on b1, one on b2, four on b3) and expire: b3,
        # emptied, takes the next two.
        b.close_all()
        left = {"web/b1": 1, "web/b2": 1, "web/b3": 0}
        deadline = time.time() + 8
        while time.time() < deadline and active() != left:
            time.sleep(0.2)
        assert active() == left
        c = KeepAlive(testbed, VIP, 3)
        held.append(c)
        assert c.backends() == ["b3", "b3", "b1"]
        assert a.again() == a.backends()
        # A new weight is a new layout of the trees, played from the counts
        # the worker kept: b1 (2 held, weight 4) is the least loaded until it
        # holds four, then wins the tie with b2 and b3 (one per unit each).
        # Counts lost would give b1, b2, b3, ...; trees left with the old
        # weights, b2 first.
        ctl(testbed, "set", "server", "web/b1", "weight", "4")
        d = KeepAlive(testbed, VIP, 4)
        held.append(d)
        assert d.backends() == ["b1", "b1", "b1", "b2"]
    finally:
        for k in held:
            k.kill()
    w.stop()
    assert w.counters()["flows_expired"] >= 6


def test_least_conn_on_two_workers_spreads_each_workers_connections(testbed, tmp_path):
    """Each worker counts its own connections in its own nodes of the trees
    the management core laid out for both: a worker's connections fill the
    three backends in turn, whichever worker holds them; after a weight of
    0, both workers' new trees leave that backend out."""
    cfg = (
        base_config(workers=2)
        + pool("web", EQUAL)
        + service("web", VIP, 80, "web", scheduler="least_conn")
        + admin_section(testbed.rid)
    )
    w = start(testbed, tmp_path, cfg)
    held = []
    try:
        a = KeepAlive(testbed, VIP, 24)
        held.append(a)
        conns = ctl(testbed, "show", "conns", "web", json_out=True)
        assert len(conns) == 24, conns
        by_worker = {}
        for c in conns:
            by_worker.setdefault(c["worker"], []).append(c["backend"])
        assert set(by_worker) == {0, 1}, "24 connections, all on one worker"
        for worker, backends in by_worker.items():
            counts = [backends.count(f"web/{b}") for b in ("b1", "b2", "b3")]
            # Filled in turn: the first backends one ahead at most.
            assert counts == sorted(counts, reverse=True), (worker, counts)
            assert counts[0] - counts[2] <= 1, (worker, counts)
        ctl(testbed, "set", "server", "web/b3", "weight", "0")
        b = KeepAlive(testbed, VIP, 12)
        held.append(b)
        assert sorted(set(b.backends())) == ["b1", "b2"], b.backends()
    finally:
        for k in held:
            k.kill()
    w.stop()
    assert w.counters()["flows_new"] == 36


def test_source_hash_keeps_a_client_on_one_backend(testbed, tmp_path):
    cfg = (
        base_config()
        + pool("web", EQUAL)
        + service("sticky", VIP, 80, "web", hash_key="source")
    )
    w = start(testbed, tmp_path, cfg)
    r = http_clients(testbed, VIP, 80, 100)
    assert r["errors"] == 0 and len(r["backends"]) == 1, r
    w.stop()


def across_a_restart(testbed, tmp_path, cfg, vip):
    """A keep-alive connection from the client gets an answer through weir, weir
    restarts, and it asks again. Returns the first answer, the second (or the
    name of the error it got instead), the seconds the second took, and the new
    weir, still running."""
    w = start(testbed, tmp_path, cfg)
    script = GET_FN + (
        "import sys,time\n"
        f"s=socket.create_connection(('{vip}',80),timeout=5)\n"
        "print(get(s),flush=True)\n"
        "sys.stdin.readline()\n"
        "t=time.time()\n"
        "try: a=get(s)\nexcept OSError as e: a=type(e).__name__\n"
        "print(a, round(time.time()-t,3))\n"
    )
    client = testbed.popen("cl", "/usr/bin/python3", "-c", script, stdin=subprocess.PIPE,
                           stdout=subprocess.PIPE, text=True)
    first = client.stdout.readline().strip()
    w.stop()
    w2 = start(testbed, tmp_path, cfg)
    out, _ = client.communicate("\n", timeout=20)
    second, seconds = out.split()
    return first, second, float(seconds), w2


def test_dr_stream_survives_a_restart(testbed, tmp_path):
    cfg = base_config() + pool("web", EQUAL) + service("web-dr", DR_VIP, 80, "web", mode="dr")
    before, after, _, w2 = across_a_restart(testbed, tmp_path, cfg, DR_VIP)
    w2.stop()
    assert before in {"b1", "b2", "b3"}
    assert after == before
    assert w2.counters()["flows_midstream"] >= 1


def test_a_fullnat_connection_across_a_restart_is_reset_at_its_next_packet(testbed, tmp_path):
    # The backend knows the connection by a local port the new weir never gave
    # out: it cannot go on. The client hears so at once (a reset) and can
    # reconnect, instead of retransmitting into nothing for minutes.
    cfg = base_config() + pool("web", EQUAL) + service("web", VIP, 80, "web")
    before, after, seconds, w2 = across_a_restart(testbed, tmp_path, cfg, VIP)
    again = testbed.exec("cl", "curl", "-s", "-m", "3", f"http://{VIP}/").stdout
    w2.stop()
    assert before in {"b1", "b2", "b3"}
    assert after == "ConnectionResetError" and seconds < 1.0, (after, seconds)
    assert again.startswith("backend b"), again
    assert w2.counters()["tcp_resets_sent"] == 1, w2.counters()


def test_entries_expire_at_their_timeouts(testbed, tmp_path):
    cfg = (
        base_config(timeouts={"udp_timeout": 2, "tcp_established_timeout": 3, "tcp_close_timeout": 2})
        + pool("dns", EQUAL, port=5353)
        + pool("web", EQUAL)
        + service("dns", VIP, 53, "dns", protocol="udp")
        + service("web", VIP, 80, "web")
    )
    w = start(testbed, tmp_path, cfg)
    script = GET_FN + (
        "import time\n"
        "u=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); u.settimeout(2)\n"
        "u.sendto(b'x',('198.18.0.100',53)); u.recvfrom(100)\n"
        "s=socket.create_connection(('198.18.0.100',80),timeout=3)\n"
        "get(s)\n"
        "time.sleep(5)\n"
        # The idle fullnat entry is gone: the next request on it is reset.
        "try:\n  print('answered', get(s))\nexcept OSError as e:\n  print(type(e).__name__, e)\n"
    )
    out = testbed.exec("cl", "/usr/bin/python3", "-c", script, timeout=30).stdout
    assert out.startswith("ConnectionResetError"), out
    w.stop()
    c = w.counters()
    assert c["flows_new"] == 2 and c["flows_expired"] == 2, c
    assert c["tcp_resets_sent"] == 1, c


def test_full_table_keeps_forwarding_by_hash(testbed, tmp_path):
    cfg = (
        base_config(capacity=16)
        + pool("web", EQUAL)
        + service("web-dr", DR_VIP, 80, "web", mode="dr")
        + service("web", VIP, 80, "web")
    )
    w = start(testbed, tmp_path, cfg)
    # Hold 40 connections open at once: 16 get entries, 24 go stateless.
    script = GET_FN + (
        "socks=[socket.create_connection(('198.18.0.200',80),timeout=5) for _ in range(40)]\n"
        "print(sum(get(s) in ('b1','b2','b3') for s in socks))\n"
    )
    out = testbed.exec("cl", "/usr/bin/python3", "-c", script, timeout=60).stdout.strip()
    if out != "40":
        w.stop()
        raise AssertionError((out, {k: v for k, v in w.counters().items() if v}))
    # fullnat cannot go stateless: with the table still full, new flows are refused and counted.
    r = testbed.exec("cl", "curl", "-s", "-m", "2", f"http://{VIP}/", check=False)
    assert r.returncode != 0
    assert w.proc.poll() is None, "weir died with a full table"
    w.stop()
    c = w.counters()
    assert c["flows_stateless"] >= 24, c
    assert c["drop_table_full"] >= 1, c


def test_full_fullnat_table_makes_room_from_finished_connections(testbed, tmp_path):
    # Finished connections linger here (as after a burst of short requests): a
    # full table gives their entries to new connections instead of refusing them.
    cfg = (
        base_config(capacity=16, timeouts={"tcp_fin_timeout": 600, "tcp_close_timeout": 600})
        + pool("web", EQUAL)
        + service("web", VIP, 80, "web")
    )
    w = start(testbed, tmp_path, cfg)
    r = http_clients(testbed, VIP, 80, 40, threads=1)
    assert r["errors"] == 0, r
    w.stop()
    c = w.counters()
    assert c["flows_new"] >= 36 and c["flows_reclaimed"] == c["flows_new"] - 16, c
    assert c["drop_table_full"] == 0 and c["conn_entries"] == 16, c


def test_fullnat_and_dr_on_an_af_xdp_port(testbed, tmp_path):
    # DPDK's af_xdp on the testbed's veth: XDP on a veth takes a peer MTU of
    # about 3.5 KB at most, so the switch side of wan0 drops to 1500. TCP
    # through fullnat and dr, and no mbuf kept: the pool's use at rest comes
    # back after the traffic (af_xdp keeps its fill ring's mbufs at close, so
    # the exit summary's count is not the leak check here).
    testbed.exec("sw", "ip", "link", "set", f"wr{testbed.rid}lbs", "mtu", "1500")
    cfg = (
        base_config().replace("net_af_packet0,iface=wan0,qpairs=1",
                              "net_af_xdp0,iface=wan0,start_queue=0,queue_count=1")
        + pool("web", EQUAL)
        + service("web", VIP, 80, "web")
        + service("web-dr", DR_VIP, 80, "web", mode="dr")
        + admin_section(testbed.rid)
    )
    assert "net_af_xdp0" in cfg
    w = start(testbed, tmp_path, cfg)
    at_rest = ctl(testbed, "show", "stat", json_out=True)["mbufs"]["in_use"]
    nat = http_clients(testbed, VIP, 80, 30)
    dr = http_clients(testbed, DR_VIP, 80, 30)
    time.sleep(0.3)
    # af_xdp keeps what it sent until it reaps the completions, at its next send
    # (a burst at most, at either reading). A leak would take one or more per
    # connection (60 here).
    after = ctl(testbed, "show", "stat", json_out=True)["mbufs"]["in_use"]
    assert abs(after - at_rest) <= 32, (at_rest, after)
    w.stop(check_mbufs=False)
    c = w.counters()
    assert nat["errors"] == 0 and set(nat["backends"]) == {"b1", "b2", "b3"}, nat
    assert set(nat["sources"]) == {LOCAL4}, nat
    assert dr["errors"] == 0 and set(dr["backends"]) == {"b1", "b2", "b3"}, dr
    assert c["flows_new"] == 60 and c["lb_reverse"] > 0, c


def test_full_fullnat_table_of_quiet_connections_takes_new_clients(testbed, tmp_path):
    # Sixteen keep-alive connections fill the table and go quiet (clients that
    # vanished without a FIN look the same). Past tcp_idle_reclaim new clients
    # take the longest-quiet entries instead of being refused; a quiet client
    # that speaks again is reset rather than left hanging.
    cfg = (
        base_config(capacity=16, timeouts={"tcp_idle_reclaim": 2})
        + pool("web", EQUAL)
        + service("web", VIP, 80, "web")
    )
    w = start(testbed, tmp_path, cfg)
    ka = KeepAlive(testbed, VIP, 16, wait=2.0)
    try:
        time.sleep(2.5)
        r = http_clients(testbed, VIP, 80, 10, threads=1)
        again = ka.again()
    finally:
        ka.kill()
    w.stop()
    c = w.counters()
    assert r["errors"] == 0, (r, c)
    assert c["drop_table_full"] == 0 and c["flows_reclaimed"] >= 10, c
    # Those whose entries went were reset when they spoke; the rest were answered.
    reset = again.count("ConnectionResetError")
    assert reset >= 1 and all(a in ("b1", "b2", "b3") for a in again if a != "ConnectionResetError"), again
    assert c["tcp_resets_sent"] >= reset, (again, c)
    # Those were counted apart from the finished connections given up after them.
    assert c["flows_reclaimed"] > c["flows_reclaimed_quiet_tcp"] >= reset, c


@pytest.mark.parametrize("workers", [1, 2])
def test_a_syn_flood_on_a_full_fullnat_table_leaves_room_for_real_clients(testbed, tmp_path, workers):
    # 512 entries: several of the flood's 100-SYN bursts fit in the table, so a
    # real handshake is not overtaken even when this shared machine stalls weir.
    # With two workers each has its own table, and flows are handed to their owner.
    cfg = (
        base_config(workers=workers, capacity=512)
        + pool("web", EQUAL)
        + service("web", VIP, 80, "web")
    )
    w = start(testbed, tmp_path, cfg)
    flood = testbed.popen("cl", "/usr/bin/python3", str(Path(__file__).parent / "syn_flood.py"),
                          "eth0", testbed.port_mac(), VIP, "5", stdout=subprocess.PIPE, text=True)
    time.sleep(1.5)
    # Real clients while the flood goes on: each SYN takes the oldest half-open
    # entry, and its connection is established long before its turn would come.
    # Had a flood SYN taken its entry before the SYN-ACK came back, the client's
    # kernel would have sent the SYN again.
    retrans = lambda: int(testbed.exec("cl", "nstat", "-az", "TcpExtTCPSynRetrans").stdout.split()[-2])
    before = retrans()
    r = http_clients(testbed, VIP, 80, 20, threads=1)
    syn_again = retrans() - before
    sent = int(flood.communicate(timeout=30)[0])
    w.stop()
    c = w.counters()
    assert r["errors"] == 0, (r, c)
    assert syn_again == 0, (syn_again, c)
    assert sent >= 500, sent
    assert c["drop_table_full"] == 0, c
    assert c["flows_reclaimed"] >= sent - 512 * workers, (sent, c)
    if workers == 2:
        # Every packet handed over arrived, or was counted as a full ring's.
        assert c["handoff_out"] > 0, c
        assert c["handoff_in"] + c["drop_handoff_full"] == c["handoff_out"], c


def test_full_table_gives_quiet_udp_flows_to_new_ones(testbed, tmp_path):
    # Request/answer UDP (DNS-like): each query a flow of its own, over after the
    # answer but held for the UDP timeout (300 s). A full table gives the entries
    # of flows quiet for 10 s to new ones, and refuses new flows before that.
    cfg = (
        base_config(capacity=16)
        + pool("dns", EQUAL, port=5353)
        + service("dns", VIP, 53, "dns", protocol="udp")
    )
    w = start(testbed, tmp_path, cfg)
    # Each query from a port of its own (the kernel's random ports could give
    # a later query an earlier one's 5-tuple, and so its entry).
    script = (
        "import socket,time\n"
        "port=20000\n"
        "def ask(n):\n"
        "  global port\n"
        "  ok=0\n"
        "  for i in range(n):\n"
        "    s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); s.settimeout(0.5)\n"
        "    s.bind(('',port)); port+=1\n"
        "    s.sendto(b'q',('198.18.0.100',53))\n"
        "    try: s.recvfrom(2048); ok+=1\n"
        "    except OSError: pass\n"
        "  return ok\n"
        "first=ask(16); refused=4-ask(4); time.sleep(10.5); print(first, refused, ask(16))\n"
    )
    out = testbed.exec("cl", "/usr/bin/python3", "-c", script, timeout=60).stdout.split()
    w.stop()
    c = w.counters()
    assert out == ["16", "4", "16"], (out, c)
    assert c["flows_reclaimed"] == 16 and c["drop_table_full"] == 4, c


def web_on_both_families():
    """The example's port, and HTTP services on the IPv4 and IPv6 VIPs."""
    return (
        base_config()
        + pool("web", EQUAL)
        + pool("web6", EQUAL, v6=True)
        + service("web", VIP, 80, "web")
        + service("web6", VIP6, 80, "web6")
    )


def test_a_backend_that_changes_its_mac_is_reached_at_its_new_one_at_once(testbed, tmp_path):
    # b1's MAC changes (a NIC swapped, a VM moved, its address taken over by
    # another host): its kernel announces it (gratuitous ARP, an unsolicited
    # neighbour advertisement: arp_notify / ndisc_notify), and weir sends to the
    # new MAC at once instead of at its next refresh (5 s) or never, to a MAC
    # that is no longer there.
    cfg = web_on_both_families()
    w = start(testbed, tmp_path, cfg, neighbours=6)
    new_mac = "02:00:00:00:b1:01"
    testbed.exec("b1", "sysctl", "-qw", "net.ipv4.conf.eth0.arp_notify=1",
                 "net.ipv6.conf.eth0.ndisc_notify=1")
    changed = time.time()
    testbed.exec("b1", "ip", "link", "set", "eth0", "address", new_mac)
    learnt = [log_time(w, rf"neighbour {re.escape(a)} is at {new_mac}")
              for a in ("198.18.0.11", "2001:db8::11")]
    r4 = http_clients(testbed, VIP, 80, 60)
    r6 = http_clients(testbed, VIP6, 80, 60)
    w.stop()
    assert all(t - changed < 1.0 for t in learnt), (changed, learnt)
    for r in (r4, r6):
        assert r["errors"] == 0 and r["backends"].get("b1", 0) > 0, r


def test_weir_announces_its_addresses_when_it_starts(testbed, tmp_path):
    # The client knows the VIPs at the port's MAC. weir stops and starts again
    # on a port with another MAC (a NIC swapped, the standby taking over): its
    # announcements (gratuitous ARP, unsolicited neighbour advertisements)
    # move the client's neighbour entries at once; before, the client sent to
    # the old MAC until its kernel re-probed the entry (5 s and more).
    cfg = web_on_both_families()
    w = start(testbed, tmp_path, cfg, neighbours=6)
    for vip in (VIP, VIP6):
        assert http_clients(testbed, vip, 80, 3)["errors"] == 0
    w.stop()
    new_mac = "02:00:00:00:aa:01"
    testbed.exec("lb", "ip", "link", "set", "wan0", "address", new_mac)
    second = tmp_path / "second"
    second.mkdir()
    w = Weir(testbed, config_text=cfg, tmp_path=second)
    w.wait_ready()
    started = time.time()
    neigh = ""
    while time.time() < started + 2:
        neigh = testbed.exec("cl", "ip", "neigh", "show").stdout
        if all(re.search(rf"^{re.escape(v)} .*lladdr {new_mac}", neigh, re.M) for v in (VIP, VIP6)):
            break
        time.sleep(0.05)
    took = time.time() - started
    r4 = http_clients(testbed, VIP, 80, 3)
    r6 = http_clients(testbed, VIP6, 80, 3)
    w.stop()
    assert took < 2, neigh
    assert r4["errors"] == 0 and r6["errors"] == 0, (r4, r6)
    assert log_time(w, r"announced \d+ addresses") - started < 1.0
    # The port's own addresses, its local addresses and the VIPs, IPv4 and IPv6.
    assert re.search(r"announced 6 addresses", w.log()), w.log()


def test_two_workers_own_both_directions(testbed, tmp_path):
    cfg = (
        base_config(workers=2)
        + pool("web", EQUAL)
        + pool("dns", EQUAL, port=5353)
        + service("web", VIP, 80, "web")
        + service("web-dr", DR_VIP, 80, "web", mode="dr")
        + service("dns", VIP, 53, "dns", protocol="udp")
        + admin_section(testbed.rid)
    )
    w = start(testbed, tmp_path, cfg)
    # af_packet spreads packets by the kernel's hash, not by RSS with Weir's
    # key: flows belong to the worker Weir's own hash picks, and weir says so,
    # in its log and in `show info`.
    rule = ("the worker Weir's own hash picks, handed over from the one"
            " that receives them (port wan: net_af_packet spreads packets its own way)")
    assert f"flows belong to {rule}" in w.log()
    assert f"\nflows belong to: {rule}\n" in ctl(testbed, "show", "info")
    assert ctl(testbed, "show", "info", json_out=True)["flow_owners"] == rule
    r = http_clients(testbed, VIP, 80, 300)
    assert r["errors"] == 0, r
    r = http_clients(testbed, DR_VIP, 80, 100)
    assert r["errors"] == 0, r
    # Large transfers through the hand-off: every byte arrives, in order.
    big = testbed.exec("cl", "sh", "-c",
                       f"for i in 1 2 3 4 5 6; do curl -s -m 10 http://{VIP}/big | sha256sum; done",
                       timeout=90).stdout.split("\n")
    want = {hashlib.sha256((f"backend {b}\n".encode() * 70000)[: 1 << 20]).hexdigest()
            for b in ("b1", "b2", "b3")}
    sums = {line.split()[0] for line in big if line}
    assert sums and sums <= want, sums
    w.stop()
    workers = [x["counters"] for x in w.summary["workers"]]
    # Each worker created connections, both steered packets to the other, and no
    # reply ever reached a worker without its entry.
    assert all(x["flows_new"] > 0 for x in workers), workers
    assert all(x["handoff_out"] > 0 for x in workers), workers
    assert sum(x["handoff_in"] for x in workers) == sum(x["handoff_out"] for x in workers)
    c = w.counters()
    assert c["drop_no_flow"] == 0 and c["drop_handoff_full"] == 0, c


BAD_SERVICES = [
    ('scheduler = "ring_hash"', 'scheduler = "fastest"', "unknown variant `fastest`"),
    ('address = "198.18.0.13"', 'address = "198.19.9.9"', "pool[0].backend[2].address"),
    ('vip = "198.18.0.200"', 'vip = "198.18.0.100"', "service[2].vip"),
    ('scheduler = "ring_hash"', 'scheduler = "ring_hash"\nhash_secret = "short"',
     "service[0].hash_secret: at least 16 characters"),
]


@pytest.mark.parametrize("old,new,named", BAD_SERVICES)
def test_check_rejects_bad_services(tmp_path, old, new, named):
    src = EXAMPLE_CONFIG.read_text()
    assert old in src
    bad = src.replace(old, new, 1)
    if "198.18.0.100" in new:  # make web-dr a duplicate of web: same port and protocol
        bad = bad.replace('mode = "dr"\npool = "web"', 'mode = "fullnat"\npool = "web"')
    r, _ = weir_check(tmp_path, bad)
    assert r.returncode == 2 and named in r.stderr, r.stderr


def test_zero_weight_pool_is_rejected(tmp_path):
    cfg = base_config() + pool("web", [("b1", 0), ("b2", 0)]) + service("web", VIP, 80, "web")
    r, _ = weir_check(tmp_path, cfg)
    assert r.returncode == 2 and "pool[0].backend" in r.stderr and "weight 0" in r.stderr, r.stderr



def test_stopping_under_load_loses_no_packet_uncounted(testbed, tmp_path):
    # SIGTERM while wrk drives keep-alive traffic through two workers, both
    # handing packets to each other: the workers drain their hand-off rings and
    # batches before they stop, so the exit summary accounts for every packet
    # (stop() asserts it) and every mbuf goes back to the pool.
    cfg = (
        base_config(workers=2)
        + pool("web", EQUAL)
        + service("web", VIP, 80, "web")
        + service("web-dr", DR_VIP, 80, "web", mode="dr")
    )
    w = start(testbed, tmp_path, cfg)
    loads = [testbed.popen("cl", "wrk", "-t1", "-c16", "-d20s", f"http://{vip}/",
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
             for vip in (VIP, DR_VIP)]
    time.sleep(2)
    try:
        assert w.stop() < 5  # a hang guard: the exit path is what is checked
    finally:
        for p in loads:
            p.kill()
            p.wait()
    c = w.counters()
    assert c["lb_forward"] > 5000 and c["handoff_out"] > 1000, c
    assert c["handoff_in"] + c["drop_handoff_full"] == c["handoff_out"], c
    assert w.summary["packets_unaccounted"] == 0 and w.summary["mbufs"]["in_use"] == 0
