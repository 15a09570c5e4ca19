//! The classifier's common case over IPv6, in one straight pass: an untagged IPv6
//! packet to our MAC whose next header is TCP or UDP (no extension headers),
//! addressed to a VIP or a FullNAT local address. Any other packet, and any doubt,
//! returns `None` and takes the general path, which decides these packets the same
//! way (a test compares the two on mutated frames). IPv6 has no header checksum:
//! the only checks are on lengths.

use super::classify::{balance, Verdict};
use super::fast_parts::{self, ETH};
use super::local::LocalAddrs;
use crate::buf::PacketBuf;
use crate::lb::snapshot::LbSnapshot;
use std::net::Ipv6Addr;

const IP: usize = 40;

/// The verdict for the common IPv6 case, or `None` for the general path.
#[inline(always)]
pub fn classify_fast_v6<B: PacketBuf>(
    buf: &B,
    local: &LocalAddrs,
    snap: &LbSnapshot,
) -> Option<Verdict> {
    let d = buf.data();
    let ip = fast_parts::ip_header(d, local, [0x86, 0xdd], IP)?;
    if ip[0] >> 4 != 6 {
        return None;
    }
    let payload = u16::from_be_bytes([ip[4], ip[5]]) as usize;
    if ETH + IP + payload > d.len() {
        return None;
    }
    let proto = ip[6];
    if payload < fast_parts::min_header(proto)? {
        return None;
    }
    let src: [u8; 16] = ip[8..24].try_into().ok()?;
    let dst: [u8; 16] = ip[24..40].try_into().ok()?;
    // A VIP or local address, or the general path (the appliance's own
    // addresses are neither: `weir check` refuses a VIP or local address that
    // is a port's).
    let entry = snap.entry_v6(&Ipv6Addr::from(dst))?;
    let l4 = fast_parts::fields(proto, &d[ETH + IP..ETH + IP + payload])?;
    let p = fast_parts::parsed((src, dst), proto, l4, IP, IP + payload, true);
    Some(balance(p, entry))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buf::VecBuf;
    use crate::pipeline::fast_path_check::{
        agrees_with_general, from_client, port_with, snap_with,
    };
    use crate::wire::checksum::pseudo_v6;
    use crate::wire::{ip_proto, ipv6, udp};

    const VIP: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x100);
    const LOCAL: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);
    const OURS: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
    const CLIENT: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x10);

    fn tcp(dst: Ipv6Addr, dport: u16, payload: usize) -> Vec<u8> {
        from_client(CLIENT, dst, dport).frame(0x18, payload)
    }

    fn udp_to(dst: Ipv6Addr, dport: u16, payload: usize) -> Vec<u8> {
        let mut f = tcp(dst, dport, 12 + payload);
        f.truncate(14 + 40 + 8 + payload);
        let mut ip = ipv6::Packet::new_unchecked(&mut f[14..]);
        ip.set_next_header(ip_proto::UDP);
        ip.set_payload_len((8 + payload) as u16);
        let mut u = udp::Packet::new_unchecked(&mut f[54..]);
        u.set_dst_port(dport);
        u.set_len((8 + payload) as u16);
        u.fill_checksum(pseudo_v6(
            &CLIENT,
            &dst,
            ip_proto::UDP,
            (8 + payload) as u32,
        ));
        f
    }

    #[test]
    fn the_fast_path_takes_the_common_case_and_decides_as_the_general_path() {
        let (local, snap) = (port_with(OURS.into()), snap_with(VIP.into(), LOCAL.into()));
        let templates = [
            tcp(VIP, 80, 10),
            tcp(VIP, 443, 0),
            tcp(LOCAL, 5000, 100),
            udp_to(VIP, 53, 30),
            udp_to(VIP, 9999, 0),
            tcp(OURS, 22, 0),
        ];
        for t in &templates[..5] {
            let v = classify_fast_v6(&VecBuf::from_slice(t), &local, &snap);
            assert!(matches!(v, Some(Verdict::Balance { .. })), "{v:?}");
        }
        assert!(classify_fast_v6(&VecBuf::from_slice(&templates[5]), &local, &snap).is_none());
        agrees_with_general(&templates, (&local, &snap), 90, false, |b, port| {
            classify_fast_v6(b, port, &snap)
        });
    }
}
