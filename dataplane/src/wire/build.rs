//! Building whole frames, for tests, benchmarks and tools (never the packet path,
//! which rewrites the buffers it received).

use super::checksum::{pseudo_v4, pseudo_v6};
use super::ethernet::{ethertype, Frame, BROADCAST};
use super::{arp, icmpv4, icmpv6, ip_proto, ipv4, ipv6, tcp};
use std::net::{Ipv4Addr, Ipv6Addr};

/// The two ends of a TCP segment over IPv4 (`A` = `Ipv4Addr`) or IPv6.
#[derive(Debug, Clone, Copy)]
pub struct Tcp<A> {
    pub src_mac: [u8; 6],
    pub dst_mac: [u8; 6],
    pub src: A,
    pub sport: u16,
    pub dst: A,
    pub dport: u16,
}

pub type TcpV4 = Tcp<Ipv4Addr>;
pub type TcpV6 = Tcp<Ipv6Addr>;

impl<A> Tcp<A> {
    /// A zeroed frame with its Ethernet header written and `len` bytes after it.
    fn ethernet(&self, ethertype: u16, len: usize) -> Vec<u8> {
        let mut f = vec![0u8; 14 + len];
        let mut e = Frame::new_unchecked(&mut f[..]);
        e.set_dst(self.dst_mac);
        e.set_src(self.src_mac);
        e.set_ethertype(ethertype);
        f
    }
}

impl TcpV4 {
    /// An Ethernet/IPv4 (DF, TTL 64)/TCP frame with `flags` and `payload` zero bytes,
    /// all checksums valid.
    pub fn frame(&self, flags: u8, payload: usize) -> Vec<u8> {
        let mut f = self.ipv4(ip_proto::TCP, 20 + payload);
        let ps = pseudo_v4(self.src, self.dst, ip_proto::TCP, (20 + payload) as u16);
        fill_tcp(&mut f[34..], (self.sport, self.dport), flags, ps);
        f
    }

    /// An ICMP error from `src` to `dst` (ports unused): `msg_type` and `code`,
    /// `rest` in the 4 bytes after the checksum (the MTU of "fragmentation
    /// needed"), then `quote` (the packet it is about, or its start); checksums
    /// valid.
    pub fn icmp_error(&self, msg_type: u8, code: u8, rest: u32, quote: &[u8]) -> Vec<u8> {
        let mut f = self.ipv4(ip_proto::ICMP, 8 + quote.len());
        let mut icmp = icmpv4::Packet::new_unchecked(&mut f[34..]);
        icmp.set_type_code(msg_type, code);
        icmp.set_rest_of_header(rest);
        icmp.data_mut().copy_from_slice(quote);
        icmp.fill_checksum();
        f
    }

    /// A frame with its IPv4 header (DF, TTL 64, checksum valid) for `len` bytes
    /// of `proto`, zero after it.
    fn ipv4(&self, proto: u8, len: usize) -> Vec<u8> {
        let mut f = self.ethernet(ethertype::IPV4, 20 + len);
        let mut ip = ipv4::Packet::new_unchecked(&mut f[14..]);
        ip.set_version_header_len(20);
        ip.set_total_len((20 + len) as u16);
        ip.set_unfragmented(true);
        ip.set_ttl(64);
        ip.set_protocol(proto);
        ip.set_src(self.src);
        ip.set_dst(self.dst);
        ip.fill_checksum();
        f
    }
}

impl TcpV6 {
    /// An Ethernet/IPv6 (hop limit 64, no extension headers)/TCP frame with
    /// `flags` and `payload` zero bytes, the TCP checksum valid.
    pub fn frame(&self, flags: u8, payload: usize) -> Vec<u8> {
        let mut f = self.ipv6(ip_proto::TCP, 20 + payload);
        let ps = pseudo_v6(&self.src, &self.dst, ip_proto::TCP, (20 + payload) as u32);
        fill_tcp(&mut f[54..], (self.sport, self.dport), flags, ps);
        f
    }

    /// [`TcpV4::icmp_error`] for ICMPv6 (`rest`: the MTU of "packet too big").
    pub fn icmp_error(&self, msg_type: u8, code: u8, rest: u32, quote: &[u8]) -> Vec<u8> {
        let mut f = self.ipv6(ip_proto::ICMPV6, 8 + quote.len());
        let b = &mut f[54..];
        b[0] = msg_type;
        b[1] = code;
        b[4..8].copy_from_slice(&rest.to_be_bytes());
        b[8..].copy_from_slice(quote);
        icmpv6::Packet::new_unchecked(b).fill_checksum(&self.src, &self.dst);
        f
    }

    /// A frame with its IPv6 header (hop limit 64) for `len` bytes of `next`,
    /// zero after it.
    fn ipv6(&self, next: u8, len: usize) -> Vec<u8> {
        let mut f = self.ethernet(ethertype::IPV6, 40 + len);
        let mut ip = ipv6::Packet::new_unchecked(&mut f[14..]);
        ip.set_version_class_flow(0, 0);
        ip.set_payload_len(len as u16);
        ip.set_next_header(next);
        ip.set_hop_limit(64);
        ip.set_src(&self.src);
        ip.set_dst(&self.dst);
        f
    }
}

/// A 20-byte TCP header at the start of `seg` (the rest is payload), with its
/// checksum over the pseudo-header sum `pseudo`.
/// A broadcast ARP request from `mac` and `sender`, asking who has `target`.
pub fn arp_request(mac: [u8; 6], sender: Ipv4Addr, target: Ipv4Addr) -> Vec<u8> {
    let mut f = vec![0u8; 14 + 28];
    let mut e = Frame::new_unchecked(&mut f[..]);
    e.set_dst(BROADCAST);
    e.set_src(mac);
    e.set_ethertype(ethertype::ARP);
    let mut p = arp::Packet::new_unchecked(&mut f[14..]);
    p.set_ethernet_ipv4();
    p.set_operation(arp::OP_REQUEST);
    p.set_sender(mac, sender);
    p.set_target([0; 6], target);
    f
}

fn fill_tcp(seg: &mut [u8], (sport, dport): (u16, u16), flags: u8, pseudo: u32) {
    let mut t = tcp::Packet::new_unchecked(seg);
    t.set_src_port(sport);
    t.set_dst_port(dport);
    t.set_seq(1);
    t.set_header_len(20);
    t.set_flags(flags);
    t.set_window(65535);
    t.fill_checksum(pseudo);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ends<A>(src: A, dst: A) -> Tcp<A> {
        Tcp {
            src_mac: [2; 6],
            dst_mac: [4; 6],
            src,
            sport: 1000,
            dst,
            dport: 80,
        }
    }

    #[test]
    fn built_frames_parse_with_valid_checksums() {
        let (a, b) = (
            Ipv4Addr::new(198, 18, 0, 10),
            Ipv4Addr::new(198, 18, 0, 100),
        );
        let f = ends(a, b).frame(tcp::flags::SYN, 3);
        let ip = ipv4::Packet::new_checked(&f[14..]).unwrap();
        assert!(ip.verify_checksum());
        let t = tcp::Packet::new_checked(ip.payload()).unwrap();
        assert_eq!(
            (t.src_port(), t.dst_port(), t.flags()),
            (1000, 80, tcp::flags::SYN)
        );
        assert!(t.verify_checksum(pseudo_v4(a, b, ip_proto::TCP, 23)));
        let (a, b): (Ipv6Addr, Ipv6Addr) = (
            "2001:db8::10".parse().unwrap(),
            "2001:db8::100".parse().unwrap(),
        );
        let f = ends(a, b).frame(tcp::flags::ACK, 3);
        assert_eq!(
            Frame::new_checked(&f[..]).unwrap().ethertype(),
            ethertype::IPV6
        );
        let ip = ipv6::Packet::new_checked(&f[14..]).unwrap();
        assert_eq!(
            (ip.src(), ip.dst(), ip.next_header(), ip.payload_len()),
            (a, b, ip_proto::TCP, 23)
        );
        let t = tcp::Packet::new_checked(ip.payload()).unwrap();
        assert_eq!(
            (t.src_port(), t.dst_port(), t.flags()),
            (1000, 80, tcp::flags::ACK)
        );
        assert!(t.verify_checksum(pseudo_v6(&a, &b, ip_proto::TCP, 23)));
    }
}
