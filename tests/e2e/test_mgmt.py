"""Issue 4 end to end: health checks with rise/fall taking backends out and back
(and UDP flows, and connections opened again from the same port, moving off a
backend that goes down), drain, weights, show flow,
reload under load, the admin socket's handling of bad input and other users, and
the Prometheus endpoint."""

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from background_load import Load
from weirlab import (
    start_weir as start,
    log_time,
    KeepAlive,
    EQUAL,
    WEIR_BIN,
    admin_section,
    backend_pid,
    base_config,
    ctl,
    health,
    http_clients,
    pool,
    run,
    service,
    start_backend,
    udp_probe,
    HERE,
    ping,
)

VIP = "198.18.0.100"
VIP2 = "198.18.0.101"
VIP6 = "2001:db8::100"


def web(h="", extra_pools="", extra_services="", weights=EQUAL, rid="x", timeouts=None):
    return (
        base_config(timeouts=timeouts)
        + pool("web", weights)
        + h
        + extra_pools
        + service("web", VIP, 80, "web")
        + extra_services
        + admin_section(rid)
    )


def test_http_check_takes_a_dead_backend_out_and_back(testbed, tmp_path):
    interval, fall, rise = 0.3, 2, 2
    w = start(testbed, tmp_path, web(health(interval_ms=300, timeout_ms=200, rise=rise, fall=fall), rid=testbed.rid))
    load = Load(testbed, VIP)
    time.sleep(1.5)
    killed = time.time()
    os.kill(backend_pid(testbed, "b2"), signal.SIGKILL)
    down = log_time(w, r"backend web/b2 is DOWN: refused")
    assert down - killed <= interval * fall + interval + 0.25, down - killed
    time.sleep(1.5)
    restarted = time.time()
    start_backend(testbed, "b2")
    up = log_time(w, r"backend web/b2 is UP")
    assert up >= restarted
    time.sleep(1.5)
    results = load.finish()
    # After DOWN, no new request reached b2 and none failed.
    # (0.1 s after the log line: the verdict is logged just before the snapshot
    # that carries it is published.)
    after_down = [(t, b) for t, b in results if down + 0.1 < t < restarted]
    assert after_down, results
    bad = [(t - down, b) for t, b in after_down if b in ("b2", None)]
    assert not bad, bad
    # Failures only in the detection window.
    errors = [t for t, b in results if b is None]
    assert all(killed - 0.05 <= t <= down + 0.1 for t in errors), (killed, down, errors)
    # Traffic returns once it is UP.
    assert "b2" in [b for t, b in results if t > up + 0.05]
    out = ctl(testbed, "show", "servers", json_out=True)
    b2 = next(b for b in out if b["name"] == "web/b2")
    assert b2["health"] == "up" and b2["checks_failed"] >= fall and b2["checks_ok"] >= rise
    w.stop()


def test_a_backend_the_appliance_has_no_route_to_fails_its_tcp_check(testbed, tmp_path):
    w = start(testbed, tmp_path, web(health(kind="tcp", interval_ms=200, timeout_ms=150), rid=testbed.rid))
    # The appliance's kernel (which sends the checks) loses its route to b2:
    # connect fails at once, before any packet leaves.
    cut = time.time()
    testbed.exec("lb", "ip", "route", "add", "unreachable", "198.18.0.12/32")
    down = log_time(w, r"backend web/b2 is DOWN: unreachable", after=cut)
    assert down - cut < 1.5, down - cut
    # The dataplane does not use that route: the others take every new flow.
    r = http_clients(testbed, VIP, 80, 30)
    assert r["errors"] == 0 and set(r["backends"]) == {"b1", "b3"}, r
    b2 = next(b for b in ctl(testbed, "show", "servers", json_out=True) if b["name"] == "web/b2")
    assert b2["health"] == "down" and b2["checks_failed"] >= 2, b2
    testbed.exec("lb", "ip", "route", "del", "unreachable", "198.18.0.12/32")
    log_time(w, r"backend web/b2 is UP", after=down)
    w.stop()


def test_http_check_with_expected_body_catches_a_wrong_answer(testbed, tmp_path):
    h = health(interval_ms=200, timeout_ms=150, rise=1, fall=2, http_body="backend b1 ")
    w = start(testbed, tmp_path, web(h, rid=testbed.rid))
    log_time(w, r"backend web/b2 is DOWN: body mismatch")
    log_time(w, r"backend web/b3 is DOWN: body mismatch")
    servers = {b["name"]: b for b in ctl(testbed, "show", "servers", json_out=True)}
    assert servers["web/b1"]["health"] == "up"
    assert servers["web/b2"]["last_check"]["reason"] == "body mismatch"
    r = http_clients(testbed, VIP, 80, 30)
    assert r["backends"] == {"b1": 30}, r
    w.stop()


def test_drain_keeps_existing_connections_and_sends_new_ones_elsewhere(testbed, tmp_path):
    w = start(testbed, tmp_path, web(rid=testbed.rid, timeouts={"tcp_close_timeout": 1, "tcp_fin_timeout": 2}))
    ka = KeepAlive(testbed, VIP, 12)
    first = ka.backends()
    victim = max(set(first), key=first.count)
    held = first.count(victim)
    ctl(testbed, "set", "server", f"web/{victim}", "state", "drain")
    # Existing connections go on, to the same backends.
    assert ka.again() == first
    r = http_clients(testbed, VIP, 80, 60)
    assert r["errors"] == 0 and victim not in r["backends"], r
    servers = {b["name"]: b for b in ctl(testbed, "show", "servers", json_out=True)}
    assert servers[f"web/{victim}"]["state"] == "drain"
    assert servers[f"web/{victim}"]["active"] == held
    ka.close_all()
    deadline = time.time() + 6
    while time.time() < deadline:
        servers = {b["name"]: b for b in ctl(testbed, "show", "servers", json_out=True)}
        if servers[f"web/{victim}"]["active"] == 0:
            break
        time.sleep(0.2)
    assert servers[f"web/{victim}"]["active"] == 0
    ka.kill()
    audit = Path(f"/tmp/weir-{testbed.rid}.audit").read_text()
    assert f'set server web/{victim} state: before "ready" after "drain"' in audit, audit
    w.stop()


def test_maint_stops_a_backends_connections_and_its_drops_are_counted_for_it(testbed, tmp_path):
    # `maint` blocks a backend at once, established connections included: their
    # packets are dropped (drop_backend_maint), counted for the service and for
    # the backend they were for, on show stat, the metrics and the summary.
    w = start(testbed, tmp_path, web(rid=testbed.rid))
    ka = KeepAlive(testbed, VIP, 9, wait=0.5)
    try:
        first = ka.backends()
        victim = max(set(first), key=first.count)
        ctl(testbed, "set", "server", f"web/{victim}", "state", "maint")
        second = ka.again()
    finally:
        ka.kill()
    assert second == ["TimeoutError" if b == victim else b for b in first], (first, second)
    stat = {b["name"]: b for b in ctl(testbed, "show", "stat", json_out=True)["backends"]}
    dropped = stat[f"web/{victim}"]["drops"]
    assert dropped >= first.count(victim), stat
    assert stat[f"web/{victim}"]["drops_by_reason"] == {"drop_backend_maint": dropped}, stat
    assert all(b["drops"] == 0 for n, b in stat.items() if n != f"web/{victim}"), stat
    _, fam = scrape(testbed)
    assert value(fam, "weir_backend_drops", backend=f"web/{victim}") == dropped
    assert value(fam, "weir_backend_drops_by_reason", backend=f"web/{victim}",
                 reason="drop_backend_maint") == dropped
    w.stop()
    assert w.summary["backends"][f"web/{victim}"]["drop_backend_maint"] >= dropped
    assert w.counters()["drop_backend_maint"] == w.summary["backends"][f"web/{victim}"]["drops"]


def test_weights_make_a_canary(testbed, tmp_path):
    w = start(testbed, tmp_path, web(rid=testbed.rid))
    ctl(testbed, "set", "server", "web/b1", "weight", "5")
    ctl(testbed, "set", "server", "web/b2", "weight", "95")
    ctl(testbed, "set", "server", "web/b3", "weight", "0")
    r = http_clients(testbed, VIP, 80, 2000, sport_base=30000, threads=16)
    assert r["errors"] == 0, r
    b = r["backends"]
    assert "b3" not in b
    assert 0.035 <= b.get("b1", 0) / 2000 <= 0.065, b
    w.stop()


def test_show_flow_names_the_backend_the_flow_reached(testbed, tmp_path):
    w = start(testbed, tmp_path, web(rid=testbed.rid))
    ka = KeepAlive(testbed, VIP, 3)
    for sport, backend in ka.first:
        out = ctl(testbed, "show", "flow", "tcp", "198.18.0.10", str(sport), VIP, "80")
        assert f"backend: web/{backend} (entry hit)" in out, out
        j = ctl(testbed, "show", "flow", "tcp", "198.18.0.10", str(sport), VIP, "80", json_out=True)
        assert j["backend"] == f"web/{backend}" and j["why"] == "entry" and j["state"] == "established"
    # A flow that does not exist yet: the hash's choice.
    j = ctl(testbed, "show", "flow", "tcp", "198.18.0.10", "65000", VIP, "80", json_out=True)
    assert j["why"] == "hash" and j["backend"].startswith("web/b")
    r = http_clients(testbed, VIP, 80, 1, sport_base=65000)
    assert f"web/{r['backends'].popitem()[0]}" == j["backend"]
    ka.kill()
    w.stop()


def test_show_conns_lists_every_workers_connections_from_tables_of_a_million(testbed, tmp_path):
    # Each worker reads its 1M-entry table 8,192 ids a tick: ~12 ms to answer.
    cfg = (base_config(workers=2, capacity=1_000_000) + pool("web", EQUAL)
           + service("web", VIP, 80, "web") + admin_section(testbed.rid))
    w = start(testbed, tmp_path, cfg)
    ka = KeepAlive(testbed, VIP, 20)
    conns = ctl(testbed, "show", "conns", "web", json_out=True)
    seen = {int(c["client"].rsplit(":", 1)[1]): (c["backend"], c["worker"], c["state"]) for c in conns}
    assert len(conns) == 20 and set(seen) == {p for p, _ in ka.first}, conns
    for sport, backend in ka.first:
        flow = ctl(testbed, "show", "flow", "tcp", "198.18.0.10", str(sport), VIP, "80", json_out=True)
        assert seen[sport] == (f"web/{backend}", flow["worker"], "established"), (seen[sport], flow)
    assert {c["worker"] for c in conns} == {0, 1}, "20 connections, all on one worker"
    text = ctl(testbed, "show", "conns")
    assert text.startswith("20 connection(s)\n"), text
    ka.kill()
    w.stop()


def test_reload_under_load_and_a_broken_reload(testbed, tmp_path):
    cfg = (
        base_config()
        + pool("web", [("b1", 1), ("b2", 1)])
        + pool("other", EQUAL)
        + pool("dns", EQUAL, port=5353)
        + service("web", VIP, 80, "web")
        + service("other", VIP2, 80, "other")
        + service("dns", VIP, 53, "dns", protocol="udp")
        + admin_section(testbed.rid)
    )
    w = start(testbed, tmp_path, cfg)
    load = Load(testbed, VIP2)
    # Established keep-alive connections to the untouched service, across the reload.
    held = KeepAlive(testbed, VIP2, 4)
    time.sleep(1)
    # Add b3 to web, change a weight in other, remove the dns service.
    new = cfg.replace(pool("web", [("b1", 1), ("b2", 1)]), pool("web", EQUAL))
    new = new.replace(pool("other", EQUAL), pool("other", [("b1", 1), ("b2", 3), ("b3", 1)]))
    new = new.replace(service("dns", VIP, 53, "dns", protocol="udp"), "")
    w.config_path.write_text(new)
    out = ctl(testbed, "reload")
    assert out.startswith("reloaded:"), out
    assert held.again() == held.backends()
    time.sleep(1)
    r = http_clients(testbed, VIP, 80, 90)
    assert r["errors"] == 0 and set(r["backends"]) == {"b1", "b2", "b3"}, r
    u = testbed.exec("cl", "/usr/bin/python3", "-c",
                     "import socket;s=socket.socket(2,2);s.settimeout(1);s.sendto(b'x',('198.18.0.100',53))\n"
                     "try:\n s.recvfrom(100);print('answered')\nexcept OSError:\n print('no answer')").stdout
    assert u.strip() == "no answer"
    # A broken file is refused; the running config stays.
    w.config_path.write_text(new.replace('vip = "198.18.0.101"', 'vip = "198.18.0.999"'))
    r = run([WEIR_BIN, "ctl", "-s", f"/tmp/weir-{testbed.rid}.sock", "reload"], check=False)
    assert r.returncode == 1 and "reload refused" in r.stdout and "service[1].vip" in r.stdout, r.stdout
    # SIGHUP with the broken file: refused too, logged.
    w.proc.send_signal(signal.SIGHUP)
    log_time(w, r"reload refused")
    time.sleep(1)
    results = load.finish()
    held.kill()
    assert len(results) > 50
    assert all(b is not None for _, b in results), [t for t, b in results if b is None]
    w.stop()
    assert w.returncode == 0


def test_a_reload_that_changes_a_services_mode_keeps_its_connections(testbed, tmp_path):
    # Backends hold this VIP on their loopback, so it can be served either way.
    dr_vip = "198.18.0.200"
    cfg = (base_config() + pool("web", EQUAL)
           + service("web", dr_vip, 80, "web", mode="fullnat") + admin_section(testbed.rid))
    w = start(testbed, tmp_path, cfg)
    fullnat_held = KeepAlive(testbed, dr_vip, 6)
    w.config_path.write_text(cfg.replace('mode = "fullnat"', 'mode = "dr"'))
    assert ctl(testbed, "reload").startswith("reloaded:")
    # Connections made in fullnat go on translated; new ones are dr (the
    # backends see the client's own address).
    assert fullnat_held.again() == fullnat_held.backends()
    r = http_clients(testbed, dr_vip, 80, 30)
    assert r["errors"] == 0 and r["sources"] == {"198.18.0.10": 30}, r
    dr_held = KeepAlive(testbed, dr_vip, 6)
    w.config_path.write_text(cfg)
    assert ctl(testbed, "reload").startswith("reloaded:")
    assert dr_held.again() == dr_held.backends()
    assert fullnat_held.again() == fullnat_held.backends()
    r = http_clients(testbed, dr_vip, 80, 30)
    assert r["errors"] == 0 and r["sources"] == {"198.18.0.2": 30}, r
    for h in (fullnat_held, dr_held):
        h.kill()
    w.stop()
    assert w.counters()["drop_no_flow"] == 0, w.counters()


def rss_kib(pid):
    """The resident memory of process `pid`, in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for {pid}")


def test_hundreds_of_reloads_and_changes_under_load_leave_weir_the_same_size(testbed, tmp_path):
    # Every cycle changes both services' ring tables (128 KiB each): a snapshot
    # or ring kept after it was replaced would add ~250 KiB a cycle.
    def cfg(weights):
        return (base_config() + pool("web", weights) + pool("web6", EQUAL, v6=True)
                + service("web", VIP, 80, "web") + service("web6", VIP6, 80, "web6")
                + admin_section(testbed.rid))

    w = start(testbed, tmp_path, cfg(EQUAL))
    loads = [Load(testbed, VIP), Load(testbed, VIP6)]

    def cycle(i):
        ctl(testbed, "set", "server", "web/b1", "weight", str(1 + i % 5))
        ctl(testbed, "set", "server", "web/b2", "state", "drain" if i % 2 else "ready")
        ctl(testbed, "del", "server", "web6/b3")
        ctl(testbed, "add", "server", "web6", "b3", "[2001:db8::13]:80")
        w.config_path.write_text(cfg(EQUAL if i % 2 else [("b1", 1), ("b2", 2), ("b3", 3)]))
        out = ctl(testbed, "reload")
        assert out.startswith("reloaded:"), out

    # The allocator settles in the first cycles.
    for i in range(50):
        cycle(i)
    settled = rss_kib(w.proc.pid)
    for i in range(50, 300):
        cycle(i)
    grown = rss_kib(w.proc.pid) - settled
    results = [load.finish() for load in loads]
    assert grown < 8 * 1024, f"weir grew by {grown} KiB over 250 cycles"
    for r in results:
        assert len(r) > 100 and all(b is not None for _, b in r), r
    w.stop()


def test_sighup_opens_the_audit_log_again_after_a_rotation(testbed, tmp_path):
    w = start(testbed, tmp_path, web(rid=testbed.rid))
    audit = Path(f"/tmp/weir-{testbed.rid}.audit")
    rotated = Path(f"/tmp/weir-{testbed.rid}.audit.1")
    try:
        ctl(testbed, "set", "server", "web/b1", "weight", "2")
        audit.rename(rotated)
        sent = time.time()
        w.proc.send_signal(signal.SIGHUP)
        log_time(w, r"reloaded:", after=sent - 0.5)
        ctl(testbed, "set", "server", "web/b1", "weight", "3")
        # (The reload set b1's weight back to the file's 1.)
        old, new = rotated.read_text(), audit.read_text()
        assert 'weight: before "1" after "2"' in old and "SIGHUP" not in old, old
        assert "SIGHUP uid=0 pid=0: reload" in new, new
        assert 'weight: before "1" after "3"' in new and 'after "2"' not in new, new
    finally:
        rotated.unlink(missing_ok=True)
    w.stop()


def raw_admin(rid, payload, as_user=None):
    """Sends raw bytes to the admin socket; returns what came back."""
    script = (
        "import socket,sys\n"
        "s=socket.socket(socket.AF_UNIX); s.settimeout(3)\n"
        f"s.connect('/tmp/weir-{rid}.sock')\n"
        # A refused peer may be disconnected before it writes: read what came anyway.
        "try:\n  s.sendall(sys.stdin.buffer.read()); s.shutdown(socket.SHUT_WR)\nexcept OSError:\n  pass\n"
        "d=b''\n"
        "while True:\n"
        "  try:\n    c=s.recv(65536)\n  except OSError:\n    break\n"
        "  if not c: break\n"
        "  d+=c\n"
        "sys.stdout.buffer.write(d)\n"
    )
    cmd = ["/usr/bin/python3", "-c", script]
    if as_user:
        cmd = ["setpriv", f"--reuid={as_user}", f"--regid={as_user}", "--clear-groups"] + cmd
    r = subprocess.run(cmd, input=payload, capture_output=True, timeout=10)
    return r.stdout.decode(errors="replace")


def test_admin_socket_survives_bad_input_and_refuses_other_users(testbed, tmp_path):
    w = start(testbed, tmp_path, web(rid=testbed.rid))
    sock = Path(f"/tmp/weir-{testbed.rid}.sock")
    assert oct(sock.stat().st_mode & 0o777) == "0o600"
    payload = (b"\n" + b"x" * 10000 + b"\n" + b"\xff\xfe\x00bin\n" + b"frobnicate now\n"
               + b"set server web/b1 weight lots\n" + b"set server nope/b1 state drain\n"
               + b"show flow tcp 1.2.3\n" + b"show info\n")
    out = raw_admin(testbed.rid, payload)
    answers = out.split("\n\n")
    assert answers[0].startswith("error: empty command"), answers
    assert answers[1].startswith("error: line longer than 4096"), answers
    assert answers[2].startswith("error: not UTF-8") or answers[2].startswith("error: control"), answers
    assert answers[3].startswith("error: unknown command"), answers
    assert answers[4].startswith("error: weight \"lots\""), answers
    assert answers[5].startswith("error: no backend"), answers
    assert answers[6].startswith("error: need 5 arguments"), answers
    assert answers[7].startswith("version: weir"), answers
    info = ctl(testbed, "show", "info")
    assert info.startswith("version: weir") and "\nflows belong to: the one worker\n" in info, info
    # Another user: even with the file opened up, the peer check refuses.
    os.chmod(sock, 0o666)
    out = raw_admin(testbed.rid, b"show info\n", as_user=65534)
    assert out.startswith("error: permission denied"), out
    assert "refused a connection from uid 65534" in w.log()
    info = ctl(testbed, "show", "info")
    assert info.startswith("version: weir") and "\nflows belong to: the one worker\n" in info, info
    r = run([WEIR_BIN, "ctl", "-s", str(sock), "bogus"], check=False)
    assert r.returncode == 1 and r.stdout.startswith("error: unknown command")
    w.stop()
    assert w.returncode == 0


def scrape(testbed):
    out = testbed.exec("lb", "curl", "-s", "-m", "3", "http://127.0.0.1:9100/metrics").stdout
    families = {f.name: f for f in text_string_to_metric_families(out)}
    return out, families


def value(families, name, **labels):
    for s in families[name].samples:
        if all(s.labels.get(k) == v for k, v in labels.items()) and s.name.startswith(name):
            return s.value
    raise KeyError((name, labels))


def test_prometheus_endpoint_parses_and_moves_under_load(testbed, tmp_path):
    w = start(testbed, tmp_path, web(health(kind="tcp", interval_ms=300, timeout_ms=200), rid=testbed.rid))
    text, fam = scrape(testbed)
    assert "# TYPE weir_service_packets_total counter" in text
    before = value(fam, "weir_service_packets", service="web")
    r = http_clients(testbed, VIP, 80, 30)
    assert r["errors"] == 0
    time.sleep(0.5)
    _, fam = scrape(testbed)
    after = value(fam, "weir_service_packets", service="web")
    assert after >= before + 30 * 4, (before, after)
    assert value(fam, "weir_service_new_flows", service="web") >= 30
    assert value(fam, "weir_backend_up", backend="web/b1") == 1
    assert value(fam, "weir_health_checks", backend="web/b1", result="ok") >= 1
    assert value(fam, "weir_conn_table_capacity") == 65536
    # The 30 connections hold their FullNAT source ports until they expire (the
    # health checks come from the appliance's own kernel, through no port).
    assert value(fam, "weir_conn_table_entries", worker="0") == 30
    assert value(fam, "weir_local_ports_in_use", worker="0") == 30
    assert value(fam, "weir_local_ports", worker="0") == 2 * (65536 - 1024)
    reasons = {s.labels["reason"] for s in fam["weir_drops"].samples}
    assert value(fam, "weir_backend_state", backend="web/b2", state="ready") == 1
    # Mid-stream segments of a connection fullnat never saw: dropped, and counted for
    # the service under their reason.
    stray = (
        "from scapy.all import Ether, IP, TCP, sendp\n"
        f"sendp(Ether(src='02:00:00:00:00:10', dst='{testbed.port_mac()}') / "
        f"IP(src='198.18.0.10', dst='{VIP}') / TCP(sport=33333, dport=80, flags='A'), "
        "iface='eth0', count=5, verbose=False)\n"
    )
    drops_before = value(fam, "weir_service_drops", service="web")
    testbed.exec("cl", "/usr/bin/python3", "-c", stray)
    time.sleep(0.5)
    _, fam = scrape(testbed)
    assert value(fam, "weir_service_drops_by_reason", service="web", reason="drop_no_flow") == 5
    assert value(fam, "weir_service_drops_by_reason", service="web", reason="drop_table_full") == 0
    assert value(fam, "weir_service_drops", service="web") == drops_before + 5
    stat = ctl(testbed, "show", "stat", json_out=True)
    web_stat = next(x for x in stat["services"] if x["name"] == "web")
    assert web_stat["drops_by_reason"] == {"drop_no_flow": 5}, web_stat
    w.stop()
    assert w.summary["services"]["web"]["drop_no_flow"] == 5, w.summary["services"]
    # One drop series per reason the dataplane counts (the exit summary lists them all).
    counted = {k.removeprefix("drop_") for k in w.counters() if k.startswith("drop_")}
    assert reasons == counted, reasons ^ counted


def test_clients_that_stall_do_not_hold_up_a_scrape(testbed, tmp_path):
    # Three connections to the metrics port that send nothing, half a request,
    # or a request whose answer they never read (a receive buffer of one page):
    # scrapes next to them are answered within curl's 3 s, before those
    # connections time out (5 s).
    w = start(testbed, tmp_path, web(rid=testbed.rid))
    stall = (
        "import socket,sys,time\n"
        "a=socket.create_connection(('127.0.0.1',9100))\n"
        "b=socket.create_connection(('127.0.0.1',9100)); b.sendall(b'GET /metrics HTTP/1.1\\r\\n')\n"
        "c=socket.socket(); c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)\n"
        "c.connect(('127.0.0.1',9100)); c.sendall(b'GET /metrics HTTP/1.1\\r\\n\\r\\n')\n"
        "print('stalling', flush=True); time.sleep(30)\n"
    )
    p = testbed.popen_ready("lb", "stalling", "/usr/bin/python3", "-c", stall)
    try:
        for _ in range(3):
            text, fam = scrape(testbed)
            assert "weir_mbufs_in_use" in fam, text[:200]
    finally:
        p.kill()
    w.stop()


def test_port_counters_come_from_the_device(testbed, tmp_path):
    # The device's own counters, beside the workers': what it received and sent,
    # and what it lost before a worker saw it (queue full, no mbuf, errors),
    # which the workers cannot count.
    w = start(testbed, tmp_path, web(rid=testbed.rid))
    r = http_clients(testbed, VIP, 80, 30)
    assert r["errors"] == 0
    _, fam = scrape(testbed)
    rx = value(fam, "weir_port_packets", port="wan", dir="rx")
    assert rx >= 30 * 4, rx
    assert value(fam, "weir_port_bytes", port="wan", dir="tx") > 30 * 4 * 54
    assert value(fam, "weir_port_up", port="wan") == 1
    reasons = {s.labels["reason"] for s in fam["weir_port_drops"].samples}
    assert reasons == {"missed", "no_mbuf", "rx_errors", "tx_errors"}, reasons
    # And on the admin socket.
    stat = ctl(testbed, "show", "stat", json_out=True)
    wan = next(p for p in stat["ports"] if p["name"] == "wan")
    assert wan["link_up"] and wan["rx_packets"] >= rx and wan["rx_missed"] == 0, wan
    w.stop()
    c = w.counters()
    port = w.summary["ports"]["wan"]
    # Every packet the device took reached a worker, and every one it sent came
    # from one.
    assert (port["rx_packets"], port["rx_bytes"]) == (c["rx_packets"], c["rx_bytes"]), (port, c)
    assert (port["tx_packets"], port["tx_bytes"]) == (c["tx_packets"], c["tx_bytes"]), (port, c)
    assert port["rx_missed"] == port["rx_no_mbuf"] == port["tx_errors"] == 0, port
    assert any(line.startswith("port wan (device): rx ") for line in w.log().split("weir: ")), w.log()


def test_every_mbuf_comes_back_to_the_pool_after_traffic_of_every_kind(testbed, tmp_path):
    # What is out of the packet pool (weir_mbufs_in_use) goes back to its level
    # at rest once traffic of every kind went through two workers: balanced
    # both ways (handed off between them), answered by the dataplane, passed to
    # the host, malformed, cut into fragments on the way out, IPv6 fragments
    # kept until their first came and fragments whose first never came. A
    # path that forgot an mbuf, or kept one, would starve the ports in the
    # field; only this gauge shows it while weir runs (the exit summary's
    # leak check sees the lost ones, not the kept).
    cfg = (
        base_config(workers=2)
        + pool("web", EQUAL)
        + pool("dns", EQUAL, port=5353)
        + pool("dns6", EQUAL, port=5353, v6=True)
        + service("web", VIP, 80, "web")
        + service("dns", VIP, 53, "dns", protocol="udp")
        + service("dns6", VIP6, 53, "dns6", protocol="udp")
        + admin_section(testbed.rid)
    )
    w = start(testbed, tmp_path, cfg, neighbours=6)
    _, fam = scrape(testbed)
    at_rest = value(fam, "weir_mbufs_in_use")
    assert value(fam, "weir_mbufs") == 8191 and 0 < at_rest < 8191, at_rest
    assert http_clients(testbed, VIP, 80, 40)["errors"] == 0
    late = ("--connect", "--fragments-reversed", testbed.port_mac())
    six = udp_probe(testbed, VIP6, 53, 3000, *late, count=3)
    orphans = udp_probe(testbed, VIP6, 53, 3000, *late, "--no-first", count=3, timeout=0.3)
    four = udp_probe(testbed, VIP, 53, 3000, "--connect", count=3)
    assert ping(testbed, "cl", VIP, count=3) == (3, 0)
    frames = ["runt", "ipv4_bad_checksum", "tcp_bad_checksum", "ipv6_header_chain"]
    testbed.exec("cl", "/usr/bin/python3", str(HERE / "send_frames.py"), "eth0",
                 testbed.port_mac(), "5", *frames, timeout=60)
    # Kept fragments are let go within two ticks (at most 200 ms).
    time.sleep(0.5)
    _, fam = scrape(testbed)
    assert value(fam, "weir_mbufs_in_use") == at_rest
    assert ctl(testbed, "show", "stat", json_out=True)["mbufs"]["in_use"] == at_rest
    w.stop()
    for r in (six, four):
        assert not r["errors"] and len(r["replies"]) == 3, r
    assert orphans["errors"] == ["timed out"] * 3, orphans
    c = w.counters()
    # Each kind of path above was taken.
    assert c["handoff_in"] > 0 and c["fragments_parked"] >= 6 and c["drop_fragment"] >= 3, c
    assert c["ip_fragments_out"] >= 18 and c["icmp_echo_replies"] == 3, c
    assert 0 < c["ip_packets_fragmented"] < c["ip_fragments_out"], c
    assert c["drop_ipv4_bad_checksum"] == 5 and c["drop_l4_bad_checksum"] == 5, c


def test_a_port_whose_link_goes_down_is_seen_and_traffic_resumes_when_it_is_back(
    testbed, tmp_path
):
    # DPDK 22.11's af_packet says its link is up from start to stop; weir reads
    # the kernel interface under it, logs each change within a tenth of a second,
    # shows it (show stat, weir_port_up) and counts it, and balanced traffic
    # flows again once the link is back.
    w = start(testbed, tmp_path, web(rid=testbed.rid))
    assert http_clients(testbed, VIP, 80, 10)["errors"] == 0
    pulled = time.time()
    testbed.exec("lb", "ip", "link", "set", "wan0", "down")
    assert log_time(w, r"port wan: link down") - pulled < 0.5
    stat = ctl(testbed, "show", "stat", json_out=True)
    wan = next(p for p in stat["ports"] if p["name"] == "wan")
    assert (wan["link_up"], wan["link_changes"]) == (False, 1), wan
    _, fam = scrape(testbed)
    assert value(fam, "weir_port_up", port="wan") == 0
    back = time.time()
    testbed.exec("lb", "ip", "link", "set", "wan0", "up")
    assert log_time(w, r"port wan: link up") - back < 0.5
    assert http_clients(testbed, VIP, 80, 10)["errors"] == 0
    _, fam = scrape(testbed)
    assert value(fam, "weir_port_up", port="wan") == 1
    assert value(fam, "weir_port_link_changes", port="wan") == 2
    w.stop()


@pytest.mark.parametrize("workers", [1, 2])
def test_frames_the_kernel_ring_drops_while_the_workers_stall_are_counted_as_missed(
    testbed, tmp_path, workers
):
    # On a NIC, frames that find its RX ring full are counted by the device
    # (missed). DPDK 22.11's af_packet does not read its kernel rings' drops;
    # weir does, from each queue's socket. weir stopped (SIGSTOP), 2000 frames
    # to a VIP port without a service: each ring (rx_desc = 256 frames) keeps
    # what fits, the kernel drops the rest; once weir runs again, every frame
    # is either dropped by a worker (drop_no_service) or missed, once.
    ring = 256
    cfg = (
        base_config(workers=workers).replace("x_desc = 1024", f"x_desc = {ring}")
        + pool("web", EQUAL)
        + service("web", VIP, 80, "web")
        + admin_section(testbed.rid)
    )
    w = start(testbed, tmp_path, cfg)
    flood = (
        "from scapy.all import Ether, IP, UDP, RandShort, sendp\n"
        f"sendp(Ether(src='02:00:00:00:00:10', dst='{testbed.port_mac()}') / "
        f"IP(src='198.18.0.10', dst='{VIP}') / UDP(sport=RandShort(), dport=9), "
        "iface='eth0', count=2000, verbose=False)\n"
    )
    _, fam = scrape(testbed)
    before = sum(s.value for s in fam["weir_drops"].samples if s.labels["reason"] == "no_service")
    w.proc.send_signal(signal.SIGSTOP)
    try:
        testbed.exec("cl", "/usr/bin/python3", "-c", flood, timeout=60)
    finally:
        w.proc.send_signal(signal.SIGCONT)
    time.sleep(0.5)
    _, fam = scrape(testbed)
    missed = value(fam, "weir_port_drops", port="wan", reason="missed")
    w.stop()
    c = w.counters()
    assert missed == w.summary["ports"]["wan"]["rx_missed"] >= 2000 - ring * workers, missed
    # The rings also drop what else came meanwhile (the neighbours' ARP and ND).
    lost_or_seen = c["drop_no_service"] - before + missed
    assert 2000 <= lost_or_seen <= 2020, (c["drop_no_service"], before, missed)


def test_a_backend_that_does_not_answer_arp_takes_no_new_flows(testbed, tmp_path):
    # No health checks. A backend added at an address where no host answers ARP
    # cannot be sent to: its share of new flows goes to the others (before,
    # a quarter of the connections were dropped as drop_no_neighbor).
    w = start(testbed, tmp_path, web(rid=testbed.rid))
    ctl(testbed, "add", "server", "web", "b4", "198.18.0.14:80")
    time.sleep(1)
    r = http_clients(testbed, VIP, 80, 60)
    servers = {b["name"]: b for b in ctl(testbed, "show", "servers", json_out=True)}
    w.stop()
    assert r["errors"] == 0 and set(r["backends"]) == {"b1", "b2", "b3"}, r
    b4 = servers["web/b4"]
    assert (b4["weight"], b4["effective_weight"], b4["mac"]) == (1, 0, None), b4
    assert servers["web/b1"]["effective_weight"] == 1, servers["web/b1"]
    assert w.counters()["drop_no_neighbor"] == 0


def test_a_backend_that_never_answers_arp_is_asked_less_and_less_often(testbed, tmp_path):
    # Weir asks for a silent address after 0.5, 1, 2 and 4 s, then every 5 s:
    # dead backends must not make it broadcast twice a second each (it did).
    w = start(testbed, tmp_path, web(rid=testbed.rid))
    watch = testbed.popen("b1", "/usr/bin/python3", str(HERE / "arp_watch.py"), "eth0",
                          "198.18.0.14", "9", stdout=subprocess.PIPE, text=True)
    time.sleep(0.3)
    ctl(testbed, "add", "server", "web", "b4", "198.18.0.14:80")
    asked = json.loads(watch.communicate(timeout=20)[0])
    w.stop()
    gaps = [round(b - a, 2) for a, b in zip(asked, asked[1:])]
    # About 0.3, 0.8, 1.8, 3.8, 7.8: five; twice a second would be seventeen.
    assert 4 <= len(asked) <= 6, (asked, gaps)
    assert all(b > a * 1.5 for a, b in zip(gaps[:3], gaps[1:4])), (asked, gaps)


def test_add_del_server_and_health_toggles(testbed, tmp_path):
    h = health(kind="tcp", interval_ms=200, timeout_ms=150, rise=1, fall=1)
    w = start(testbed, tmp_path, web(h, rid=testbed.rid))
    # An unreachable address and a duplicate are refused.
    r = run([WEIR_BIN, "ctl", "-s", f"/tmp/weir-{testbed.rid}.sock", "add", "server", "web", "x",
             "198.19.0.1:80"], check=False)
    assert r.returncode == 1 and "unreachable" in r.stdout, r.stdout
    r = run([WEIR_BIN, "ctl", "-s", f"/tmp/weir-{testbed.rid}.sock", "add", "server", "web", "b1",
             "198.18.0.11:80"], check=False)
    assert r.returncode == 1 and "exists" in r.stdout, r.stdout
    # A second name for b3's address, then b1 and b2 removed: all new flows go to b3.
    ctl(testbed, "add", "server", "web", "b3bis", "198.18.0.13:80", "weight", "2")
    ctl(testbed, "del", "server", "web/b1")
    ctl(testbed, "del", "server", "web/b2")
    names = [b["name"] for b in ctl(testbed, "show", "servers", json_out=True)]
    assert "web/b3bis" in names and "web/b1" not in names and "web/b2" not in names, names
    r = http_clients(testbed, VIP, 80, 30)
    assert r["errors"] == 0 and r["backends"] == {"b3": 30}, r
    # The added backend is health-checked; turning its check off freezes the count.
    time.sleep(0.6)
    servers = {b["name"]: b for b in ctl(testbed, "show", "servers", json_out=True)}
    assert servers["web/b3bis"]["checks_ok"] >= 1
    ctl(testbed, "disable", "health", "web/b3bis")
    frozen = {b["name"]: b for b in ctl(testbed, "show", "servers", json_out=True)}["web/b3bis"]
    assert frozen["health"] == "unchecked"
    time.sleep(0.6)
    later = {b["name"]: b for b in ctl(testbed, "show", "servers", json_out=True)}["web/b3bis"]
    assert later["checks_ok"] == frozen["checks_ok"]
    ctl(testbed, "enable", "health", "web/b3bis")
    time.sleep(0.6)
    again_ = {b["name"]: b for b in ctl(testbed, "show", "servers", json_out=True)}["web/b3bis"]
    assert again_["health"] == "up" and again_["checks_ok"] > later["checks_ok"]
    audit = Path(f"/tmp/weir-{testbed.rid}.audit").read_text()
    assert "add server web/b3bis" in audit and "del server web/b1" in audit
    w.stop()


def asking_every_fifth_of_a_second(setup, ask):
    """A client script: `setup`, then for 7 s, every 0.2 s, `ask` (lines that
    set `b` to the backend that answered, or None). Prints the first answer's
    backend, then JSON [(time, backend or None)]."""
    return (
        "import json,socket,struct,time\n"
        + setup
        + "out=[]; end=time.time()+7\n"
        "while time.time()<end:\n"
        "  t=time.time()\n"
        + ask
        + "  out.append((t,b))\n"
        "  if len(out)==1: print(b,flush=True)\n"
        "  time.sleep(max(0,t+0.2-time.time()))\n"
        "print(json.dumps(out))\n"
    )


def across_a_backend_death(testbed, w, pool_name, script):
    """Runs `script` in the client namespace: a client that prints the backend of
    its first answer, then JSON [(time, backend or None)]. A second after the
    first answer, that backend's server is killed. Returns the backend, when it
    was killed, when weir's log says it is DOWN, and the answers."""
    client = testbed.popen("cl", "/usr/bin/python3", "-c", script, stdout=subprocess.PIPE, text=True)
    first = client.stdout.readline().strip()
    assert first in ("b1", "b2", "b3"), first
    time.sleep(1)
    killed = time.time()
    os.kill(backend_pid(testbed, first), signal.SIGKILL)
    down = log_time(w, rf"backend {pool_name}/{first} is DOWN")
    return first, killed, down, json.loads(client.communicate(timeout=30)[0])


def test_udp_flows_move_off_a_backend_that_goes_down(testbed, tmp_path):
    # One client socket (a fixed source port) asking every 0.2 s: one UDP flow,
    # as a syslog or QUIC sender keeps. Its backend dies: once the health check
    # marks it DOWN, the flow's next datagram starts it again on a live backend,
    # instead of feeding a dead one until the 300 s UDP timeout.
    cfg = (
        base_config()
        + pool("dns", EQUAL, port=5353)
        + health(interval_ms=300, timeout_ms=200, rise=2, fall=2, port=80)
        + service("dns", VIP, 53, "dns", protocol="udp")
    )
    w = start(testbed, tmp_path, cfg)
    script = asking_every_fifth_of_a_second(
        "s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); s.bind(('',5999)); s.settimeout(0.2)\n",
        "  s.sendto(b'q',('198.18.0.100',53))\n"
        "  try: b=s.recvfrom(2048)[0].split()[1].decode()\n"
        "  except OSError: b=None\n",
    )
    first, _, down, answers = across_a_backend_death(testbed, w, "dns", script)
    w.stop()
    c = w.counters()
    after = [b for t, b in answers if t > down + 0.1]
    assert len(after) >= 10, answers
    # Every datagram after DOWN answered, all by one other backend.
    assert None not in after and len(set(after)) == 1 and first not in after, (first, answers)
    assert c["flows_moved"] == 1, c


def test_connections_from_a_reused_port_move_off_a_backend_that_goes_down(testbed, tmp_path):
    # A client that opens each connection from the same source port (as
    # port-preserving NATs and some load generators do): every connection has
    # one 5-tuple, so one entry, and the hash sends it to one backend. That
    # backend dies: once it is DOWN, the next SYN opens the connection on a live
    # backend (before, the entry kept sending each new SYN to the dead one).
    cfg = (
        base_config()
        + pool("web", EQUAL)
        + health(interval_ms=300, timeout_ms=200, rise=2, fall=2)
        + service("web", VIP, 80, "web")
    )
    w = start(testbed, tmp_path, cfg)
    script = asking_every_fifth_of_a_second(
        "",
        "  s=socket.socket()\n"
        "  s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n"
        # Closed with a reset: no TIME_WAIT at either end holds the 4-tuple.
        "  s.setsockopt(socket.SOL_SOCKET,socket.SO_LINGER,struct.pack('ii',1,0))\n"
        "  s.bind(('',6000)); s.settimeout(0.5)\n"
        "  try:\n"
        "    s.connect(('198.18.0.100',80))\n"
        "    s.sendall(b'GET / HTTP/1.1\\r\\nHost: w\\r\\nConnection: close\\r\\n\\r\\n'); d=b''\n"
        "    while (c:=s.recv(4096)): d+=c\n"
        "    b=d.split(b'\\r\\n\\r\\n',1)[1].split()[1].decode()\n"
        "  except (OSError, IndexError): b=None\n"
        "  s.close()\n",
    )
    first, killed, down, answers = across_a_backend_death(testbed, w, "web", script)
    w.stop()
    c = w.counters()
    before = [b for t, b in answers if t < killed - 0.3]
    after = [b for t, b in answers if t > down + 0.1]
    assert before and set(before) == {first}, (first, answers)
    assert len(after) >= 10, answers
    # Every connection after DOWN answered, all by one other backend.
    assert None not in after and len(set(after)) == 1 and first not in after, (first, answers)
    assert c["flows_moved"] == 1, c


def test_with_every_backend_down_new_flows_are_refused_at_once(testbed, tmp_path):
    # The checks go to a port nobody listens on: every backend goes DOWN. A new
    # TCP connection then gets a reset and a UDP datagram "port unreachable",
    # so clients fail over or report at once instead of retrying for minutes.
    cfg = (
        base_config()
        + pool("web", EQUAL)
        + health(kind="tcp", interval_ms=300, timeout_ms=200, rise=2, fall=2, port=9)
        + pool("dns", EQUAL, port=5353)
        + health(kind="tcp", interval_ms=300, timeout_ms=200, rise=2, fall=2, port=9)
        + service("web", VIP, 80, "web")
        + service("dns", VIP, 53, "dns", protocol="udp")
    )
    w = start(testbed, tmp_path, cfg)
    for p in ("web", "dns"):
        for b in ("b1", "b2", "b3"):
            log_time(w, rf"backend {p}/{b} is DOWN")
    time.sleep(0.2)
    t = time.time()
    curl = testbed.exec("cl", "curl", "-s", "-m", "5", f"http://{VIP}/", check=False)
    took = time.time() - t
    udp = json.loads(testbed.exec(
        "cl", "/usr/bin/python3", str(Path(__file__).parent / "icmp_probe.py"),
        "refused", VIP, "53", "4").stdout)
    w.stop()
    c = w.counters()
    assert curl.returncode == 7 and took < 1.0, (curl.returncode, took, c)
    assert udp == {"refused": 4, "answered": 0, "silent": 0}, (udp, c)
    assert c["tcp_resets_sent"] >= 1 and c["icmp_port_unreachable_sent"] == 4, c
    assert w.summary["services"]["web"]["drop_no_backend"] >= 1, w.summary["services"]["web"]
