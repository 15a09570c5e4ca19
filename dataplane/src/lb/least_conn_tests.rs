//! The trees of [`Loads`] pick what a scan of the pool in order picks (the first
//! member with the least connections per unit of weight, none of weight 0), for
//! random pools shared between services, as connections come and go and the
//! snapshot changes under them (with a new layout, or keeping its layout).

use super::least_conn::Loads;
use super::least_conn_layout::LeastConnLayout;
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

/// Workers the test snapshots lay their trees out for.
const WORKERS: usize = 2;

/// A snapshot whose services have the given (scheduler, pool of (backend id,
/// weight)), its trees laid out.
fn snapshot(services: &[(SchedKind, Vec<(u32, u32)>)]) -> LbSnapshot {
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
    let mut snap = LbSnapshot {
        services,
        backends,
        ..Default::default()
    };
    snap.lay_out_least_conn(WORKERS);
    snap
}

/// What a worker's scheduler asks: the trees brought up to date, then the pick.
fn pick(loads: &mut Loads, snap: &LbSnapshot, sid: u32) -> Option<u16> {
    loads.follow(&snap.least_conn);
    loads.least(sid, &snap.least_conn)
}

#[derive(Debug, Clone)]
enum Op {
    /// A new flow on service `.0 % services`: the pick, then its count.
    Flow(u8),
    /// A connection of backend `.0` ends (or a count already 0 stays 0).
    End(u32),
    /// A new snapshot: the pools as given.
    Publish(Vec<(bool, Vec<(u32, u32)>)>),
    /// A new snapshot with the same pools: the management core keeps the layout.
    Republish,
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
        1 => Just(Op::Republish),
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
        let mut pools = first;
        let mut snap = snapshot(&services_of(&pools));
        let mut loads = Loads::new(1);
        for op in &ops {
            match op {
                Op::Flow(s) => {
                    let sid = *s as usize % snap.services.len();
                    let svc = &snap.services[sid];
                    let want = scan(&loads, svc);
                    let got = pick(&mut loads, &snap, sid as u32);
                    match svc.sched {
                        SchedKind::LeastConn => prop_assert_eq!(got, want, "service {}", sid),
                        _ => prop_assert_eq!(got, None),
                    }
                    // Whatever picked it (the ring, for the others), it counts.
                    if let Some(i) = want {
                        loads.add(svc.backends[i as usize]);
                    }
                }
                Op::End(b) => loads.remove(*b),
                Op::Publish(p) => {
                    pools = p.clone();
                    snap = snapshot(&services_of(&pools));
                }
                Op::Republish => {
                    let layout = snap.least_conn.clone();
                    snap = snapshot(&services_of(&pools));
                    prop_assert!(layout.same_trees(&snap.services));
                    snap.least_conn = layout;
                }
            }
            // Every least_conn service agrees with its scan after every step,
            // not only the one a flow went to.
            for (sid, svc) in snap.services.iter().enumerate() {
                if svc.sched == SchedKind::LeastConn {
                    prop_assert_eq!(pick(&mut loads, &snap, sid as u32), scan(&loads, svc), "service {} after {:?}", sid, op);
                }
            }
        }
    }
}

#[test]
fn equal_weights_fill_in_turn_and_weights_share_in_proportion() {
    let snap = snapshot(&[(SchedKind::LeastConn, vec![(0, 1), (1, 1), (2, 2), (3, 0)])]);
    let mut loads = Loads::new(0);
    let svc = &snap.services[0];
    let mut picks = vec![];
    for _ in 0..8 {
        let i = pick(&mut loads, &snap, 0).expect("a member");
        picks.push(i);
        loads.add(svc.backends[i as usize]);
    }
    // Ties go to the first; weight 2 takes two for one; weight 0 none.
    assert_eq!(picks, [0, 1, 2, 2, 0, 1, 2, 2]);
    // A connection ending makes its backend the least loaded again.
    loads.remove(1);
    assert_eq!(pick(&mut loads, &snap, 0), Some(1));
}

#[test]
fn a_pool_of_weight_zero_or_of_no_member_has_no_pick() {
    let snap = snapshot(&[
        (SchedKind::LeastConn, vec![(0, 0), (1, 0)]),
        (SchedKind::LeastConn, vec![]),
        (SchedKind::RoundRobin, vec![(0, 1)]),
    ]);
    let mut loads = Loads::new(0);
    for sid in 0..3 {
        assert_eq!(pick(&mut loads, &snap, sid), None);
    }
}

#[test]
fn a_backend_shared_by_two_services_counts_in_both() {
    let snap = snapshot(&[
        (SchedKind::LeastConn, vec![(0, 1), (1, 1)]),
        (SchedKind::LeastConn, vec![(1, 1), (0, 1)]),
    ]);
    let mut loads = Loads::new(0);
    // A flow of service 0 on backend 0 makes backend 1 the pick of both
    // (position 1 in service 0's pool, 0 in service 1's); two on backend 1
    // make it backend 0 again.
    assert_eq!(pick(&mut loads, &snap, 0), Some(0));
    loads.add(0);
    assert_eq!(pick(&mut loads, &snap, 1), Some(0));
    assert_eq!(pick(&mut loads, &snap, 0), Some(1));
    loads.add(1);
    loads.add(1);
    assert_eq!(pick(&mut loads, &snap, 1), Some(1));
    assert_eq!(pick(&mut loads, &snap, 0), Some(0));
}

#[test]
fn trees_of_a_layout_not_followed_yet_pick_nothing() {
    // A worker asked before following a new snapshot's layout would read the
    // winners of the old one, which may index past a pool that shrank (the old
    // tree picks position 1, just past the new pool of one).
    let old = snapshot(&[(SchedKind::LeastConn, vec![(0, 1), (1, 1)])]);
    let new = snapshot(&[(SchedKind::LeastConn, vec![(0, 1)])]);
    let mut loads = Loads::new(0);
    assert_eq!(pick(&mut loads, &old, 0), Some(0));
    loads.add(0);
    assert_eq!(pick(&mut loads, &old, 0), Some(1));
    assert_eq!(loads.least(0, &new.least_conn), None);
    // Nor while a count moved that the trees have not caught up with.
    loads.follow(&new.least_conn);
    loads.add(0);
    assert_eq!(loads.least(0, &new.least_conn), None);
    assert_eq!(pick(&mut loads, &new, 0), Some(0));
}

#[test]
fn each_worker_picks_by_its_own_counts_in_a_shared_layout() {
    let snap = snapshot(&[(SchedKind::LeastConn, vec![(0, 1), (1, 1), (2, 1)])]);
    let (mut w0, mut w1) = (Loads::new(0), Loads::new(1));
    for _ in 0..2 {
        w0.add(0);
        w0.add(1);
        w1.add(0);
        w1.add(2);
    }
    assert_eq!(pick(&mut w0, &snap, 0), Some(2));
    assert_eq!(pick(&mut w1, &snap, 0), Some(1));
    // Counts moving on one worker change nothing on the other.
    w0.add(2);
    w0.add(2);
    w0.add(2);
    assert_eq!(pick(&mut w0, &snap, 0), Some(0));
    assert_eq!(pick(&mut w1, &snap, 0), Some(1));
}

#[test]
fn a_worker_the_layout_has_no_room_for_picks_nothing() {
    let mut snap = snapshot(&[(SchedKind::LeastConn, vec![(0, 1)])]);
    snap.lay_out_least_conn(1);
    let mut loads = Loads::new(1);
    loads.add(0);
    assert_eq!(pick(&mut loads, &snap, 0), None);
    assert_eq!(loads.get(0), 1);
}

#[test]
fn a_layout_has_the_same_trees_only_for_the_same_least_conn_pools_and_weights() {
    let lc = |pool: Vec<(u32, u32)>| (SchedKind::LeastConn, pool);
    let base = [
        lc(vec![(0, 1), (1, 2)]),
        (SchedKind::RingHash, vec![(2, 1)]),
    ];
    let layout = snapshot(&base).least_conn;
    assert_ne!(layout.id, 0);
    let same =
        |services: &[(SchedKind, Vec<(u32, u32)>)]| layout.same_trees(&snapshot(services).services);
    assert!(same(&base));
    // Another ring_hash pool, or a service added that is not least_conn.
    assert!(same(&[
        base[0].clone(),
        (SchedKind::RingHash, vec![(3, 5)])
    ]));
    assert!(same(&[
        base[0].clone(),
        base[1].clone(),
        (SchedKind::RoundRobin, vec![(0, 1)])
    ]));
    // A weight, a member, the order, a scheduler, a service added or gone.
    assert!(!same(&[lc(vec![(0, 1), (1, 3)]), base[1].clone()]));
    assert!(!same(&[lc(vec![(0, 1), (3, 2)]), base[1].clone()]));
    assert!(!same(&[lc(vec![(1, 2), (0, 1)]), base[1].clone()]));
    assert!(!same(&[lc(vec![(0, 1)]), base[1].clone()]));
    assert!(!same(&[lc(vec![(0, 1), (1, 2), (2, 1)]), base[1].clone()]));
    assert!(!same(&[base[0].clone(), lc(vec![(2, 1)])]));
    assert!(!same(&[
        (SchedKind::RingHash, vec![(0, 1), (1, 2)]),
        base[1].clone()
    ]));
    assert!(!same(&[base[0].clone(), base[1].clone(), lc(vec![(0, 1)])]));
    assert!(!same(&[base[1].clone()]));
    // Fewer services (never so in a snapshot: a removed one leaves a
    // placeholder): the same if the trees left out are none.
    assert!(same(&base[..1]));
    let three = snapshot(&[base[0].clone(), base[1].clone(), lc(vec![(3, 1)])]).least_conn;
    assert!(!three.same_trees(&snapshot(&base).services));
    // No least_conn service at all: the empty layout, which needs no laying out.
    let none = snapshot(&[base[1].clone()]).least_conn;
    assert_eq!(none.id, 0);
    assert!(none.segment(0).is_none());
    assert!(none.same_trees(&snapshot(&[base[1].clone(), base[1].clone()]).services));
    // Two layouts built are never one id.
    assert_ne!(snapshot(&base).least_conn.id, layout.id);
}

#[test]
fn counts_moving_thousands_of_times_between_two_picks_are_played_once_each() {
    // A burst of expiries while no new flow comes: more count changes than
    // there are backends, each backend's paths played once at the next pick.
    let snap = snapshot(&[(SchedKind::LeastConn, vec![(0, 1), (1, 1), (65, 1)])]);
    let mut loads = Loads::new(0);
    assert_eq!(pick(&mut loads, &snap, 0), Some(0));
    for _ in 0..5000 {
        loads.add(0);
        loads.add(65);
    }
    for _ in 0..3000 {
        loads.remove(0);
        loads.add(1);
    }
    // Backend 0: 2000, 1: 3000, 65: 5000.
    assert_eq!(pick(&mut loads, &snap, 0), Some(0));
    for _ in 0..1001 {
        loads.add(0);
    }
    assert_eq!(pick(&mut loads, &snap, 0), Some(1));
}

#[test]
fn each_workers_segment_is_its_nodes_in_whole_cache_lines_of_its_own() {
    // Pools of 3 and 20: trees of 4 and 32 leaves, 8 + 64 nodes, 72 in all:
    // three lines of 32 per worker.
    let lc = |n: u32| (SchedKind::LeastConn, (0..n).map(|b| (b % 12, 1)).collect());
    let mut snap = snapshot(&[lc(3), (SchedKind::RingHash, vec![(0, 1)]), lc(20)]);
    snap.lay_out_least_conn(3);
    let l = &snap.least_conn;
    let segments: Vec<_> = (0..3).map(|w| l.segment(w).expect("room")).collect();
    for (w, seg) in segments.iter().enumerate() {
        assert_eq!(seg.len(), 96, "worker {w}");
        assert_eq!(seg.as_ptr() as usize % 64, 0, "worker {w}");
    }
    assert_eq!(
        segments[1].as_ptr() as usize - segments[0].as_ptr() as usize,
        192
    );
    assert!(l.segment(3).is_none());
    assert!(LeastConnLayout::default().segment(0).is_none());
}
