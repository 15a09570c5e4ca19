//! Each worker's counters: events, drops by reason, how busy its loop is, its
//! table's and local ports' fill.

use super::Family;
use crate::manager::Manager;
use dataplane::pipeline::counters::{Counter, Tally};

pub(super) fn families(f: &mut Family<'_>, m: &Manager, per: &[Tally]) {
    let events = |k: Counter| (!k.is_drop() && !k.is_gauge()).then(|| k.name());
    let events_help = "Per-core event counters by name.";
    by_counter(
        f,
        per,
        ("weir_core_events_total", events_help),
        "event",
        events,
    );
    let drops = |k: Counter| k.is_drop().then(|| k.name().trim_start_matches("drop_"));
    let drops_help = "Packets dropped, by core and reason.";
    by_counter(f, per, ("weir_drops_total", drops_help), "reason", drops);
    f.head(
        "weir_core_busy_ratio",
        "gauge",
        "Share of poll-loop iterations that found packets.",
    );
    for (w, c) in per.iter().enumerate() {
        let ratio = c.get(Counter::LoopsBusy) as f64 / c.get(Counter::LoopsTotal).max(1) as f64;
        f.sample("weir_core_busy_ratio", &[("worker", &w.to_string())], ratio);
    }
    // The workers' own gauges, one sample per worker.
    for (name, help, gauge) in [
        (
            "weir_conn_table_entries",
            "Connections in each core's table.",
            Counter::ConnEntries,
        ),
        (
            "weir_local_ports_in_use",
            "FullNAT source ports held by each core's connections.",
            Counter::LocalPortsInUse,
        ),
        (
            "weir_local_ports",
            "FullNAT source ports each core owns, over every local address.",
            Counter::LocalPortsCapacity,
        ),
    ] {
        f.head(name, "gauge", help);
        for (w, c) in per.iter().enumerate() {
            f.sample(name, &[("worker", &w.to_string())], c.get(gauge) as f64);
        }
    }
    f.head(
        "weir_conn_table_capacity",
        "gauge",
        "Connections each core's table holds.",
    );
    f.sample(
        "weir_conn_table_capacity",
        &[],
        m.cfg.conn_table.capacity as f64,
    );
}

/// A counter family with a sample per worker and counter that `value_of`
/// names: the name is label `key`'s value.
fn by_counter(
    f: &mut Family<'_>,
    per: &[Tally],
    (name, help): (&str, &str),
    key: &str,
    value_of: impl Fn(Counter) -> Option<&'static str>,
) {
    f.head(name, "counter", help);
    for (w, c) in per.iter().enumerate() {
        let w = w.to_string();
        for &k in Counter::ALL {
            if let Some(v) = value_of(k) {
                f.sample(name, &[("worker", &w), (key, v)], c.get(k) as f64);
            }
        }
    }
}
