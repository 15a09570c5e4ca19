//! Each backend's traffic, connections, drops, weight, state, health verdict
//! and checks.

use super::Family;
use crate::manager::Manager;
use crate::state::{BackendSlot, PoolState};
use dataplane::lb::stats::{BackendStat, LbTally};

/// A pool member: its id, its slot, its pool.
type Member<'a> = (u32, &'a BackendSlot, &'a PoolState);

pub(super) fn families(f: &mut Family<'_>, m: &Manager, t: &LbTally) {
    let backends: Vec<Member<'_>> = m
        .pools
        .iter()
        .flat_map(|p| p.members.iter().map(move |&id| (id, p)))
        .map(|(id, p)| (id, &m.backends[id as usize], p))
        .collect();
    let each = |f: &mut Family<'_>, kind, (name, help), value: &dyn Fn(&Member<'_>) -> f64| {
        f.head(name, kind, help);
        for b in &backends {
            f.sample(name, &[("backend", &b.1.key())], value(b));
        }
    };
    let stat = |s: BackendStat| move |&(id, _, _): &Member<'_>| t.get_backend(id, s) as f64;

    for (name, help, inward, outward) in [
        (
            "weir_backend_packets_total",
            "Packets to (in) and from (out) a backend.",
            BackendStat::PacketsIn,
            BackendStat::PacketsOut,
        ),
        (
            "weir_backend_bytes_total",
            "Bytes to (in) and from (out) a backend.",
            BackendStat::BytesIn,
            BackendStat::BytesOut,
        ),
    ] {
        f.head(name, "counter", help);
        for (dir, s) in [("in", inward), ("out", outward)] {
            for (id, b, _) in &backends {
                let v = t.get_backend(*id, s) as f64;
                f.sample(name, &[("backend", &b.key()), ("direction", dir)], v);
            }
        }
    }
    let new_flows = (
        "weir_backend_new_flows_total",
        "Connections sent to a backend.",
    );
    each(f, "counter", new_flows, &stat(BackendStat::NewFlows));
    let drops = (
        "weir_backend_drops_total",
        "Packets for a backend that could not be sent to it.",
    );
    each(f, "counter", drops, &stat(BackendStat::Drops));
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
    let active = (
        "weir_backend_active_connections",
        "Connections to a backend in the tables, all cores.",
    );
    each(f, "gauge", active, &stat(BackendStat::Active));
    let weight = ("weir_backend_weight", "Configured (runtime) weight.");
    each(f, "gauge", weight, &|(_, b, _)| b.weight as f64);
    let up = (
        "weir_backend_up",
        "1 when the health verdict is up (or unchecked), 0 when down.",
    );
    each(f, "gauge", up, &|(_, b, p)| {
        (b.health_name(&p.health) != "down") as u8 as f64
    });
    let name = "weir_backend_state";
    f.head(
        name,
        "gauge",
        "Administrative state: 1 for the current one.",
    );
    for (_, b, _) in &backends {
        for s in ["ready", "drain", "maint"] {
            let v = (b.admin.name() == s) as u8 as f64;
            f.sample(name, &[("backend", &b.key()), ("state", s)], v);
        }
    }
    let name = "weir_health_checks_total";
    f.head(name, "counter", "Health checks run, by result.");
    for (_, b, _) in &backends {
        for (result, n) in [("ok", b.checks_ok), ("failed", b.checks_failed)] {
            f.sample(name, &[("backend", &b.key()), ("result", result)], n as f64);
        }
    }
    let name = "weir_health_check_latency_seconds";
    f.head(name, "gauge", "Duration of the last health check.");
    for (_, b, _) in &backends {
        if let Some(c) = &b.last_check {
            let v = c.latency.as_secs_f64();
            f.sample(name, &[("backend", &b.key())], v);
        }
    }
}
