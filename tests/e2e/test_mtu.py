"""Issue 3's frame-size rules end to end: jumbo frames through fullnat and dr, IP
fragments forwarded by the (source, destination, protocol) hash where a dr service
allows them and after their first fragment's connection elsewhere (fullnat
included, both ways, IPv4 and IPv6; later fragments that overtake their first wait
for it), and, for a packet bigger than the
backend-side port's MTU, ICMP "fragmentation needed" when it has DF and ICMPv6
"packet too big" for IPv6 (both taken up by the client's own kernel), and
fragmentation by weir when an IPv4 packet has no DF.

Most run weir on DPDK's pcap PMD (libpcap on the same veths): af_packet in DPDK
22.11 defragments IPv4 in the kernel before the dataplane sees it; libpcap hands
fragments over as they are. Jumbo frames are shown on both; one test shows what
weir does with reassembled datagrams on af_packet.
"""

import time

import pytest

from weirlab import EQUAL, base_config, pool, service, start_weir as start
from weirlab import udp_probe as probe

VIP = "198.18.0.100"
VIP6 = "2001:db8::100"
DR_VIP = "198.18.0.200"

BACK_PORT = """
[[port]]
name = "back"
device = "net_pcap1,iface=back0,phy_mac=1"
mtu = 1500
ipv4 = ["198.19.0.1/24"]
ipv6 = ["2001:db8:1::1/64"]
host_interface = "weir1"
local_ipv4 = ["198.19.0.2"]
local_ipv6 = ["2001:db8:1::2"]

"""


# UDP echo services: fullnat over IPv4 and IPv6, and dr, on the three backends.
UDP_SERVICES = (
    pool("dns", EQUAL, port=5353)
    + pool("dns6", EQUAL, port=5353, v6=True)
    + pool("dnsdr", EQUAL)
    + service("dns", VIP, 53, "dns", protocol="udp")
    + service("dns6", VIP6, 53, "dns6", protocol="udp")
    + service("dns-dr", DR_VIP, 5353, "dnsdr", protocol="udp", mode="dr")
)


def pcap_config(mtu, back_port=False):
    """The example's [eal] and wan port on pcap with `mtu`, and optionally the
    backend-side port of a split testbed."""
    text = base_config()
    af_packet = 'device = "net_af_packet0,iface=wan0,qpairs=1"'
    assert af_packet in text and "\nmtu = 1500\n" in text
    text = text.replace(af_packet, 'device = "net_pcap0,iface=wan0,phy_mac=1"')
    text = text.replace("\nmtu = 1500\n", f"\nmtu = {mtu}\n")
    if back_port:
        text = text.replace("[conn_table]", BACK_PORT + "[conn_table]")
    return text


def set_mtu(tb, mtu, hosts=("cl", "b1", "b2", "b3")):
    for h in hosts:
        tb.exec(h, "ip", "link", "set", "eth0", "mtu", str(mtu))


def af_packet_config(mtu):
    """The example's af_packet port with `mtu`."""
    text = base_config()
    assert "\nmtu = 1500\n" in text
    return text.replace("\nmtu = 1500\n", f"\nmtu = {mtu}\n")


# DPDK 22.11's af_packet says 1500 bytes at most; weir gives its kernel
# interface the port's MTU and its ring frames the room.
@pytest.mark.parametrize("config", [pcap_config, af_packet_config])
def test_jumbo_frames_pass_through_fullnat_and_dr(testbed, tmp_path, config):
    set_mtu(testbed, 9000)
    cfg = config(9000) + UDP_SERVICES
    w = start(testbed, tmp_path, cfg, neighbours=6)
    try:
        # 8000-byte datagrams with DF: one 8042-byte frame each way, never fragmented.
        nat = probe(testbed, VIP, 53, 8000, "--df", "--connect", count=5)
        nat6 = probe(testbed, VIP6, 53, 8000, "--df", "--connect", count=5)
        dr = probe(testbed, DR_VIP, 5353, 8000, "--df", count=5)
    finally:
        w.stop()
    for r, vip in ((nat, VIP), (nat6, VIP6)):
        assert not r["errors"] and len(r["replies"]) == 5, r
        assert all(x["echo_ok"] and x["from"] == f"{vip}:53" for x in r["replies"]), r
        assert r["mtu"] == 9000, r
    assert not dr["errors"] and len(dr["replies"]) == 5, dr
    assert all(r["echo_ok"] and r["len"] > 8000 for r in dr["replies"]), dr
    c = w.counters()
    assert c["drop_oversize"] == 0, c
    # 5 requests out through fullnat and 5 replies back, each family; 5 through dr.
    assert c["lb_forward"] == 15 and c["lb_reverse"] == 10, c
    assert c["rx_bytes"] > 25 * 8000 and c["ip_fragments_out"] == 0, c
    assert testbed.exec("lb", "cat", "/sys/class/net/wan0/mtu").stdout.strip() == "9000"


def test_fragments_follow_the_three_tuple_hash_or_their_first_fragment(testbed, tmp_path):
    cfg = (
        pcap_config(1500)
        + pool("dns", EQUAL, port=5353)
        + pool("dns6", EQUAL, port=5353, v6=True)
        + pool("dnsdr", EQUAL)
        + service("dns", VIP, 53, "dns", protocol="udp")
        + service("dns6", VIP6, 53, "dns6", protocol="udp")
        + service("dns-dr", DR_VIP, 5353, "dnsdr", protocol="udp", mode="dr", fragments=True)
    )
    w = start(testbed, tmp_path, cfg, neighbours=6)
    try:
        # 3000-byte datagrams leave the client as three fragments (1480 + 1480 + 48;
        # over IPv6 1448 + 1448 + 112, after a fragment header each).
        dr = probe(testbed, DR_VIP, 5353, 3000, count=10)
        nat = probe(testbed, VIP, 53, 3000, "--connect", count=3)
        nat6 = probe(testbed, VIP6, 53, 3000, "--connect", count=3)
    finally:
        w.stop()
    # Every fragment of every datagram reached one backend, which reassembled it.
    assert not dr["errors"] and len(dr["replies"]) == 10, dr
    assert all(r["echo_ok"] for r in dr["replies"]), dr
    # The 3-tuple carries no ports: all of one client's datagrams share a backend.
    assert len({r["backend"] for r in dr["replies"]}) == 1, dr
    # fullnat: each first fragment (it has the ports) finds the connection and the
    # later ones follow it, both ways: the backend's kernel reassembled each
    # datagram from the local address, the client's each answer from the VIP.
    for r, vip in ((nat, VIP), (nat6, VIP6)):
        assert not r["errors"] and len(r["replies"]) == 3, r
        assert all(x["echo_ok"] and x["from"] == f"{vip}:53" for x in r["replies"]), r
    c = w.counters()
    assert c["drop_fragment"] == 0, c
    # Three fragments per datagram: 10 dr and 6 fullnat requests, 6 answers.
    assert c["lb_forward"] == 48 and c["lb_reverse"] == 18, c


def test_fragments_that_overtake_their_first_wait_for_it(testbed, tmp_path):
    cfg = (
        pcap_config(1500)
        + pool("dns", EQUAL, port=5353)
        + pool("dns6", EQUAL, port=5353, v6=True)
        + service("dns", VIP, 53, "dns", protocol="udp")
        + service("dns6", VIP6, 53, "dns6", protocol="udp")
    )
    w = start(testbed, tmp_path, cfg, neighbours=6)
    try:
        # Each 3000-byte datagram in fragments of at most 1500 bytes, the last
        # fragment sent first: the first one (with the ports) comes last.
        reversed_to = ("--connect", "--fragments-reversed", testbed.port_mac())
        nat = probe(testbed, VIP, 53, 3000, *reversed_to, count=3)
        nat6 = probe(testbed, VIP6, 53, 3000, *reversed_to, count=3)
        # A datagram whose first fragment never comes: its two later ones wait,
        # then are dropped (and their buffers freed).
        lost = probe(testbed, VIP, 53, 3000, *reversed_to, "--no-first", timeout=0.5)
        time.sleep(0.5)
    finally:
        w.stop()
    # The backends' kernels reassembled every datagram from the local address
    # (they answer only whole ones), and the answers came back from the VIP.
    for r, vip in ((nat, VIP), (nat6, VIP6)):
        assert not r["errors"] and len(r["replies"]) == 3, r
        assert all(x["echo_ok"] and x["from"] == f"{vip}:53" for x in r["replies"]), r
    assert lost["errors"] == ["timed out"], lost
    c = w.counters()
    # Every fragment but each datagram's first waited for it, and only the two
    # whose first never came were lost.
    assert c["lb_forward"] >= 18, c
    assert c["fragments_parked"] == c["lb_forward"] - 6 + 2, c
    assert c["drop_fragment"] == 2, c


@pytest.mark.parametrize("workers", [1, 2])
def test_af_packet_ports_take_the_datagrams_their_kernel_reassembled(testbed, tmp_path, workers):
    # The default testbed's af_packet port: its kernel puts IPv4 fragments back
    # together before DPDK sees them (DPDK 22.11 asks it to), so the dataplane gets
    # one 3028-byte packet per datagram, more than the port's MTU. Weir gives the
    # port frames with room for it, balances it whole and cuts it up again for the
    # way out. IPv6 fragments come as they are and follow their first (with two
    # workers, to the worker that owns the flow).
    cfg = base_config(workers=workers) + UDP_SERVICES
    w = start(testbed, tmp_path, cfg, neighbours=6)
    try:
        nat = probe(testbed, VIP, 53, 3000, "--connect", count=3)
        nat6 = probe(testbed, VIP6, 53, 3000, "--connect", count=3)
        dr = probe(testbed, DR_VIP, 5353, 3000, count=3)
        # Larger than a 4096-byte EDNS answer: the default frames hold it.
        big = probe(testbed, VIP, 53, 6000, "--connect", count=2)
    finally:
        w.stop()
    for r, vip, n in ((nat, VIP, 3), (nat6, VIP6, 3), (big, VIP, 2)):
        assert not r["errors"] and len(r["replies"]) == n, r
        assert all(x["echo_ok"] and x["from"] == f"{vip}:53" for x in r["replies"]), r
    assert not dr["errors"] and all(x["echo_ok"] for x in dr["replies"]), dr
    c = w.counters()
    assert c["drop_oversize"] == 0 and c["drop_fragment_failed"] == 0, c
    # IPv4: 3 fullnat requests and 3 answers, 3 dr requests, each one packet in
    # and three fragments out (3008 bytes after the IP header: 1480 + 1480 + 48;
    # answers are 33 bytes longer: 1480 + 1480 + 81); 2 requests of 6008 bytes
    # and their answers, five fragments each (4 x 1480 + 88, 4 x 1480 + 121).
    assert c["ip_fragments_out"] == 9 * 3 + 4 * 5, c
    # IPv6: three fragments each way, followed (3 requests, 3 answers).
    assert c["fragments_parked"] == 0 and c["drop_fragment"] == 0, c
    assert c["handoff_in"] == c["handoff_out"] and c["drop_handoff_full"] == 0, c
    assert c["drop_handoff_bad_port"] == 0, c


def test_packet_too_big_for_the_backend_port_is_refused_with_df_and_fragmented_without(
    split_testbed, tmp_path
):
    tb = split_testbed
    set_mtu(tb, 9000, hosts=("cl",))
    backends = "".join(
        f'[[pool.backend]]\nname = "b{i}"\naddress = "198.19.0.1{i}"\nport = 5353\n'
        for i in (1, 2, 3)
    )
    backends6 = backends.replace('"198.19.0.1', '"2001:db8:1::1')
    cfg = (
        pcap_config(9000, back_port=True)
        + f'[[pool]]\nname = "dns"\n{backends}'
        + f'[[pool]]\nname = "dnsdr"\n{backends.replace("port = 5353", "")}'
        + f'[[pool]]\nname = "dns6"\n{backends6}'
        + service("dns", VIP, 53, "dns", protocol="udp")
        + service("dns-dr", DR_VIP, 5353, "dnsdr", protocol="udp", mode="dr")
        + service("dns6", VIP6, 53, "dns6", protocol="udp")
    )
    w = start(tb, tmp_path, cfg, neighbours=6)
    try:
        small = probe(tb, VIP, 53, 1000, "--df", "--connect")
        # The first 4000-byte datagram leaves (the client's route says 9000), weir
        # answers "fragmentation needed, MTU 1500"; the kernel takes it up and
        # refuses the next ones itself.
        big = probe(tb, VIP, 53, 4000, "--df", "--connect", count=3, timeout=0.5)
        # Under the learned MTU it passes again (the echo, 33 bytes longer, must
        # fit the backend's 1500 too: weir does not reassemble fullnat replies).
        fits = probe(tb, VIP, 53, 1400, "--df", "--connect")
        # Without DF weir fragments it for the 1500-byte side (dr: the backend
        # reassembles and answers the client directly).
        frag = probe(tb, DR_VIP, 5353, 4000, "--no-df", count=3)
        # IPv6 is never fragmented on the way: packet-too-big, which the client's
        # kernel takes up the same way.
        small6 = probe(tb, VIP6, 53, 1000, "--df", "--connect")
        big6 = probe(tb, VIP6, 53, 4000, "--df", "--connect", count=3, timeout=0.5)
    finally:
        w.stop()
    assert small["replies"] and small["replies"][0]["echo_ok"], small
    assert not big["replies"], big
    assert big["mtu"] == 1500, big
    assert big["errors"].count("Message too long") == 2, big
    assert fits["replies"] and fits["replies"][0]["echo_ok"], fits
    assert not frag["errors"] and len(frag["replies"]) == 3, frag
    assert all(r["echo_ok"] for r in frag["replies"]), frag
    assert small6["replies"] and small6["replies"][0]["echo_ok"], small6
    assert not big6["replies"] and big6["mtu"] == 1500, big6
    assert big6["errors"].count("Message too long") == 2, big6
    c = w.counters()
    assert c["icmp_too_big_sent"] == 2, c
    # 4028 bytes of IP over a 1500 MTU: 1480 + 1480 + 1068 bytes of payload.
    assert c["ip_fragments_out"] == 9, c
    assert c["drop_oversize"] == 0 and c["drop_fragment_failed"] == 0, c
