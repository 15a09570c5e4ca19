//! The classifier's common case over IPv6, in one straight pass: an untagged IPv6
//! packet to our MAC whose next header is TCP or UDP (no extension headers),
//! addressed to a VIP or a FullNAT local address. Any other packet, and any doubt,
//! returns `None` and takes the general path, which decides these packets the same
//! way (a test compares the two on mutated frames). IPv6 has no header checksum:
//! the only checks are on lengths.

use super::classify::{balance, Verdict};
use super::local::LocalAddrs;
use crate::buf::PacketBuf;
use crate::lb::flow::FlowKey;
use crate::lb::nat::Parsed;
use crate::lb::snapshot::LbSnapshot;
use crate::wire::ip_proto;
use std::net::Ipv6Addr;

const ETH: usize = 14;
const IP: usize = 40;

/// The verdict for the common IPv6 case, or `None` for the general path.
#[inline(always)]
pub fn classify_fast_v6<B: PacketBuf>(
    buf: &B,
    local: &LocalAddrs,
    snap: &LbSnapshot,
) -> Option<Verdict> {
    let d = buf.data();
    if d.len() < ETH + IP + 8 || d.len() > local.max_frame_len() || local.vlan.is_some() {
        return None;
    }
    // Our MAC, IPv6, version 6.
    if d[..6] != local.mac || d[12..14] != [0x86, 0xdd] || d[ETH] >> 4 != 6 {
        return None;
    }
    let ip = &d[ETH..ETH + IP];
    let payload = u16::from_be_bytes([ip[4], ip[5]]) as usize;
    if ETH + IP + payload > d.len() {
        return None;
    }
    let proto = ip[6];
    let l4_min = match proto {
        ip_proto::TCP => 20,
        ip_proto::UDP => 8,
        _ => return None,
    };
    if payload < l4_min {
        return None;
    }
    let src: [u8; 16] = ip[8..24].try_into().ok()?;
    let dst: [u8; 16] = ip[24..40].try_into().ok()?;
    let dst_addr = Ipv6Addr::from(dst);
    if local.owns_v6(&dst_addr) {
        return None;
    }
    let entry = snap.entry_v6(&dst_addr)?;
    let l4 = &d[ETH + IP..ETH + IP + payload];
    let mut tcp_flags = 0;
    if proto == ip_proto::TCP {
        let header = (l4[12] >> 4) as usize * 4;
        if header < 20 || header > l4.len() {
            return None;
        }
        tcp_flags = l4[13];
    } else {
        let len = u16::from_be_bytes([l4[4], l4[5]]) as usize;
        if len < 8 || len > l4.len() {
            return None;
        }
    }
    let key = FlowKey {
        src,
        dst,
        sport: u16::from_be_bytes([l4[0], l4[1]]),
        dport: u16::from_be_bytes([l4[2], l4[3]]),
        proto,
        v6: true,
    };
    let p = Parsed {
        l2: ETH as u16,
        l4: (ETH + IP) as u16,
        ip_len: (IP + payload) as u32,
        v6: true,
        key,
        tcp_flags,
        fragment: false,
    };
    Some(balance(p, entry))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buf::VecBuf;
    use crate::pipeline::classify::classify_general;
    use crate::wire::build::TcpV6;
    use crate::wire::checksum::pseudo_v6;
    use crate::wire::{ipv6, udp};

    const OUR_MAC: [u8; 6] = [0x02, 0x57, 0x45, 0x49, 0x52, 0x01];
    const VIP: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x100);
    const LOCAL: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);
    const OURS: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
    const CLIENT: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x10);

    fn local() -> LocalAddrs {
        LocalAddrs {
            mac: OUR_MAC,
            vlan: None,
            mtu: 1500,
            ipv4: vec![],
            ipv6: vec![OURS],
            host_interface: true,
        }
    }

    fn snap() -> LbSnapshot {
        let mut s = LbSnapshot {
            vips: vec![VIP.into()],
            locals: vec![crate::lb::snapshot::LocalAddrs {
                v4: vec![],
                v6: vec![LOCAL],
            }],
            ..Default::default()
        };
        let k = |port, proto| {
            (
                FlowKey::new(VIP.into(), VIP.into(), 0, port, proto).dst,
                port,
                proto,
            )
        };
        s.by_vip.insert(k(80, ip_proto::TCP), 0);
        s.by_vip.insert(k(53, ip_proto::UDP), 1);
        s.index_locals();
        s
    }

    fn tcp(dst: Ipv6Addr, dport: u16, payload: usize) -> Vec<u8> {
        TcpV6 {
            src_mac: [2, 0, 0, 0, 0, 0x10],
            dst_mac: OUR_MAC,
            src: CLIENT,
            sport: 40000,
            dst,
            dport,
        }
        .frame(0x18, payload)
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
        let (local, snap) = (local(), snap());
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
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let (mut taken, rounds) = (0, 200_000);
        for _ in 0..rounds {
            let r = next();
            let mut f = templates[(r % templates.len() as u64) as usize].clone();
            // Up to three bytes of the headers changed, sometimes the length too.
            for i in 0..(r >> 8) % 4 {
                let at = ((r >> (16 + 8 * i)) % 90) as usize % f.len();
                f[at] = next() as u8;
            }
            if (r >> 60) % 4 == 0 {
                f.truncate((next() % f.len() as u64) as usize);
            }
            let b = VecBuf::from_slice(&f);
            if let Some(v) = classify_fast_v6(&b, &local, &snap) {
                taken += 1;
                let mut general = b.clone();
                assert_eq!(v, classify_general(&mut general, &local, &snap), "{f:?}");
            }
        }
        // The unchanged and harmlessly changed frames exercise the fast path a lot.
        assert!(taken > rounds / 10, "fast path taken {taken} times");
    }
}
