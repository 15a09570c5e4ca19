//! Test support for the classifier's fast paths: a fast path must decide every
//! packet it takes as the general path does.

use super::classify::{classify_general, Verdict};
use super::local::LocalAddrs;
use crate::buf::{HwCheck, VecBuf};
use crate::lb::flow::FlowKey;
use crate::lb::snapshot::LbSnapshot;
use crate::wire::build::Tcp;
use crate::wire::ip_proto;
use std::net::IpAddr;

pub const OUR_MAC: [u8; 6] = [0x02, 0x57, 0x45, 0x49, 0x52, 0x01];

/// A TCP segment's ends from `client:40000` to our MAC and `dst:dport`.
pub fn from_client<A>(client: A, dst: A, dport: u16) -> Tcp<A> {
    Tcp {
        src_mac: [2, 0, 0, 0, 0, 0x10],
        dst_mac: OUR_MAC,
        src: client,
        sport: 40000,
        dst,
        dport,
    }
}

/// A port with MAC `OUR_MAC` and address `ours`.
pub fn port_with(ours: IpAddr) -> LocalAddrs {
    let (ipv4, ipv6) = match ours {
        IpAddr::V4(a) => (vec![a], vec![]),
        IpAddr::V6(a) => (vec![], vec![a]),
    };
    LocalAddrs {
        mac: OUR_MAC,
        vlan: None,
        mtu: 1500,
        ipv4,
        ipv6,
        host_interface: true,
        host_mtu: 1500,
        reassembled_len: 0,
    }
}

/// A snapshot with TCP port 80 and UDP port 53 on `vip`, and `local` as the
/// FullNAT local address.
pub fn snap_with(vip: IpAddr, local: IpAddr) -> LbSnapshot {
    let (v4, v6) = match local {
        IpAddr::V4(a) => (vec![a], vec![]),
        IpAddr::V6(a) => (vec![], vec![a]),
    };
    let mut s = LbSnapshot {
        vips: vec![vip],
        locals: vec![crate::lb::snapshot::LocalAddrs { v4, v6 }],
        ..Default::default()
    };
    let k = |port, proto| (FlowKey::new(vip, vip, 0, port, proto).dst, port, proto);
    s.by_vip.insert(k(80, ip_proto::TCP), 0);
    s.by_vip.insert(k(53, ip_proto::UDP), 1);
    s.index_locals();
    s
}

/// Feeds `fast` 200k frames mutated from `templates` (up to three bytes among the
/// first `span` changed, sometimes cut short or padded past the port's largest
/// frame, and, with `hw`, the NIC's IPv4 checksum verdict varied): wherever it
/// answers, the general path must give the same verdict, and it must answer often
/// enough to have been tested. On a port with a VLAN it must take none of them.
pub fn agrees_with_general(
    templates: &[Vec<u8>],
    (local, snap): (&LocalAddrs, &LbSnapshot),
    span: u64,
    hw: bool,
    fast: impl Fn(&VecBuf, &LocalAddrs) -> Option<Verdict>,
) {
    // A port on a VLAN takes tagged frames only: none of these is for the fast path.
    let tagged = LocalAddrs {
        vlan: Some(7),
        ..local.clone()
    };
    for t in templates {
        assert!(fast(&VecBuf::from_slice(t), &tagged).is_none());
    }
    let mut rng = crate::test_rng::XorShift::default();
    let mut next = || rng.next();
    let (mut taken, rounds) = (0, 200_000);
    for _ in 0..rounds {
        let r = next();
        let mut f = templates[(r % templates.len() as u64) as usize].clone();
        for i in 0..(r >> 8) % 4 {
            let at = ((r >> (16 + 8 * i)) % span) as usize % f.len();
            f[at] = next() as u8;
        }
        match (r >> 60) % 8 {
            0 | 1 => f.truncate((next() % f.len() as u64) as usize),
            // Padded past what the port takes (its MTU is 1500).
            2 => f.resize(1500 + 14 + 4 + 1 + (next() % 64) as usize, 0),
            _ => {}
        }
        let mut b = VecBuf::from_slice(&f);
        if hw {
            b.hw_ipv4 = match (r >> 56) % 8 {
                0 => HwCheck::Good,
                1 => HwCheck::Bad,
                _ => HwCheck::Unknown,
            };
        }
        if let Some(v) = fast(&b, local) {
            taken += 1;
            let mut general = b.clone();
            assert_eq!(v, classify_general(&mut general, local, snap), "{f:?}");
        }
    }
    // The unchanged and harmlessly changed frames exercise the fast path a lot.
    assert!(taken > rounds / 10, "fast path taken {taken} times");
}
