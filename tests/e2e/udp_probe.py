"""Sends UDP datagrams of a given size and collects the echoes (run in a namespace).

    udp_probe.py DST PORT SIZE [--count N] [--df | --no-df] [--connect] [--timeout S]
                 [--fragments-reversed MAC [--no-first]]

The testbed's backends answer `backend NAME from ADDR:PORT: ` followed by the
datagram. Prints JSON: the replies (source, length, backend, whether the echoed
payload is intact), send errors, and with --connect the kernel's path MTU to DST.
--df sets IP(V6)_PMTUDISC_DO: the kernel never fragments, and says EMSGSIZE when the
datagram exceeds the path MTU it knows; --no-df (IP_PMTUDISC_DONT) sends without
DF. By default Linux sets DF on UDP and fragments locally only past the route MTU.
--fragments-reversed MAC (with --connect) sends each datagram itself, from the
socket's address and port, in IP fragments of at most 1500 bytes, the last fragment
first, out of eth0 to MAC (Debian's scapy: run with /usr/bin/python3); the answers
come to the socket. --no-first leaves each datagram's first fragment out.
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
ap.add_argument("--fragments-reversed", metavar="MAC")
ap.add_argument("--no-first", action="store_true")
a = ap.parse_args()
if a.fragments_reversed and a.count > 16:
    ap.error("--fragments-reversed takes at most 16 datagrams (their identifications)")

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


def send_fragments_reversed(payload, ident):
    """The datagram from this socket to DST in fragments, the last one first."""
    from scapy.all import IP, UDP, Ether, IPv6, IPv6ExtHdrFragment, conf, fragment, fragment6, get_if_hwaddr

    conf.verb = 0
    src, sport = s.getsockname()[:2]
    if v6:
        pkt = IPv6(src=src, dst=a.dst) / IPv6ExtHdrFragment(id=ident) / UDP(sport=sport, dport=a.port) / payload
        pieces = fragment6(pkt, 1500)
    else:
        pkt = IP(src=src, dst=a.dst, id=ident) / UDP(sport=sport, dport=a.port) / payload
        pieces = fragment(pkt, fragsize=1480)
    assert len(pieces) > 1
    eth = Ether(src=get_if_hwaddr("eth0"), dst=a.fragments_reversed)
    sock = conf.L2socket(iface="eth0")
    for piece in reversed(pieces[1:] if a.no_first else pieces):
        sock.send(eth / piece)
    sock.close()


for i in range(a.count):
    payload = (f"{i:06d}".encode() + os.urandom(a.size))[: a.size]
    try:
        if a.fragments_reversed:
            # Unique across the probes of a test: fragments that share an
            # identification with a datagram Weir saw in the last second follow
            # that datagram's connection (as they must), so a probe reusing
            # another's would not test what it says.
            send_fragments_reversed(payload, (os.getpid() << 4 | i) & 0xFFFF)
        elif a.connect:
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
