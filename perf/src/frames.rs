//! The packets the scenarios send: 64-byte IPv4 and 74-byte IPv6 TCP frames to
//! the appliance, the clients they come from, and the backends' replies.

use dataplane::lb::core::LbCore;
use dataplane::wire::build::Tcp;
use dataplane::wire::tcp;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub const OUR_MAC: [u8; 6] = [0x02, 0x57, 0x45, 0x49, 0x52, 0x01];
pub const CLIENT_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x10];
pub const FRAME_LEN: usize = 64;

/// A 64-byte Ethernet/IPv4/TCP frame from client `src:sport` to `dst:80`.
pub fn frame(src: Ipv4Addr, sport: u16, dst: Ipv4Addr, flags: u8) -> [u8; FRAME_LEN] {
    frame_between((src, sport), (dst, 80), flags)
}

/// A 64-byte Ethernet/IPv4/TCP frame to the appliance from `src` to `dst`.
pub fn frame_between(
    (src, sport): (Ipv4Addr, u16),
    (dst, dport): (Ipv4Addr, u16),
    flags: u8,
) -> [u8; FRAME_LEN] {
    let f = to_us((src, sport), (dst, dport)).frame(flags, FRAME_LEN - 54);
    f.try_into().expect("FRAME_LEN bytes")
}

/// The ends of a segment to the appliance (from a client, or a backend's reply).
pub fn to_us<A>((src, sport): (A, u16), (dst, dport): (A, u16)) -> Tcp<A> {
    Tcp {
        src_mac: CLIENT_MAC,
        dst_mac: OUR_MAC,
        src,
        sport,
        dst,
        dport,
    }
}

/// The shortest Ethernet/IPv6/TCP frame: no payload.
pub const FRAME6_LEN: usize = 14 + 40 + 20;

/// A 74-byte Ethernet/IPv6/TCP frame from client `src:sport` to `dst:80`.
pub fn frame6(src: Ipv6Addr, sport: u16, dst: Ipv6Addr, flags: u8) -> [u8; FRAME6_LEN] {
    let f = to_us((src, sport), (dst, 80)).frame(flags, 0);
    f.try_into().expect("FRAME6_LEN bytes")
}

/// The backends' replies to the FullNAT connections in `lb`'s table, in a
/// scattered order (from the backend to the local address and port).
pub fn replies(lb: &LbCore) -> Vec<[u8; FRAME_LEN]> {
    let v4 = |a: IpAddr| match a {
        IpAddr::V4(a) => a,
        IpAddr::V6(_) => unreachable!("IPv4 benchmark"),
    };
    let revs: Vec<_> = lb.table.iter().filter_map(|(_, c)| c.rev).collect();
    (0..revs.len().min(1 << 20))
        .map(|i| {
            let r = revs[(i * 7919) % revs.len()];
            let (from, to) = ((v4(r.src_ip()), r.sport), (v4(r.dst_ip()), r.dport));
            frame_between(from, to, tcp::flags::ACK)
        })
        .collect()
}

/// Client address and port of flow `i` (65 000 ports per address).
pub fn flow(i: usize) -> (Ipv4Addr, u16) {
    let a = (i / 65_000) as u32;
    (
        Ipv4Addr::from(u32::from(Ipv4Addr::new(198, 19, 0, 0)) + a),
        1024 + (i % 65_000) as u16,
    )
}

/// Client address and port of IPv6 flow `i`.
pub fn flow6(i: usize) -> (Ipv6Addr, u16) {
    let (a, port) = flow(i);
    let mut o = [
        0x20, 0x01, 0x0d, 0xb8, 0, 0x13, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ];
    o[12..].copy_from_slice(&a.octets());
    (Ipv6Addr::from(o), port)
}

/// ACKs of the flows `flow(i)` for `i` in `flows`, to `vip`, in a scattered
/// order (so that a table misses the caches as real traffic would).
pub fn scattered_acks(flows: &[usize], vip: Ipv4Addr) -> Vec<[u8; FRAME_LEN]> {
    (0..flows.len())
        .map(|k| {
            let (s, p) = flow(flows[(k * 7919) % flows.len()]);
            frame(s, p, vip, tcp::flags::ACK)
        })
        .collect()
}
