//! Each worker's counters: events, drops by reason, how busy its loop is, its
//! table's and local ports' fill.

use super::Family;
use crate::manager::Manager;
use dataplane::pipeline::counters::{Counter, Tally};

pub(super) fn families(f: &mut Family<'_>, m: &Manager, per: &[Tally]) {
    f.head(
        "weir_core_events_total",
        "counter",
        "Per-core event counters by name.",
    );
    for (w, c) in per.iter().enumerate() {
        let w = w.to_string();
        for k in Counter::ALL
            .iter()
            .filter(|k| !k.is_drop() && !k.is_gauge())
        {
            f.sample(
                "weir_core_events_total",
                &[("worker", &w), ("event", k.name())],
                c.get(*k) as f64,
            );
        }
    }
    f.head(
        "weir_drops_total",
        "counter",
        "Packets dropped, by core and reason.",
    );
    for (w, c) in per.iter().enumerate() {
        let w = w.to_string();
        for k in Counter::ALL.iter().filter(|k| k.is_drop()) {
            let reason = k.name().trim_start_matches("drop_");
            f.sample(
                "weir_drops_total",
                &[("worker", &w), ("reason", reason)],
                c.get(*k) as f64,
            );
        }
    }
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
