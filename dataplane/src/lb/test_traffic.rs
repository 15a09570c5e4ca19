//! Traffic for the balancer's tests, of either family: a snapshot to send it
//! to, frames from the client, the backends and ICMP, fragments, and what a
//! test reads back from a frame that left (its ends, fragment, checksums).

use super::core_fragment_tests::{split, split6};
use super::core_tests::{be_mac, snap_of, Family, CLIENT_MAC, OUR};
use super::snapshot::{LbSnapshot, Mode, SchedKind};
use crate::wire::build::Tcp;
use crate::wire::checksum::{pseudo_v4, pseudo_v6};
use crate::wire::{icmpv4, icmpv6, ip_proto, ipv4, ipv6, tcp, udp};
use std::net::IpAddr;

/// Backends of each service.
pub(crate) const BACKENDS: usize = 3;
/// The UDP service's port on the VIP (the TCP one is on 80).
pub(crate) const UDP_PORT: u16 = 53;

/// A TCP service on port 80 and a UDP one on [`UDP_PORT`] of one VIP, three
/// backends, short timeouts (so a run sees entries expire).
pub(crate) fn snapshot(f: &Family, mode: Mode) -> LbSnapshot {
    let mut s = snap_of(f, mode, SchedKind::RingHash, &[1; BACKENDS]);
    let mut udp = s.services[0].clone();
    (udp.name, udp.port, udp.proto) = ("dns".into(), UDP_PORT, ip_proto::UDP);
    s.services.push(udp);
    let key = *s.by_vip.keys().next().expect("the TCP service");
    s.by_vip.insert((key.0, UDP_PORT, ip_proto::UDP), 1);
    s.index_locals();
    let t = &mut s.timeouts;
    (t.tcp_syn, t.tcp_established, t.tcp_fin, t.tcp_close) = (2, 6, 3, 1);
    (t.udp, t.tcp_idle_reclaim) = (3, 4);
    s
}

/// The two ends of the traffic of one family.
pub(crate) struct Ends {
    pub f: &'static Family,
    pub client: IpAddr,
}

impl Ends {
    pub(crate) fn segment(
        &self,
        src: IpAddr,
        sport: u16,
        dst: IpAddr,
        dport: u16,
        flags: u8,
        n: usize,
    ) -> Vec<u8> {
        let src_mac = if src == self.client {
            CLIENT_MAC
        } else {
            be_mac(backend_index(self.f, src).unwrap_or(0))
        };
        match (src, dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => ends(src_mac, (s, sport), (d, dport)).frame(flags, n),
            (IpAddr::V6(s), IpAddr::V6(d)) => ends(src_mac, (s, sport), (d, dport)).frame(flags, n),
            _ => unreachable!("one family"),
        }
    }

    /// A datagram with `n` payload bytes.
    pub(crate) fn datagram(
        &self,
        src: IpAddr,
        sport: u16,
        dst: IpAddr,
        dport: u16,
        n: usize,
    ) -> Vec<u8> {
        let mut f = self.segment(src, sport, dst, dport, 0, n + 12);
        let l3 = 14 + if self.f.vip.is_ipv4() { 20 } else { 40 };
        f.truncate(l3 + 8 + n);
        for (i, b) in f[l3 + 8..].iter_mut().enumerate() {
            *b = i as u8;
        }
        let len = (8 + n) as u16;
        let pseudo = match (src, dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                let mut ip = ipv4::Packet::new_unchecked(&mut f[14..]);
                ip.set_protocol(ip_proto::UDP);
                ip.set_total_len(20 + len);
                ip.fill_checksum();
                pseudo_v4(s, d, ip_proto::UDP, len)
            }
            (IpAddr::V6(s), IpAddr::V6(d)) => {
                f[14 + 4..14 + 6].copy_from_slice(&len.to_be_bytes());
                f[14 + 6] = ip_proto::UDP;
                pseudo_v6(&s, &d, ip_proto::UDP, len as u32)
            }
            _ => unreachable!("one family"),
        };
        let mut u = udp::Packet::new_unchecked(&mut f[l3..]);
        u.set_len(len);
        u.fill_checksum(pseudo);
        f
    }

    /// An ICMP error from `out`'s destination to its source, quoting its start.
    pub(crate) fn error_about(&self, out: &[u8]) -> Option<Vec<u8>> {
        let l3 = &out[14..];
        Some(match ipv4::Packet::new_checked(l3) {
            Ok(ip) => ends(CLIENT_MAC, (ip.dst(), 0), (ip.src(), 0)).icmp_error(
                3,
                3,
                0,
                &l3[..l3.len().min(28)],
            ),
            Err(_) => {
                let ip = ipv6::Packet::new_checked(l3).ok()?;
                ends(CLIENT_MAC, (ip.dst(), 0), (ip.src(), 0)).icmp_error(
                    1,
                    4,
                    0,
                    &l3[..l3.len().min(48)],
                )
            }
        })
    }
}

/// A frame's two ends, from `src_mac`, to our MAC.
pub(crate) fn ends<A>(src_mac: [u8; 6], (src, sport): (A, u16), (dst, dport): (A, u16)) -> Tcp<A> {
    Tcp {
        src_mac,
        dst_mac: OUR,
        src,
        sport,
        dst,
        dport,
    }
}

pub(crate) fn backend_index(f: &Family, a: IpAddr) -> Option<usize> {
    (0..BACKENDS).find(|&i| (f.backend)(i) == a)
}

/// A frame's two fragments (IPv4, or IPv6 with a fragment header), the first
/// with 24 bytes of its payload (a TCP header and 4 bytes).
pub(crate) fn fragments(frame: &[u8], id: u16) -> [Vec<u8>; 2] {
    match frame[12] {
        8 => split(frame, id, 24),
        _ => split6(frame, id as u32, 24),
    }
}

/// A frame's fragment offset, if it is a fragment.
pub(crate) fn fragment_offset(frame: &[u8]) -> Option<u16> {
    match frame.get(12..14)? {
        [8, 0] => ipv4::Packet::new_checked(&frame[14..])
            .ok()
            .filter(|p| p.is_fragment())
            .map(|p| p.frag_offset()),
        _ => (frame.get(14 + 6) == Some(&ipv6::next_header::FRAGMENT))
            .then(|| {
                frame
                    .get(56..58)
                    .map(|o| u16::from_be_bytes([o[0], o[1]]) & !7)
            })
            .flatten(),
    }
}

/// A fragment that left: what it carries of which datagram, and where to.
pub(crate) struct Part {
    pub id: u32,
    pub offset: u16,
    pub ends: (IpAddr, IpAddr),
    pub proto: u8,
    pub bytes: Vec<u8>,
    pub backend: usize,
}

/// `frame` as a [`Part`], if it is a fragment.
pub(crate) fn part_of(frame: &[u8], backend: usize) -> Option<Part> {
    let offset = fragment_offset(frame)?;
    let (id, ends, proto, bytes) = match frame[12] {
        8 => {
            let ip = ipv4::Packet::new_checked(&frame[14..]).ok()?;
            let bytes = frame[14 + ip.header_len()..14 + ip.total_len() as usize].to_vec();
            (
                ip.ident() as u32,
                (ip.src().into(), ip.dst().into()),
                ip.protocol(),
                bytes,
            )
        }
        _ => {
            let ip = ipv6::Packet::new_checked(&frame[14..]).ok()?;
            let id = u32::from_be_bytes(frame.get(58..62)?.try_into().ok()?);
            let bytes = frame.get(62..54 + ip.payload_len() as usize)?.to_vec();
            (
                id,
                (ip.src().into(), ip.dst().into()),
                *frame.get(54)?,
                bytes,
            )
        }
    };
    Some(Part {
        id,
        offset,
        ends,
        proto,
        bytes,
        backend,
    })
}

/// The protocol and source port of a whole packet or a first fragment.
pub(crate) fn proto_and_sport(frame: &[u8]) -> Option<(u8, u16)> {
    let (proto, l4) = match frame.get(12..14)? {
        [8, 0] => (
            *frame.get(14 + 9)?,
            14 + 4 * (*frame.get(14)? as usize & 0xf),
        ),
        _ if frame.get(14 + 6) == Some(&ipv6::next_header::FRAGMENT) => (*frame.get(54)?, 62),
        _ => (*frame.get(14 + 6)?, 54),
    };
    Some((
        proto,
        u16::from_be_bytes([*frame.get(l4)?, *frame.get(l4 + 1)?]),
    ))
}

/// Whether an IPv4 frame's header checksum holds (`None` for other frames).
pub(crate) fn ip_header_ok(frame: &[u8]) -> Option<bool> {
    (frame.get(12..14)? == [8, 0])
        .then(|| {
            ipv4::Packet::new_checked(&frame[14..])
                .ok()
                .map(|p| p.verify_checksum())
        })
        .flatten()
}

/// Whether a whole (unfragmented, no IPv6 extension header) TCP, UDP or ICMP
/// packet's checksum holds; `None` where it cannot be told.
pub(crate) fn l4_ok(frame: &[u8]) -> Option<bool> {
    let l3 = frame.get(14..)?;
    let (proto, l4, pseudo) = match frame.get(12..14)? {
        [8, 0] => {
            let ip = ipv4::Packet::new_checked(l3).ok()?;
            if ip.frag_offset() != 0 || ip.more_frags() {
                return None;
            }
            let l4 = &l3[ip.header_len()..ip.total_len() as usize];
            (
                ip.protocol(),
                l4,
                pseudo_v4(ip.src(), ip.dst(), ip.protocol(), l4.len() as u16),
            )
        }
        [0x86, 0xdd] => {
            let ip = ipv6::Packet::new_checked(l3).ok()?;
            let l4 = &l3[40..40 + ip.payload_len() as usize];
            let (s, d) = (ip.src(), ip.dst());
            (
                ip.next_header(),
                l4,
                pseudo_v6(&s, &d, ip.next_header(), l4.len() as u32),
            )
        }
        _ => return None,
    };
    match proto {
        ip_proto::TCP => Some(tcp::Packet::new_checked(l4).ok()?.verify_checksum(pseudo)),
        ip_proto::UDP => Some(
            udp::Packet::new_checked(l4)
                .ok()?
                .verify_checksum(pseudo, frame[12] == 8),
        ),
        ip_proto::ICMP => Some(icmpv4::Packet::new_checked(l4).ok()?.verify_checksum()),
        ip_proto::ICMPV6 => {
            let p = icmpv6::Packet::new_checked(l4).ok()?;
            let mut b = l4.to_vec();
            let mut copy = icmpv6::Packet::new_unchecked(&mut b[..]);
            let ip = ipv6::Packet::new_checked(l3).ok()?;
            copy.fill_checksum(&ip.src(), &ip.dst());
            Some(copy.checksum() == p.checksum())
        }
        _ => None,
    }
}

/// The addresses, ports and protocol of a packet that left.
pub(crate) fn ends_of(out: &[u8]) -> (IpAddr, u16, IpAddr, u16, u8) {
    let (src, dst, proto, l4): (IpAddr, IpAddr, u8, usize) = match out[12] {
        8 => {
            let ip = ipv4::Packet::new_checked(&out[14..]).expect("IPv4 left");
            (
                ip.src().into(),
                ip.dst().into(),
                ip.protocol(),
                14 + ip.header_len(),
            )
        }
        _ => {
            let ip = ipv6::Packet::new_checked(&out[14..]).expect("IPv6 left");
            (ip.src().into(), ip.dst().into(), ip.next_header(), 54)
        }
    };
    let port = |at: usize| u16::from_be_bytes([out[at], out[at + 1]]);
    (src, port(l4), dst, port(l4 + 2), proto)
}

/// The hop limit or TTL of an IP frame.
pub(crate) fn ttl(frame: &[u8]) -> Option<u8> {
    match frame.get(12..14)? {
        [8, 0] => frame.get(14 + 8).copied(),
        [0x86, 0xdd] => frame.get(14 + 7).copied(),
        _ => None,
    }
}
