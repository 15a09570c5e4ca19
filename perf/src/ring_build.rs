//! What it costs the management core to give a service a new ring table
//! (`--ring`): a whole build, and an update of the previous table when one
//! member goes down, comes back or changes weight, for pools of several sizes;
//! each against the build by the ring's definition (one score per member and
//! slot, as `RingTable::build` worked before), timed in the same process.

use dataplane::lb::ring::{RingMember, RingTable};
use serde_json::{json, Value};
use std::time::Instant;

/// Seconds `f` takes, the least of `runs` runs, and what it returned last.
fn timed<T>(runs: usize, mut f: impl FnMut() -> T) -> (f64, T) {
    let mut best = f64::INFINITY;
    let mut out = None;
    for _ in 0..runs {
        let t = Instant::now();
        out = Some(f());
        best = best.min(t.elapsed().as_secs_f64());
    }
    (best, out.expect("runs > 0"))
}

/// A pool of `n` backends, weights 1, or 1, 2, 3 in turn when `mixed`.
fn pool(n: usize, mixed: bool) -> Vec<(String, u32)> {
    (0..n)
        .map(|i| {
            let w = if mixed { 1 + i as u32 % 3 } else { 1 };
            (format!("198.18.{}.{}:80", 2 + i / 250, i % 250), w)
        })
        .collect()
}

fn members(p: &[(String, u32)]) -> Vec<RingMember<'_>> {
    p.iter()
        .map(|(k, w)| RingMember { key: k, weight: *w })
        .collect()
}

/// The figures for one pool: seconds and ratios to the definition's build.
fn one(n: usize, mixed: bool) -> Value {
    let runs = if n >= 1000 { 1 } else { 3 };
    let base = pool(n, mixed);
    let (definition, _) = timed(runs, || RingTable::build_by_definition(&members(&base)));
    let (build, table) = timed(runs, || RingTable::build(&members(&base)));
    let mut down = base.clone();
    down[n / 2].1 = 0;
    let (member_down, down_table) = timed(runs, || table.update(&members(&base), &members(&down)));
    // An update that is fast but wrong fails the run.
    let built = RingTable::build(&members(&down));
    assert!(
        (0..1u64 << 16).all(|slot| down_table.choose(slot << 48) == built.choose(slot << 48)),
        "an update differs from a build"
    );
    let (member_back, _) = timed(runs, || down_table.update(&members(&down), &members(&base)));
    let mut heavier = base.clone();
    heavier[n / 2].1 += 4;
    let (weight_up, _) = timed(runs, || table.update(&members(&base), &members(&heavier)));
    let ratio = |s: f64| s / definition;
    json!({
        "scenario": format!("ring table, {n} backends, {} weights", if mixed { "mixed" } else { "equal" }),
        "backends": n,
        "seconds_build_by_definition": definition,
        "seconds_build": build,
        "seconds_update_member_down": member_down,
        "seconds_update_member_back": member_back,
        "seconds_update_weight_up": weight_up,
        "ratio_build": ratio(build),
        "ratio_update_member_down": ratio(member_down),
        "ratio_update_member_back": ratio(member_back),
        "ratio_update_weight_up": ratio(weight_up),
    })
}

/// Every pool size in `sizes`, equal and mixed weights.
pub fn run(sizes: &[usize]) -> Value {
    let results: Vec<Value> = sizes
        .iter()
        .flat_map(|&n| [one(n, false), one(n, true)])
        .collect();
    json!({ "results": results })
}
