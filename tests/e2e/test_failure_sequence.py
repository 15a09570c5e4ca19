"""Traffic through one long sequence of failures and operator actions, the way
an appliance lives: backends drained, killed, put in maintenance, removed,
added and cut off their link; reloads good and bad; malformed frames. HTTP
over IPv4 and IPv6 (a new connection a request), UDP (a new socket a
datagram) and held keep-alive connections run throughout.

What must hold:
- requests fail only while a failure is being detected (from a backend's
  death or cut to the moment traffic has left it), never because of an
  operator's action;
- after each step, new flows reach exactly the backends that should take them;
- a held connection keeps its backend unless that backend itself failed;
- once the traffic stops and the timeouts run out, the workers hold no
  connection and no FullNAT source port, every mbuf is back in the pool and
  every packet is accounted for."""

import re
import signal
import os
import time
from pathlib import Path

import pytest

from background_load import Load
from weirlab import (
    EQUAL,
    HERE,
    KeepAlive,
    admin_section,
    backend_pid,
    base_config,
    ctl,
    health,
    log_time,
    pool,
    service,
    start_backend,
    start_weir,
)

VIP = "198.18.0.100"
VIP2 = "198.18.0.101"
VIP6 = "2001:db8::100"
POOLS = ("web", "web6", "dns")
ALL = {"b1", "b2", "b3"}
TIMEOUTS = {"tcp_syn_timeout": 3, "tcp_established_timeout": 30, "tcp_fin_timeout": 3,
            "tcp_close_timeout": 2, "udp_timeout": 3}
# A request that was under way when a backend failed may fail up to its
# client's timeout later (3 s for HTTP, 1 s for UDP), stamped with its start.
IN_FLIGHT = 3.5


def config(rid, workers, weights=EQUAL, extra_services=""):
    web_check = health(interval_ms=200, timeout_ms=150, rise=2, fall=2)
    # The UDP pool follows the same backend processes, through their HTTP port.
    dns_check = health(kind="tcp", interval_ms=200, timeout_ms=150, rise=2, fall=2, port=80)
    return (
        base_config(workers=workers, timeouts=TIMEOUTS)
        + pool("web", weights) + web_check
        + pool("web6", EQUAL, v6=True) + web_check
        + pool("dns", EQUAL, port=5353) + dns_check
        + service("web", VIP, 80, "web")
        + service("web6", VIP6, 80, "web6")
        + service("dns", VIP, 53, "dns", protocol="udp")
        + extra_services
        + admin_section(rid)
    )


class Sequence:
    """The running traffic and what the steps so far allow of it."""

    def __init__(self, tb, w):
        self.tb, self.w = tb, w
        self.loads = {"http": Load(tb, VIP), "http6": Load(tb, VIP6),
                      "udp": Load(tb, VIP, 53, udp=True)}
        # Held connections on every backend: groups of 6 until they cover all
        # three (the ring hash places them).
        self.held = []
        while set().union(*[h.backends() for h in self.held]) != ALL:
            assert len(self.held) < 5, [h.first for h in self.held]
            self.held.append(KeepAlive(tb, VIP, 6, wait=1.5))
        # Backends whose held connections may have gone with them.
        self.failed = set()
        # (start, end, step): requests started in these may fail.
        self.windows = []
        self.timings = {}

    def settle(self, step, allowed, must=frozenset(), timeout=15.0):
        """Waits for a stretch of 1.2 s in which every HTTP request and every
        datagram started was answered (however long it took), only by
        `allowed` backends, HTTP (IPv4 and IPv6) by all of `must`; returns
        when that stretch began."""
        t_end = time.time() + timeout
        seen = []
        while time.time() < t_end:
            t0 = time.time()
            time.sleep(1.2)
            t1 = time.time()
            got = {k: [b for _, b in load.between(t0, t1)] for k, load in self.loads.items()}
            seen.append({k: sorted(set(map(str, v))) for k, v in got.items()})
            answered = all(v and None not in v and set(v) <= allowed for v in got.values())
            if answered and must <= set(got["http"]) and must <= set(got["http6"]):
                return t0
        raise AssertionError(f"{step}: never settled on {sorted(allowed)} (must {sorted(must)}); "
                             f"seen {seen}\n{self.w.log()[-3000:]}")

    def check_held(self, step):
        """Each held connection answers from its first backend, unless that one
        failed."""
        for h in self.held:
            for (port, first), got in zip(h.first, h.again()):
                if first not in self.failed:
                    assert got == first, f"{step}: held connection from port {port} on {first}: {got}"

    def step(self, name, allowed, must=frozenset(), failing=None, action=None):
        """Runs `action`; then waits until traffic settles. With `failing`,
        requests may fail from the action until then, and that backend's held
        connections may be gone."""
        t = time.time()
        if action:
            action()
        if failing:
            self.failed.add(failing)
        settled = self.settle(name, allowed, must)
        if failing:
            self.windows.append((t - IN_FLIGHT, settled, name))
        self.timings[name] = round(settled - t, 2)
        self.check_held(name)

    def failures_outside_windows(self):
        bad = []
        for kind, load in self.loads.items():
            for t, b in load.results:
                if b is None and not any(a <= t <= z for a, z, _ in self.windows):
                    bad.append((kind, round(t, 2)))
        return bad


def in_every_pool(tb, *words):
    """An action: `weir ctl WORDS` for the backend in each pool (WORDS holds
    {pool} where the pool's name goes)."""
    def act():
        for p in POOLS:
            ctl(tb, *[x.format(pool=p) for x in words])
    return act


def show_cores(tb):
    return ctl(tb, "show", "stat", json_out=True)


def wait_empty(tb, timeout):
    """Until no worker holds a connection or a source port and no service or
    backend counts an active flow; returns the last `show stat`."""
    deadline = time.time() + timeout
    while True:
        s = show_cores(tb)
        held = [(c["conn_entries"], c["local_ports_in_use"]) for c in s["cores"]]
        active = [x["active"] for x in s["services"] + s["backends"]]
        if all(h == (0, 0) for h in held) and not any(active):
            return s
        assert time.time() < deadline, f"still held after {timeout}s: cores {held}, active {active}"
        time.sleep(0.5)


@pytest.mark.parametrize("workers", [1, 2])
def test_traffic_through_failures_and_operator_actions(testbed, tmp_path, workers):
    tb = testbed
    text = config(tb.rid, workers)
    w = start_weir(tb, tmp_path, text, neighbours=3)
    seq = Sequence(tb, w)
    seq.settle("start", ALL, must=ALL)
    # In use while connections live: the held ones and the loads' own.
    busy = show_cores(tb)["cores"]
    assert sum(c["local_ports_in_use"] for c in busy) >= 6, busy
    # Each worker owns its share of the ports on both local addresses (v4, v6).
    assert all(c["local_ports"] == 2 * (65536 - 1024) // workers for c in busy), busy

    # Drain: existing connections stay, new ones go elsewhere.
    seq.step("drain b1", ALL - {"b1"}, must=ALL - {"b1"},
             action=in_every_pool(tb, "set", "server", "{pool}/b1", "state", "drain"))
    seq.step("ready b1", ALL, must=ALL,
             action=in_every_pool(tb, "set", "server", "{pool}/b1", "state", "ready"))

    # A reload that adds a service and changes weights; a broken one is refused.
    def good_reload():
        w.config_path.write_text(config(tb.rid, workers, weights=[("b1", 1), ("b2", 2), ("b3", 3)],
                                        extra_services=service("web2", VIP2, 80, "web")))
        assert ctl(tb, "reload").startswith("reloaded:")
    seq.step("reload", ALL, must=ALL, action=good_reload)
    assert seq.tb.exec("cl", "curl", "-s", "-m", "3", f"http://{VIP2}/").stdout.startswith("backend b")

    def broken_reload():
        w.config_path.write_text(text.replace(f'vip = "{VIP}"', 'vip = "198.18.0.999"'))
        out = ctl(tb, "reload", check=False)
        assert "reload refused" in out, out
        w.proc.send_signal(signal.SIGHUP)
        log_time(w, r"reload refused", after=time.time() - 1)
    seq.step("broken reload", ALL, must=ALL, action=broken_reload)

    # A backend's process dies: checks take it out of both pools; back when restarted.
    killed = time.time()
    seq.step("kill b2", ALL - {"b2"}, must=ALL - {"b2"}, failing="b2",
             action=lambda: os.kill(backend_pid(tb, "b2"), signal.SIGKILL))
    down = log_time(w, r"backend web/b2 is DOWN", after=killed)
    seq.step("restart b2", ALL, must=ALL, action=lambda: start_backend(tb, "b2"))
    up = log_time(w, r"backend web/b2 is UP", after=down)

    # Maintenance: b3's connections stop at once.
    seq.step("maint b3", ALL - {"b3"}, must=ALL - {"b3"}, failing="b3",
             action=in_every_pool(tb, "set", "server", "{pool}/b3", "state", "maint"))
    seq.step("ready b3", ALL, must=ALL,
             action=in_every_pool(tb, "set", "server", "{pool}/b3", "state", "ready"))

    # Removed: its connections run out (held ones on it keep working); added back.
    seq.step("del b1", ALL - {"b1"}, must=ALL - {"b1"},
             action=in_every_pool(tb, "del", "server", "{pool}/b1"))
    def add_b1():
        ctl(tb, "add", "server", "web", "b1", "198.18.0.11:80")
        ctl(tb, "add", "server", "web6", "b1", "[2001:db8::11]:80")
        ctl(tb, "add", "server", "dns", "b1", "198.18.0.11:5353")
    seq.step("add b1", ALL, must=ALL, action=add_b1)

    # Malformed frames on the wire change nothing for the traffic.
    def malformed():
        tb.exec("cl", "/usr/bin/python3", str(HERE / "send_frames.py"), "eth0", tb.port_mac(), "5",
                "ipv4_bad_checksum", "tcp_bad_checksum", "udp_bad_length", "ipv6_header_chain",
                timeout=60)
    seq.step("malformed frames", ALL, must=ALL, action=malformed)

    # A backend's link goes down: checks and neighbour resolution fail; it
    # comes back when the link does.
    # (Linux drops an interface's IPv6 addresses when it goes down, unless told
    # to keep them, as a backend's network configuration would put them back.)
    tb.exec("b1", "sysctl", "-qw", "net.ipv6.conf.eth0.keep_addr_on_down=1")
    cut = time.time()
    seq.step("link down b1", ALL - {"b1"}, must=ALL - {"b1"}, failing="b1",
             action=lambda: tb.exec("b1", "ip", "link", "set", "eth0", "down"))
    seq.step("link up b1", ALL, must=ALL,
             action=lambda: tb.exec("b1", "ip", "link", "set", "eth0", "up"))
    assert log_time(w, r"backend web/b1 is DOWN", after=cut) >= cut
    assert log_time(w, r"backend web6/b1 is DOWN", after=cut) >= cut

    http, http6, udp = (seq.loads[k].finish() for k in ("http", "http6", "udp"))
    for h in seq.held:
        h.close_all()
        h.kill()
    print("settled after (s):", seq.timings, "requests:", len(http), len(http6), "datagrams:", len(udp))
    assert min(len(http), len(http6), len(udp)) > 300, (len(http), len(http6), len(udp))
    assert not seq.failures_outside_windows(), (seq.failures_outside_windows(), seq.windows)
    # The windows are what failure detection takes, not longer.
    assert down - killed < 1.5 and up - down > 0, (killed, down, up)
    assert log_time(w, r"backend web6/b2 is DOWN", after=killed) - killed < 1.5
    for name in ("kill b2", "maint b3", "link down b1"):
        assert seq.timings[name] < 6, seq.timings

    # Quiet: every connection ends within its timeout and gives its port back.
    wait_empty(tb, timeout=TIMEOUTS["tcp_established_timeout"] + 15)
    audit = Path(f"/tmp/weir-{tb.rid}.audit").read_text()
    for line in ("web/b1 state", "del server web/b1", "add server web/b1", "web/b3 state"):
        assert line in audit, audit
    w.stop()
    assert w.returncode == 0
    c = w.counters()
    for never in ("drop_table_full", "drop_no_local_port", "drop_handoff_full",
                  "drop_handoff_bad_port", "drop_tx_queue_full", "drop_host_queue_full",
                  "drop_no_room"):
        assert c[never] == 0, (never, c[never])
    assert c["drop_ipv4_bad_checksum"] >= 5 and c["drop_l4_bad_checksum"] >= 5, c
    assert c["flows_expired"] > 0 and c["conn_entries"] == 0 and c["local_ports_in_use"] == 0, c
    if workers == 2:
        assert c["handoff_in"] > 0, c
    assert not re.search(r"panic", w.log()), w.log()
