//! What answering `show conns` costs a worker (`--conns-scan`): how long it
//! is kept from its queues. Before, the whole table was read in one go
//! until 1000 connections were found (reproduced here from
//! `ConnTable::iter`); now it is read `SCAN_SLOTS` ids per tick by
//! `Control::step`. Timed in the same process on an empty table (the longest
//! read), one with a live connection every 64 ids, and a full one.

use dataplane::lb::conn_table::{Conn, ConnTable};
use dataplane::lb::flow::FlowKey;
use dataplane::pipeline::control::{ConnReport, Control, Query, SCAN_SLOTS};
use serde_json::{json, Value};
use std::net::Ipv4Addr;
use std::sync::mpsc;
use std::time::Instant;

const LIMIT: usize = 1000;

/// A table of `cap` entries holding a connection at every `every`-th id
/// (none when `every` is 0).
fn table(cap: u32, every: u32) -> ConnTable {
    let mut t = ConnTable::new(cap as usize, 0);
    if every == 0 {
        return t;
    }
    for i in 0..cap {
        let src = Ipv4Addr::from(0xc612_0000 + (i >> 16));
        let fwd = FlowKey::v4(src, Ipv4Addr::new(198, 18, 0, 100), i as u16, 80, 6);
        let c = Conn {
            fwd,
            expires: 9000,
            ..Conn::default()
        };
        let h = t.hash(&fwd);
        assert_eq!(t.add(c, h), Ok(i), "ids are handed out in order");
    }
    for i in (0..cap).filter(|i| i % every != 0) {
        t.remove(i);
    }
    t
}

/// The one-go read the worker made before: seconds, connections found.
fn whole(t: &ConnTable) -> (f64, usize) {
    let start = Instant::now();
    let list: Vec<ConnReport> = t
        .iter()
        .take(LIMIT)
        .map(|(entry, c)| ConnReport {
            worker: 0,
            entry,
            conn: *c,
            age_s: 0.0,
            expires_in_s: 0.0,
        })
        .collect();
    (
        start.elapsed().as_secs_f64(),
        std::hint::black_box(list).len(),
    )
}

/// The sliced read: (longest step, all steps, steps, connections found).
fn sliced(t: &ConnTable) -> (f64, f64, usize, usize) {
    let (tx, rx) = mpsc::channel();
    let mut ctl = Control::new(rx);
    let (reply, answer) = mpsc::sync_channel(1);
    let list = Vec::with_capacity(LIMIT);
    tx.send(Query::Conns {
        service: None,
        limit: LIMIT,
        list,
        reply,
    })
    .expect("control holds the receiver");
    let (mut longest, mut total, mut steps) = (0f64, 0f64, 0);
    loop {
        let start = Instant::now();
        ctl.step(0, t, 0);
        let s = start.elapsed().as_secs_f64();
        (longest, total, steps) = (longest.max(s), total + s, steps + 1);
        if let Ok(list) = answer.try_recv() {
            return (longest, total, steps, list.len());
        }
    }
}

pub fn run(caps: &[u32]) -> Value {
    let mut out = Vec::new();
    for &cap in caps {
        for (what, every) in [("empty", 0), ("one in 64 live", 64), ("full", 1)] {
            let t = table(cap, every);
            // Best of three of each, in turns.
            let (mut before, mut after) = ((f64::INFINITY, 0), (f64::INFINITY, 0.0, 0, 0));
            for _ in 0..3 {
                let w = whole(&t);
                if w.0 < before.0 {
                    before = w;
                }
                let s = sliced(&t);
                if s.0 < after.0 {
                    after = s;
                }
            }
            out.push(json!({
                "capacity": cap, "table": what,
                "one_go_us": before.0 * 1e6, "one_go_found": before.1,
                "sliced_longest_step_us": after.0 * 1e6,
                "sliced_all_steps_us": after.1 * 1e6,
                "sliced_steps": after.2, "sliced_found": after.3,
                "longest_step_vs_one_go": after.0 / before.0,
            }));
        }
    }
    json!({ "scan_slots_per_step": SCAN_SLOTS, "limit": LIMIT, "runs": out })
}
