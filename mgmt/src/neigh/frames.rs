//! The frames a resolver writes (ARP requests, neighbour solicitations,
//! announcements) and what it reads from the ones it receives.

use dataplane::wire::checksum;
use dataplane::wire::ethernet::{self, ethertype, Frame};
use dataplane::wire::{arp, icmpv6, ip_proto, ipv6};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// What a frame says of a neighbour's MAC: an ARP reply or neighbour
/// advertisement addressed to `our_mac` (an answer to our asking), or an
/// announcement to everyone (gratuitous ARP; an unsolicited advertisement with
/// the override flag, RFC 4861 7.2.6), as a host sends when its MAC changes or
/// an address moves to it. (address, MAC).
pub(super) fn parse_reply(frame: &[u8], our_mac: [u8; 6]) -> Option<(IpAddr, [u8; 6])> {
    let f = Frame::new_checked(frame).ok()?;
    let to_us = f.dst() == our_mac;
    match f.ethertype() {
        ethertype::ARP => {
            let a = arp::Packet::new_checked(f.payload()).ok()?;
            let (op, ip) = (a.operation(), a.sender_ip());
            let answer = to_us && op == arp::OP_REPLY;
            let gratuitous = (op == arp::OP_REQUEST || op == arp::OP_REPLY)
                && ip == a.target_ip()
                && !ip.is_unspecified();
            (answer || gratuitous).then(|| (IpAddr::V4(ip), a.sender_mac()))
        }
        ethertype::IPV6 => {
            let ip = ipv6::Packet::new_checked(f.payload()).ok()?;
            if ip.next_header() != ip_proto::ICMPV6 || ip.hop_limit() != 255 {
                return None;
            }
            let icmp = icmpv6::Packet::new_checked(ip.payload()).ok()?;
            if icmp.msg_type() != icmpv6::NEIGHBOR_ADVERT {
                return None;
            }
            let announced = ip.dst() == ipv6::ALL_NODES && icmp.na_flags() & NA_OVERRIDE != 0;
            if !to_us && !announced {
                return None;
            }
            let mac = icmp.nd_option_ll(icmpv6::OPT_TARGET_LL).unwrap_or(f.src());
            Some((IpAddr::V6(icmp.nd_target()), mac))
        }
        _ => None,
    }
}

/// The override flag of a neighbour advertisement (in `na_flags`).
const NA_OVERRIDE: u32 = 0x2000_0000;

/// Writes into `frame` the announcement that `addr` is at `mac` (see
/// [`Resolver::announce`]); returns the frame length.
pub(super) fn announcement(frame: &mut [u8; 86], mac: [u8; 6], addr: IpAddr) -> usize {
    match addr {
        IpAddr::V4(a) => {
            arp_frame(frame, mac, (ethernet::BROADCAST, a), a);
            42
        }
        IpAddr::V6(a) => {
            let mut na = [0u8; 32];
            na[0] = icmpv6::NEIGHBOR_ADVERT;
            na[4] = (NA_OVERRIDE >> 24) as u8;
            na[8..24].copy_from_slice(&a.octets());
            na[24] = icmpv6::OPT_TARGET_LL;
            na[25] = 1;
            na[26..32].copy_from_slice(&mac);
            icmpv6_frame(frame, mac, (a, ipv6::ALL_NODES), &mut na)
        }
    }
}

/// Writes into `frame` a broadcast ARP request from `mac` for `sender`, asking
/// about `target` (target MAC as given).
pub(super) fn arp_frame(
    frame: &mut [u8],
    mac: [u8; 6],
    (target_mac, target): ([u8; 6], Ipv4Addr),
    sender: Ipv4Addr,
) {
    let mut f = Frame::new_unchecked(&mut frame[..]);
    f.set_dst(ethernet::BROADCAST);
    f.set_src(mac);
    f.set_ethertype(ethertype::ARP);
    let mut p = arp::Packet::new_unchecked(&mut frame[14..42]);
    p.set_ethernet_ipv4();
    p.set_operation(arp::OP_REQUEST);
    p.set_sender(mac, sender);
    p.set_target(target_mac, target);
}

/// Writes into `frame` a neighbour solicitation from `mac`, `src`, for
/// `target`, to its solicited-node group; returns the frame length.
pub(super) fn solicitation(
    frame: &mut [u8],
    mac: [u8; 6],
    src: Ipv6Addr,
    target: Ipv6Addr,
) -> usize {
    let mut ns = [0u8; 32];
    ns[0] = icmpv6::NEIGHBOR_SOLICIT;
    ns[8..24].copy_from_slice(&target.octets());
    ns[24] = icmpv6::OPT_SOURCE_LL;
    ns[25] = 1;
    ns[26..32].copy_from_slice(&mac);
    icmpv6_frame(frame, mac, (src, ipv6::solicited_node(&target)), &mut ns)
}

/// Writes into `frame` the 32-byte neighbour discovery message `msg` from `mac`,
/// `src` to `dst` (hop limit 255, checksum filled in); returns the frame length.
fn icmpv6_frame(
    frame: &mut [u8],
    mac: [u8; 6],
    (src, dst): (Ipv6Addr, Ipv6Addr),
    msg: &mut [u8; 32],
) -> usize {
    let mut f = Frame::new_unchecked(&mut frame[..]);
    f.set_dst(ethernet::ipv6_multicast_mac(&dst));
    f.set_src(mac);
    f.set_ethertype(ethertype::IPV6);
    let mut ip = ipv6::Packet::new_unchecked(&mut frame[14..86]);
    ip.set_version_class_flow(0, 0);
    ip.set_payload_len(32);
    ip.set_next_header(ip_proto::ICMPV6);
    ip.set_hop_limit(255);
    ip.set_src(&src);
    ip.set_dst(&dst);
    let sum = checksum::pseudo_v6(&src, &dst, ip_proto::ICMPV6, 32);
    let c = !checksum::fold(checksum::accumulate(sum, &msg[..]));
    msg[2..4].copy_from_slice(&c.to_be_bytes());
    frame[54..86].copy_from_slice(msg);
    86
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    pub(in crate::neigh) const OURS: [u8; 6] = [2, 0, 0, 0, 0, 1];
    pub(in crate::neigh) const THEIRS: [u8; 6] = [2, 0, 0, 0, 0xb1, 1];

    pub(in crate::neigh) fn arp_frame(
        dst: [u8; 6],
        op: u16,
        sender: Ipv4Addr,
        target: Ipv4Addr,
    ) -> Vec<u8> {
        let mut f = vec![0u8; 14 + 28];
        let mut e = Frame::new_unchecked(&mut f[..]);
        e.set_dst(dst);
        e.set_src(THEIRS);
        e.set_ethertype(ethertype::ARP);
        let mut a = arp::Packet::new_unchecked(&mut f[14..]);
        a.set_ethernet_ipv4();
        a.set_operation(op);
        a.set_sender(THEIRS, sender);
        a.set_target([0; 6], target);
        f
    }

    pub(in crate::neigh) fn advert(dst_mac: [u8; 6], dst: Ipv6Addr, flags: u8) -> Vec<u8> {
        let src: Ipv6Addr = "2001:db8::11".parse().unwrap();
        let mut m = vec![icmpv6::NEIGHBOR_ADVERT, 0, 0, 0, flags, 0, 0, 0];
        m.extend_from_slice(&src.octets());
        m.extend_from_slice(&[icmpv6::OPT_TARGET_LL, 1]);
        m.extend_from_slice(&THEIRS);
        icmpv6::Packet::new_unchecked(&mut m[..]).fill_checksum(&src, &dst);
        let mut f = vec![0u8; 14 + 40];
        let mut e = Frame::new_unchecked(&mut f[..]);
        e.set_dst(dst_mac);
        e.set_src(THEIRS);
        e.set_ethertype(ethertype::IPV6);
        let mut ip = ipv6::Packet::new_unchecked(&mut f[14..]);
        ip.set_version_class_flow(0, 0);
        ip.set_payload_len(m.len() as u16);
        ip.set_next_header(ip_proto::ICMPV6);
        ip.set_hop_limit(255);
        ip.set_src(&src);
        ip.set_dst(&dst);
        f.extend_from_slice(&m);
        f
    }

    #[test]
    fn answers_and_announcements_teach_a_neighbours_mac() {
        let (b1, us) = (Ipv4Addr::new(198, 18, 0, 11), Ipv4Addr::new(198, 18, 0, 1));
        let learnt = Some((IpAddr::V4(b1), THEIRS));
        // An answer to our request, and a gratuitous ARP (request or reply).
        assert_eq!(
            parse_reply(&arp_frame(OURS, arp::OP_REPLY, b1, us), OURS),
            learnt
        );
        let bcast = ethernet::BROADCAST;
        assert_eq!(
            parse_reply(&arp_frame(bcast, arp::OP_REQUEST, b1, b1), OURS),
            learnt
        );
        assert_eq!(
            parse_reply(&arp_frame(bcast, arp::OP_REPLY, b1, b1), OURS),
            learnt
        );
        // Someone else's question, or answer, teaches nothing.
        assert_eq!(
            parse_reply(&arp_frame(bcast, arp::OP_REQUEST, b1, us), OURS),
            None
        );
        let other = [2, 0, 0, 0, 0, 9];
        assert_eq!(
            parse_reply(&arp_frame(other, arp::OP_REPLY, b1, us), OURS),
            None
        );

        let b1v6 = IpAddr::V6("2001:db8::11".parse().unwrap());
        let all_nodes = "ff02::1".parse().unwrap();
        let all_nodes_mac = [0x33, 0x33, 0, 0, 0, 1];
        let ours_v6 = "2001:db8::1".parse().unwrap();
        // Solicited (to us), and unsolicited with the override flag.
        assert_eq!(
            parse_reply(&advert(OURS, ours_v6, 0x60), OURS),
            Some((b1v6, THEIRS))
        );
        assert_eq!(
            parse_reply(&advert(all_nodes_mac, all_nodes, 0x20), OURS),
            Some((b1v6, THEIRS))
        );
        // Unsolicited without override does not replace a MAC (RFC 4861 7.2.5).
        assert_eq!(
            parse_reply(&advert(all_nodes_mac, all_nodes, 0), OURS),
            None
        );
        // Nor one that crossed a router (hop limit below 255: RFC 4861 7.1.2).
        let mut forwarded = advert(all_nodes_mac, all_nodes, 0x20);
        forwarded[14 + 7] = 64;
        assert_eq!(parse_reply(&forwarded, OURS), None);
    }

    #[test]
    fn our_announcements_are_what_a_neighbour_learns_from() {
        // What another weir's resolver (or any host) takes from them.
        let neighbour = [2, 0, 0, 0, 0, 9];
        for addr in ["198.18.0.100", "2001:db8::100"] {
            let addr: IpAddr = addr.parse().unwrap();
            let mut frame = [0u8; 86];
            let len = announcement(&mut frame, OURS, addr);
            let f = &frame[..len];
            assert_eq!(parse_reply(f, neighbour), Some((addr, OURS)), "{addr}");
            assert_eq!(Frame::new_checked(f).unwrap().src(), OURS);
            if let IpAddr::V6(a) = addr {
                let ip = ipv6::Packet::new_checked(&f[14..]).unwrap();
                let icmp = icmpv6::Packet::new_checked(ip.payload()).unwrap();
                assert!(icmp.verify_checksum(&a, &ip.dst()));
                assert_eq!(
                    Frame::new_checked(f).unwrap().dst(),
                    [0x33, 0x33, 0, 0, 0, 1]
                );
            } else {
                assert_eq!(Frame::new_checked(f).unwrap().dst(), ethernet::BROADCAST);
            }
        }
    }
}
