"""TRex stateless (STL) profile: L4 load on a Weir VIP, the traffic weir-perf's
scenarios model, for a bare-metal bench (TRex port 0 -> Weir's client-side port).

    trex-console> start -f perf/trex/weir_l4.py -m 10mpps --port 0 \
                    -t --vip 198.18.0.200 --flows 1000000
    trex-console> start -f perf/trex/weir_l4.py -m 2mpps -t --vip 198.18.0.100 --kind syn

Kinds (--kind):
  established  opens --flows flows (a burst of SYNs, or of datagrams for UDP, at
               --open-pps), then sends their ACK segments (datagrams) for as long
               as the stream runs: a connection table of --flows entries, every
               packet on an established flow (weir-perf "established ...").
               Once the burst is out, the cores' `new flows` in Weir's
               `show stat` should have grown by --flows (TRex running on
               several cores shares the burst and the tuple range out).
  syn          a SYN of a new flow every packet (--clients x 64,512 source ports
               before it wraps): a new connection rate test, or a SYN flood.

Flows are --clients source addresses from --client, each with consecutive source
ports from --sport: the first address and port 1024, the next address and 1024,
..., then every address with 1025 (TRex's tuple generator). Weir answers no ARP
for these addresses and needs none: replies go to the MAC a flow came from. In
`dr` the backends answer the clients directly, so route --client's network back
to TRex (port 1) to count the answers there.

The profile is stateless: its TCP flows never finish a handshake. In `dr` that
does not matter (Weir sees only the client's side; the backends' answers go to
TRex). In `fullnat` real backends reset each flow at its first ACK (their
SYN-ACK was never acknowledged): Weir forwards the flow's packets for
`tcp_close_timeout` (10 s) more, then drops them (`drop_no_flow`) and answers
with resets, 1,000 a second per worker at most. For longer
fullnat runs use `--proto udp`, or backends that drop the service port.

TRex writes the Ethernet addresses from its port configuration: point port 0's
`dest_mac` (or `default_gw`) at Weir's port. Checksums are set by the NIC
(fix_checksum_hw), so each packet carries a valid IP and TCP/UDP checksum.
"""

import argparse
import ipaddress

from trex_stl_lib.api import (
    IP,
    TCP,
    UDP,
    CTRexVmInsFixHwCs,
    Ether,
    IPv6,
    STLPktBuilder,
    STLScVmRaw,
    STLStream,
    STLTXCont,
    STLTXSingleBurst,
    STLVmFixChecksumHw,
    STLVmTupleGen,
    STLVmWrFlowVar,
)

FIRST_PORT = 1024
LAST_PORT = 65535


def parse(tunables):
    ap = argparse.ArgumentParser(prog="weir_l4.py", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--vip", required=True, help="the service's virtual address (IPv4 or IPv6)")
    ap.add_argument("--port", type=int, default=80, help="the service's port")
    ap.add_argument("--proto", choices=("tcp", "udp"), default="tcp")
    ap.add_argument("--kind", choices=("established", "syn"), default="established")
    ap.add_argument("--flows", type=int, default=1000, help="flows of --kind established")
    ap.add_argument("--clients", type=int, default=250, help="client source addresses")
    ap.add_argument("--client", help="first client address (default 198.18.1.1 or 2001:db8:1::1)")
    ap.add_argument("--sport", type=int, default=FIRST_PORT, help="first client source port")
    ap.add_argument("--size", type=int, default=0,
                    help="frame size without the FCS (default: the smallest frame, 60 or 74 bytes)")
    ap.add_argument("--open-pps", type=float, default=100000,
                    help="rate of the burst that opens the flows of --kind established")
    a = ap.parse_args(tunables)
    vip = ipaddress.ip_address(a.vip)
    a.v6 = vip.version == 6
    a.client = ipaddress.ip_address(a.client or ("2001:db8:1::1" if a.v6 else "198.18.1.1"))
    if a.client.version != vip.version:
        ap.error("--client and --vip must be of one address family")
    if not (1 <= a.clients and FIRST_PORT <= a.sport <= LAST_PORT and a.flows >= 1):
        ap.error("--clients and --flows must be at least 1, --sport within 1024-65535")
    if a.proto == "udp" and a.kind == "syn":
        ap.error("--kind syn is for tcp")
    return a


def frame(a, flags):
    """The base frame: the first flow's packet, padded to --size."""
    l3 = IPv6(src=str(a.client), dst=a.vip) if a.v6 else IP(src=str(a.client), dst=a.vip)
    l4 = (TCP(sport=a.sport, dport=a.port, flags=flags, seq=1, ack=1 if "A" in flags else 0)
          if a.proto == "tcp" else UDP(sport=a.sport, dport=a.port))
    pkt = Ether() / l3 / l4
    size = max(a.size, 60)
    if len(pkt) < size:
        pkt = pkt / (b"\x00" * (size - len(pkt)))
    return pkt


def program(a, flows):
    """The field engine: client address and source port from TRex's tuple
    generator (addresses first, then ports), written into the frame, and the
    checksums set by the NIC."""
    first = int(a.client) & 0xFFFFFFFF  # an IPv6 client varies its last 32 bits
    ports = LAST_PORT - a.sport + 1
    flows = min(flows, a.clients * ports)
    l3 = "IPv6" if a.v6 else "IP"
    l4 = "TCP" if a.proto == "tcp" else "UDP"
    return STLScVmRaw([
        STLVmTupleGen(name="flow", ip_min=first, ip_max=first + a.clients - 1,
                      port_min=a.sport, port_max=LAST_PORT, limit_flows=flows),
        STLVmWrFlowVar(fv_name="flow.ip", pkt_offset=f"{l3}.src", offset_fixup=12 if a.v6 else 0),
        STLVmWrFlowVar(fv_name="flow.port", pkt_offset=f"{l4}.sport"),
        STLVmFixChecksumHw(l3_offset=l3, l4_offset=l4,
                           l4_type=(CTRexVmInsFixHwCs.L4_TYPE_TCP if a.proto == "tcp"
                                    else CTRexVmInsFixHwCs.L4_TYPE_UDP)),
    ])


class WeirL4:
    def get_streams(self, tunables=(), **kwargs):
        a = parse(list(tunables))
        if a.kind == "syn":
            flows = a.clients * (LAST_PORT - a.sport + 1)
            return [STLStream(name="syn", packet=STLPktBuilder(pkt=frame(a, "S"), vm=program(a, flows)),
                              mode=STLTXCont())]
        opening = "S" if a.proto == "tcp" else ""
        return [
            STLStream(name="open", next="load",
                      packet=STLPktBuilder(pkt=frame(a, opening), vm=program(a, a.flows)),
                      mode=STLTXSingleBurst(total_pkts=a.flows, pps=a.open_pps)),
            STLStream(name="load", self_start=False,
                      packet=STLPktBuilder(pkt=frame(a, "A"), vm=program(a, a.flows)),
                      mode=STLTXCont()),
        ]


def register():
    return WeirL4()
