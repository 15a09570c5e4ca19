//! The ports' devices and the packet pool.

use super::Family;
use crate::manager::Manager;
use dataplane::dpdk::port::PortStats;

/// The packet pool: what is out of it (in the devices' queues, in flight, kept
/// by the workers) against its size.
pub(super) fn mbuf_families(f: &mut Family<'_>, m: &Manager) {
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
pub(super) fn port_families(f: &mut Family<'_>, m: &Manager) {
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
