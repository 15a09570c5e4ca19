"""Background traffic from the client namespace that records, for every
request, when it started and which backend answered (None: it failed)."""

import subprocess
import threading
import time

# One request per line of output: "START_TIME BACKEND" or "START_TIME ERR".
# Every request is a new flow: a new TCP connection, or a new UDP socket.
HTTP_LOOP = (
    "import socket,sys,time\n"
    "addr,port=sys.argv[1],int(sys.argv[2])\n"
    "while True:\n"
    "  t=time.time()\n"
    "  try:\n"
    "    s=socket.create_connection((addr,port),timeout=3)\n"
    "    s.sendall(b'GET / HTTP/1.1\\r\\nHost: w\\r\\nConnection: close\\r\\n\\r\\n'); d=b''\n"
    "    while True:\n"
    "      c=s.recv(4096)\n"
    "      if not c: break\n"
    "      d+=c\n"
    "    s.close()\n"
    "    print(t, d.split(b'\\r\\n\\r\\n',1)[1].split()[1].decode(), flush=True)\n"
    "  except Exception as e:\n"
    "    print(t, 'ERR', flush=True)\n"
    "  time.sleep(0.01)\n"
)

UDP_LOOP = (
    "import socket,sys,time\n"
    "addr,port=sys.argv[1],int(sys.argv[2])\n"
    "while True:\n"
    "  t=time.time()\n"
    "  s=socket.socket(socket.AF_INET6 if ':' in addr else socket.AF_INET, socket.SOCK_DGRAM)\n"
    "  s.settimeout(1)\n"
    "  try:\n"
    "    s.sendto(b'ping',(addr,port)); d,_=s.recvfrom(2048)\n"
    "    print(t, d.split()[1].decode(), flush=True)\n"
    "  except Exception as e:\n"
    "    print(t, 'ERR', flush=True)\n"
    "  s.close()\n"
    "  time.sleep(0.02)\n"
)


class Load:
    """Requests to addr:port until `finish`: HTTP GETs, each on a new
    connection, or (`udp`) datagrams, each from a new socket. `results` holds
    (start time, backend or None)."""

    def __init__(self, tb, addr, port=80, udp=False):
        self.results = []
        self.stop = threading.Event()
        script = UDP_LOOP if udp else HTTP_LOOP
        self.p = tb.popen("cl", "/usr/bin/python3", "-c", script, addr, str(port),
                          stdout=subprocess.PIPE, text=True)
        self.t = threading.Thread(target=self.loop, daemon=True)
        self.t.start()

    def loop(self):
        for line in self.p.stdout:
            t, b = line.split()
            self.results.append((float(t), None if b == "ERR" else b))
            if self.stop.is_set():
                break

    def between(self, t0, t1, timeout=5.0):
        """The results of the requests started from t0 until t1, once all of
        them have ended (requests run one at a time: when one started after t1
        has reported, every earlier one has)."""
        deadline = time.time() + timeout
        while not (self.results and self.results[-1][0] >= t1):
            assert time.time() < deadline, f"no request started after {t1} has ended"
            time.sleep(0.05)
        return [(t, b) for t, b in list(self.results) if t0 <= t < t1]

    def finish(self):
        self.stop.set()
        time.sleep(0.2)
        self.p.kill()
        self.t.join(5)
        return self.results
