//! `show stat`: services, backends and cores: traffic, flows, drops.

use super::commands::{no_args, Reply};
use crate::config::model::{ModeConfig, Protocol};
use crate::manager::{Manager, Who};
use dataplane::lb::stats::{BackendStat, ServiceStat};
use dataplane::pipeline::counters::Counter;
use serde_json::{json, Value};
use std::fmt::Write;

/// Active connections of backend `id`, summed over the workers.
pub(super) fn active(t: &dataplane::lb::stats::LbTally, id: u32) -> u64 {
    t.get_backend(id, BackendStat::Active)
}

pub(super) fn show_stat(m: &mut Manager, args: &[&str], _: &Who) -> Result<Reply, String> {
    no_args(args)?;
    let t = m.lb_totals();
    let (total, per) = m.core_totals();
    let mut services = Vec::new();
    for (id, s) in m.services.iter().enumerate() {
        let Some(s) = s else { continue };
        let pool = &m.pools[s.pool];
        let act = t.get_service(id as u32, ServiceStat::Active);
        services.push(json!({
            "name": s.name, "vip": s.vip.to_string(), "port": s.port,
            "protocol": match s.protocol { Protocol::Tcp => "tcp", Protocol::Udp => "udp" },
            "mode": match s.mode { ModeConfig::Fullnat => "fullnat", ModeConfig::Dr => "dr" },
            "pool": pool.name,
            "packets": t.get_service(id as u32, ServiceStat::Packets),
            "bytes": t.get_service(id as u32, ServiceStat::Bytes),
            "new_flows": t.get_service(id as u32, ServiceStat::NewFlows),
            "new_flows_per_s": m.rates.0.get(id).copied().unwrap_or(0.0),
            "drops": t.get_service(id as u32, ServiceStat::Drops),
            "drops_by_reason": ServiceStat::drop_reasons()
                .map(|(k, name)| (name.to_string(), json!(t.get_service(id as u32, k))))
                .filter(|(_, n)| n.as_u64() != Some(0))
                .collect::<serde_json::Map<_, _>>(),
            "active": act,
        }));
    }
    let mut backends = Vec::new();
    for (id, b) in m.backends.iter().enumerate() {
        if b.removed {
            continue;
        }
        let Some(pool) = m.pools.iter().find(|p| p.members.contains(&(id as u32))) else {
            continue;
        };
        let id = id as u32;
        backends.push(json!({
            "name": b.key(), "address": b.addr.to_string(),
            "state": b.admin.name(), "health": b.health_name(&pool.health),
            "weight": b.weight, "effective_weight": m.new_flow_weight(id, pool),
            "active": active(&t, id),
            "total_flows": t.get_backend(id, BackendStat::NewFlows),
            "new_flows_per_s": m.rates.1.get(id as usize).copied().unwrap_or(0.0),
            "packets_in": t.get_backend(id, BackendStat::PacketsIn),
            "bytes_in": t.get_backend(id, BackendStat::BytesIn),
            "packets_out": t.get_backend(id, BackendStat::PacketsOut),
            "bytes_out": t.get_backend(id, BackendStat::BytesOut),
            "drops": t.get_backend(id, BackendStat::Drops),
            "drops_by_reason": BackendStat::drop_reasons()
                .map(|(k, name)| (name.to_string(), json!(t.get_backend(id, k))))
                .filter(|(_, n)| n.as_u64() != Some(0))
                .collect::<serde_json::Map<_, _>>(),
        }));
    }
    let cores: Vec<Value> = per
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let loops = c.get(Counter::LoopsTotal).max(1);
            json!({"worker": i, "rx_packets": c.get(Counter::RxPackets), "tx_packets": c.get(Counter::TxPackets),
                   "flows_new": c.get(Counter::FlowsNew), "handoff_out": c.get(Counter::HandoffOut),
                   "conn_entries": c.get(Counter::ConnEntries),
                   "local_ports_in_use": c.get(Counter::LocalPortsInUse),
                   "local_ports": c.get(Counter::LocalPortsCapacity),
                   "busy_ratio": c.get(Counter::LoopsBusy) as f64 / loops as f64})
        })
        .collect();
    let drops: serde_json::Map<String, Value> = Counter::ALL
        .iter()
        .filter(|c| c.is_drop())
        .map(|c| (c.name().to_string(), json!(total.get(*c))))
        .collect();
    let mut text = String::from("service          vip:port                    mode     packets     bytes       new_flows  flows/s  drops  active\n");
    for s in &services {
        let _ = writeln!(
            text,
            "{:<16} {:<27} {:<8} {:<11} {:<11} {:<10} {:<8.1} {:<6} {}",
            s["name"].as_str().unwrap_or(""),
            format!(
                "{}:{}/{}",
                s["vip"].as_str().unwrap_or(""),
                s["port"].to_string(),
                s["protocol"].as_str().unwrap_or("")
            ),
            s["mode"].as_str().unwrap_or(""),
            s["packets"].to_string(),
            s["bytes"].to_string(),
            s["new_flows"].to_string(),
            s["new_flows_per_s"].as_f64().unwrap_or(0.0),
            s["drops"].to_string(),
            s["active"]
        );
    }
    text.push_str("backend          state  health    weight  active  total_flows  flows/s  packets_in  packets_out  drops\n");
    for b in &backends {
        let _ = writeln!(
            text,
            "{:<16} {:<6} {:<9} {:<7} {:<7} {:<12} {:<8.1} {:<11} {:<12} {}",
            b["name"].as_str().unwrap_or(""),
            b["state"].as_str().unwrap_or(""),
            b["health"].as_str().unwrap_or(""),
            b["weight"].to_string(),
            b["active"].to_string(),
            b["total_flows"].to_string(),
            b["new_flows_per_s"].as_f64().unwrap_or(0.0),
            b["packets_in"].to_string(),
            b["packets_out"].to_string(),
            b["drops"]
        );
    }
    for c in &cores {
        let _ = writeln!(
            text,
            "core {}: rx {} tx {} new flows {} connections {} local ports {} of {} busy {:.1}%",
            c["worker"],
            c["rx_packets"],
            c["tx_packets"],
            c["flows_new"],
            c["conn_entries"],
            c["local_ports_in_use"],
            c["local_ports"],
            c["busy_ratio"].as_f64().unwrap_or(0.0) * 100.0
        );
    }
    let ports: Vec<Value> = (m.ports.iter().zip(&m.links))
        .map(|(p, w)| {
            let s = (p.stats)();
            let (up, speed) = (p.link)();
            json!({"name": p.name, "link_up": up, "speed_mbps": speed, "link_changes": w.changes,
                   "rx_packets": s.rx_packets, "tx_packets": s.tx_packets,
                   "rx_missed": s.rx_missed, "rx_no_mbuf": s.rx_no_mbuf,
                   "rx_errors": s.rx_errors, "tx_errors": s.tx_errors})
        })
        .collect();
    for p in &ports {
        let _ = writeln!(
            text,
            "port {}: link {} ({} changes), device rx {} tx {}, lost: missed {} no_mbuf {} rx_errors {} tx_errors {}",
            p["name"].as_str().unwrap_or(""),
            if p["link_up"].as_bool() == Some(true) { "up" } else { "down" },
            p["link_changes"],
            p["rx_packets"],
            p["tx_packets"],
            p["rx_missed"],
            p["rx_no_mbuf"],
            p["rx_errors"],
            p["tx_errors"]
        );
    }
    let mbufs = (m.mbufs)();
    let _ = writeln!(
        text,
        "mbufs: {} of {} out of the pool",
        mbufs.in_use, mbufs.capacity
    );
    let nonzero: Vec<String> = drops
        .iter()
        .filter(|(_, v)| v.as_u64() != Some(0))
        .map(|(k, v)| format!("{k} {v}"))
        .collect();
    let _ = writeln!(
        text,
        "drops: {}",
        if nonzero.is_empty() {
            "none".into()
        } else {
            nonzero.join(", ")
        }
    );
    Ok(Reply {
        text,
        json: json!({"services": services, "backends": backends, "cores": cores, "ports": ports,
                     "mbufs": {"capacity": mbufs.capacity, "in_use": mbufs.in_use}, "drops": drops}),
    })
}
