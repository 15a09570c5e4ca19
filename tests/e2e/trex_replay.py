"""Replays a TRex STL profile's streams out of an interface (run in a namespace):
each stream's base frame through its field-engine program, packet after packet,
as a TRex server would send them, with the Ethernet addresses TRex's port
configuration would give (this interface's MAC to DST_MAC).

    trex_replay.py STREAMS_JSON IFACE DST_MAC --continuous N

STREAMS_JSON is perf/trex/streams_json.py's output. Streams run in their order
of succession (`next`): a single burst sends its `total_pkts`, a continuous
stream N packets. Only the instructions Weir's profiles use are known:
tuple_flow_var, write_flow_var and fix_checksum_hw; any other is an error.
Prints JSON: packets sent per stream.
"""

import argparse
import base64
import json
import socket
import struct
import time

UDP, TCP = 11, 13  # fix_checksum_hw's l4_type (TRex's CTRexVmInsFixHwCs)


def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def fix_checksums(f, l2, l3, l4_type):
    """What the NIC does for fix_checksum_hw: the IPv4 header checksum, and the
    TCP or UDP checksum over the pseudo-header."""
    ip = f[l2:]
    v6 = ip[0] >> 4 == 6
    if v6:
        pseudo_addrs, l4_len = bytes(ip[8:40]), struct.unpack("!H", ip[4:6])[0] - (l3 - 40)
    else:
        f[l2 + 10:l2 + 12] = b"\0\0"
        f[l2 + 10:l2 + 12] = struct.pack("!H", csum(bytes(f[l2:l2 + l3])))
        pseudo_addrs, l4_len = bytes(ip[12:20]), struct.unpack("!H", ip[2:4])[0] - l3
    proto, at = {TCP: (6, 16), UDP: (17, 6)}[l4_type]
    o = l2 + l3
    f[o + at:o + at + 2] = b"\0\0"
    seg = bytes(f[o:o + l4_len])
    if v6:
        pseudo = pseudo_addrs + struct.pack("!IxxxB", l4_len, proto)
    else:
        pseudo = pseudo_addrs + struct.pack("!xBH", proto, l4_len)
    f[o + at:o + at + 2] = struct.pack("!H", csum(pseudo + seg) or 0xFFFF)


def frames(stream, count):
    """The first `count` frames of a stream."""
    base = base64.b64decode(stream["packet"]["binary"])
    program = stream["vm"]["instructions"]
    for k in range(count):
        f = bytearray(base)
        values = {}
        for ins in program:
            t = ins["type"]
            if t == "tuple_flow_var":
                # Addresses first, then ports; `limit_flows` flows, then again.
                ips = ins["ip_max"] - ins["ip_min"] + 1
                ports = ins["port_max"] - ins["port_min"] + 1
                n = k % min(ins["limit_flows"], ips * ports)
                values[ins["name"] + ".ip"] = (ins["ip_min"] + n % ips, 4)
                values[ins["name"] + ".port"] = (ins["port_min"] + n // ips, 2)
            elif t == "write_flow_var":
                value, size = values[ins["name"]]
                value = (value + ins["add_value"]) % (1 << (8 * size))
                at = ins["pkt_offset"]
                f[at:at + size] = value.to_bytes(size, "big" if ins["is_big_endian"] else "little")
            elif t == "fix_checksum_hw":
                fix_checksums(f, ins["l2_len"], ins["l3_len"], ins["l4_type"])
            else:
                raise SystemExit(f"trex_replay.py: no support for instruction {t}")
        yield bytes(f)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("streams")
    ap.add_argument("iface")
    ap.add_argument("dst_mac")
    ap.add_argument("--continuous", type=int, required=True)
    a = ap.parse_args()
    streams = json.load(open(a.streams))
    by_name = {s.get("name"): s for s in streams}
    order = [s for s in streams if s["self_start"]]
    while order[-1].get("next"):
        order.append(by_name[order[-1]["next"]])
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    sock.bind((a.iface, 0))
    eth = bytes.fromhex(a.dst_mac.replace(":", "")) + sock.getsockname()[4]
    sent = {}
    for s in order:
        mode = s["mode"]
        count = mode["total_pkts"] if mode["type"] == "single_burst" else a.continuous
        for i, f in enumerate(frames(s, count)):
            sock.send(eth + f[12:])
            if i % 64 == 63:
                time.sleep(0.001)  # the receiving port's ring holds 1024 frames
        sent[s["name"]] = count
    print(json.dumps(sent))


main()
