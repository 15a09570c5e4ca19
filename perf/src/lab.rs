//! The appliance the scenarios run against: its services, backends and port
//! addresses, as a snapshot from the management core would give them.

use crate::frames::OUR_MAC;
use dataplane::lb::flow::FlowKey;
use dataplane::lb::ring::{RingMember, RingTable};
use dataplane::lb::snapshot::{Backend, HashKey, LbSnapshot, LocalAddrs, Mode, SchedKind, Service};
use dataplane::pipeline::local::LocalAddrs as PortAddrs;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

/// Backends in the large pool of the new-flow scenarios that compare schedulers.
pub const POOL_SIZE: usize = 1000;

pub const VIP_NAT: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 100);
pub const VIP_DR: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 200);
pub const VIP6_NAT: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x100);
pub const VIP6_DR: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x200);

pub fn snapshot() -> LbSnapshot {
    // Backends 0-2 over IPv4, 3-5 over IPv6, each three on its own ring.
    let names = [
        "web/b1", "web/b2", "web/b3", "web6/b1", "web6/b2", "web6/b3",
    ];
    let ring = |names: &[&str]| {
        let members: Vec<RingMember<'_>> = names
            .iter()
            .map(|k| RingMember { key: k, weight: 1 })
            .collect();
        Arc::new(RingTable::build(&members))
    };
    let rings = [ring(&names[..3]), ring(&names[3..])];
    let backends = (0..6)
        .map(|i| Backend {
            name: names[i].into(),
            addr: if i < 3 {
                IpAddr::V4(Ipv4Addr::new(198, 18, 0, 11 + i as u8))
            } else {
                IpAddr::V6(Ipv6Addr::new(
                    0x2001,
                    0xdb8,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0x11 + i as u16 - 3,
                ))
            },
            port: 80,
            weight: 1,
            mac: Some([2, 0, 0, 0, 1, i as u8]),
            port_index: 0,
            blocked: false,
            down: false,
        })
        .collect();
    let mut snap = LbSnapshot {
        backends,
        ..Default::default()
    };
    for (i, (vip, mode)) in [
        (IpAddr::V4(Ipv4Addr::new(198, 18, 0, 100)), Mode::FullNat),
        (IpAddr::V4(Ipv4Addr::new(198, 18, 0, 200)), Mode::Dr),
        (IpAddr::V6(VIP6_NAT), Mode::FullNat),
        (IpAddr::V6(VIP6_DR), Mode::Dr),
    ]
    .into_iter()
    .enumerate()
    {
        let first = if vip.is_ipv4() { 0 } else { 3 };
        snap.services.push(Service {
            name: format!("svc{i}"),
            vip,
            port: 80,
            proto: 6,
            mode,
            sched: SchedKind::RingHash,
            hash_key: HashKey::FiveTuple,
            hash_seed: dataplane::lb::flow::FLOW_HASH_SEED,
            backends: vec![first, first + 1, first + 2],
            weights: vec![1, 1, 1],
            ports: vec![80, 80, 80],
            ring: rings[first as usize / 3].clone(),
            wrr: vec![0, 1, 2],
            fragments: false,
        });
        let key = dataplane::lb::flow::FlowKey::new(vip, vip, 0, 80, 6);
        snap.by_vip.insert((key.dst, 80, 6), i as u32);
        snap.vips.push(vip);
    }
    snap.locals = vec![LocalAddrs {
        v4: (2..30).map(|i| Ipv4Addr::new(198, 18, 0, i)).collect(),
        v6: (2..30)
            .map(|i| Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, i))
            .collect(),
    }];
    snap.index_locals();
    snap
}

/// The VIP of the large pool's service (dr), added by [`with_large_pool`].
pub const VIP_POOL: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 201);

/// [`snapshot`] plus a dr service on [`VIP_POOL`] over a pool of `n` equal
/// backends (198.18.4.0 onwards), scheduled by `sched`: what a new flow's
/// choice costs when the pool is large.
pub fn with_large_pool(n: usize, sched: SchedKind) -> LbSnapshot {
    let mut snap = snapshot();
    let first = snap.backends.len() as u32;
    let names: Vec<String> = (0..n).map(|i| format!("big/b{i}")).collect();
    for (i, name) in names.iter().enumerate() {
        let i = i as u32;
        snap.backends.push(Backend {
            name: name.clone(),
            addr: IpAddr::V4(Ipv4Addr::from(u32::from(Ipv4Addr::new(198, 18, 4, 0)) + i)),
            port: 80,
            weight: 1,
            mac: Some([2, 0, 0, 1, (i >> 8) as u8, i as u8]),
            port_index: 0,
            blocked: false,
            down: false,
        });
    }
    let members: Vec<RingMember<'_>> = names
        .iter()
        .map(|k| RingMember { key: k, weight: 1 })
        .collect();
    let sid = snap.services.len() as u32;
    snap.services.push(Service {
        name: "big".into(),
        vip: IpAddr::V4(VIP_POOL),
        port: 80,
        proto: 6,
        mode: Mode::Dr,
        sched,
        hash_key: HashKey::FiveTuple,
        hash_seed: dataplane::lb::flow::FLOW_HASH_SEED,
        backends: (first..first + n as u32).collect(),
        weights: vec![1; n],
        ports: vec![80; n],
        ring: Arc::new(RingTable::build(&members)),
        wrr: vec![],
        fragments: false,
    });
    let vip = IpAddr::V4(VIP_POOL);
    let key = FlowKey::new(vip, vip, 0, 80, 6);
    snap.by_vip.insert((key.dst, 80, 6), sid);
    snap.vips.push(vip);
    snap.index_locals();
    // Room for every worker the scenarios run (two at most).
    snap.lay_out_least_conn(2);
    snap
}

pub fn port_addrs() -> PortAddrs {
    PortAddrs {
        mac: OUR_MAC,
        vlan: None,
        mtu: 1500,
        ipv4: vec![Ipv4Addr::new(198, 18, 0, 1)],
        ipv6: vec![Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1)],
        host_interface: false,
        host_mtu: 0,
        reassembled_len: 0,
    }
}
