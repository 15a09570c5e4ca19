//! `reload` and SIGHUP: re-read the configuration file and apply it atomically as
//! one new snapshot (and open the audit log again, for log rotation). A file that fails validation, or that changes what only a
//! restart can change (EAL, ports, table size, admin endpoints), is refused and the
//! running configuration stays.

use crate::config;
use crate::manager::{Manager, Who};

pub fn reload(m: &mut Manager, who: &Who) -> Result<String, String> {
    // First, whatever the file holds: logrotate's postrotate sends SIGHUP.
    m.reopen_audit_log();
    let new = config::load(&m.cfg_path).map_err(|e| format!("reload refused: {e}"))?;
    let mut restart = Vec::new();
    if format!("{:?}", new.eal) != format!("{:?}", m.cfg.eal) {
        restart.push("eal");
    }
    if format!("{:?}", new.ports) != format!("{:?}", m.cfg.ports) {
        restart.push("port");
    }
    if new.conn_table.capacity != m.cfg.conn_table.capacity {
        restart.push("conn_table.capacity");
    }
    if new.admin != m.cfg.admin {
        restart.push("admin");
    }
    if !restart.is_empty() {
        return Err(format!(
            "reload refused: changing {} needs a restart; the running configuration stays",
            restart.join(", ")
        ));
    }
    let before = describe(m);
    m.apply_config(new)
        .map_err(|e| format!("reload refused: {e}"))?;
    m.publish();
    let after = describe(m);
    m.audit(who, "reload", &before, &after);
    Ok(format!("reloaded: {after}"))
}

/// Services and backends with weights, for the audit line.
fn describe(m: &Manager) -> String {
    let services: Vec<String> = m
        .services
        .iter()
        .flatten()
        .map(|s| s.name.clone())
        .collect();
    let backends: Vec<String> = m
        .backends
        .iter()
        .filter(|b| !b.removed)
        .map(|b| format!("{}={}", b.key(), b.weight))
        .collect();
    format!(
        "services [{}] backends [{}]",
        services.join(" "),
        backends.join(" ")
    )
}

#[cfg(test)]
#[path = "reload_tests.rs"]
mod tests;
