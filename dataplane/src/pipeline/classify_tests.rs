//! Table-driven tests of `classify`: input frame, expected verdict, and for replies
//! the fields of the frame written back.

use super::classify::{classify, Verdict};
use super::counters::Counter;
use super::local::LocalAddrs;
use crate::buf::{HwCheck, PacketBuf, VecBuf};
use crate::lb::snapshot::LbSnapshot;
use crate::wire::checksum::{pseudo_v4, pseudo_v6};
use crate::wire::ethernet::{self, ethertype, Frame};
use crate::wire::{arp, icmpv4, icmpv6, ip_proto, ipv4, ipv6, tcp, udp};
use std::net::{Ipv4Addr, Ipv6Addr};

const OUR_MAC: [u8; 6] = [0x02, 0x57, 0x45, 0x49, 0x52, 0x01];
const PEER_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x10];
const OUR_V4: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
const PEER_V4: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 10);

fn our_v6() -> Ipv6Addr {
    "2001:db8::1".parse().unwrap()
}
fn peer_v6() -> Ipv6Addr {
    "2001:db8::10".parse().unwrap()
}

fn local() -> LocalAddrs {
    LocalAddrs {
        mac: OUR_MAC,
        vlan: None,
        mtu: 1500,
        ipv4: vec![OUR_V4],
        ipv6: vec![our_v6()],
        host_interface: true,
        host_mtu: 1500,
        reassembled_len: 0,
    }
}

fn eth(dst: [u8; 6], et: u16, payload: &[u8]) -> Vec<u8> {
    let mut b = vec![0u8; 14 + payload.len()];
    let mut f = Frame::new_unchecked(&mut b[..]);
    f.set_dst(dst);
    f.set_src(PEER_MAC);
    f.set_ethertype(et);
    f.payload_mut().copy_from_slice(payload);
    b
}

fn arp_frame(op: u16, target: Ipv4Addr) -> Vec<u8> {
    let mut a = [0u8; 28];
    let mut p = arp::Packet::new_unchecked(&mut a[..]);
    p.set_ethernet_ipv4();
    p.set_operation(op);
    p.set_sender(PEER_MAC, PEER_V4);
    p.set_target([0; 6], target);
    eth([0xff; 6], ethertype::ARP, &a)
}

fn ipv4_packet(dst: Ipv4Addr, proto: u8, l4: &[u8]) -> Vec<u8> {
    let mut b = vec![0u8; 20 + l4.len()];
    let mut p = ipv4::Packet::new_unchecked(&mut b[..]);
    p.set_version_header_len(20);
    p.set_total_len((20 + l4.len()) as u16);
    p.set_unfragmented(true);
    p.set_ttl(63);
    p.set_protocol(proto);
    p.set_src(PEER_V4);
    p.set_dst(dst);
    p.payload_mut().copy_from_slice(l4);
    p.fill_checksum();
    b
}

fn echo_v4() -> Vec<u8> {
    let mut icmp = vec![8, 0, 0, 0, 0x12, 0x34, 0, 1, b'p', b'i', b'n', b'g'];
    icmpv4::Packet::new_unchecked(&mut icmp[..]).fill_checksum();
    icmp
}

fn tcp_syn(src: Ipv4Addr, dst: Ipv4Addr) -> Vec<u8> {
    let mut t = [0u8; 20];
    let mut p = tcp::Packet::new_unchecked(&mut t[..]);
    p.set_src_port(40000);
    p.set_dst_port(22);
    p.set_header_len(20);
    p.set_flags(tcp::flags::SYN);
    p.set_window(1024);
    p.fill_checksum(pseudo_v4(src, dst, ip_proto::TCP, 20));
    t.to_vec()
}

fn ipv6_packet(src: Ipv6Addr, dst: Ipv6Addr, next: u8, hop: u8, l4: &[u8]) -> Vec<u8> {
    let mut b = vec![0u8; 40 + l4.len()];
    let mut p = ipv6::Packet::new_unchecked(&mut b[..]);
    p.set_version_class_flow(0, 0);
    p.set_payload_len(l4.len() as u16);
    p.set_next_header(next);
    p.set_hop_limit(hop);
    p.set_src(&src);
    p.set_dst(&dst);
    p.payload_mut().copy_from_slice(l4);
    b
}

fn icmpv6_msg(src: Ipv6Addr, dst: Ipv6Addr, mut msg: Vec<u8>) -> Vec<u8> {
    icmpv6::Packet::new_unchecked(&mut msg[..]).fill_checksum(&src, &dst);
    msg
}

fn solicitation(target: Ipv6Addr, with_sll: bool) -> Vec<u8> {
    let mut m = vec![icmpv6::NEIGHBOR_SOLICIT, 0, 0, 0, 0, 0, 0, 0];
    m.extend_from_slice(&target.octets());
    if with_sll {
        m.extend_from_slice(&[1, 1]);
        m.extend_from_slice(&PEER_MAC);
    }
    m
}

/// A frame from the peer to our IPv6 address: `next` header, hop limit, payload.
fn ipv6_to_us(next: u8, hop: u8, payload: &[u8]) -> Vec<u8> {
    eth(
        OUR_MAC,
        ethertype::IPV6,
        &ipv6_packet(peer_v6(), our_v6(), next, hop, payload),
    )
}

/// A solicitation from `src` for `target` (with our peer's link-layer option
/// if `sll`), sent to the target's solicited-node group at hop limit `hop`.
fn solicitation_frame(src: Ipv6Addr, target: Ipv6Addr, sll: bool, hop: u8) -> Vec<u8> {
    let group = ipv6::solicited_node(&target);
    let msg = icmpv6_msg(src, group, solicitation(target, sll));
    let ip = ipv6_packet(src, group, ip_proto::ICMPV6, hop, &msg);
    eth(ethernet::ipv6_multicast_mac(&group), ethertype::IPV6, &ip)
}

fn run(frame: &[u8]) -> (Verdict, VecBuf) {
    let mut b = VecBuf::from_slice(frame);
    let v = classify(&mut b, &local(), &LbSnapshot::default());
    (v, b)
}

#[test]
fn arp_request_for_us_is_answered_in_place() {
    let (v, out) = run(&arp_frame(arp::OP_REQUEST, OUR_V4));
    assert_eq!(v, Verdict::Reply(Counter::ArpReplies));
    let f = Frame::new_checked(out.data()).unwrap();
    assert_eq!(
        (f.dst(), f.src(), f.ethertype()),
        (PEER_MAC, OUR_MAC, ethertype::ARP)
    );
    let a = arp::Packet::new_checked(f.payload()).unwrap();
    assert_eq!(a.operation(), arp::OP_REPLY);
    assert_eq!((a.sender_mac(), a.sender_ip()), (OUR_MAC, OUR_V4));
    assert_eq!((a.target_mac(), a.target_ip()), (PEER_MAC, PEER_V4));
}

#[test]
fn table_of_verdicts() {
    let other_v4 = Ipv4Addr::new(198, 18, 0, 99);
    let mut bad_ip_csum = eth(
        OUR_MAC,
        ethertype::IPV4,
        &ipv4_packet(OUR_V4, 1, &echo_v4()),
    );
    bad_ip_csum[14 + 10] ^= 0xff;
    let mut bad_icmp_csum = eth(
        OUR_MAC,
        ethertype::IPV4,
        &ipv4_packet(OUR_V4, 1, &echo_v4()),
    );
    *bad_icmp_csum.last_mut().unwrap() ^= 0xff;
    let mut bad_ihl = eth(
        OUR_MAC,
        ethertype::IPV4,
        &ipv4_packet(OUR_V4, 1, &echo_v4()),
    );
    bad_ihl[14] = 0x43;
    let mut long_total = eth(
        OUR_MAC,
        ethertype::IPV4,
        &ipv4_packet(OUR_V4, 1, &echo_v4()),
    );
    long_total[14 + 3] = 200;
    let mut bad_tcp_csum = eth(
        OUR_MAC,
        ethertype::IPV4,
        &ipv4_packet(OUR_V4, 6, &tcp_syn(PEER_V4, OUR_V4)),
    );
    *bad_tcp_csum.last_mut().unwrap() ^= 1;
    let mut tcp_short_doff = tcp_syn(PEER_V4, OUR_V4);
    tcp_short_doff[12] = 0x30;
    let mut frag = ipv4_packet(OUR_V4, 6, &tcp_syn(PEER_V4, OUR_V4));
    frag[6] = 0x20; // MF
    ipv4::Packet::new_unchecked(&mut frag[..]).fill_checksum();
    let udp_no_csum = [0x13, 0x88, 0x00, 0x35, 0x00, 0x08, 0, 0];
    let mut tagged = eth(OUR_MAC, ethertype::VLAN, &[0, 100, 0x08, 0x06]);
    tagged.extend_from_slice(&arp_frame(arp::OP_REQUEST, OUR_V4)[14..]);
    let mut arp_bad_htype = arp_frame(arp::OP_REQUEST, OUR_V4);
    arp_bad_htype[15] = 6;
    let gre = ipv4_packet(OUR_V4, 47, &[0; 8]);
    let icmp_with = |msg_type: u8, code: u8| {
        let mut m = echo_v4();
        (m[0], m[1]) = (msg_type, code);
        icmpv4::Packet::new_unchecked(&mut m[..]).fill_checksum();
        m
    };
    let echo_reply = icmp_with(icmpv4::ECHO_REPLY, 0);
    let echo_code_1 = icmp_with(icmpv4::ECHO_REQUEST, 1);
    let other_v6: Ipv6Addr = "2001:db8::99".parse().unwrap();

    let cases: Vec<(&str, Vec<u8>, Verdict)> = vec![
        ("runt", vec![0u8; 13], Verdict::Drop(Counter::DropRunt)),
        (
            "jumbo",
            eth(OUR_MAC, ethertype::IPV4, &vec![0u8; 9000]),
            Verdict::Drop(Counter::DropOversize),
        ),
        (
            "unicast to another MAC",
            eth(
                PEER_MAC,
                ethertype::IPV4,
                &ipv4_packet(OUR_V4, 1, &echo_v4()),
            ),
            Verdict::Drop(Counter::DropNotForUs),
        ),
        (
            "unknown ethertype",
            eth(OUR_MAC, 0x88cc, &[0; 46]),
            Verdict::Drop(Counter::DropUnknownEthertype),
        ),
        (
            "tagged on an untagged port",
            tagged,
            Verdict::Drop(Counter::DropVlanMismatch),
        ),
        (
            "arp for another address",
            arp_frame(arp::OP_REQUEST, other_v4),
            Verdict::Drop(Counter::DropNotForUs),
        ),
        (
            "arp bad htype",
            arp_bad_htype,
            Verdict::Drop(Counter::DropArpMalformed),
        ),
        (
            "arp truncated",
            arp_frame(arp::OP_REQUEST, OUR_V4)[..40].to_vec(),
            Verdict::Drop(Counter::DropArpMalformed),
        ),
        (
            "ipv4 truncated header",
            eth(OUR_MAC, ethertype::IPV4, &[0x45, 0, 0, 20]),
            Verdict::Drop(Counter::DropIpv4Malformed),
        ),
        (
            "ipv4 bad IHL",
            bad_ihl,
            Verdict::Drop(Counter::DropIpv4Malformed),
        ),
        (
            "ipv4 total length past the frame",
            long_total,
            Verdict::Drop(Counter::DropIpv4Malformed),
        ),
        (
            "ipv4 bad header checksum",
            bad_ip_csum,
            Verdict::Drop(Counter::DropIpv4BadChecksum),
        ),
        (
            "ipv4 to another address",
            eth(
                OUR_MAC,
                ethertype::IPV4,
                &ipv4_packet(other_v4, 1, &echo_v4()),
            ),
            Verdict::Drop(Counter::DropNotForUs),
        ),
        (
            "icmp bad checksum",
            bad_icmp_csum,
            Verdict::Drop(Counter::DropIcmpBadChecksum),
        ),
        (
            "icmp truncated",
            eth(
                OUR_MAC,
                ethertype::IPV4,
                &ipv4_packet(OUR_V4, 1, &[8, 0, 0]),
            ),
            Verdict::Drop(Counter::DropIcmpMalformed),
        ),
        (
            "tcp to us goes to the host",
            eth(
                OUR_MAC,
                ethertype::IPV4,
                &ipv4_packet(OUR_V4, 6, &tcp_syn(PEER_V4, OUR_V4)),
            ),
            Verdict::ToHost,
        ),
        (
            "tcp bad checksum",
            bad_tcp_csum,
            Verdict::Drop(Counter::DropL4BadChecksum),
        ),
        (
            "tcp data offset too small",
            eth(
                OUR_MAC,
                ethertype::IPV4,
                &ipv4_packet(OUR_V4, 6, &tcp_short_doff),
            ),
            Verdict::Drop(Counter::DropL4Malformed),
        ),
        (
            "udp without checksum goes to the host",
            eth(
                OUR_MAC,
                ethertype::IPV4,
                &ipv4_packet(OUR_V4, 17, &udp_no_csum),
            ),
            Verdict::ToHost,
        ),
        (
            "udp length past the datagram",
            eth(
                OUR_MAC,
                ethertype::IPV4,
                &ipv4_packet(OUR_V4, 17, &[0, 1, 0, 2, 0, 99, 0, 0]),
            ),
            Verdict::Drop(Counter::DropL4Malformed),
        ),
        (
            "ipv4 fragment goes to the host",
            eth(OUR_MAC, ethertype::IPV4, &frag),
            Verdict::ToHost,
        ),
        (
            "other protocol goes to the host",
            eth(OUR_MAC, ethertype::IPV4, &gre),
            Verdict::ToHost,
        ),
        (
            "icmp echo reply to us goes to the host",
            eth(
                OUR_MAC,
                ethertype::IPV4,
                &ipv4_packet(OUR_V4, 1, &echo_reply),
            ),
            Verdict::ToHost,
        ),
        (
            "icmp echo request of an unknown code goes to the host",
            eth(
                OUR_MAC,
                ethertype::IPV4,
                &ipv4_packet(OUR_V4, 1, &echo_code_1),
            ),
            Verdict::ToHost,
        ),
        (
            "ipv6 to another address",
            eth(
                OUR_MAC,
                ethertype::IPV6,
                &ipv6_packet(peer_v6(), other_v6, ip_proto::TCP, 64, &[0; 20]),
            ),
            Verdict::Drop(Counter::DropNotForUs),
        ),
        (
            "ipv6 truncated",
            eth(OUR_MAC, ethertype::IPV6, &[0x60, 0, 0, 0, 0, 8]),
            Verdict::Drop(Counter::DropIpv6Malformed),
        ),
    ];
    for (name, frame, want) in cases {
        let (got, _) = run(&frame);
        assert_eq!(got, want, "case: {name}");
    }
}

#[test]
fn without_host_interface_host_traffic_is_dropped() {
    let mut l = local();
    l.host_interface = false;
    let f = eth(
        OUR_MAC,
        ethertype::IPV4,
        &ipv4_packet(OUR_V4, 6, &tcp_syn(PEER_V4, OUR_V4)),
    );
    let mut b = VecBuf::from_slice(&f);
    assert_eq!(
        classify(&mut b, &l, &LbSnapshot::default()),
        Verdict::Drop(Counter::DropNoHostInterface)
    );
}

#[test]
fn icmp_echo_reply_with_padding_trimmed() {
    let mut frame = eth(
        OUR_MAC,
        ethertype::IPV4,
        &ipv4_packet(OUR_V4, 1, &echo_v4()),
    );
    frame.extend_from_slice(&[0xee; 14]); // Ethernet padding
    let (v, out) = run(&frame);
    assert_eq!(v, Verdict::Reply(Counter::EchoRepliesV4));
    assert_eq!(out.len(), 14 + 20 + 12);
    let f = Frame::new_checked(out.data()).unwrap();
    assert_eq!((f.dst(), f.src()), (PEER_MAC, OUR_MAC));
    let ip = ipv4::Packet::new_checked(f.payload()).unwrap();
    assert_eq!((ip.src(), ip.dst(), ip.ttl()), (OUR_V4, PEER_V4, 64));
    assert!(ip.verify_checksum());
    let icmp = icmpv4::Packet::new_checked(ip.payload()).unwrap();
    assert_eq!(icmp.msg_type(), icmpv4::ECHO_REPLY);
    assert_eq!((icmp.echo_ident(), icmp.echo_seq()), (0x1234, 1));
    assert_eq!(icmp.data(), b"ping");
    assert!(icmp.verify_checksum());
}

#[test]
fn icmpv6_echo_reply() {
    let msg = icmpv6_msg(
        peer_v6(),
        our_v6(),
        vec![128, 0, 0, 0, 0, 7, 0, 2, 1, 2, 3, 4],
    );
    let frame = ipv6_to_us(58, 64, &msg);
    let (v, out) = run(&frame);
    assert_eq!(v, Verdict::Reply(Counter::EchoRepliesV6));
    let f = Frame::new_checked(out.data()).unwrap();
    assert_eq!((f.dst(), f.src()), (PEER_MAC, OUR_MAC));
    let ip = ipv6::Packet::new_checked(f.payload()).unwrap();
    assert_eq!((ip.src(), ip.dst()), (our_v6(), peer_v6()));
    let icmp = icmpv6::Packet::new_checked(ip.payload()).unwrap();
    assert_eq!(icmp.msg_type(), icmpv6::ECHO_REPLY);
    assert!(icmp.verify_checksum(&our_v6(), &peer_v6()));
}

#[test]
fn neighbor_solicitation_is_answered() {
    let (v, out) = run(&solicitation_frame(peer_v6(), our_v6(), true, 255));
    assert_eq!(v, Verdict::Reply(Counter::NdAdverts));
    assert_eq!(out.len(), 14 + 40 + 32);
    let f = Frame::new_checked(out.data()).unwrap();
    assert_eq!((f.dst(), f.src()), (PEER_MAC, OUR_MAC));
    let ip = ipv6::Packet::new_checked(f.payload()).unwrap();
    assert_eq!(
        (ip.src(), ip.dst(), ip.hop_limit()),
        (our_v6(), peer_v6(), 255)
    );
    let na = icmpv6::Packet::new_checked(ip.payload()).unwrap();
    assert_eq!(na.msg_type(), icmpv6::NEIGHBOR_ADVERT);
    assert_eq!(na.nd_target(), our_v6());
    assert_eq!(
        na.na_flags(),
        icmpv6::NA_FLAG_SOLICITED | icmpv6::NA_FLAG_OVERRIDE
    );
    assert_eq!(na.nd_option_ll(icmpv6::OPT_TARGET_LL), Some(OUR_MAC));
    assert!(na.verify_checksum(&our_v6(), &peer_v6()));
}

#[test]
fn dad_solicitation_gets_all_nodes_advert() {
    let frame = solicitation_frame(Ipv6Addr::UNSPECIFIED, our_v6(), false, 255);
    let (v, out) = run(&frame);
    assert_eq!(v, Verdict::Reply(Counter::NdAdverts));
    let f = Frame::new_checked(out.data()).unwrap();
    assert_eq!(f.dst(), [0x33, 0x33, 0, 0, 0, 1]);
    let ip = ipv6::Packet::new_checked(f.payload()).unwrap();
    let na = icmpv6::Packet::new_checked(ip.payload()).unwrap();
    assert_eq!(na.na_flags(), icmpv6::NA_FLAG_OVERRIDE);
}

#[test]
fn invalid_solicitations_are_counted() {
    let group = ipv6::solicited_node(&our_v6());
    // Hop limit 64: may have been forwarded by a router.
    let frame = solicitation_frame(peer_v6(), our_v6(), true, 64);
    assert_eq!(run(&frame).0, Verdict::Drop(Counter::DropNdInvalid));
    // For someone else's address (same group by chance is impossible here: other group).
    let other: Ipv6Addr = "2001:db8::2".parse().unwrap();
    let frame = solicitation_frame(peer_v6(), other, true, 255);
    assert_eq!(run(&frame).0, Verdict::Drop(Counter::DropNotForUs));
    // Bad checksum.
    let mut msg = icmpv6_msg(peer_v6(), group, solicitation(our_v6(), true));
    msg[3] ^= 1;
    let frame = eth(
        [0x33, 0x33, 0xff, 0, 0, 1],
        ethertype::IPV6,
        &ipv6_packet(peer_v6(), group, 58, 255, &msg),
    );
    assert_eq!(run(&frame).0, Verdict::Drop(Counter::DropIcmpBadChecksum));
    // Duplicate address detection (from ::) with a source link-layer option,
    // or sent to a unicast address (RFC 4861 7.1.1).
    let unspec = Ipv6Addr::UNSPECIFIED;
    for (dst, mac, sll) in [
        (group, [0x33, 0x33, 0xff, 0, 0, 1], true),
        (our_v6(), OUR_MAC, false),
    ] {
        let msg = icmpv6_msg(unspec, dst, solicitation(our_v6(), sll));
        let frame = eth(
            mac,
            ethertype::IPV6,
            &ipv6_packet(unspec, dst, 58, 255, &msg),
        );
        assert_eq!(
            run(&frame).0,
            Verdict::Drop(Counter::DropNdInvalid),
            "to {dst}, option {sll}"
        );
    }
}

#[test]
fn ipv6_tcp_and_udp_to_host() {
    let mut t = tcp_syn(PEER_V4, OUR_V4);
    tcp::Packet::new_unchecked(&mut t[..]).fill_checksum(pseudo_v6(
        &peer_v6(),
        &our_v6(),
        ip_proto::TCP,
        20,
    ));
    let frame = ipv6_to_us(6, 64, &t);
    assert_eq!(run(&frame).0, Verdict::ToHost);
    // UDP with a zero checksum is invalid over IPv6.
    let u = [0x13, 0x88, 0x00, 0x35, 0x00, 0x08, 0, 0];
    let frame = ipv6_to_us(17, 64, &u);
    assert_eq!(run(&frame).0, Verdict::Drop(Counter::DropL4BadChecksum));
    let mut u = u;
    udp::Packet::new_unchecked(&mut u[..]).fill_checksum(pseudo_v6(
        &peer_v6(),
        &our_v6(),
        ip_proto::UDP,
        8,
    ));
    let frame = ipv6_to_us(17, 64, &u);
    assert_eq!(run(&frame).0, Verdict::ToHost);
}

#[test]
fn vlan_port_accepts_its_tag_and_keeps_it_in_replies() {
    let mut l = local();
    l.vlan = Some(100);
    let mut tagged = eth([0xff; 6], ethertype::VLAN, &[0, 100, 0x08, 0x06]);
    tagged.extend_from_slice(&arp_frame(arp::OP_REQUEST, OUR_V4)[14..]);
    let mut b = VecBuf::from_slice(&tagged);
    assert_eq!(
        classify(&mut b, &l, &LbSnapshot::default()),
        Verdict::Reply(Counter::ArpReplies)
    );
    assert_eq!(&b.data()[12..16], &[0x81, 0x00, 0, 100]);
    let a = arp::Packet::new_checked(&b.data()[18..]).unwrap();
    assert_eq!(a.operation(), arp::OP_REPLY);
    // Untagged and wrongly tagged frames are refused.
    let mut b = VecBuf::from_slice(&arp_frame(arp::OP_REQUEST, OUR_V4));
    assert_eq!(
        classify(&mut b, &l, &LbSnapshot::default()),
        Verdict::Drop(Counter::DropVlanMismatch)
    );
    tagged[15] = 101;
    let mut b = VecBuf::from_slice(&tagged);
    assert_eq!(
        classify(&mut b, &l, &LbSnapshot::default()),
        Verdict::Drop(Counter::DropVlanMismatch)
    );
}

#[test]
fn the_nics_ipv4_checksum_verdict_is_taken_where_it_gave_one() {
    let good = eth(
        OUR_MAC,
        ethertype::IPV4,
        &ipv4_packet(OUR_V4, ip_proto::TCP, &tcp_syn(PEER_V4, OUR_V4)),
    );
    let mut bad = good.clone();
    bad[14 + 10] ^= 0xff;
    let with = |frame: &[u8], hw| {
        let mut b = VecBuf::from_slice(frame);
        b.hw_ipv4 = hw;
        classify(&mut b, &local(), &LbSnapshot::default())
    };
    // No offload: software decides.
    assert_eq!(with(&good, HwCheck::Unknown), Verdict::ToHost);
    assert_eq!(
        with(&bad, HwCheck::Unknown),
        Verdict::Drop(Counter::DropIpv4BadChecksum)
    );
    // The NIC checked: its word stands, whatever the bytes say (no second check).
    assert_eq!(with(&bad, HwCheck::Good), Verdict::ToHost);
    assert_eq!(
        with(&good, HwCheck::Bad),
        Verdict::Drop(Counter::DropIpv4BadChecksum)
    );
}

#[test]
fn a_port_that_reassembles_takes_datagrams_bigger_than_its_mtu() {
    // A ping of the largest frame the port takes (4029 bytes), as an
    // af_packet port's kernel hands it over after putting its fragments
    // together: answered there, oversize elsewhere.
    let mut icmp = vec![8, 0, 0, 0, 0x12, 0x34, 0, 1];
    icmp.extend((0..4029 - 14 - 20 - 8).map(|i| i as u8));
    icmpv4::Packet::new_unchecked(&mut icmp[..]).fill_checksum();
    let frame = eth(OUR_MAC, ethertype::IPV4, &ipv4_packet(OUR_V4, 1, &icmp));
    let reassembling = LocalAddrs {
        reassembled_len: 4029,
        ..local()
    };
    let mut b = VecBuf::from_slice(&frame);
    let v = classify(&mut b, &reassembling, &LbSnapshot::default());
    assert_eq!(v, Verdict::Reply(Counter::EchoRepliesV4));
    assert_eq!((frame.len(), b.len()), (4029, 4029));
    assert_eq!(run(&frame).0, Verdict::Drop(Counter::DropOversize));
    // A frame the port cut to what its frames hold (4030 bytes), oversize there
    // too.
    let huge = eth(OUR_MAC, ethertype::IPV4, &vec![0u8; 4030 - 14]);
    let mut b = VecBuf::from_slice(&huge);
    let v = classify(&mut b, &reassembling, &LbSnapshot::default());
    assert_eq!(v, Verdict::Drop(Counter::DropOversize));
}

/// An unsolicited neighbour advertisement from the peer for its own address,
/// with `flags` (override 0x20 in the first byte) and hop limit `hop`.
fn announcement_v6(flags: u8, hop: u8) -> Vec<u8> {
    let all_nodes: Ipv6Addr = "ff02::1".parse().unwrap();
    let mut m = vec![icmpv6::NEIGHBOR_ADVERT, 0, 0, 0, flags, 0, 0, 0];
    m.extend_from_slice(&peer_v6().octets());
    m.extend_from_slice(&[2, 1]);
    m.extend_from_slice(&PEER_MAC);
    let msg = icmpv6_msg(peer_v6(), all_nodes, m);
    let ip = ipv6_packet(peer_v6(), all_nodes, ip_proto::ICMPV6, hop, &msg);
    eth([0x33, 0x33, 0, 0, 0, 1], ethertype::IPV6, &ip)
}

#[test]
fn neighbours_announcing_their_address_reach_the_host_interface() {
    // Gratuitous ARP, request or reply, broadcast: for the kernel and the
    // backend resolver, which take a backend's new MAC from it at once.
    for op in [arp::OP_REQUEST, arp::OP_REPLY] {
        assert_eq!(run(&arp_frame(op, PEER_V4)).0, Verdict::ToHost, "op {op}");
    }
    // Not an announcement: a request for another host, a probe (sender 0.0.0.0).
    let other = Ipv4Addr::new(198, 18, 0, 99);
    assert_eq!(
        run(&arp_frame(arp::OP_REQUEST, other)).0,
        Verdict::Drop(Counter::DropNotForUs)
    );
    let mut probe = arp_frame(arp::OP_REQUEST, other);
    arp::Packet::new_unchecked(&mut probe[14..]).set_sender(PEER_MAC, Ipv4Addr::UNSPECIFIED);
    assert_eq!(run(&probe).0, Verdict::Drop(Counter::DropNotForUs));
    // One announcing an address of ours is answered: we hold it.
    let mut ours = arp_frame(arp::OP_REQUEST, OUR_V4);
    arp::Packet::new_unchecked(&mut ours[14..]).set_sender(PEER_MAC, OUR_V4);
    assert_eq!(run(&ours).0, Verdict::Reply(Counter::ArpReplies));

    // IPv6: an unsolicited advertisement to all nodes, if valid (hop limit 255).
    assert_eq!(run(&announcement_v6(0x20, 255)).0, Verdict::ToHost);
    assert_eq!(
        run(&announcement_v6(0x20, 64)).0,
        Verdict::Drop(Counter::DropNdInvalid)
    );
    // Anything else to all nodes is not for us.
    let all_nodes: Ipv6Addr = "ff02::1".parse().unwrap();
    let echo = icmpv6_msg(
        peer_v6(),
        all_nodes,
        vec![icmpv6::ECHO_REQUEST, 0, 0, 0, 0, 1, 0, 1],
    );
    let ip = ipv6_packet(peer_v6(), all_nodes, ip_proto::ICMPV6, 64, &echo);
    let frame = eth([0x33, 0x33, 0, 0, 0, 1], ethertype::IPV6, &ip);
    assert_eq!(run(&frame).0, Verdict::Drop(Counter::DropNotForUs));
}

#[test]
fn arp_replies_reach_the_host_only_when_addressed_to_our_mac() {
    // The answer to the kernel's own request: unicast to our MAC, the peer's
    // address for ours. The kernel learns its neighbour from it.
    let answer = |dst: [u8; 6]| {
        let mut f = arp_frame(arp::OP_REPLY, OUR_V4);
        Frame::new_unchecked(&mut f[..]).set_dst(dst);
        arp::Packet::new_unchecked(&mut f[14..]).set_target(OUR_MAC, OUR_V4);
        f
    };
    assert_eq!(run(&answer(OUR_MAC)).0, Verdict::ToHost);
    let no_host = LocalAddrs {
        host_interface: false,
        ..local()
    };
    let mut b = VecBuf::from_slice(&answer(OUR_MAC));
    assert_eq!(
        classify(&mut b, &no_host, &LbSnapshot::default()),
        Verdict::Drop(Counter::DropNoHostInterface)
    );
    // The same reply broadcast is one host answering another, not news for us
    // (an announcement has the sender's address as its target too).
    assert_eq!(
        run(&answer([0xff; 6])).0,
        Verdict::Drop(Counter::DropNotForUs)
    );
}

#[test]
fn traffic_for_a_vip_is_balanced_only_when_sent_to_our_mac() {
    // A multicast frame carrying a unicast packet for an IPv6 VIP is no
    // client's connection: dropped, as its IPv4 twin is.
    let vip: Ipv6Addr = "2001:db8::100".parse().unwrap();
    let snap = crate::pipeline::fast_path_check::snap_with(vip.into(), our_v6().into());
    let mut syn = [0u8; 20];
    syn[12] = 0x50; // a 20-byte header
    syn[13] = tcp::flags::SYN;
    let ip = ipv6_packet(peer_v6(), vip, ip_proto::TCP, 64, &syn);
    let verdict = |dst_mac: [u8; 6]| {
        let mut b = VecBuf::from_slice(&eth(dst_mac, ethertype::IPV6, &ip));
        classify(&mut b, &local(), &snap)
    };
    assert!(matches!(verdict(OUR_MAC), Verdict::Balance { .. }));
    assert_eq!(
        verdict([0x33, 0x33, 0, 0, 1, 0]),
        Verdict::Drop(Counter::DropNotForUs)
    );
}

/// A snapshot with `vip` as a VIP (TCP 80, UDP 53) and a FullNAT local address
/// of the same family that no test sends to.
fn snap_with_vip(vip: std::net::IpAddr) -> LbSnapshot {
    let unused_local: std::net::IpAddr = match vip {
        std::net::IpAddr::V4(_) => Ipv4Addr::new(198, 18, 0, 250).into(),
        std::net::IpAddr::V6(_) => "2001:db8::250".parse::<Ipv6Addr>().unwrap().into(),
    };
    crate::pipeline::fast_path_check::snap_with(vip, unused_local)
}

/// The peer's solicited advertisement of its own address, sent to `to`.
fn unicast_advert(to: Ipv6Addr) -> Vec<u8> {
    let mut na = vec![icmpv6::NEIGHBOR_ADVERT, 0, 0, 0, 0x60, 0, 0, 0];
    na.extend_from_slice(&peer_v6().octets());
    icmpv6_msg(peer_v6(), to, na)
}

#[test]
fn a_vips_address_is_answered_for_like_the_ports_own() {
    // Ping to an IPv4 VIP: answered from the VIP.
    let vip4 = Ipv4Addr::new(198, 18, 0, 100);
    let snap = snap_with_vip(vip4.into());
    let frame = eth(OUR_MAC, ethertype::IPV4, &ipv4_packet(vip4, 1, &echo_v4()));
    let mut b = VecBuf::from_slice(&frame);
    assert_eq!(
        classify(&mut b, &local(), &snap),
        Verdict::Reply(Counter::EchoRepliesV4)
    );
    let ip = ipv4::Packet::new_checked(&b.data()[14..]).unwrap();
    assert_eq!((ip.src(), ip.dst()), (vip4, PEER_V4));
    // ARP for the VIP: answered with our MAC.
    let mut b = VecBuf::from_slice(&arp_frame(arp::OP_REQUEST, vip4));
    assert_eq!(
        classify(&mut b, &local(), &snap),
        Verdict::Reply(Counter::ArpReplies)
    );
    let a = arp::Packet::new_checked(&b.data()[14..]).unwrap();
    assert_eq!((a.sender_mac(), a.sender_ip()), (OUR_MAC, vip4));

    // IPv6: a solicitation for the VIP to the VIP's solicited-node group, and
    // a ping.
    let vip6: Ipv6Addr = "2001:db8::100".parse().unwrap();
    let snap = snap_with_vip(vip6.into());
    let frame = solicitation_frame(peer_v6(), vip6, true, 255);
    let mut b = VecBuf::from_slice(&frame);
    assert_eq!(
        classify(&mut b, &local(), &snap),
        Verdict::Reply(Counter::NdAdverts)
    );
    let ip = ipv6::Packet::new_checked(&b.data()[14..]).unwrap();
    let na = icmpv6::Packet::new_checked(ip.payload()).unwrap();
    assert_eq!((ip.src(), na.nd_target()), (vip6, vip6));
    assert_eq!(na.nd_option_ll(icmpv6::OPT_TARGET_LL), Some(OUR_MAC));

    let to_vip = |hop: u8, msg: &[u8]| {
        let ip = ipv6_packet(peer_v6(), vip6, 58, hop, msg);
        classify(
            &mut VecBuf::from_slice(&eth(OUR_MAC, ethertype::IPV6, &ip)),
            &local(),
            &snap,
        )
    };
    let ping = icmpv6_msg(peer_v6(), vip6, vec![128, 0, 0, 0, 0, 7, 0, 2]);
    assert_eq!(to_vip(64, &ping), Verdict::Reply(Counter::EchoRepliesV6));
    // Other ICMPv6 for the VIP (here an advertisement) has no kernel to go to.
    assert_eq!(
        to_vip(255, &unicast_advert(vip6)),
        Verdict::Drop(Counter::DropNotForUs)
    );
    // A solicitation for the VIP sent to another address's group is for
    // whoever listens there: nobody here.
    let other = ipv6::solicited_node(&"2001:db8::1:99".parse().unwrap());
    let msg = icmpv6_msg(peer_v6(), other, solicitation(vip6, true));
    let ip = ipv6_packet(peer_v6(), other, ip_proto::ICMPV6, 255, &msg);
    let frame = eth(ethernet::ipv6_multicast_mac(&other), ethertype::IPV6, &ip);
    assert_eq!(
        classify(&mut VecBuf::from_slice(&frame), &local(), &snap),
        Verdict::Drop(Counter::DropNotForUs)
    );
}

#[test]
fn solicitations_for_addresses_that_are_nobodys_here_are_not_answered() {
    // Sent to our own address, asking about one that is neither the port's
    // nor the balancer's: answering would take the address from its owner.
    let snap = snap_with_vip("2001:db8::100".parse::<Ipv6Addr>().unwrap().into());
    let other: Ipv6Addr = "2001:db8::99".parse().unwrap();
    let msg = icmpv6_msg(peer_v6(), our_v6(), solicitation(other, true));
    let frame = ipv6_to_us(58, 255, &msg);
    let mut b = VecBuf::from_slice(&frame);
    assert_eq!(
        classify(&mut b, &local(), &snap),
        Verdict::Drop(Counter::DropNotForUs)
    );
    assert_eq!(b.data(), &frame[..], "the frame is left as it came");
}

#[test]
fn icmpv6_to_us_that_is_not_a_plain_echo_request_goes_to_the_host() {
    let echo_reply = icmpv6_msg(peer_v6(), our_v6(), vec![129, 0, 0, 0, 0, 7, 0, 2]);
    assert_eq!(run(&ipv6_to_us(58, 64, &echo_reply)).0, Verdict::ToHost);
    let code_1 = icmpv6_msg(peer_v6(), our_v6(), vec![128, 1, 0, 0, 0, 7, 0, 2]);
    assert_eq!(run(&ipv6_to_us(58, 64, &code_1)).0, Verdict::ToHost);
    // An advertisement unicast to us answers the kernel's own solicitation:
    // the kernel judges it (here one with a hop limit that RFC 4861 refuses).
    let na = unicast_advert(our_v6());
    assert_eq!(run(&ipv6_to_us(58, 64, &na)).0, Verdict::ToHost);
    // An echo request behind a destination options header is the kernel's.
    let mut behind_options = vec![58, 0, 1, 4, 0, 0, 0, 0]; // PadN
    behind_options.extend(icmpv6_msg(
        peer_v6(),
        our_v6(),
        vec![128, 0, 0, 0, 0, 7, 0, 2],
    ));
    let frame = ipv6_to_us(60, 64, &behind_options);
    assert_eq!(run(&frame).0, Verdict::ToHost);
}

#[test]
fn ipv6_echo_replies_leave_the_ethernet_padding_behind() {
    let msg = icmpv6_msg(peer_v6(), our_v6(), vec![128, 0, 0, 0, 0, 7, 0, 2, 9]);
    let mut frame = ipv6_to_us(58, 64, &msg);
    frame.extend_from_slice(&[0xee; 8]);
    let (v, out) = run(&frame);
    assert_eq!(v, Verdict::Reply(Counter::EchoRepliesV6));
    assert_eq!(out.len(), 14 + 40 + 9);
    let ip = ipv6::Packet::new_checked(&out.data()[14..]).unwrap();
    assert_eq!(ip.payload_len(), 9);
    let icmp = icmpv6::Packet::new_checked(ip.payload()).unwrap();
    assert!(icmp.verify_checksum(&our_v6(), &peer_v6()));
}

#[test]
fn ipv6_multicast_that_is_not_neighbour_discovery_is_not_for_us() {
    let all_nodes: Ipv6Addr = "ff02::1".parse().unwrap();
    let mut d = vec![0x13, 0x88, 0x00, 0x35, 0, 10, 0, 0, 1, 2];
    udp::Packet::new_unchecked(&mut d[..]).fill_checksum(pseudo_v6(
        &peer_v6(),
        &all_nodes,
        ip_proto::UDP,
        10,
    ));
    let frame = eth(
        [0x33, 0x33, 0, 0, 0, 1],
        ethertype::IPV6,
        &ipv6_packet(peer_v6(), all_nodes, ip_proto::UDP, 64, &d),
    );
    assert_eq!(run(&frame).0, Verdict::Drop(Counter::DropNotForUs));
}
