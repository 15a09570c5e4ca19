"""ICMP errors about UDP flows through a VIP (run with Debian's /usr/bin/python3
inside the client namespace). Prints JSON.

    icmp_probe.py refused VIP PORT COUNT
        COUNT connected UDP sockets each send one datagram to VIP:PORT and wait
        for an answer: {"refused": n, "answered": n, "silent": n}. A backend
        with nothing on the port answers "port unreachable", which the kernel
        turns into ECONNREFUSED on the socket only if the error reaches it.

    icmp_probe.py ttl VIP PORT
        Sends one datagram to VIP:PORT with TTL (hop limit) 1, as traceroute's
        first probe, and reads the ICMP error the kernel queues on the socket
        (IP_RECVERR): {"origin": "icmp"|"icmp6", "type": t, "code": c,
        "offender": address} or {"error": "none"}.

    icmp_probe.py too-big IFACE DST_MAC VIP PORT MTU [--no-flow]
        Sends a query from a fixed port and reads which backend answered, then
        sends, as a router on the client's side would, "fragmentation needed"
        (IPv4) or "packet too big" (IPv6) with MTU about that backend's reply
        (from VIP:PORT to the client's port): {"backend": "bN", "port": n}.
        --no-flow quotes a port that never sent anything.
"""

import json
import select
import socket
import struct
import sys

REPLY_LEN = 200


def refused(vip, port, count):
    family = socket.AF_INET6 if ":" in vip else socket.AF_INET
    out = {"refused": 0, "answered": 0, "silent": 0}
    for i in range(count):
        s = socket.socket(family, socket.SOCK_DGRAM)
        s.settimeout(2)
        s.connect((vip, port))
        s.send(b"probe %d" % i)
        try:
            s.recv(2048)
            out["answered"] += 1
        except ConnectionRefusedError:
            out["refused"] += 1
        except socket.timeout:
            out["silent"] += 1
        s.close()
    return out


# From <linux/in.h>, <linux/in6.h> and <linux/errqueue.h>.
IP_RECVERR, IPV6_RECVERR = 11, 25
ORIGINS = {2: "icmp", 3: "icmp6"}


def ttl(vip, port):
    v6 = ":" in vip
    s = socket.socket(socket.AF_INET6 if v6 else socket.AF_INET, socket.SOCK_DGRAM)
    if v6:
        s.setsockopt(socket.IPPROTO_IPV6, IPV6_RECVERR, 1)
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, 1)
    else:
        s.setsockopt(socket.IPPROTO_IP, IP_RECVERR, 1)
        s.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, 1)
    s.connect((vip, port))
    s.send(b"hop 1")
    poller = select.poll()
    poller.register(s, select.POLLERR)
    if not poller.poll(2000):
        return {"error": "none"}
    _, ancillary, _, _ = s.recvmsg(512, 512, socket.MSG_ERRQUEUE)
    for _, _, data in ancillary:
        # struct sock_extended_err, then the offender's sockaddr.
        _, origin, icmp_type, code = struct.unpack_from("=IBBB", data)
        offender = data[16:]
        if v6:
            addr = socket.inet_ntop(socket.AF_INET6, offender[8:24])
        else:
            addr = socket.inet_ntop(socket.AF_INET, offender[4:8])
        return {"origin": ORIGINS.get(origin, origin), "type": icmp_type, "code": code,
                "offender": addr}
    return {"error": "no ancillary data"}


def too_big(iface, dst_mac, vip, port, mtu, no_flow):
    from scapy.all import ICMP, IP, UDP, Ether, ICMPv6PacketTooBig, IPv6, conf, get_if_hwaddr, raw

    v6 = ":" in vip
    s = socket.socket(socket.AF_INET6 if v6 else socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(2)
    s.connect((vip, port))
    s.send(b"which backend")
    answer = s.recv(2048).decode()
    client, cport = s.getsockname()[:2]
    backend = answer.split()[1]
    if no_flow:
        cport = 1 if cport != 1 else 2
    # The reply as it reached the client, and the error a router would send.
    if v6:
        quote = IPv6(src=vip, dst=client) / UDP(sport=port, dport=cport) / (b"r" * REPLY_LEN)
        err = IPv6(src=client, dst=vip) / ICMPv6PacketTooBig(mtu=mtu) / raw(quote)
    else:
        quote = IP(src=vip, dst=client, flags="DF") / UDP(sport=port, dport=cport) / (b"r" * REPLY_LEN)
        err = IP(src=client, dst=vip) / ICMP(type=3, code=4, nexthopmtu=mtu) / raw(quote)
    sock = conf.L2socket(iface=iface)
    sock.send(Ether(src=get_if_hwaddr(iface), dst=dst_mac) / err)
    sock.close()
    return {"backend": backend, "port": cport}


def main():
    if sys.argv[1] == "refused":
        print(json.dumps(refused(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))))
    elif sys.argv[1] == "ttl":
        print(json.dumps(ttl(sys.argv[2], int(sys.argv[3]))))
    else:
        iface, mac, vip, port, mtu = sys.argv[2:7]
        print(json.dumps(too_big(iface, mac, vip, int(port), int(mtu), "--no-flow" in sys.argv)))


if __name__ == "__main__":
    main()
