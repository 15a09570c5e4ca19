"""Sends malformed frames at the appliance's port with scapy (run with Debian's
/usr/bin/python3 inside the client namespace).

    send_frames.py IFACE DST_MAC COUNT KIND [KIND ...]

Prints one line per kind: KIND FRAME_LENGTH.
"""

import sys

from scapy.all import ARP, ICMP, IP, TCP, UDP, Ether, IPv6, IPv6ExtHdrDestOpt, Raw, get_if_hwaddr, sendp

VIP4, VIP6 = "198.18.0.1", "2001:db8::1"
SRC4, SRC6 = "198.18.0.10", "2001:db8::10"


def ip4(payload, **kw):
    return IP(src=SRC4, dst=VIP4, **kw) / payload


def patched(pkt, offset, value):
    """Raw bytes of pkt with bytes at offset (from the L3 header) replaced."""
    b = bytearray(bytes(pkt))
    b[offset : offset + len(value)] = value
    return bytes(b)


def frame(src, dst, kind):
    # An explicit source: a bridge drops frames from 00:00:00:00:00:00.
    eth = Ether(src=src, dst=dst, type=0x0800)
    eth6 = Ether(src=src, dst=dst, type=0x86DD)
    echo = ip4(ICMP(id=7, seq=1) / Raw(b"x" * 32))
    if kind == "runt":
        # The shortest frame a kernel veth carries: a bare Ethernet header. Shorter
        # ones (and a VLAN EtherType without its tag) never leave or enter a kernel
        # interface; the unit tests cover those.
        return bytes(eth)
    if kind == "ipv4_truncated":
        return bytes(eth) + bytes(echo)[:10]
    if kind == "ipv4_bad_ihl":
        return bytes(eth) + patched(echo, 0, b"\x43")
    if kind == "ipv4_bad_length":
        return bytes(eth) + patched(echo, 2, (1000).to_bytes(2, "big"))
    if kind == "ipv4_bad_checksum":
        return bytes(eth / ip4(ICMP(id=7, seq=1), chksum=0x1234))
    if kind == "icmp_bad_checksum":
        return bytes(eth / ip4(ICMP(id=7, seq=1, chksum=0x1234) / Raw(b"x" * 8)))
    if kind == "tcp_bad_checksum":
        return bytes(eth / ip4(TCP(sport=40000, dport=80, flags="S", chksum=0x0001)))
    if kind == "udp_bad_length":
        return bytes(eth / ip4(UDP(sport=40000, dport=53, len=200) / Raw(b"q" * 4)))
    if kind == "ipv6_bad_length":
        return bytes(eth6 / IPv6(src=SRC6, dst=VIP6, plen=500) / ICMP())[:14 + 48]
    if kind == "ipv6_header_chain":
        chain = IPv6(src=SRC6, dst=VIP6)
        for _ in range(12):
            chain = chain / IPv6ExtHdrDestOpt()
        return bytes(eth6 / chain / UDP(sport=1, dport=2))
    if kind == "arp_bad_sizes":
        return bytes(Ether(src=src, dst="ff:ff:ff:ff:ff:ff") / ARP(hwlen=8, pdst=VIP4))
    if kind == "unknown_ethertype":
        return bytes(Ether(src=src, dst=dst, type=0x88B5) / Raw(b"\0" * 46))
    if kind == "jumbo":
        # Longer than an af_packet frame of the port holds (8126 bytes at MTU
        # 1500: the room for datagrams its kernel reassembled).
        return bytes(eth / ip4(UDP(sport=40000, dport=9) / Raw(b"j" * 8500)))
    raise SystemExit(f"unknown kind {kind}")


def main():
    iface, dst, count, kinds = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4:]
    src = get_if_hwaddr(iface)
    for kind in kinds:
        f = frame(src, dst, kind)
        sendp([Raw(f)] * count, iface=iface, verbose=False)
        print(kind, len(f))


if __name__ == "__main__":
    main()
