//! Building whole frames, for tests, benchmarks and tools (never the packet path,
//! which rewrites the buffers it received).

use super::checksum::pseudo_v4;
use super::ethernet::{ethertype, Frame};
use super::{ip_proto, ipv4, tcp};
use std::net::Ipv4Addr;

/// The two ends of a TCP/IPv4 segment.
#[derive(Debug, Clone, Copy)]
pub struct TcpV4 {
    pub src_mac: [u8; 6],
    pub dst_mac: [u8; 6],
    pub src: Ipv4Addr,
    pub sport: u16,
    pub dst: Ipv4Addr,
    pub dport: u16,
}

impl TcpV4 {
    /// An Ethernet/IPv4 (DF, TTL 64)/TCP frame with `flags` and `payload` zero bytes,
    /// all checksums valid.
    pub fn frame(&self, flags: u8, payload: usize) -> Vec<u8> {
        let mut f = vec![0u8; 14 + 20 + 20 + payload];
        let mut e = Frame::new_unchecked(&mut f[..]);
        e.set_dst(self.dst_mac);
        e.set_src(self.src_mac);
        e.set_ethertype(ethertype::IPV4);
        let mut ip = ipv4::Packet::new_unchecked(&mut f[14..]);
        ip.set_version_header_len(20);
        ip.set_total_len((40 + payload) as u16);
        ip.set_unfragmented(true);
        ip.set_ttl(64);
        ip.set_protocol(ip_proto::TCP);
        ip.set_src(self.src);
        ip.set_dst(self.dst);
        ip.fill_checksum();
        let mut t = tcp::Packet::new_unchecked(&mut f[34..]);
        t.set_src_port(self.sport);
        t.set_dst_port(self.dport);
        t.set_seq(1);
        t.set_header_len(20);
        t.set_flags(flags);
        t.set_window(65535);
        let ps = pseudo_v4(self.src, self.dst, ip_proto::TCP, (20 + payload) as u16);
        tcp::Packet::new_unchecked(&mut f[34..]).fill_checksum(ps);
        f
    }
}
