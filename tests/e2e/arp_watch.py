"""Watches an interface for ARP requests asking for one address (run in a namespace).

    arp_watch.py IFACE TARGET SECONDS

Prints JSON: the times, in seconds from the start, at which a request whose
target is TARGET went by.
"""

import json
import socket
import sys
import time

ETH_P_ARP = 0x0806

iface, target, seconds = sys.argv[1], socket.inet_aton(sys.argv[2]), float(sys.argv[3])
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ARP))
s.bind((iface, ETH_P_ARP))
start = time.monotonic()
seen = []
while (left := start + seconds - time.monotonic()) > 0:
    s.settimeout(left)
    try:
        frame = s.recv(2048)
    except socket.timeout:
        break
    # Ethernet (14), then ARP: opcode at 6, target protocol address at 24.
    arp = frame[14:]
    if len(arp) >= 28 and arp[6:8] == b"\x00\x01" and arp[24:28] == target:
        seen.append(round(time.monotonic() - start, 3))
print(json.dumps(seen))
