//! Each backend's traffic, connections, drops, weight, state, health verdict
//! and checks.

use super::Family;
use crate::manager::Manager;
use dataplane::lb::stats::{BackendStat, LbTally};

pub(super) fn families(f: &mut Family<'_>, m: &Manager, t: &LbTally) {
    let backends: Vec<(u32, &crate::state::BackendSlot, &crate::state::PoolState)> = m
        .pools
        .iter()
        .flat_map(|p| p.members.iter().map(move |&id| (id, p)))
        .map(|(id, p)| (id, &m.backends[id as usize], p))
        .collect();
    for (stat, name, dir, help) in [
        (
            BackendStat::PacketsIn,
            "weir_backend_packets_total",
            "in",
            "Packets to (in) and from (out) a backend.",
        ),
        (
            BackendStat::PacketsOut,
            "weir_backend_packets_total",
            "out",
            "",
        ),
        (
            BackendStat::BytesIn,
            "weir_backend_bytes_total",
            "in",
            "Bytes to (in) and from (out) a backend.",
        ),
        (BackendStat::BytesOut, "weir_backend_bytes_total", "out", ""),
    ] {
        if !help.is_empty() {
            f.head(name, "counter", help);
        }
        for (id, b, _) in &backends {
            f.sample(
                name,
                &[("backend", &b.key()), ("direction", dir)],
                t.get_backend(*id, stat) as f64,
            );
        }
    }
    f.head(
        "weir_backend_new_flows_total",
        "counter",
        "Connections sent to a backend.",
    );
    for (id, b, _) in &backends {
        f.sample(
            "weir_backend_new_flows_total",
            &[("backend", &b.key())],
            t.get_backend(*id, BackendStat::NewFlows) as f64,
        );
    }
    f.head(
        "weir_backend_drops_total",
        "counter",
        "Packets for a backend that could not be sent to it.",
    );
    for (id, b, _) in &backends {
        let v = t.get_backend(*id, BackendStat::Drops) as f64;
        f.sample("weir_backend_drops_total", &[("backend", &b.key())], v);
    }
    let name = "weir_backend_drops_by_reason_total";
    f.head(
        name,
        "counter",
        "Packets for a backend that could not be sent to it, by reason (drop_no_neighbor: its MAC unknown; drop_backend_maint: blocked).",
    );
    for (id, b, _) in &backends {
        for (stat, reason) in BackendStat::drop_reasons() {
            let v = t.get_backend(*id, stat) as f64;
            f.sample(name, &[("backend", &b.key()), ("reason", reason)], v);
        }
    }
    f.head(
        "weir_backend_active_connections",
        "gauge",
        "Connections to a backend in the tables, all cores.",
    );
    for (id, b, _) in &backends {
        f.sample(
            "weir_backend_active_connections",
            &[("backend", &b.key())],
            t.get_backend(*id, BackendStat::Active) as f64,
        );
    }
    f.head(
        "weir_backend_weight",
        "gauge",
        "Configured (runtime) weight.",
    );
    for (_, b, _) in &backends {
        f.sample(
            "weir_backend_weight",
            &[("backend", &b.key())],
            b.weight as f64,
        );
    }
    f.head(
        "weir_backend_up",
        "gauge",
        "1 when the health verdict is up (or unchecked), 0 when down.",
    );
    for (_, b, p) in &backends {
        let up = b.health_name(&p.health) != "down";
        f.sample(
            "weir_backend_up",
            &[("backend", &b.key())],
            if up { 1.0 } else { 0.0 },
        );
    }
    f.head(
        "weir_backend_state",
        "gauge",
        "Administrative state: 1 for the current one.",
    );
    for (_, b, _) in &backends {
        for s in ["ready", "drain", "maint"] {
            let v = if b.admin.name() == s { 1.0 } else { 0.0 };
            f.sample(
                "weir_backend_state",
                &[("backend", &b.key()), ("state", s)],
                v,
            );
        }
    }
    f.head(
        "weir_health_checks_total",
        "counter",
        "Health checks run, by result.",
    );
    for (_, b, _) in &backends {
        f.sample(
            "weir_health_checks_total",
            &[("backend", &b.key()), ("result", "ok")],
            b.checks_ok as f64,
        );
        f.sample(
            "weir_health_checks_total",
            &[("backend", &b.key()), ("result", "failed")],
            b.checks_failed as f64,
        );
    }
    f.head(
        "weir_health_check_latency_seconds",
        "gauge",
        "Duration of the last health check.",
    );
    for (_, b, _) in &backends {
        if let Some(c) = &b.last_check {
            f.sample(
                "weir_health_check_latency_seconds",
                &[("backend", &b.key())],
                c.latency.as_secs_f64(),
            );
        }
    }
}
