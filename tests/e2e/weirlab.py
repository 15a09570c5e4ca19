"""Helpers for the end-to-end tests: the netns testbed and a running weir.

Everything here drives real programs: scripts/testbed.sh for the namespaces,
the weir binary on a DPDK af_packet port, and the kernel's own tools as clients.
"""

import json
import os
import random
import re
import signal
import string
import subprocess
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
TESTBED = ROOT / "scripts" / "testbed.sh"
EXAMPLE_CONFIG = ROOT / "examples" / "weir.toml"
WEIR_BIN = os.environ.get("WEIR_BIN", str(ROOT / "target" / "release" / "weir"))
# The virtualenv scripts/setup.sh installs TRex's client library into.
TREX_PY = Path(os.environ.get("TREX_VENV", "/opt/weir-trex")) / "bin" / "python"

VIP4 = "198.18.0.1"
VIP6 = "2001:db8::1"
CLIENT4 = "198.18.0.10"
CLIENT6 = "2001:db8::10"


def run(cmd, check=True, timeout=30, **kw):
    """Runs a command, returning CompletedProcess with text output."""
    return subprocess.run(
        cmd, check=check, timeout=timeout, capture_output=True, text=True, **kw
    )


class Testbed:
    """A netns testbed with a unique run id; `close` removes everything."""

    def __init__(self, split=False):
        self.rid = "".join(random.choices(string.ascii_lowercase + string.digits, k=5))
        args = [str(TESTBED), "up", self.rid] + (["split"] if split else [])
        self.prefix = run(args, timeout=60).stdout.strip()

    def ns(self, host):
        return f"{self.prefix}-{host}"

    def exec(self, host, *cmd, check=True, timeout=30, **kw):
        return run(["ip", "netns", "exec", self.ns(host), *cmd], check=check, timeout=timeout, **kw)

    def popen(self, host, *cmd, **kw):
        return subprocess.Popen(["ip", "netns", "exec", self.ns(host), *cmd], **kw)

    def popen_ready(self, host, ready, *cmd):
        """Starts `cmd` in `host` and returns it once its first line is `ready`
        (a server listening, a client holding its connections); the caller kills it."""
        p = self.popen(host, *cmd, stdout=subprocess.PIPE, text=True)
        line = p.stdout.readline().strip()
        if line != ready:
            p.kill()
            raise AssertionError(f"{cmd[:2]} in {host}: first line {line!r}, not {ready!r}")
        return p

    def port_mac(self):
        return self.exec("lb", "cat", "/sys/class/net/wan0/address").stdout.strip()

    def close(self):
        run([str(TESTBED), "down", self.rid], check=False, timeout=60)
        # What a run's weir left under /tmp by the per-run names the tests give it.
        for suffix in ("audit", "sock", "toml", "log", "out"):
            Path(f"/tmp/weir-{self.rid}.{suffix}").unlink(missing_ok=True)
        left = run(["ip", "netns", "list"]).stdout
        assert self.prefix not in left, f"namespaces left behind: {left}"


class Weir:
    """weir running in the testbed's lb namespace."""

    def __init__(self, testbed, config_text=None, tmp_path=None, extra_env=None):
        self.tb = testbed
        text = config_text if config_text is not None else EXAMPLE_CONFIG.read_text()
        self.config_path = Path(tmp_path or "/tmp") / f"weir-{testbed.rid}.toml"
        self.config_path.write_text(text)
        self.stderr_path = self.config_path.with_suffix(".log")
        self.stdout_path = self.config_path.with_suffix(".out")
        self.proc = testbed.popen(
            "lb",
            WEIR_BIN,
            "run",
            "--config",
            str(self.config_path),
            stdout=open(self.stdout_path, "w"),
            stderr=open(self.stderr_path, "w"),
            env={**os.environ, **(extra_env or {})},
        )
        self.summary = None
        self.returncode = None

    def log(self):
        return self.stderr_path.read_text()

    def wait_ready(self, timeout=20):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if "worker(s) running" in self.log():
                return
            if self.proc.poll() is not None:
                raise AssertionError(f"weir exited {self.proc.returncode}:\n{self.log()}")
            time.sleep(0.05)
        raise AssertionError(f"weir not ready in {timeout}s:\n{self.log()}")

    def stop(self, timeout=10, check_mbufs=True):
        """SIGTERM; returns seconds until the process exited. Parses the summary
        and checks that no mbuf was lost (`check_mbufs`) and that every packet
        is accounted for by the counters."""
        if self.proc.poll() is None:
            t0 = time.monotonic()
            # `ip netns exec` execs weir, so the pid is weir's own.
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=timeout)
            elapsed = time.monotonic() - t0
        else:
            elapsed = 0.0
        self.returncode = self.proc.returncode
        out = self.stdout_path.read_text().strip()
        if out:
            self.summary = json.loads(out.splitlines()[-1])
            # Every run is a leak check: with the ports closed, each mbuf a
            # worker took must be back in the pool.
            lost = self.summary["mbufs"]["in_use"]
            assert lost == 0 or not check_mbufs, f"{lost} mbufs never came back to the pool:\n{self.log()}"
            # And an accounting check: every packet a worker took was sent,
            # handed on or dropped under a named counter.
            odd = self.summary["packets_unaccounted"]
            assert odd == 0, f"{odd} packets unaccounted for:\n{self.summary['total']}\n{self.log()}"
        return elapsed

    def counters(self):
        assert self.summary is not None, f"no summary; log:\n{self.log()}"
        return self.summary["total"]


def wait_neighbours(w, n=3, timeout=5):
    """Waits until weir has logged `n` backends' MAC addresses."""
    deadline = time.time() + timeout
    while len(re.findall(r"neighbour \S+ is at", w.log())) < n:
        assert time.time() < deadline, f"backends not resolved:\n{w.log()}"
        time.sleep(0.05)


def start_weir(testbed, tmp_path, text, neighbours=3):
    """weir on config `text`, ready, with `neighbours` backends resolved."""
    w = Weir(testbed, config_text=text, tmp_path=tmp_path)
    w.wait_ready()
    wait_neighbours(w, neighbours)
    return w


def ping(tb, host, addr, count=3, v6=False, interval="0.2"):
    """Pings from `host`; returns (received, duplicates)."""
    cmd = ["ping", "-6" if v6 else "-4", "-c", str(count), "-i", interval, "-W", "1", addr]
    out = tb.exec(host, *cmd, check=False).stdout
    m = re.search(r"(\d+) received", out)
    dup = re.search(r"\+(\d+) duplicates", out)
    return (int(m.group(1)) if m else 0, int(dup.group(1)) if dup else 0)


def base_config(workers=1, capacity=65536, timeouts=None):
    """The example's [eal] and [[port]] (with `workers` workers) and a
    [conn_table]; pools and services are appended by the caller."""
    text = EXAMPLE_CONFIG.read_text()
    head = text[: text.index("[conn_table]")]
    if workers > 1:
        cpus = ", ".join(["1"] * workers)
        head = (
            head.replace("worker_cpus = [1]", f"worker_cpus = [{cpus}]")
            .replace("qpairs=1", f"qpairs={workers}")
            .replace("workers = 1", f"workers = {workers}")
        )
    t = {"tcp_syn_timeout": 30, "tcp_established_timeout": 900, "tcp_fin_timeout": 120,
         "tcp_close_timeout": 10, "udp_timeout": 300}
    t.update(timeouts or {})
    lines = ["[conn_table]", f"capacity = {capacity}"] + [f"{k} = {v}" for k, v in t.items()]
    return head + "\n".join(lines) + "\n"


def pool(name, backends, port=None, v6=False):
    """A [[pool]] of testbed backends: backends is a list of (name, weight)."""
    out = [f'[[pool]]\nname = "{name}"']
    for b, w in backends:
        addr = f"2001:db8::1{b[1]}" if v6 else f"198.18.0.1{b[1]}"
        out.append(f'[[pool.backend]]\nname = "{b}"\naddress = "{addr}"\nweight = {w}')
        if port:
            out[-1] += f"\nport = {port}"
    return "\n".join(out) + "\n"


def service(name, vip, port, pool_name, protocol="tcp", **kw):
    out = [f'[[service]]\nname = "{name}"\nvip = "{vip}"\nport = {port}',
           f'protocol = "{protocol}"\npool = "{pool_name}"']
    for k, v in kw.items():
        out.append(f'{k} = {str(v).lower() if isinstance(v, bool) else json.dumps(v)}')
    return "\n".join(out) + "\n"


EQUAL = [("b1", 1), ("b2", 1), ("b3", 1)]


def http_clients(tb, addr, port, n, sport_base=0, path="/", threads=8):
    cmd = ["/usr/bin/python3", str(Path(__file__).parent / "http_client.py"), addr, str(port),
           str(n), "--threads", str(threads), "--path", path]
    if sport_base:
        cmd += ["--sport-base", str(sport_base)]
    return json.loads(tb.exec("cl", *cmd, timeout=120).stdout)


def admin_section(rid, extra=""):
    """An [admin] table with a per-run socket and audit log."""
    return (f'[admin]\nsocket = "/tmp/weir-{rid}.sock"\nmetrics = "127.0.0.1:9100"\n'
            f'audit_log = "/tmp/weir-{rid}.audit"\n{extra}')


def ctl(testbed, *words, json_out=False, check=True):
    """Runs `weir ctl` against the testbed's weir; returns (rc, stdout)."""
    cmd = [WEIR_BIN, "ctl", "-s", f"/tmp/weir-{testbed.rid}.sock"]
    if json_out:
        cmd.append("--json")
    r = run(cmd + list(words), check=False)
    if check and r.returncode != 0:
        raise AssertionError(f"weir ctl {' '.join(words)}: {r.returncode}\n{r.stdout}{r.stderr}")
    return json.loads(r.stdout) if json_out and r.returncode == 0 else r.stdout


def health(kind="http", interval_ms=300, timeout_ms=200, rise=2, fall=2, **extra):
    lines = [f'kind = "{kind}"', f"interval_ms = {interval_ms}", f"timeout_ms = {timeout_ms}",
             f"rise = {rise}", f"fall = {fall}"]
    lines += [f"{k} = {json.dumps(v)}" for k, v in extra.items()]
    return "[pool.health]\n" + "\n".join(lines) + "\n"


def backend_pid(testbed, name):
    return int(Path(f"/tmp/weir-testbed-{testbed.rid}/backend-{name}.pid").read_text())


def start_backend(testbed, name):
    """(Re)starts a testbed backend's HTTP/UDP server."""
    script = Path(__file__).resolve().parents[2] / "scripts" / "backend.py"
    p = testbed.popen(name, "/usr/bin/python3", str(script), name,
                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    Path(f"/tmp/weir-testbed-{testbed.rid}/backend-{name}.pid").write_text(str(p.pid))
    return p


# A keep-alive HTTP GET on an open socket, for scripts run in the client namespace:
# reads the whole response (headers and body may arrive in separate segments).
GET_FN = (
    "import socket,re\n"
    "def get(s):\n"
    "  s.sendall(b'GET / HTTP/1.1\\r\\nHost: w\\r\\n\\r\\n'); d=b''\n"
    "  while b'\\r\\n\\r\\n' not in d:\n"
    "    c=s.recv(4096)\n"
    "    if not c: raise OSError('closed')\n"
    "    d+=c\n"
    "  h,b=d.split(b'\\r\\n\\r\\n',1); n=int(re.search(rb'Content-Length: (\\d+)',h).group(1))\n"
    "  while len(b)<n: b+=s.recv(4096)\n"
    "  return b.split()[1].decode()\n"
)


KEEPALIVE_CLIENT = GET_FN + (
    "import sys\n"
    "vip,n,wait=sys.argv[1],int(sys.argv[2]),float(sys.argv[3])\n"
    "socks=[socket.create_connection((vip,80),timeout=5) for _ in range(n)]\n"
    "print(' '.join(f'{s.getsockname()[1]}:{get(s)}' for s in socks),flush=True)\n"
    "def again(s):\n"
    "  try:\n"
    "    s.settimeout(wait); return get(s)\n"
    "  except OSError as e:\n"
    "    return type(e).__name__\n"
    "for line in sys.stdin:\n"
    "  if line.strip()=='close':\n"
    "    [s.close() for s in socks]; print('closed',flush=True); continue\n"
    "  print(' '.join(again(s) for s in socks),flush=True)\n"
)


class KeepAlive:
    """n keep-alive HTTP connections from the client to vip:80. `first` holds
    each one's (local port, backend) from its first answer."""

    def __init__(self, tb, vip, n, wait=5.0):
        self.p = tb.popen("cl", "/usr/bin/python3", "-c", KEEPALIVE_CLIENT, vip, str(n), str(wait),
                          stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        first = [x.split(":") for x in self.p.stdout.readline().split()]
        self.first = [(int(port), b) for port, b in first]

    def backends(self):
        return [b for _, b in self.first]

    def again(self):
        """One more request on each connection: its backend, or the name of the
        error it met (waiting at most `wait` seconds for each answer)."""
        self.p.stdin.write("again\n")
        self.p.stdin.flush()
        return self.p.stdout.readline().split()

    def close_all(self):
        self.p.stdin.write("close\n")
        self.p.stdin.flush()
        assert self.p.stdout.readline().strip() == "closed"

    def kill(self):
        self.p.kill()


def weir_check(tmp_path, text):
    """Runs `weir check` on `text`; returns (CompletedProcess, config path)."""
    path = Path(tmp_path) / "check.toml"
    path.write_text(text)
    return run([WEIR_BIN, "check", "--config", str(path)], check=False), path


def udp_probe(tb, dst, port, size, *flags, count=1, timeout=2.0):
    """Datagrams of `size` bytes from the client with udp_probe.py; its JSON."""
    args = [dst, str(port), str(size), "--count", str(count), "--timeout", str(timeout)]
    out = tb.exec("cl", "/usr/bin/python3", str(HERE / "udp_probe.py"), *args, *flags, timeout=60)
    return json.loads(out.stdout)


def log_time(w, pattern, timeout=10, after=0.0):
    """Epoch time of the first line of `w`'s log matching `pattern` (weir's own
    stamp), of those stamped at or after `after`."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        for line in w.log().splitlines():
            if re.search(pattern, line) and float(line.split()[0]) >= after:
                return float(line.split()[0])
        time.sleep(0.05)
    raise AssertionError(f"no {pattern!r} in log:\n{w.log()}")
