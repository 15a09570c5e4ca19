//! `show conns` and `show flow`: the workers' connection entries, asked
//! of the workers over their query channels.

use super::commands::Reply;
use crate::manager::{Manager, Who};
use dataplane::lb::flow::FlowKey;
use dataplane::lb::local_ports::LocalPorts;
use dataplane::pipeline::control::{ConnReport, Query, SCAN_SLOTS};
use dataplane::pipeline::worker::TX_DRAIN_US;
use serde_json::{json, Value};
use std::fmt::Write;
use std::net::{IpAddr, SocketAddr};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long a worker may take to answer: a `show conns` reads its table
/// `SCAN_SLOTS` ids a tick (every `TX_DRAIN_US`), twice that time and a second.
pub(crate) fn answer_wait(capacity: u32) -> Duration {
    let ticks = u64::from(capacity / SCAN_SLOTS + 1);
    Duration::from_secs(1) + Duration::from_micros(2 * ticks * TX_DRAIN_US)
}

fn no_answer(worker: usize, wait: Duration) -> String {
    format!(
        "core {worker} did not answer within {:.1} s (is it stuck? see show stat)",
        wait.as_secs_f64()
    )
}

fn ask_all(
    m: &Manager,
    make: impl Fn(mpsc::SyncSender<Vec<ConnReport>>) -> Query,
) -> Result<Vec<ConnReport>, String> {
    let wait = answer_wait(m.cfg.conn_table.capacity);
    let deadline = Instant::now() + wait;
    let mut waits = Vec::new();
    for (w, q) in m.queries.iter().enumerate() {
        // One slot, made here: the worker's send allocates nothing.
        let (tx, rx) = mpsc::sync_channel(1);
        q.send(make(tx))
            .map_err(|_| format!("core {w} has stopped"))?;
        waits.push(rx);
    }
    let mut out = Vec::new();
    for (w, rx) in waits.into_iter().enumerate() {
        let left = deadline.saturating_duration_since(Instant::now());
        let mut v = rx.recv_timeout(left).map_err(|_| no_answer(w, wait))?;
        out.append(&mut v);
    }
    Ok(out)
}

fn conn_json(m: &Manager, r: &ConnReport) -> Value {
    let c = &r.conn;
    let svc = m
        .services
        .get(c.service as usize)
        .and_then(|s| s.as_ref())
        .map(|s| s.name.clone());
    json!({
        "worker": r.worker, "entry": r.entry,
        "protocol": if c.fwd.proto == 6 { "tcp" } else { "udp" },
        "client": SocketAddr::new(c.fwd.src_ip(), c.fwd.sport).to_string(),
        "vip": SocketAddr::new(c.fwd.dst_ip(), c.fwd.dport).to_string(),
        "local": c.rev.map(|k| SocketAddr::new(k.dst_ip(), k.dport).to_string()),
        "service": svc,
        "backend": m.backends.get(c.backend as usize).map(|b| b.key()),
        "state": c.state.name(),
        "packets": c.packets, "bytes": c.bytes,
        "age_s": r.age_s, "expires_in_s": r.expires_in_s,
    })
}

pub(super) fn show_conns(m: &mut Manager, args: &[&str], _: &Who) -> Result<Reply, String> {
    let service = match args {
        [] => None,
        [name] => Some(
            m.services
                .iter()
                .position(|s| s.as_ref().is_some_and(|s| s.name == *name))
                .ok_or_else(|| format!("no service {name:?}"))? as u32,
        ),
        _ => return Err("too many arguments".into()),
    };
    let list = ask_all(m, |reply| Query::Conns {
        service,
        limit: 1000,
        list: Vec::with_capacity(1000),
        reply,
    })?;
    let json: Vec<Value> = list.iter().map(|r| conn_json(m, r)).collect();
    let mut text = format!("{} connection(s)\n", json.len());
    for c in &json {
        let _ = writeln!(
            text,
            "core {} {} {} -> {} via {} -> {} {} age {:.1}s expires {:.1}s",
            c["worker"],
            c["protocol"].as_str().unwrap_or(""),
            c["client"].as_str().unwrap_or(""),
            c["vip"].as_str().unwrap_or(""),
            c["local"].as_str().unwrap_or("-"),
            c["backend"].as_str().unwrap_or("?"),
            c["state"].as_str().unwrap_or(""),
            c["age_s"].as_f64().unwrap_or(0.0),
            c["expires_in_s"].as_f64().unwrap_or(0.0)
        );
    }
    Ok(Reply {
        text,
        json: json!(json),
    })
}

pub(super) fn show_flow(m: &mut Manager, args: &[&str], _: &Who) -> Result<Reply, String> {
    let [proto, src, sport, dst, dport] = args else {
        return Err("need 5 arguments".into());
    };
    let proto = match *proto {
        "tcp" => 6u8,
        "udp" => 17u8,
        p => return Err(format!("protocol {p:?} is not tcp or udp")),
    };
    let ip = |s: &str| {
        s.parse::<IpAddr>()
            .map_err(|_| format!("{s:?} is not an IP address"))
    };
    let port = |s: &str| s.parse::<u16>().map_err(|_| format!("{s:?} is not a port"));
    let key = FlowKey::new(ip(src)?, ip(dst)?, port(sport)?, port(dport)?, proto);
    let snap = m.snapshot.load();
    let workers = m.workers.max(1) as u64;
    let is_local = snap.kind(key.dst_ip()) == Some(dataplane::lb::snapshot::AddrKind::Local);
    let owner = if is_local {
        LocalPorts::owner(key.dport, workers as u16) as usize
    } else {
        key.owner_by(workers as u16, m.steering.as_deref()) as usize
    };
    let (tx, rx) = mpsc::sync_channel(1);
    let q = m
        .queries
        .get(owner)
        .ok_or_else(|| format!("no core {owner}"))?;
    q.send(Query::Flow(key, tx))
        .map_err(|_| format!("core {owner} has stopped"))?;
    // A look-up is answered at the worker's next tick, unless a `show conns`
    // is reading its table: then after it.
    let wait = answer_wait(m.cfg.conn_table.capacity);
    let found = rx.recv_timeout(wait).map_err(|_| no_answer(owner, wait))?;
    if let Some(r) = found {
        let mut j = conn_json(m, &r);
        j["why"] = json!("entry");
        let text = format!(
            "owner: core {}\nentry: {} ({})\nservice: {}\nbackend: {} (entry hit)\nclient: {}\nlocal: {}\npackets: {} bytes: {}\nage: {:.1}s, expires in {:.1}s\n",
            owner, r.entry, r.conn.state.name(), j["service"].as_str().unwrap_or("?"),
            j["backend"].as_str().unwrap_or("?"), j["client"].as_str().unwrap_or(""),
            j["local"].as_str().unwrap_or("-"), r.conn.packets, r.conn.bytes, r.age_s, r.expires_in_s
        );
        return Ok(Reply { text, json: j });
    }
    if is_local {
        let text = format!("owner: core {owner}\nno entry: a reply to this local address and port is dropped (drop_no_flow)\n");
        return Ok(Reply {
            text,
            json: json!({"worker": owner, "entry": null, "backend": null, "why": "no entry"}),
        });
    }
    let Some(sid) = snap.service_for(&key) else {
        return Err(format!(
            "no service on {}:{} {}",
            key.dst_ip(),
            key.dport,
            if proto == 6 { "tcp" } else { "udp" }
        ));
    };
    let svc = &snap.services[sid as usize];
    let h = match svc.hash_key {
        dataplane::lb::snapshot::HashKey::FiveTuple => key.hash_5tuple(svc.hash_seed),
        dataplane::lb::snapshot::HashKey::Source => key.hash_source(svc.hash_seed),
    };
    let idx = svc.ring.choose(h);
    let backend = svc
        .backends
        .get(idx as usize)
        .and_then(|&b| m.backends.get(b as usize))
        .map(|b| b.key());
    let text = format!(
        "owner: core {owner}\nentry: none\nservice: {}\nbackend: {} (hash: the consistent hash picks it for a new or mid-stream flow)\n",
        svc.name, backend.as_deref().unwrap_or("none")
    );
    Ok(Reply {
        text,
        json: json!({"worker": owner, "entry": null, "service": svc.name, "backend": backend, "why": "hash"}),
    })
}
