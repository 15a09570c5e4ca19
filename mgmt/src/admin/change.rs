//! The commands that change the running state (backends' state, weight and
//! membership, health checks, reload), each audited and published.

use super::commands::{no_args, Reply};
use crate::config::model::ModeConfig;
use crate::manager::{Manager, Who};
use crate::state::AdminState;
use serde_json::json;
use std::net::SocketAddr;
use std::time::Instant;

fn backend_arg(m: &Manager, s: &str) -> Result<u32, String> {
    m.backend_id(s)
        .ok_or_else(|| format!("no backend {s:?} (POOL/NAME)"))
}

fn changed(
    m: &mut Manager,
    who: &Who,
    what: &str,
    before: &str,
    after: &str,
) -> Result<Reply, String> {
    m.audit(who, what, before, after);
    m.publish();
    Ok(Reply {
        text: format!("{what}: {before} -> {after}\n"),
        json: json!({"ok": true, "what": what, "before": before, "after": after}),
    })
}

pub(super) fn set_server(m: &mut Manager, args: &[&str], who: &Who) -> Result<Reply, String> {
    let [key, field, value] = args else {
        return Err("need 3 arguments".into());
    };
    let id = backend_arg(m, key)? as usize;
    match *field {
        "weight" => {
            let w: u32 = value
                .parse()
                .ok()
                .filter(|w| *w <= 10_000)
                .ok_or_else(|| format!("weight {value:?} is not 0..10000"))?;
            let before = m.backends[id].weight.to_string();
            m.backends[id].weight = w;
            changed(
                m,
                who,
                &format!("set server {key} weight"),
                &before,
                &w.to_string(),
            )
        }
        "state" => {
            let new = match *value {
                "ready" => AdminState::Ready,
                "drain" => AdminState::Drain(Instant::now()),
                "maint" => AdminState::Maint,
                v => return Err(format!("state {v:?} is not ready, drain or maint")),
            };
            let before = m.backends[id].admin.name();
            if before == new.name() {
                return Ok(Reply {
                    text: format!("{key} is already {before}\n"),
                    json: json!({"ok": true, "unchanged": true}),
                });
            }
            m.backends[id].admin = new;
            changed(
                m,
                who,
                &format!("set server {key} state"),
                before,
                new.name(),
            )
        }
        f => Err(format!("{f:?} is not weight or state")),
    }
}

pub(super) fn add_server(m: &mut Manager, args: &[&str], who: &Who) -> Result<Reply, String> {
    let (pool, name, addr, weight) = match args {
        [p, n, a] => (*p, *n, *a, 1u32),
        [p, n, a, "weight", w] => (
            *p,
            *n,
            *a,
            w.parse()
                .ok()
                .filter(|w| *w <= 10_000)
                .ok_or_else(|| format!("weight {w:?} is not 0..10000"))?,
        ),
        _ => return Err("wrong arguments".into()),
    };
    let sa: SocketAddr = addr
        .parse()
        .map_err(|_| format!("{addr:?} is not ADDR:PORT ([v6]:port for IPv6)"))?;
    let pi = m
        .pools
        .iter()
        .position(|p| p.name == pool)
        .ok_or_else(|| format!("no pool {pool:?}"))?;
    if name.is_empty()
        || name.len() > 32
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(format!(
            "{name:?}: use 1 to 32 letters, digits, '-' and '_'"
        ));
    }
    if m.backend_id(&format!("{pool}/{name}")).is_some() {
        return Err(format!("{pool}/{name} exists"));
    }
    let port_index = crate::config::validate::port_for(sa.ip(), &m.cfg.ports)
        .ok_or_else(|| format!("{} is not in any port's prefix: unreachable", sa.ip()))?;
    for s in m.services.iter().flatten().filter(|s| s.pool == pi) {
        if s.vip.is_ipv4() != sa.is_ipv4() {
            return Err(format!(
                "service {} has a {} VIP",
                s.name,
                if s.vip.is_ipv4() { "IPv4" } else { "IPv6" }
            ));
        }
        if s.mode == ModeConfig::Dr && s.port != sa.port() {
            return Err(format!(
                "service {} is dr on port {}: the backend must listen there",
                s.name, s.port
            ));
        }
        if s.mode == ModeConfig::Fullnat {
            let p = &m.cfg.ports[port_index];
            if (sa.is_ipv4() && p.local_ipv4.is_empty())
                || (sa.is_ipv6() && p.local_ipv6.is_empty())
            {
                return Err(format!(
                    "service {} is fullnat and port {} has no local address of that family",
                    s.name, p.name
                ));
            }
        }
    }
    let slot = crate::manager::new_slot(pool, name, sa.ip(), Some(sa.port()), port_index, weight);
    // A backend of this name removed earlier takes its id back once its
    // connections are gone.
    let id = match crate::manager::free_backend_id(&m.backends, &m.lb_totals(), pool, name) {
        Some(id) => {
            m.backends[id] = slot;
            id as u32
        }
        None if m.backends.len() >= dataplane::lb::snapshot::MAX_BACKENDS => {
            let totals = m.lb_totals();
            let id = crate::manager::recyclable_backend_id(&m.backends, &totals, Instant::now())
                .ok_or_else(|| {
                    format!(
                        "backend ids exhausted ({}), none free of connections for {} s; \
                         try again later",
                        dataplane::lb::snapshot::MAX_BACKENDS,
                        crate::manager::RECYCLE_AFTER.as_secs()
                    )
                })?;
            m.recycle_backend_id(id, slot);
            id as u32
        }
        None => {
            m.backends.push(slot);
            (m.backends.len() - 1) as u32
        }
    };
    m.pools[pi].members.push(id);
    changed(
        m,
        who,
        &format!("add server {pool}/{name}"),
        "absent",
        &format!("{sa} weight {weight}"),
    )
}

pub(super) fn del_server(m: &mut Manager, args: &[&str], who: &Who) -> Result<Reply, String> {
    let [key] = args else {
        return Err("need POOL/NAME".into());
    };
    let id = backend_arg(m, key)?;
    m.backends[id as usize].removed = true;
    m.backends[id as usize].removed_at = Some(Instant::now());
    for p in m.pools.iter_mut() {
        p.members.retain(|&b| b != id);
    }
    changed(m, who, &format!("del server {key}"), "present", "removed")
}

fn set_check(m: &mut Manager, args: &[&str], who: &Who, on: bool) -> Result<Reply, String> {
    let [key] = args else {
        return Err("need POOL/NAME".into());
    };
    let id = backend_arg(m, key)? as usize;
    let before = if m.backends[id].check_enabled {
        "enabled"
    } else {
        "disabled"
    };
    m.backends[id].check_enabled = on;
    if on {
        m.backends[id].health = Default::default();
    }
    changed(
        m,
        who,
        &format!("health {key}"),
        before,
        if on { "enabled" } else { "disabled" },
    )
}

pub(super) fn enable_health(m: &mut Manager, args: &[&str], who: &Who) -> Result<Reply, String> {
    set_check(m, args, who, true)
}

pub(super) fn disable_health(m: &mut Manager, args: &[&str], who: &Who) -> Result<Reply, String> {
    set_check(m, args, who, false)
}

pub(super) fn reload(m: &mut Manager, args: &[&str], who: &Who) -> Result<Reply, String> {
    no_args(args)?;
    crate::reload::reload(m, who).map(|summary| Reply {
        text: format!("{summary}\n"),
        json: json!({"ok": true, "summary": summary}),
    })
}
