//! What expiring connections costs a worker (`--expiry`): a table whose
//! entries all fall due in one tick (a burst of flows opened together, a SYN
//! flood's half-open entries), expired in one call as before and in calls of
//! `EXPIRE_PER_CALL` entries as `LbCore::expire` now makes them, the worker's
//! longest hold each way. Timed in the same process, on FullNAT entries (both
//! keys indexed).

use dataplane::lb::conn_table::{Conn, ConnTable};
use dataplane::lb::core::EXPIRE_PER_CALL;
use dataplane::lb::flow::FlowKey;
use serde_json::{json, Value};
use std::net::Ipv4Addr;
use std::time::Instant;

const DUE: u64 = 10;

/// `n` connections, every one due at tick `DUE`.
fn table(n: u32) -> ConnTable {
    let mut t = ConnTable::new(n as usize, 0);
    for i in 0..n {
        let client = Ipv4Addr::from(0xc612_0000 + (i >> 16));
        let local = Ipv4Addr::from(0xc612_0200 + (i >> 16));
        let fwd = FlowKey::v4(client, Ipv4Addr::new(198, 18, 0, 100), i as u16, 80, 6);
        let rev = FlowKey::v4(Ipv4Addr::new(198, 18, 0, 11), local, 80, i as u16, 6);
        let c = Conn {
            fwd,
            rev: Some(rev),
            expires: DUE,
            ..Conn::default()
        };
        let h = t.hash(&fwd);
        t.add(c, h).expect("room for every entry");
        t.index_pending();
    }
    t
}

/// Expires everything in calls of `per_call` entries: (longest call, all
/// calls, calls), in seconds.
fn expire_all(t: &mut ConnTable, per_call: usize) -> (f64, f64, usize) {
    let (mut longest, mut total, mut calls) = (0f64, 0f64, 0);
    while !t.is_empty() {
        let start = Instant::now();
        t.expire(DUE, 64, per_call, |_| {});
        let s = start.elapsed().as_secs_f64();
        (longest, total, calls) = (longest.max(s), total + s, calls + 1);
    }
    (longest, total, calls)
}

pub fn run(sizes: &[u32]) -> Value {
    let mut out = Vec::new();
    for &n in sizes {
        let (one, _, _) = expire_all(&mut table(n), usize::MAX);
        let (longest, total, calls) = expire_all(&mut table(n), EXPIRE_PER_CALL);
        out.push(json!({
            "entries": n,
            "one_call_us": one * 1e6,
            "bounded_longest_call_us": longest * 1e6,
            "bounded_all_calls_us": total * 1e6,
            "bounded_calls": calls,
            "longest_vs_one_call": longest / one,
        }));
    }
    json!({ "expire_per_call": EXPIRE_PER_CALL, "runs": out })
}
