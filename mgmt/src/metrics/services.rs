//! Each service's packets, bytes, new flows and drops (by reason).

use super::Family;
use crate::manager::Manager;
use dataplane::lb::stats::{LbTally, ServiceStat};

pub(super) fn families(f: &mut Family<'_>, m: &Manager, t: &LbTally) {
    let services: Vec<(u32, String)> = m
        .services
        .iter()
        .enumerate()
        .filter_map(|(i, s)| s.as_ref().map(|s| (i as u32, s.name.clone())))
        .collect();
    for (stat, name, help) in [
        (
            ServiceStat::Packets,
            "weir_service_packets_total",
            "Packets through a service, both directions.",
        ),
        (
            ServiceStat::Bytes,
            "weir_service_bytes_total",
            "Bytes through a service, both directions.",
        ),
        (
            ServiceStat::NewFlows,
            "weir_service_new_flows_total",
            "Connections created for a service.",
        ),
        (
            ServiceStat::Drops,
            "weir_service_drops_total",
            "Packets for a service that were dropped.",
        ),
    ] {
        f.head(name, "counter", help);
        for (id, s) in &services {
            f.sample(name, &[("service", s)], t.get_service(*id, stat) as f64);
        }
    }
    let name = "weir_service_drops_by_reason_total";
    f.head(
        name,
        "counter",
        "Packets for a service that were dropped, by reason (the global drop counter's name).",
    );
    for (id, s) in &services {
        for (stat, reason) in ServiceStat::drop_reasons() {
            let v = t.get_service(*id, stat) as f64;
            f.sample(name, &[("service", s), ("reason", reason)], v);
        }
    }
}
