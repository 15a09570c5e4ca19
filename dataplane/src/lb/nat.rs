//! Parsing a packet for the balancer and rewriting it in place: FullNAT (addresses
//! and ports both ways) and DR (MACs only). Checksums are updated incrementally
//! (RFC 1624); TTL / hop limit is decremented.

use super::flow::FlowKey;
use super::icmp_error;
use crate::pipeline::counters::Counter;
use crate::wire::ethernet::Frame;
use crate::wire::ipv6::UpperLayer;
use crate::wire::{ip_proto, ipv4, ipv6, read_u16, tcp, udp, write_u16};

/// What the balancer needs to know about a packet, found once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parsed {
    /// Offset of the IP header from the start of the frame (a frame fits in 64 KiB).
    pub l2: u16,
    /// Offset of the L4 header from the start of the frame.
    pub l4: u16,
    /// Length of the IP packet (header + payload), padding excluded.
    pub ip_len: u32,
    pub v6: bool,
    pub key: FlowKey,
    pub tcp_flags: u8,
    pub shape: Shape,
}

/// What a parsed packet is, beyond its 5-tuple.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// A whole packet: a TCP or UDP segment (or another protocol's, ports zero).
    Whole,
    /// A datagram's first fragment: the ports are there, the rest of the
    /// datagram follows in other packets.
    FirstFragment,
    /// Any other fragment: ports are unknown (zero in `key`).
    Fragment,
    /// An ICMP error about a connection (see [`icmp_error`]): `key` is the quoted
    /// packet's 5-tuple reversed, and `l4` the offset of the ICMP header.
    IcmpError,
}

/// Parses an IPv4 or IPv6 packet down to the TCP/UDP ports.
#[inline]
pub fn parse(data: &[u8], l2: usize, v6: bool) -> Result<Parsed, Counter> {
    let l3 = data.get(l2..).unwrap_or_default();
    if v6 {
        let ip = ipv6::Packet::new_checked(l3).map_err(|_| Counter::DropIpv6Malformed)?;
        let ul = ip.upper_layer().map_err(|_| Counter::DropIpv6Malformed)?;
        parse_v6(&ip, ul, l2)
    } else {
        let ip = ipv4::Packet::new_checked(l3).map_err(|_| Counter::DropIpv4Malformed)?;
        parse_v4(&ip, l2)
    }
}

/// [`parse`] for an IPv4 header the classifier has already validated: the key is
/// read straight from the header (this runs for every balanced packet).
#[inline]
pub fn parse_v4(ip: &ipv4::Packet<&[u8]>, l2: usize) -> Result<Parsed, Counter> {
    let h = ip.bytes();
    let mapped = |at: usize| {
        let mut a = [0u8; 16];
        a[10] = 0xff;
        a[11] = 0xff;
        a[12..].copy_from_slice(&h[at..at + 4]);
        a
    };
    let key = FlowKey {
        src: mapped(12),
        dst: mapped(16),
        sport: 0,
        dport: 0,
        proto: ip.protocol(),
        v6: false,
    };
    let l4 = ip.payload();
    if key.proto == ip_proto::ICMP && !ip.is_fragment() {
        if let Some(r) = icmp_error::parse_v4(ip, l2) {
            return r;
        }
    }
    let shape = match (ip.is_fragment(), ip.frag_offset()) {
        (false, _) => Shape::Whole,
        (true, 0) => Shape::FirstFragment,
        (true, _) => Shape::Fragment,
    };
    finish_parse(key, l4, l2, ip.header_len(), ip.total_len() as usize, shape)
}

/// [`parse`] for a validated IPv6 header and its upper layer.
#[inline]
pub fn parse_v6(ip: &ipv6::Packet<&[u8]>, ul: UpperLayer, l2: usize) -> Result<Parsed, Counter> {
    let key = FlowKey {
        src: ip.src().octets(),
        dst: ip.dst().octets(),
        sport: 0,
        dport: 0,
        proto: ul.protocol,
        v6: true,
    };
    let ip_len = ipv6::HEADER_LEN + ip.payload_len() as usize;
    let l4 = ip
        .bytes()
        .get(ul.offset..ip_len)
        .ok_or(Counter::DropIpv6Malformed)?;
    if key.proto == ip_proto::ICMPV6 && !ul.fragment {
        if let Some(r) = icmp_error::parse_v6(ip, ul, l2) {
            return r;
        }
    }
    let shape = match (ul.fragment, ul.fragment_header) {
        (false, _) => Shape::Whole,
        // The fragment offset, in the fragment header's third and fourth bytes.
        (true, at) if read_u16(ip.bytes(), at + 2) & 0xfff8 == 0 => Shape::FirstFragment,
        (true, _) => Shape::Fragment,
    };
    finish_parse(key, l4, l2, ul.offset, ip_len, shape)
}

/// Reads the ports and flags from the L4 header `l4` (`l4_off` from the IP header).
/// A first fragment must hold the whole TCP header, or the UDP one (whose length
/// field counts the whole datagram); a later one holds no ports.
#[inline]
fn finish_parse(
    mut key: FlowKey,
    l4: &[u8],
    l2: usize,
    l4_off: usize,
    ip_len: usize,
    mut shape: Shape,
) -> Result<Parsed, Counter> {
    let mut flags = 0;
    match (shape, key.proto) {
        (Shape::Whole | Shape::FirstFragment, ip_proto::TCP) => {
            let t = tcp::Packet::new_checked(l4).map_err(|_| Counter::DropL4Malformed)?;
            key.sport = t.src_port();
            key.dport = t.dst_port();
            flags = t.flags();
        }
        (Shape::Whole, ip_proto::UDP) => {
            let u = udp::Packet::new_checked(l4).map_err(|_| Counter::DropL4Malformed)?;
            key.sport = u.src_port();
            key.dport = u.dst_port();
        }
        (Shape::FirstFragment, ip_proto::UDP) => {
            let Some(h) = l4.get(..udp::HEADER_LEN) else {
                return Err(Counter::DropL4Malformed);
            };
            key.sport = u16::from_be_bytes([h[0], h[1]]);
            key.dport = u16::from_be_bytes([h[2], h[3]]);
        }
        // Another protocol's first fragment has no ports to follow.
        (Shape::FirstFragment, _) => shape = Shape::Fragment,
        _ => {}
    }
    Ok(Parsed {
        l2: l2 as u16,
        l4: (l2 + l4_off) as u16,
        ip_len: ip_len as u32,
        v6: key.v6,
        key,
        tcp_flags: flags,
        shape,
    })
}

/// Decrements the TTL / hop limit; `Err` when the packet must not be forwarded.
#[inline(always)]
pub fn decrement_ttl(data: &mut [u8], p: &Parsed) -> Result<(), Counter> {
    let l3 = p.l2 as usize;
    if p.v6 {
        let hl = &mut data[l3 + 7];
        if *hl <= 1 {
            return Err(Counter::DropTtlExpired);
        }
        *hl -= 1;
    } else {
        let h = &mut data[l3..l3 + 12];
        if h[8] <= 1 {
            return Err(Counter::DropTtlExpired);
        }
        h[8] -= 1;
        // The TTL is the high byte of its 16-bit word, so the checksum grows by
        // 0x0100 with the carry folded back (RFC 1141, as Linux's ip_decrease_ttl).
        let sum = u16::from_be_bytes([h[10], h[11]]) as u32 + 0x0100;
        let c = (sum + (sum >= 0xffff) as u32) as u16;
        h[10..12].copy_from_slice(&c.to_be_bytes());
    }
    Ok(())
}

/// Offset of the L4 checksum field, if the packet has one to update.
#[inline(always)]
fn l4_checksum_at(data: &[u8], p: &Parsed) -> Option<usize> {
    let l4 = p.l4 as usize;
    match p.key.proto {
        ip_proto::TCP => Some(l4 + 16),
        // A zero UDP checksum over IPv4 means "none": leave it so.
        ip_proto::UDP if p.v6 || read_u16(data, l4 + 6) != 0 => Some(l4 + 6),
        _ => None,
    }
}

/// Rewrites source and destination address and port (FullNAT, both directions),
/// with the addresses as a flow key holds them (16 bytes, IPv4 mapped), as the
/// connection entry gives them: no conversions per packet. The address change is
/// summed once and applied to both the IPv4 header checksum and the L4 checksum
/// (whose pseudo-header holds the same addresses).
#[inline(always)]
pub fn rewrite(data: &mut [u8], p: &Parsed, src: (&[u8; 16], u16), dst: (&[u8; 16], u16)) {
    if p.v6 {
        return rewrite_v6(data, p, src, dst);
    }
    let (l3, l4) = (p.l2 as usize, p.l4 as usize);
    let csum_at = l4_checksum_at(data, p);
    // All in native byte order: a one's-complement sum of byte-swapped words is
    // the byte-swapped sum (RFC 1071 2.B), so the checksum fields, read and
    // written the same way, come out right without swapping anything.
    let word = |b: &[u8]| u32::from_ne_bytes([b[0], b[1], b[2], b[3]]) as u64;
    let Some(h) = data.get_mut(l3..l3 + 20) else {
        return;
    };
    let (new_src, new_dst) = (word(&src.0[12..]), word(&dst.0[12..]));
    let mut delta = (!word(&h[12..16]) & 0xffff_ffff) + (!word(&h[16..20]) & 0xffff_ffff);
    delta += new_src + new_dst;
    h[12..16].copy_from_slice(&src.0[12..]);
    h[16..20].copy_from_slice(&dst.0[12..]);
    let hc = u16::from_ne_bytes([h[10], h[11]]);
    h[10..12].copy_from_slice(&fold_into(hc, delta).to_ne_bytes());
    let Some(ports) = data.get_mut(l4..l4 + 4) else {
        return;
    };
    let (sp, dp) = (src.1.to_be_bytes(), dst.1.to_be_bytes());
    let new_ports = [sp[0], sp[1], dp[0], dp[1]];
    delta += (!word(ports) & 0xffff_ffff) + word(&new_ports);
    ports.copy_from_slice(&new_ports);
    if let Some(c) = csum_at.and_then(|at| data.get_mut(at..at + 2)) {
        let mut sum = fold_into(u16::from_ne_bytes([c[0], c[1]]), delta);
        if p.key.proto == ip_proto::UDP && sum == 0 {
            sum = 0xffff;
        }
        c.copy_from_slice(&sum.to_ne_bytes());
    }
}

/// RFC 1624 eqn. 3 in whatever byte order `hc` and `delta` share:
/// HC' = ~(~HC + delta), `delta` being the sum of ~old + new words.
/// Three folds are exact while ~HC + delta < 2^48: the first leaves at most
/// 2^32 + 0xfffe, the second at most 0x1fffe, the third at most 0xffff. A
/// rewrite sums at most 20 words (IPv6: eight address words old and new, and
/// four port words).
#[inline(always)]
fn fold_into(hc: u16, delta: u64) -> u16 {
    let mut s = (!hc) as u64 + delta;
    s = (s & 0xffff_ffff) + (s >> 32);
    s = (s & 0xffff) + (s >> 16);
    s = (s & 0xffff) + (s >> 16);
    !(s as u16)
}

/// `rewrite` for IPv6 (no header checksum; the pseudo-header's addresses are
/// 16 bytes each).
#[inline(never)]
fn rewrite_v6(data: &mut [u8], p: &Parsed, src: (&[u8; 16], u16), dst: (&[u8; 16], u16)) {
    let (l3, l4) = (p.l2 as usize, p.l4 as usize);
    let mut delta = 0u64;
    let h = &mut data[l3 + 8..l3 + 40];
    for i in 0..4 {
        delta += replace_word(&mut h[4 * i..4 * i + 4], &src.0[4 * i..4 * i + 4]);
        delta += replace_word(&mut h[16 + 4 * i..20 + 4 * i], &dst.0[4 * i..4 * i + 4]);
    }
    let csum_at = l4_checksum_at(data, p);
    let ports = &mut data[l4..l4 + 4];
    let (old_sport, old_dport) = (
        u16::from_be_bytes([ports[0], ports[1]]),
        u16::from_be_bytes([ports[2], ports[3]]),
    );
    ports[..2].copy_from_slice(&src.1.to_be_bytes());
    ports[2..].copy_from_slice(&dst.1.to_be_bytes());
    // (A quoted packet in an ICMP error may end before its TCP checksum.)
    if let Some(at) = csum_at.filter(|at| at + 2 <= data.len()) {
        delta += (!old_sport) as u64 + src.1 as u64 + (!old_dport) as u64 + dst.1 as u64;
        let mut c = fold_into(read_u16(data, at), delta);
        if p.key.proto == ip_proto::UDP && c == 0 {
            c = 0xffff;
        }
        write_u16(data, at, c);
    }
}

/// Overwrites the 32-bit word `old` with `new` and returns their one's-complement
/// difference, ~old + new.
#[inline(always)]
fn replace_word(old: &mut [u8], new: &[u8]) -> u64 {
    let ov = u32::from_be_bytes([old[0], old[1], old[2], old[3]]);
    let nv = u32::from_be_bytes([new[0], new[1], new[2], new[3]]);
    old[..4].copy_from_slice(&new[..4]);
    !ov as u64 + nv as u64
}

/// Sets the Ethernet addresses for the next hop.
#[inline]
pub fn set_macs(data: &mut [u8], src: [u8; 6], dst: [u8; 6]) {
    let mut f = Frame::new_unchecked(data);
    f.set_src(src);
    f.set_dst(dst);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::IpAddr;

    /// `rewrite` with `IpAddr`s.
    fn rewrite_addresses(data: &mut [u8], p: &Parsed, src: (IpAddr, u16), dst: (IpAddr, u16)) {
        let bytes = |a: IpAddr| FlowKey::new(a, a, 0, 0, 0).dst;
        rewrite(data, p, (&bytes(src.0), src.1), (&bytes(dst.0), dst.1));
    }
    use crate::wire::checksum::{pseudo_v4, pseudo_v6};
    use crate::wire::ethernet::ethertype;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn v4_tcp() -> Vec<u8> {
        let mut f = vec![0u8; 14 + 20 + 20 + 5];
        Frame::new_unchecked(&mut f[..]).set_ethertype(ethertype::IPV4);
        let mut ip = ipv4::Packet::new_unchecked(&mut f[14..]);
        ip.set_version_header_len(20);
        ip.set_total_len(45);
        ip.set_ttl(64);
        ip.set_protocol(6);
        ip.set_src(Ipv4Addr::new(198, 18, 0, 10));
        ip.set_dst(Ipv4Addr::new(198, 18, 0, 100));
        ip.fill_checksum();
        let mut t = tcp::Packet::new_unchecked(&mut f[34..]);
        t.set_src_port(40000);
        t.set_dst_port(80);
        t.set_header_len(20);
        t.set_flags(tcp::flags::SYN);
        f[54..].copy_from_slice(b"hello");
        let ps = pseudo_v4(
            Ipv4Addr::new(198, 18, 0, 10),
            Ipv4Addr::new(198, 18, 0, 100),
            6,
            25,
        );
        tcp::Packet::new_unchecked(&mut f[34..]).fill_checksum(ps);
        f
    }

    #[test]
    fn fullnat_v4_rewrite_keeps_checksums_valid() {
        let mut f = v4_tcp();
        let p = parse(&f, 14, false).unwrap();
        assert_eq!(
            (p.key.sport, p.key.dport, p.tcp_flags),
            (40000, 80, tcp::flags::SYN)
        );
        decrement_ttl(&mut f, &p).unwrap();
        let local = Ipv4Addr::new(198, 18, 0, 2);
        let backend = Ipv4Addr::new(198, 18, 0, 11);
        rewrite_addresses(&mut f, &p, (local.into(), 5001), (backend.into(), 8080));
        let ip = ipv4::Packet::new_checked(&f[14..]).unwrap();
        assert!(ip.verify_checksum());
        assert_eq!((ip.src(), ip.dst(), ip.ttl()), (local, backend, 63));
        let t = tcp::Packet::new_checked(ip.payload()).unwrap();
        assert_eq!((t.src_port(), t.dst_port()), (5001, 8080));
        assert!(t.verify_checksum(pseudo_v4(local, backend, 6, 25)));
        assert_eq!(t.payload(), b"hello");
    }

    /// An Ethernet/IPv6/UDP frame from `src` port 5000 to `dst` port 53 with
    /// `payload`, its checksum valid, hop limit 64.
    fn v6_udp(src: &Ipv6Addr, dst: &Ipv6Addr, payload: &[u8]) -> Vec<u8> {
        let len = 8 + payload.len();
        let mut f = vec![0u8; 14 + 40 + len];
        Frame::new_unchecked(&mut f[..]).set_ethertype(ethertype::IPV6);
        let mut ip = ipv6::Packet::new_unchecked(&mut f[14..]);
        ip.set_version_class_flow(0, 0);
        ip.set_payload_len(len as u16);
        ip.set_next_header(17);
        ip.set_hop_limit(64);
        ip.set_src(src);
        ip.set_dst(dst);
        let mut u = udp::Packet::new_unchecked(&mut f[54..]);
        u.set_src_port(5000);
        u.set_dst_port(53);
        u.set_len(len as u16);
        f[62..].copy_from_slice(payload);
        let pseudo = pseudo_v6(src, dst, 17, len as u32);
        udp::Packet::new_unchecked(&mut f[54..]).fill_checksum(pseudo);
        f
    }

    #[test]
    fn fullnat_v6_udp_rewrite() {
        let src: Ipv6Addr = "2001:db8::10".parse().unwrap();
        let vip: Ipv6Addr = "2001:db8::100".parse().unwrap();
        let mut f = v6_udp(&src, &vip, b"abc");
        let p = parse(&f, 14, true).unwrap();
        decrement_ttl(&mut f, &p).unwrap();
        let local: Ipv6Addr = "2001:db8::2".parse().unwrap();
        let be: Ipv6Addr = "2001:db8::11".parse().unwrap();
        rewrite_addresses(&mut f, &p, (local.into(), 1025), (be.into(), 5353));
        let ip = ipv6::Packet::new_checked(&f[14..]).unwrap();
        assert_eq!((ip.src(), ip.dst(), ip.hop_limit()), (local, be, 63));
        let u = udp::Packet::new_checked(ip.payload()).unwrap();
        assert_eq!((u.src_port(), u.dst_port()), (1025, 5353));
        assert!(u.verify_checksum(pseudo_v6(&local, &be, 17, 11), false));
    }

    #[test]
    fn ttl_decrement_keeps_the_header_checksum_valid_for_every_ttl_and_checksum() {
        let mut f = v4_tcp();
        let p = parse(&f, 14, false).unwrap();
        // Walk the identification field so the checksum takes every carry case,
        // including the ones that end at 0x0000 / 0xffff.
        for ttl in [2u8, 64, 128, 255] {
            for ident in (0..=u16::MAX).step_by(7) {
                let mut ip = ipv4::Packet::new_unchecked(&mut f[14..]);
                ip.set_ttl(ttl);
                f[14 + 4..14 + 6].copy_from_slice(&ident.to_be_bytes());
                ipv4::Packet::new_unchecked(&mut f[14..]).fill_checksum();
                decrement_ttl(&mut f, &p).unwrap();
                let ip = ipv4::Packet::new_checked(&f[14..]).unwrap();
                assert_eq!(ip.ttl(), ttl - 1);
                assert!(ip.verify_checksum(), "ttl {ttl} ident {ident:#x}");
            }
        }
    }

    #[test]
    fn rewrite_keeps_both_checksums_valid_for_many_addresses_and_ports() {
        let mut rng = crate::test_rng::XorShift::default();
        let mut next = || rng.next();
        for i in 0..4000 {
            // TCP and UDP, from headers whose checksums start anywhere.
            let mut f = v4_tcp();
            let (orig_src, orig_dst) =
                (Ipv4Addr::from(next() as u32), Ipv4Addr::from(next() as u32));
            let mut ip = ipv4::Packet::new_unchecked(&mut f[14..]);
            ip.set_src(orig_src);
            ip.set_dst(orig_dst);
            f[14 + 4..14 + 6].copy_from_slice(&(next() as u16).to_be_bytes());
            f[34 + 4..34 + 8].copy_from_slice(&(next() as u32).to_be_bytes());
            let proto = if i % 2 == 0 { 6 } else { 17 };
            f[14 + 9] = proto;
            ipv4::Packet::new_unchecked(&mut f[14..]).fill_checksum();
            let before = pseudo_v4(orig_src, orig_dst, proto, 25);
            if proto == 6 {
                tcp::Packet::new_unchecked(&mut f[34..]).fill_checksum(before);
            } else {
                udp::Packet::new_unchecked(&mut f[34..]).set_len(25);
                udp::Packet::new_unchecked(&mut f[34..]).fill_checksum(before);
            }
            let p = parse(&f, 14, false).unwrap();
            let (a, b, ports) = (next() as u32, (next() >> 32) as u32, next());
            let (src, dst) = (Ipv4Addr::from(a), Ipv4Addr::from(b));
            let (sp, dp) = (ports as u16, (ports >> 16) as u16);
            rewrite_addresses(&mut f, &p, (src.into(), sp), (dst.into(), dp));
            let ip = ipv4::Packet::new_checked(&f[14..]).unwrap();
            assert!(ip.verify_checksum(), "{src} {dst}");
            assert_eq!((ip.src(), ip.dst()), (src, dst));
            let after = pseudo_v4(src, dst, proto, 25);
            if proto == 6 {
                let t = tcp::Packet::new_checked(ip.payload()).unwrap();
                assert_eq!((t.src_port(), t.dst_port()), (sp, dp));
                assert!(t.verify_checksum(after), "{src}:{sp} {dst}:{dp}");
            } else {
                let u = udp::Packet::new_checked(ip.payload()).unwrap();
                assert_eq!((u.src_port(), u.dst_port()), (sp, dp));
                assert_ne!(u.checksum(), 0, "a computed zero is sent as 0xffff");
                assert!(u.verify_checksum(after, false), "{src}:{sp} {dst}:{dp}");
            }
        }
    }

    /// `v4_tcp`'s headers turned into a first fragment (more fragments follow)
    /// of protocol `proto` whose IP payload is `payload`.
    fn v4_first_fragment(proto: u8, payload: &[u8]) -> Vec<u8> {
        let mut f = v4_tcp();
        f.truncate(34);
        f.extend_from_slice(payload);
        let mut ip = ipv4::Packet::new_unchecked(&mut f[14..]);
        ip.set_total_len(20 + payload.len() as u16);
        ip.set_protocol(proto);
        ip.set_fragment(0, true);
        ip.fill_checksum();
        f
    }

    #[test]
    fn a_udp_first_fragment_gives_its_ports_though_its_length_counts_the_whole_datagram() {
        // The UDP length says 2008 bytes; only 8 + 8 are in this fragment.
        let mut udp = vec![0x9c, 0x40, 0x00, 0x35, 0x07, 0xd8, 0, 0];
        udp.extend_from_slice(&[7; 8]);
        let f = v4_first_fragment(17, &udp);
        let p = parse(&f, 14, false).unwrap();
        assert_eq!(p.shape, Shape::FirstFragment);
        assert_eq!((p.key.sport, p.key.dport, p.key.proto), (40000, 53, 17));
        assert_eq!((p.l4, p.ip_len), (34, 36));
        // A first fragment too short for the UDP header has no ports to balance by.
        let f = v4_first_fragment(17, &udp[..6]);
        assert_eq!(parse(&f, 14, false), Err(Counter::DropL4Malformed));
    }

    #[test]
    fn a_first_fragment_of_a_protocol_without_ports_is_only_a_fragment() {
        // GRE: nothing in its header for later fragments to follow.
        let f = v4_first_fragment(47, &[0; 16]);
        let p = parse(&f, 14, false).unwrap();
        assert_eq!(p.shape, Shape::Fragment);
        assert_eq!((p.key.sport, p.key.dport, p.key.proto), (0, 0, 47));
        // A later fragment of a UDP datagram: its first bytes are data, not ports.
        let mut f = v4_first_fragment(17, &[0x9c, 0x40, 0x00, 0x35, 0, 16, 0, 0]);
        ipv4::Packet::new_unchecked(&mut f[14..]).set_fragment(185, false);
        ipv4::Packet::new_unchecked(&mut f[14..]).fill_checksum();
        let p = parse(&f, 14, false).unwrap();
        assert_eq!(p.shape, Shape::Fragment);
        assert_eq!((p.key.sport, p.key.dport), (0, 0));
    }

    #[test]
    fn fold_into_is_exact_for_every_delta_a_rewrite_can_sum() {
        // One's-complement addition, the slow way: the sum modulo 0xffff, a
        // nonzero multiple of it being 0xffff (negative zero).
        let reference = |hc: u16, delta: u64| {
            let s = (!hc) as u128 + delta as u128;
            let r = (s % 0xffff) as u16;
            !(if r == 0 && s != 0 { 0xffff } else { r })
        };
        // Up to the bound `fold_into` states, and every whole number of words
        // a rewrite may sum.
        let most = (1 << 48) - 1 - 0xffff;
        let mut rng = crate::test_rng::XorShift::default();
        let mut deltas = vec![0, 1, 0xffff, 0x1_0000, most - 1, most];
        deltas.extend((1..=20).map(|n| n * u32::MAX as u64));
        deltas.extend((0..10_000).map(|_| rng.next() % (most + 1)));
        deltas.extend((0..10_000).map(|_| rng.next() % (20 * u32::MAX as u64)));
        for delta in deltas {
            for hc in [0, 1, 0x8000, 0xfffe, 0xffff, rng.next() as u16] {
                assert_eq!(
                    fold_into(hc, delta),
                    reference(hc, delta),
                    "{hc:#x} {delta:#x}"
                );
            }
        }
    }

    #[test]
    fn a_udp_checksum_that_comes_out_zero_is_sent_as_all_ones() {
        // Zero in a UDP checksum means "none" (RFC 768), so a computed zero is
        // sent as 0xffff (its one's-complement equal). Exactly one destination
        // port makes the rewritten checksum zero; find it, for both families.
        let mut v4 = v4_tcp();
        v4[14 + 9] = 17;
        udp::Packet::new_unchecked(&mut v4[34..]).set_len(25);
        udp::Packet::new_unchecked(&mut v4[34..]).set_checksum(0x1234);
        ipv4::Packet::new_unchecked(&mut v4[14..]).fill_checksum();
        let client: Ipv6Addr = "2001:db8::10".parse().unwrap();
        let v6 = v6_udp(&client, &client, &[]);
        for (frame, at, v6) in [(v4, 34 + 6, false), (v6, 54 + 6, true)] {
            let p = parse(&frame, 14, v6).unwrap();
            let all_ones: Vec<u16> = (0..=u16::MAX)
                .filter(|&dport| {
                    let mut f = frame.clone();
                    let a = [7u8; 16];
                    rewrite(&mut f, &p, (&a, 1), (&a, dport));
                    assert_ne!(read_u16(&f, at), 0, "v6 {v6} port {dport}");
                    read_u16(&f, at) == 0xffff
                })
                .collect();
            assert_eq!(all_ones.len(), 1, "v6 {v6}");
        }
    }

    #[test]
    fn ttl_one_is_not_forwarded() {
        let mut f = v4_tcp();
        f[14 + 8] = 1;
        let p = parse(&f, 14, false).unwrap();
        assert_eq!(decrement_ttl(&mut f, &p), Err(Counter::DropTtlExpired));
    }

    #[test]
    fn udp_zero_checksum_stays_zero_over_ipv4() {
        let mut f = v4_tcp();
        f[14 + 9] = 17;
        let mut u = udp::Packet::new_unchecked(&mut f[34..]);
        u.set_len(25);
        u.set_checksum(0);
        ipv4::Packet::new_unchecked(&mut f[14..]).fill_checksum();
        let p = parse(&f, 14, false).unwrap();
        rewrite_addresses(
            &mut f,
            &p,
            (Ipv4Addr::new(1, 2, 3, 4).into(), 1),
            (Ipv4Addr::new(5, 6, 7, 8).into(), 2),
        );
        assert_eq!(read_u16(&f, 34 + 6), 0);
        assert!(ipv4::Packet::new_checked(&f[14..])
            .unwrap()
            .verify_checksum());
    }
}
