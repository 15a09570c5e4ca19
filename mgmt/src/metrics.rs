//! The Prometheus text endpoint (exposition format 0.0.4), built by the management
//! core from the per-core counters it already sums; nothing here touches the
//! packet path; `metrics_http` serves it.

use crate::manager::Manager;
use dataplane::dpdk::port::PortStats;
use dataplane::lb::stats::{BackendStat, ServiceStat};
use dataplane::pipeline::counters::Counter;
use std::fmt::Write as _;

/// Writes `# HELP`/`# TYPE` once and the samples under it.
struct Family<'a> {
    out: &'a mut String,
}

impl Family<'_> {
    fn head(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.out, "# HELP {name} {help}");
        let _ = writeln!(self.out, "# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                let v = v
                    .replace('\\', "\\\\")
                    .replace('"', "\\\"")
                    .replace('\n', "\\n");
                let _ = write!(self.out, "{k}=\"{v}\"");
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {value}");
    }
}

pub fn render(m: &Manager) -> String {
    let mut out = String::new();
    let mut f = Family { out: &mut out };
    let (_, per) = m.core_totals();
    let t = m.lb_totals();
    f.head("weir_up", "gauge", "1 while weir runs.");
    f.sample("weir_up", &[], 1.0);
    f.head("weir_uptime_seconds", "gauge", "Seconds since start.");
    f.sample(
        "weir_uptime_seconds",
        &[],
        m.started.elapsed().as_secs_f64(),
    );
    f.head(
        "weir_snapshot_generation",
        "gauge",
        "Generation of the dataplane snapshot.",
    );
    f.sample(
        "weir_snapshot_generation",
        &[],
        m.snapshot.load().generation as f64,
    );

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
    port_families(&mut f, m);
    mbuf_families(&mut f, m);
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
    out
}

/// The packet pool: what is out of it (in the devices' queues, in flight, kept
/// by the workers) against its size.
fn mbuf_families(f: &mut Family<'_>, m: &Manager) {
    let u = (m.mbufs)();
    f.head("weir_mbufs", "gauge", "The packet pool's size in mbufs.");
    f.sample("weir_mbufs", &[], u.capacity as f64);
    f.head(
        "weir_mbufs_in_use",
        "gauge",
        "Mbufs out of the packet pool (devices' queues, packets in flight, fragments kept).",
    );
    f.sample("weir_mbufs_in_use", &[], u.in_use as f64);
}

/// The devices' link state and own counters: packets and bytes each way, and
/// what they lost before a worker saw it (or failed to send), by reason.
fn port_families(f: &mut Family<'_>, m: &Manager) {
    let links: Vec<(&str, (bool, u32))> = m
        .ports
        .iter()
        .map(|p| (p.name.as_str(), (p.link)()))
        .collect();
    f.head("weir_port_up", "gauge", "1 while the port's link is up.");
    for (port, (up, _)) in &links {
        f.sample("weir_port_up", &[("port", port)], *up as u8 as f64);
    }
    f.head(
        "weir_port_link_changes_total",
        "counter",
        "Times the port's link went down or came back up.",
    );
    for (p, w) in m.ports.iter().zip(&m.links) {
        f.sample(
            "weir_port_link_changes_total",
            &[("port", &p.name)],
            w.changes as f64,
        );
    }
    f.head(
        "weir_port_speed_mbps",
        "gauge",
        "The link's speed (0 when unknown).",
    );
    for (port, (_, speed)) in &links {
        f.sample("weir_port_speed_mbps", &[("port", port)], *speed as f64);
    }
    let stats: Vec<(&str, PortStats)> = m
        .ports
        .iter()
        .map(|p| (p.name.as_str(), (p.stats)()))
        .collect();
    let rx_tx = |f: &mut Family<'_>, name: &str, help: &str, of: fn(&PortStats) -> (u64, u64)| {
        f.head(name, "counter", help);
        for (port, s) in &stats {
            let (rx, tx) = of(s);
            f.sample(name, &[("port", port), ("dir", "rx")], rx as f64);
            f.sample(name, &[("port", port), ("dir", "tx")], tx as f64);
        }
    };
    rx_tx(
        f,
        "weir_port_packets_total",
        "Packets the port's device received and sent.",
        |s| (s.rx_packets, s.tx_packets),
    );
    rx_tx(
        f,
        "weir_port_bytes_total",
        "Bytes the port's device received and sent.",
        |s| (s.rx_bytes, s.tx_bytes),
    );
    f.head(
        "weir_port_drops_total",
        "counter",
        "Packets the port's device lost (missed: RX queue full; no_mbuf: pool empty; rx_errors; tx_errors).",
    );
    for (port, s) in &stats {
        for (reason, v) in [
            ("missed", s.rx_missed),
            ("no_mbuf", s.rx_no_mbuf),
            ("rx_errors", s.rx_errors),
            ("tx_errors", s.tx_errors),
        ] {
            f.sample(
                "weir_port_drops_total",
                &[("port", port), ("reason", reason)],
                v as f64,
            );
        }
    }
}

#[cfg(test)]
#[path = "metrics_tests.rs"]
mod tests;
