//! The classifier's common case in one straight pass: an untagged IPv4 TCP or UDP
//! packet to our MAC, with a 20-byte header, not a fragment, addressed to a VIP or a
//! FullNAT local address. It reads each field once, where the general path walks
//! the Ethernet, IPv4 and L4 views in turn. Any other packet, and any doubt, returns
//! `None` and takes the general path, which decides these packets the same way (a
//! test compares the two on mutated frames).

use super::classify::{balance, Verdict};
use super::local::LocalAddrs;
use crate::buf::{HwCheck, PacketBuf};
use crate::lb::addr_table::V4Dest;
use crate::lb::flow::FlowKey;
use crate::lb::nat::Parsed;
use crate::lb::snapshot::LbSnapshot;
use crate::wire::{ip_proto, ipv4};
use std::net::Ipv4Addr;

const ETH: usize = 14;
const IP: usize = 20;

/// The verdict for the common case, or `None` for the general path.
#[inline(always)]
pub fn classify_fast<B: PacketBuf>(
    buf: &B,
    local: &LocalAddrs,
    snap: &LbSnapshot,
) -> Option<Verdict> {
    let d = buf.data();
    if d.len() < ETH + IP + 8 || d.len() > local.max_frame_len() || local.vlan.is_some() {
        return None;
    }
    // Our MAC, IPv4, version 4 with no options.
    if d[..6] != local.mac || d[12..14] != [0x08, 0x00] || d[ETH] != 0x45 {
        return None;
    }
    let ip = &d[ETH..ETH + IP];
    let total = u16::from_be_bytes([ip[2], ip[3]]) as usize;
    // Not a fragment (MF and offset clear).
    if ETH + total > d.len() || u16::from_be_bytes([ip[6], ip[7]]) & 0x3fff != 0 {
        return None;
    }
    let proto = ip[9];
    let l4_min = match proto {
        ip_proto::TCP => 20,
        ip_proto::UDP => 8,
        _ => return None,
    };
    if total < IP + l4_min {
        return None;
    }
    let checksum_ok = match buf.ipv4_checksum() {
        HwCheck::Good => true,
        HwCheck::Bad => false,
        HwCheck::Unknown => ipv4::Packet::new_unchecked(ip).verify_checksum(),
    };
    let dst = Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]);
    if !checksum_ok || local.owns_v4(dst) {
        return None;
    }
    let l4 = &d[ETH + IP..ETH + total];
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
    let mapped = |a: &[u8]| {
        let mut m = [0u8; 16];
        m[10] = 0xff;
        m[11] = 0xff;
        m[12..].copy_from_slice(a);
        m
    };
    let key = FlowKey {
        src: mapped(&ip[12..16]),
        dst: mapped(&ip[16..20]),
        sport: u16::from_be_bytes([l4[0], l4[1]]),
        dport: u16::from_be_bytes([l4[2], l4[3]]),
        proto,
        v6: false,
    };
    let p = Parsed {
        l2: ETH as u16,
        l4: (ETH + IP) as u16,
        ip_len: total as u32,
        v6: false,
        key,
        tcp_flags,
        fragment: false,
    };
    // A VIP's service or a local address from the word table; anything else by
    // the address (the same answers, in more steps).
    let dst_word = u32::from_ne_bytes([ip[16], ip[17], ip[18], ip[19]]);
    let (local, service) = match snap.addrs.dest_v4(dst_word, p.key.dport, proto) {
        V4Dest::Service(id) => (false, Some(id)),
        V4Dest::Local => (true, None),
        V4Dest::Unknown => return Some(balance(p, snap.entry_v4(dst)?)),
    };
    Some(Verdict::Balance { p, local, service })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buf::VecBuf;
    use crate::pipeline::classify::classify_general;
    use crate::wire::build::TcpV4;
    use crate::wire::checksum::pseudo_v4;
    use crate::wire::udp;

    const OUR_MAC: [u8; 6] = [0x02, 0x57, 0x45, 0x49, 0x52, 0x01];
    const VIP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 100);
    const LOCAL: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
    const OURS: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
    const CLIENT: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 10);

    fn local() -> LocalAddrs {
        LocalAddrs {
            mac: OUR_MAC,
            vlan: None,
            mtu: 1500,
            ipv4: vec![OURS],
            ipv6: vec![],
            host_interface: true,
        }
    }

    fn snap() -> LbSnapshot {
        let mut s = LbSnapshot {
            vips: vec![VIP.into()],
            locals: vec![crate::lb::snapshot::LocalAddrs {
                v4: vec![LOCAL],
                v6: vec![],
            }],
            ..Default::default()
        };
        let k = |port, proto| (FlowKey::v4(VIP, VIP, 0, port, proto).dst, port, proto);
        s.by_vip.insert(k(80, ip_proto::TCP), 0);
        s.by_vip.insert(k(53, ip_proto::UDP), 1);
        s.index_locals();
        s
    }

    fn tcp(dst: Ipv4Addr, dport: u16, payload: usize) -> Vec<u8> {
        TcpV4 {
            src_mac: [2, 0, 0, 0, 0, 0x10],
            dst_mac: OUR_MAC,
            src: CLIENT,
            sport: 40000,
            dst,
            dport,
        }
        .frame(0x18, payload)
    }

    fn udp_to(dst: Ipv4Addr, dport: u16, payload: usize) -> Vec<u8> {
        let mut f = tcp(dst, dport, 12 + payload);
        f.truncate(14 + 20 + 8 + payload);
        let mut ip = ipv4::Packet::new_unchecked(&mut f[14..]);
        ip.set_protocol(ip_proto::UDP);
        ip.set_total_len((20 + 8 + payload) as u16);
        ip.fill_checksum();
        let mut u = udp::Packet::new_unchecked(&mut f[34..]);
        u.set_dst_port(dport);
        u.set_len((8 + payload) as u16);
        u.fill_checksum(pseudo_v4(CLIENT, dst, ip_proto::UDP, (8 + payload) as u16));
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
            assert!(classify_fast(&VecBuf::from_slice(t), &local, &snap).is_some());
        }
        assert!(classify_fast(&VecBuf::from_slice(&templates[5]), &local, &snap).is_none());
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
                let at = ((r >> (16 + 8 * i)) % 70) as usize % f.len();
                f[at] = next() as u8;
            }
            if (r >> 60) % 4 == 0 {
                f.truncate((next() % f.len() as u64) as usize);
            }
            let mut b = VecBuf::from_slice(&f);
            b.hw_ipv4 = match (r >> 56) % 8 {
                0 => HwCheck::Good,
                1 => HwCheck::Bad,
                _ => HwCheck::Unknown,
            };
            if let Some(v) = classify_fast(&b, &local, &snap) {
                taken += 1;
                let mut general = b.clone();
                assert_eq!(v, classify_general(&mut general, &local, &snap), "{f:?}");
            }
        }
        // The unchanged and harmlessly changed frames exercise the fast path a lot.
        assert!(taken > rounds / 10, "fast path taken {taken} times");
    }
}
