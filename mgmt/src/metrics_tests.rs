//! The Prometheus text as `render` writes it for a manager with two workers, a
//! port and a pool: every family declared once before its samples, and each
//! sample the value of the counter, gauge or state it names.

use super::{render, Family};
use crate::health::engine::CheckResult;
use crate::manager::{LinkWatch, PortView};
use crate::manager_tests::{manager, with_worker_tallies, EXAMPLE};
use crate::state::AdminState;
use dataplane::dpdk::mempool::PoolUse;
use dataplane::dpdk::port::PortStats;
use dataplane::lb::stats::{BackendStat, LbTally, ServiceStat};
use dataplane::pipeline::counters::{Counter, Tally};
use std::collections::HashMap;
use std::time::Duration;

/// The samples of `text` by series (`name{labels}` as written), checking on
/// the way that each comes after its family's `# TYPE` and that no family is
/// declared twice.
fn samples(text: &str) -> HashMap<String, f64> {
    let mut typed = Vec::new();
    let mut out = HashMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let name = rest.split(' ').next().unwrap().to_string();
            assert!(!typed.contains(&name), "{name} declared twice");
            typed.push(name);
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap();
        let name = series.split('{').next().unwrap();
        assert_eq!(typed.last().map(String::as_str), Some(name), "{line}");
        let old = out.insert(series.to_string(), value.parse().unwrap());
        assert!(old.is_none(), "{series} twice");
    }
    out
}

#[test]
fn every_family_holds_the_values_it_names() {
    let (mut m, _rx) = manager(EXAMPLE);
    with_worker_tallies(&mut m, 2, |w| {
        let mut t = Tally::default();
        t.add(Counter::RxPackets, 1000 * w);
        t.add(Counter::DropRunt, 3 * w);
        t.set(Counter::ConnEntries, 40 * w);
        t.add(Counter::LoopsTotal, 400);
        t.add(Counter::LoopsBusy, 100 * w);
        t
    });
    m.ports = vec![PortView {
        name: "wan".into(),
        driver: "net_af_packet".into(),
        mac: [2, 0, 0, 0, 0, 1],
        link: Box::new(|| (true, 10_000)),
        stats: Box::new(|| PortStats {
            rx_packets: 11,
            tx_packets: 12,
            rx_bytes: 13,
            tx_bytes: 14,
            rx_missed: 15,
            rx_errors: 16,
            rx_no_mbuf: 17,
            tx_errors: 18,
        }),
    }];
    m.links = vec![LinkWatch {
        up: true,
        changes: 4,
    }];
    m.mbufs = Box::new(|| PoolUse {
        capacity: 8191,
        in_use: 300,
    });
    let b1 = m.backend_id("web/b1").unwrap();
    let b2 = m.backend_id("web/b2").unwrap();
    let mut lb = LbTally::default();
    lb.service(0, ServiceStat::NewFlows, 21);
    lb.backend(b1, BackendStat::PacketsIn, 31);
    lb.backend(b1, BackendStat::PacketsOut, 32);
    lb.backend(b1, BackendStat::Active, 5);
    m.lb_counters[0].publish(&lb, m.services.len(), m.backends.len());
    m.backends[b1 as usize].weight = 9;
    m.backends[b2 as usize].admin = AdminState::Maint;
    // fall = 3 in the example: b1 is down, its last check took 4 ms.
    for _ in 0..3 {
        m.on_check(CheckResult {
            id: b1,
            ok: false,
            reason: "refused".into(),
            latency: Duration::from_millis(4),
        });
    }
    m.publish();

    let s = samples(&render(&m));
    let get = |k: &str| *s.get(k).unwrap_or_else(|| panic!("no {k}"));
    assert_eq!(get("weir_snapshot_generation"), m.generation as f64);
    for (series, want) in [
        ("weir_up", 1.0),
        // Per worker: events, drops by reason, the busy ratio, gauges.
        (
            r#"weir_core_events_total{worker="1",event="rx_packets"}"#,
            2000.0,
        ),
        (r#"weir_drops_total{worker="0",reason="runt"}"#, 3.0),
        (r#"weir_drops_total{worker="1",reason="runt"}"#, 6.0),
        (r#"weir_core_busy_ratio{worker="0"}"#, 0.25),
        (r#"weir_core_busy_ratio{worker="1"}"#, 0.5),
        (r#"weir_conn_table_entries{worker="1"}"#, 80.0),
        ("weir_conn_table_capacity", 65536.0),
        // The port and the pool.
        (r#"weir_port_up{port="wan"}"#, 1.0),
        (r#"weir_port_link_changes_total{port="wan"}"#, 4.0),
        (r#"weir_port_speed_mbps{port="wan"}"#, 10_000.0),
        (r#"weir_port_packets_total{port="wan",dir="tx"}"#, 12.0),
        (r#"weir_port_bytes_total{port="wan",dir="rx"}"#, 13.0),
        (
            r#"weir_port_drops_total{port="wan",reason="no_mbuf"}"#,
            17.0,
        ),
        ("weir_mbufs", 8191.0),
        ("weir_mbufs_in_use", 300.0),
        // Services and backends.
        (r#"weir_service_new_flows_total{service="web"}"#, 21.0),
        (
            r#"weir_backend_packets_total{backend="web/b1",direction="out"}"#,
            32.0,
        ),
        (r#"weir_backend_active_connections{backend="web/b1"}"#, 5.0),
        (r#"weir_backend_weight{backend="web/b1"}"#, 9.0),
        (r#"weir_backend_up{backend="web/b1"}"#, 0.0),
        (r#"weir_backend_up{backend="web/b2"}"#, 1.0),
        (r#"weir_backend_state{backend="web/b2",state="maint"}"#, 1.0),
        (r#"weir_backend_state{backend="web/b2",state="ready"}"#, 0.0),
        (
            r#"weir_health_checks_total{backend="web/b1",result="failed"}"#,
            3.0,
        ),
        (
            r#"weir_health_check_latency_seconds{backend="web/b1"}"#,
            0.004,
        ),
    ] {
        assert_eq!(get(series), want, "{series}");
    }
    // Drops and gauges are not events.
    assert!(!s.contains_key(r#"weir_core_events_total{worker="0",event="drop_runt"}"#));
    assert!(!s.contains_key(r#"weir_core_events_total{worker="0",event="conn_entries"}"#));
    // Only a backend checked at least once has a latency.
    assert!(!s.contains_key(r#"weir_health_check_latency_seconds{backend="web/b2"}"#));
}

#[test]
fn label_values_are_escaped_and_separated() {
    let mut out = String::new();
    let mut f = Family { out: &mut out };
    f.head("x_total", "counter", "Help.");
    f.sample("x_total", &[], 1.0);
    f.sample("x_total", &[("a", "q\"b\\s\nn"), ("b", "2")], 2.5);
    assert_eq!(
        out,
        "# HELP x_total Help.\n# TYPE x_total counter\nx_total 1\n\
         x_total{a=\"q\\\"b\\\\s\\nn\",b=\"2\"} 2.5\n"
    );
}
