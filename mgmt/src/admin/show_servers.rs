//! `show servers`: each backend's state, weight and health.

use super::commands::{no_args, Reply};
use super::show_stat::active;
use crate::manager::{Manager, Who};
use dataplane::wire::ethernet::format_mac;
use serde_json::json;
use std::fmt::Write;
use std::net::SocketAddr;

pub(super) fn show_servers(m: &mut Manager, args: &[&str], _: &Who) -> Result<Reply, String> {
    no_args(args)?;
    let t = m.lb_totals();
    let mut list = Vec::new();
    let mut text = String::from("backend          address                 state  health     weight  active  last check                checks ok/failed\n");
    for pool in &m.pools {
        for &id in &pool.members {
            let b = &m.backends[id as usize];
            let last = b.last_check.as_ref().map(|c| {
                json!({"ok": c.ok, "reason": c.reason, "latency_ms": c.latency.as_secs_f64() * 1000.0})
            });
            let last_text = b.last_check.as_ref().map_or("-".to_string(), |c| {
                format!("{} {:.1}ms", c.reason, c.latency.as_secs_f64() * 1000.0)
            });
            let act = active(&t, id);
            let _ = writeln!(
                text,
                "{:<16} {:<23} {:<6} {:<10} {:<7} {:<7} {:<25} {}/{}",
                b.key(),
                SocketAddr::new(b.addr, b.port.unwrap_or(0))
                    .to_string()
                    .trim_end_matches(":0"),
                b.admin.name(),
                b.health_name(&pool.health),
                b.weight,
                act,
                last_text,
                b.checks_ok,
                b.checks_failed
            );
            list.push(json!({
                "name": b.key(), "address": b.addr.to_string(), "port": b.port,
                "state": b.admin.name(), "health": b.health_name(&pool.health),
                "check": format!("{:?}", pool.health.kind).to_lowercase(),
                "check_enabled": b.check_enabled, "weight": b.weight,
                "effective_weight": m.new_flow_weight(id, pool), "active": act,
                "last_check": last, "checks_ok": b.checks_ok, "checks_failed": b.checks_failed,
                "mac": m.macs.get(&b.addr).map(format_mac),
            }));
        }
    }
    Ok(Reply {
        text,
        json: json!(list),
    })
}
