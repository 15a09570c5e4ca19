//! `show info`: version, uptime, cores, ports and links.

use super::commands::{no_args, Reply};
use crate::manager::{Manager, Who};
use dataplane::wire::ethernet::format_mac;
use serde_json::{json, Value};
use std::fmt::Write;

pub(super) fn show_info(m: &mut Manager, args: &[&str], _: &Who) -> Result<Reply, String> {
    no_args(args)?;
    let ports: Vec<Value> = m
        .ports
        .iter()
        .map(|p| {
            let (up, speed) = (p.link)();
            json!({"name": p.name, "driver": p.driver, "mac": format_mac(&p.mac),
                   "link": if up { "up" } else { "down" }, "speed_mbps": speed})
        })
        .collect();
    let j = json!({
        "version": env!("CARGO_PKG_VERSION"),
        "dpdk": dataplane::dpdk::Eal::version(),
        "uptime_s": m.started.elapsed().as_secs(),
        "pid": std::process::id(),
        "main_cpu": m.cfg.eal.main_cpu,
        "workers": m.workers,
        "worker_cpus": m.cfg.eal.worker_cpus,
        "flow_owners": m.flow_owners,
        "ports": ports,
        "config": m.cfg_path.display().to_string(),
        "services": m.services.iter().flatten().count(),
        "backends": m.backends.iter().filter(|b| !b.removed).count(),
        "snapshot_generation": m.snapshot.load().generation,
        "vrrp": Value::Null,
    });
    let mut t = format!(
        "version: weir {}\ndpdk: {}\nuptime: {} s\npid: {}\nmain cpu: {}\nworkers: {} on cpus {:?}\nflows belong to: {}\nconfig: {}\nservices: {}\nbackends: {}\nvrrp: none configured\n",
        j["version"].as_str().unwrap_or(""),
        j["dpdk"].as_str().unwrap_or(""),
        j["uptime_s"],
        j["pid"],
        j["main_cpu"],
        m.workers,
        m.cfg.eal.worker_cpus,
        m.flow_owners,
        j["config"].as_str().unwrap_or(""),
        j["services"],
        j["backends"],
    );
    for p in &ports {
        let _ = writeln!(
            t,
            "port {}: driver {} mac {} link {} {} Mb/s",
            p["name"].as_str().unwrap_or(""),
            p["driver"].as_str().unwrap_or(""),
            p["mac"].as_str().unwrap_or(""),
            p["link"].as_str().unwrap_or(""),
            p["speed_mbps"]
        );
    }
    Ok(Reply { text: t, json: j })
}
