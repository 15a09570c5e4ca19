"""Sends UDP datagrams of a given size and collects the echoes (run in a namespace).

    udp_probe.py DST PORT SIZE [--count N] [--df | --no-df] [--connect] [--timeout S]

The testbed's backends answer `backend NAME from ADDR:PORT: ` followed by the
datagram. Prints JSON: the replies (source, length, backend, whether the echoed
payload is intact), send errors, and with --connect the kernel's path MTU to DST.
--df sets IP(V6)_PMTUDISC_DO: the kernel never fragments, and says EMSGSIZE when the
datagram exceeds the path MTU it knows; --no-df (IP_PMTUDISC_DONT) sends without
DF. By default Linux sets DF on UDP and fragments locally only past the route MTU.
"""

import argparse
import json
import os
import re
import socket

# From <linux/in.h> and <linux/in6.h>; Python's socket module does not name them all.
IP_MTU_DISCOVER, IP_MTU = 10, 14
IPV6_MTU_DISCOVER, IPV6_MTU = 23, 24
PMTUDISC_DONT, PMTUDISC_DO = 0, 2

ap = argparse.ArgumentParser()
ap.add_argument("dst")
ap.add_argument("port", type=int)
ap.add_argument("size", type=int)
ap.add_argument("--count", type=int, default=1)
ap.add_argument("--df", action="store_true")
ap.add_argument("--no-df", action="store_true")
ap.add_argument("--connect", action="store_true")
ap.add_argument("--timeout", type=float, default=2.0)
a = ap.parse_args()

v6 = ":" in a.dst
s = socket.socket(socket.AF_INET6 if v6 else socket.AF_INET, socket.SOCK_DGRAM)
level, discover, mtu_opt = (
    (socket.IPPROTO_IPV6, IPV6_MTU_DISCOVER, IPV6_MTU) if v6 else (socket.IPPROTO_IP, IP_MTU_DISCOVER, IP_MTU)
)
if a.df or a.no_df:
    s.setsockopt(level, discover, PMTUDISC_DO if a.df else PMTUDISC_DONT)
s.settimeout(a.timeout)
if a.connect:
    s.connect((a.dst, a.port))
out = {"replies": [], "errors": []}
for i in range(a.count):
    payload = (f"{i:06d}".encode() + os.urandom(a.size))[: a.size]
    try:
        if a.connect:
            s.send(payload)
        else:
            s.sendto(payload, (a.dst, a.port))
    except OSError as e:
        out["errors"].append(e.strerror)
        continue
    try:
        data, src = s.recvfrom(65535)
    except (socket.timeout, OSError) as e:
        out["errors"].append(str(e) or "timeout")
        continue
    m = re.match(rb"backend (\w+) from [^ ]+: ", data)
    out["replies"].append({
        "from": f"{src[0]}:{src[1]}",
        "len": len(data),
        "backend": m.group(1).decode() if m else None,
        "echo_ok": bool(m) and data[m.end():] == payload,
    })
if a.connect:
    try:
        out["mtu"] = s.getsockopt(level, mtu_opt)
    except OSError:
        out["mtu"] = None
print(json.dumps(out))
