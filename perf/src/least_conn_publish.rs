//! What a publish costs a worker's `least_conn` trees (`--least-conn-publish`):
//! one `least_conn` service over N backends, each with some connections on
//! this worker, and the time of the worker's first pick after a publish that
//! leaves the pool alone (the layout kept) and after one that changes a weight
//! (a new layout, played from the counts). Also the management core's build of
//! a layout and a pick in steady state (one count moved since the last).

use dataplane::lb::least_conn::Loads;
use dataplane::lb::snapshot::{LbSnapshot, SchedKind};
use serde_json::{json, Value};
use std::time::Instant;

/// Publishes timed per size (the median is reported).
const ROUNDS: usize = 31;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The first pick on `snap` after a publish, in seconds.
fn first_pick(loads: &mut Loads, snap: &LbSnapshot, sid: u32) -> f64 {
    let start = Instant::now();
    loads.follow(&snap.least_conn);
    let pick = loads.least(sid, &snap.least_conn);
    let s = start.elapsed().as_secs_f64();
    assert!(pick.is_some(), "a member to pick");
    s
}

pub fn run(sizes: &[usize]) -> Value {
    let mut out = Vec::new();
    for &n in sizes {
        let mut snap = crate::lab::with_large_pool(n, SchedKind::LeastConn);
        let sid = snap.services.len() as u32 - 1;
        let first = snap.services[sid as usize].backends[0];
        let mut loads = Loads::new(0);
        for i in 0..n as u32 {
            for _ in 0..i % 7 {
                loads.add(first + i);
            }
        }
        first_pick(&mut loads, &snap, sid);
        let (mut kept, mut relaid, mut builds, mut steady) = (vec![], vec![], vec![], vec![]);
        for r in 0..ROUNDS {
            // A publish that keeps the pool: the management core keeps the layout.
            let layout = snap.least_conn.clone();
            snap.generation += 1;
            assert!(layout.same_trees(&snap.services));
            kept.push(first_pick(&mut loads, &snap, sid));
            // One weight changed: a new layout, built on the management core.
            let w = &mut snap.services[sid as usize].weights[r % n];
            *w = if *w == 1 { 2 } else { 1 };
            let start = Instant::now();
            snap.lay_out_least_conn(1);
            builds.push(start.elapsed().as_secs_f64());
            relaid.push(first_pick(&mut loads, &snap, sid));
            // A new flow in steady state: the last one's count, then the
            // pick (the count is where the matches were played before).
            let pick = loads.least(sid, &snap.least_conn);
            let start = Instant::now();
            loads.add(first + pick.expect("a pick") as u32);
            first_pick(&mut loads, &snap, sid);
            steady.push(start.elapsed().as_secs_f64());
        }
        out.push(json!({
            "backends": n,
            "first_pick_layout_kept_us": median(kept) * 1e6,
            "first_pick_new_layout_us": median(relaid) * 1e6,
            "pick_steady_us": median(steady) * 1e6,
            "management_core_build_us": median(builds) * 1e6,
        }));
    }
    json!({ "rounds": ROUNDS, "runs": out })
}
