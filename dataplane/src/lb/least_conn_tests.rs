//! The trees of [`Loads`] pick what a scan of the pool in order picks (the first
//! member with the least connections per unit of weight, none of weight 0), for
//! random pools shared between services, as connections come and go and the
//! snapshot changes under them.

use super::least_conn::Loads;
use super::ring::{RingMember, RingTable};
use super::snapshot::{Backend, HashKey, LbSnapshot, Mode, SchedKind, Service};
use proptest::prelude::*;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

/// Backend ids the random pools draw from.
const BACKENDS: u32 = 12;

/// What `least_conn` picked before the trees: a scan in pool order.
fn scan(loads: &Loads, svc: &Service) -> Option<u16> {
    let mut best: Option<(usize, u64, u64)> = None;
    for (i, &b) in svc.backends.iter().enumerate() {
        let w = svc.weights[i] as u64;
        if w == 0 {
            continue;
        }
        let a = loads.get(b) as u64;
        if best.is_none_or(|(_, ba, bw)| a * bw < ba * w) {
            best = Some((i, a, w));
        }
    }
    best.map(|(i, _, _)| i as u16)
}

/// A snapshot whose services have the given (scheduler, pool of (backend id,
/// weight)).
fn snapshot(generation: u64, services: &[(SchedKind, Vec<(u32, u32)>)]) -> LbSnapshot {
    let ring = Arc::new(RingTable::build(&[RingMember {
        key: "b0",
        weight: 1,
    }]));
    let backends = (0..BACKENDS)
        .map(|i| Backend {
            name: format!("p/b{i}"),
            addr: IpAddr::V4(Ipv4Addr::new(198, 18, 0, 11 + i as u8)),
            port: 8080,
            weight: 1,
            mac: Some([2, 0, 0, 0, 0, i as u8]),
            port_index: 0,
            blocked: false,
            down: false,
        })
        .collect();
    let services = services
        .iter()
        .enumerate()
        .map(|(i, (sched, pool))| Service {
            name: format!("s{i}"),
            vip: IpAddr::V4(Ipv4Addr::new(198, 18, 0, 100)),
            port: 80 + i as u16,
            proto: 6,
            mode: Mode::Dr,
            sched: *sched,
            hash_key: HashKey::FiveTuple,
            hash_seed: crate::lb::flow::FLOW_HASH_SEED,
            backends: pool.iter().map(|p| p.0).collect(),
            weights: pool.iter().map(|p| p.1).collect(),
            ports: vec![8080; pool.len()],
            ring: ring.clone(),
            wrr: vec![],
            fragments: false,
        })
        .collect();
    LbSnapshot {
        generation,
        services,
        backends,
        ..Default::default()
    }
}

#[derive(Debug, Clone)]
enum Op {
    /// A new flow on service `.0 % services`: the pick, then its count.
    Flow(u8),
    /// A connection of backend `.0` ends (or a count already 0 stays 0).
    End(u32),
    /// A new snapshot: the pools as given.
    Publish(Vec<(bool, Vec<(u32, u32)>)>),
}

fn pools() -> impl Strategy<Value = Vec<(bool, Vec<(u32, u32)>)>> {
    // Members may repeat across services (a shared pool) and within one.
    let pool = prop::collection::vec((0..BACKENDS, 0u32..4), 0..9);
    prop::collection::vec((prop::bool::weighted(0.7), pool), 1..4)
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => any::<u8>().prop_map(Op::Flow),
        3 => (0..BACKENDS).prop_map(Op::End),
        1 => pools().prop_map(Op::Publish),
    ]
}

fn services_of(p: &[(bool, Vec<(u32, u32)>)]) -> Vec<(SchedKind, Vec<(u32, u32)>)> {
    p.iter()
        .map(|(lc, pool)| {
            let sched = if *lc {
                SchedKind::LeastConn
            } else {
                SchedKind::RingHash
            };
            (sched, pool.clone())
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn the_trees_pick_what_a_scan_of_the_pool_picks(first in pools(), ops in prop::collection::vec(op(), 1..200)) {
        let mut generation = 1;
        let mut snap = snapshot(generation, &services_of(&first));
        let mut loads = Loads::default();
        loads.follow(&snap);
        for op in &ops {
            match op {
                Op::Flow(s) => {
                    let sid = *s as usize % snap.services.len();
                    let svc = &snap.services[sid];
                    let want = scan(&loads, svc);
                    match svc.sched {
                        SchedKind::LeastConn => {
                            prop_assert_eq!(loads.least(sid as u32, svc), want, "service {}", sid);
                        }
                        _ => prop_assert_eq!(loads.least(sid as u32, svc), None),
                    }
                    // Whatever picked it (the ring, for the others), it counts.
                    if let Some(i) = want {
                        loads.add(svc.backends[i as usize]);
                    }
                }
                Op::End(b) => loads.remove(*b),
                Op::Publish(p) => {
                    generation += 1;
                    snap = snapshot(generation, &services_of(p));
                    loads.follow(&snap);
                }
            }
            // Every least_conn service agrees with its scan after every step,
            // not only the one a flow went to.
            for (sid, svc) in snap.services.iter().enumerate() {
                if svc.sched == SchedKind::LeastConn {
                    prop_assert_eq!(loads.least(sid as u32, svc), scan(&loads, svc), "service {} after {:?}", sid, op);
                }
            }
        }
    }
}

#[test]
fn equal_weights_fill_in_turn_and_weights_share_in_proportion() {
    let snap = snapshot(
        1,
        &[(SchedKind::LeastConn, vec![(0, 1), (1, 1), (2, 2), (3, 0)])],
    );
    let mut loads = Loads::default();
    loads.follow(&snap);
    let svc = &snap.services[0];
    let mut picks = vec![];
    for _ in 0..8 {
        let i = loads.least(0, svc).expect("a member");
        picks.push(i);
        loads.add(svc.backends[i as usize]);
    }
    // Ties go to the first; weight 2 takes two for one; weight 0 none.
    assert_eq!(picks, [0, 1, 2, 2, 0, 1, 2, 2]);
    // A connection ending makes its backend the least loaded again.
    loads.remove(1);
    assert_eq!(loads.least(0, svc), Some(1));
}

#[test]
fn a_pool_of_weight_zero_or_of_no_member_has_no_pick() {
    let snap = snapshot(
        1,
        &[
            (SchedKind::LeastConn, vec![(0, 0), (1, 0)]),
            (SchedKind::LeastConn, vec![]),
            (SchedKind::RoundRobin, vec![(0, 1)]),
        ],
    );
    let mut loads = Loads::default();
    loads.follow(&snap);
    for sid in 0..3 {
        assert_eq!(loads.least(sid, &snap.services[sid as usize]), None);
    }
}

#[test]
fn a_backend_shared_by_two_services_counts_in_both() {
    let snap = snapshot(
        1,
        &[
            (SchedKind::LeastConn, vec![(0, 1), (1, 1)]),
            (SchedKind::LeastConn, vec![(1, 1), (0, 1)]),
        ],
    );
    let mut loads = Loads::default();
    loads.follow(&snap);
    // A flow of service 0 on backend 0 makes backend 1 the pick of both
    // (position 1 in service 0's pool, 0 in service 1's); two on backend 1
    // make it backend 0 again.
    loads.add(0);
    assert_eq!(loads.least(1, &snap.services[1]), Some(0));
    assert_eq!(loads.least(0, &snap.services[0]), Some(1));
    loads.add(1);
    loads.add(1);
    assert_eq!(loads.least(1, &snap.services[1]), Some(1));
    assert_eq!(loads.least(0, &snap.services[0]), Some(0));
}

#[test]
fn trees_laid_out_for_another_snapshot_never_pick_outside_the_pool() {
    // A worker that has not yet followed a new snapshot may ask about a
    // service whose pool shrank: the old tree's pick would index past it.
    // The old tree picks position 1, just past the new pool of one.
    let old = snapshot(1, &[(SchedKind::LeastConn, vec![(0, 1), (1, 1)])]);
    let new = snapshot(2, &[(SchedKind::LeastConn, vec![(0, 1)])]);
    let mut loads = Loads::default();
    loads.follow(&old);
    loads.add(0);
    assert_eq!(loads.least(0, &old.services[0]), Some(1));
    assert_eq!(loads.least(0, &new.services[0]), None);
    loads.follow(&new);
    assert_eq!(loads.least(0, &new.services[0]), Some(0));
}
