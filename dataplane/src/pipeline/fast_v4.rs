//! The classifier's common case in one straight pass: an untagged IPv4 TCP or UDP
//! packet to our MAC, with a 20-byte header, not a fragment, addressed to a VIP or a
//! FullNAT local address. It reads each field once, where the general path walks
//! the Ethernet, IPv4 and L4 views in turn. Any other packet, and any doubt, returns
//! `None` and takes the general path, which decides these packets the same way (a
//! test compares the two on mutated frames).

use super::classify::{balance, Verdict};
use super::fast_parts::{self, ETH};
use super::local::LocalAddrs;
use crate::buf::{HwCheck, PacketBuf};
use crate::lb::addr_table::V4Dest;
use crate::lb::snapshot::LbSnapshot;
use crate::wire::ipv4;
use std::net::Ipv4Addr;

const IP: usize = 20;

/// The verdict for the common case, or `None` for the general path.
#[inline(always)]
pub fn classify_fast<B: PacketBuf>(
    buf: &B,
    local: &LocalAddrs,
    snap: &LbSnapshot,
) -> Option<Verdict> {
    let d = buf.data();
    let ip = fast_parts::ip_header(d, local, [0x08, 0x00], IP)?;
    // Version 4 with no options.
    if ip[0] != 0x45 {
        return None;
    }
    let total = u16::from_be_bytes([ip[2], ip[3]]) as usize;
    // Not a fragment (MF and offset clear).
    if ETH + total > d.len() || u16::from_be_bytes([ip[6], ip[7]]) & 0x3fff != 0 {
        return None;
    }
    let proto = ip[9];
    if total < IP + fast_parts::min_header(proto)? {
        return None;
    }
    let checksum_ok = match buf.ipv4_checksum() {
        HwCheck::Good => true,
        HwCheck::Bad => false,
        HwCheck::Unknown => ipv4::Packet::new_unchecked(ip).verify_checksum(),
    };
    if !checksum_ok {
        return None;
    }
    let l4 = fast_parts::fields(proto, &d[ETH + IP..ETH + total])?;
    let mapped = |a: &[u8]| {
        let mut m = [0u8; 16];
        m[10] = 0xff;
        m[11] = 0xff;
        m[12..].copy_from_slice(a);
        m
    };
    let p = fast_parts::parsed(
        (mapped(&ip[12..16]), mapped(&ip[16..20])),
        proto,
        l4,
        IP,
        total,
        false,
    );
    // A VIP's service or a local address from the word table; anything else by
    // the address (the same answers, in more steps), or the general path. The
    // appliance's own addresses are neither (`weir check` refuses a VIP or
    // local address that is a port's): they find no entry and go to the
    // general path without a look of their own.
    let dst_word = u32::from_ne_bytes([ip[16], ip[17], ip[18], ip[19]]);
    let (local, service) = match snap.addrs.dest_v4(dst_word, p.key.dport, proto) {
        V4Dest::Service(id) => (false, Some(id)),
        V4Dest::Local => (true, None),
        V4Dest::Unknown => {
            let dst = Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]);
            return Some(balance(p, snap.entry_v4(dst)?));
        }
    };
    Some(Verdict::Balance { p, local, service })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buf::{HwCheck, VecBuf};
    use crate::pipeline::fast_path_check::{
        agrees_with_general, from_client, port_with, snap_with,
    };
    use crate::wire::checksum::pseudo_v4;
    use crate::wire::{ip_proto, udp};

    const VIP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 100);
    const LOCAL: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
    const OURS: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
    const CLIENT: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 10);

    fn tcp(dst: Ipv4Addr, dport: u16, payload: usize) -> Vec<u8> {
        from_client(CLIENT, dst, dport).frame(0x18, payload)
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
            assert!(classify_fast(&VecBuf::from_slice(t), &local, &snap).is_some());
        }
        assert!(classify_fast(&VecBuf::from_slice(&templates[5]), &local, &snap).is_none());
        // The NIC's checksum verdict, when it gives one, is taken as it is.
        let mut bad = VecBuf::from_slice(&templates[0]);
        bad.hw_ipv4 = HwCheck::Bad;
        assert!(classify_fast(&bad, &local, &snap).is_none());
        agrees_with_general(&templates, (&local, &snap), 70, true, |b, port| {
            classify_fast(b, port, &snap)
        });
    }
}
