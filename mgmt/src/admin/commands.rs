//! The admin commands: a keyword table `{words, usage, help, handler}` in the
//! spirit of HAProxy's `cli.c`. Every handler returns text for people and JSON for
//! machines; every change is audited with who, what, before and after.

use crate::config::model::{ModeConfig, Protocol};
use crate::manager::{Manager, Who};
use crate::state::AdminState;
use dataplane::lb::flow::FlowKey;
use dataplane::lb::local_ports::LocalPorts;
use dataplane::lb::stats::{BackendStat, ServiceStat};
use dataplane::pipeline::control::{ConnReport, Query};
use dataplane::pipeline::counters::Counter;
use dataplane::wire::ethernet::format_mac;
use serde_json::{json, Value};
use std::fmt::Write;
use std::net::{IpAddr, SocketAddr};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub struct Reply {
    pub text: String,
    pub json: Value,
}

type Handler = fn(&mut Manager, &[&str], &Who) -> Result<Reply, String>;

pub struct Cmd {
    pub words: &'static [&'static str],
    pub usage: &'static str,
    pub help: &'static str,
    handler: Handler,
}

pub const COMMANDS: &[Cmd] = &[
    Cmd {
        words: &["help"],
        usage: "help",
        help: "list the commands",
        handler: help,
    },
    Cmd {
        words: &["show", "info"],
        usage: "show info",
        help: "version, uptime, cores, ports and links",
        handler: show_info,
    },
    Cmd {
        words: &["show", "stat"],
        usage: "show stat",
        help: "services, backends and cores: traffic, flows, drops",
        handler: show_stat,
    },
    Cmd {
        words: &["show", "servers"],
        usage: "show servers",
        help: "backends: state, weight, health, last check",
        handler: show_servers,
    },
    Cmd {
        words: &["show", "health"],
        usage: "show health",
        help: "same as show servers",
        handler: show_servers,
    },
    Cmd {
        words: &["show", "conns"],
        usage: "show conns [SERVICE]",
        help: "connections in the workers' tables (first 1000)",
        handler: show_conns,
    },
    Cmd {
        words: &["show", "flow"],
        usage: "show flow tcp|udp SRC SPORT DST DPORT",
        help: "which core, entry and backend a flow uses, and why",
        handler: show_flow,
    },
    Cmd {
        words: &["set", "server"],
        usage: "set server POOL/NAME weight N | state ready|drain|maint",
        help: "change a backend's weight or state",
        handler: set_server,
    },
    Cmd {
        words: &["add", "server"],
        usage: "add server POOL NAME ADDR:PORT [weight N]",
        help: "add a backend to a pool",
        handler: add_server,
    },
    Cmd {
        words: &["del", "server"],
        usage: "del server POOL/NAME",
        help: "remove a backend (its connections run out)",
        handler: del_server,
    },
    Cmd {
        words: &["enable", "health"],
        usage: "enable health POOL/NAME",
        help: "check this backend again",
        handler: enable_health,
    },
    Cmd {
        words: &["disable", "health"],
        usage: "disable health POOL/NAME",
        help: "stop checking this backend (it counts as up)",
        handler: disable_health,
    },
    Cmd {
        words: &["reload"],
        usage: "reload",
        help: "re-read the configuration file and apply it",
        handler: reload,
    },
];

/// Longest accepted command line.
pub const MAX_LINE: usize = 4096;

/// Runs one command line. `Err` text is sent as `error: ...`.
pub fn dispatch(m: &mut Manager, line: &str, who: &Who) -> Result<Reply, String> {
    let words: Vec<&str> = line.split_whitespace().collect();
    if words.is_empty() {
        return Err("empty command; try help".into());
    }
    let cmd = COMMANDS
        .iter()
        .filter(|c| words.len() >= c.words.len() && c.words.iter().zip(&words).all(|(a, b)| a == b))
        .max_by_key(|c| c.words.len())
        .ok_or_else(|| format!("unknown command {:?}; try help", words.join(" ")))?;
    (cmd.handler)(m, &words[cmd.words.len()..], who)
        .map_err(|e| format!("{e} (usage: {})", cmd.usage))
}

fn no_args(args: &[&str]) -> Result<(), String> {
    if args.is_empty() {
        Ok(())
    } else {
        Err(format!("unexpected {:?}", args.join(" ")))
    }
}

fn help(_: &mut Manager, args: &[&str], _: &Who) -> Result<Reply, String> {
    no_args(args)?;
    let mut text = String::new();
    for c in COMMANDS {
        let _ = writeln!(text, "  {:<58} {}", c.usage, c.help);
    }
    let json = json!(COMMANDS
        .iter()
        .map(|c| json!({"usage": c.usage, "help": c.help}))
        .collect::<Vec<_>>());
    Ok(Reply { text, json })
}

fn show_info(m: &mut Manager, args: &[&str], _: &Who) -> Result<Reply, String> {
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
        "ports": ports,
        "config": m.cfg_path.display().to_string(),
        "services": m.services.iter().flatten().count(),
        "backends": m.backends.iter().filter(|b| !b.removed).count(),
        "snapshot_generation": m.snapshot.load().generation,
        "vrrp": Value::Null,
    });
    let mut t = format!(
        "version: weir {}\ndpdk: {}\nuptime: {} s\npid: {}\nmain cpu: {}\nworkers: {} on cpus {:?}\nconfig: {}\nservices: {}\nbackends: {}\nvrrp: none configured\n",
        j["version"].as_str().unwrap_or(""),
        j["dpdk"].as_str().unwrap_or(""),
        j["uptime_s"],
        j["pid"],
        j["main_cpu"],
        m.workers,
        m.cfg.eal.worker_cpus,
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

/// Active connections of backend `id`, summed over the workers.
fn active(t: &dataplane::lb::stats::LbTally, id: u32) -> u64 {
    t.get_backend(id, BackendStat::Active)
}

fn show_stat(m: &mut Manager, args: &[&str], _: &Who) -> Result<Reply, String> {
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

fn show_servers(m: &mut Manager, args: &[&str], _: &Who) -> Result<Reply, String> {
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

fn ask_all(m: &Manager, make: impl Fn(mpsc::Sender<Vec<ConnReport>>) -> Query) -> Vec<ConnReport> {
    let mut out = Vec::new();
    let mut waits = Vec::new();
    for q in &m.queries {
        let (tx, rx) = mpsc::channel();
        if q.send(make(tx)).is_ok() {
            waits.push(rx);
        }
    }
    for rx in waits {
        if let Ok(mut v) = rx.recv_timeout(Duration::from_secs(1)) {
            out.append(&mut v);
        }
    }
    out
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

fn show_conns(m: &mut Manager, args: &[&str], _: &Who) -> Result<Reply, String> {
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
        reply,
    });
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

fn show_flow(m: &mut Manager, args: &[&str], _: &Who) -> Result<Reply, String> {
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
    let (tx, rx) = mpsc::channel();
    let found = match m.queries.get(owner) {
        Some(q) if q.send(Query::Flow(key, tx)).is_ok() => {
            rx.recv_timeout(Duration::from_secs(1)).ok().flatten()
        }
        _ => None,
    };
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
        dataplane::lb::snapshot::HashKey::FiveTuple => key.hash_5tuple(),
        dataplane::lb::snapshot::HashKey::Source => key.hash_source(),
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

fn set_server(m: &mut Manager, args: &[&str], who: &Who) -> Result<Reply, String> {
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

fn add_server(m: &mut Manager, args: &[&str], who: &Who) -> Result<Reply, String> {
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
    if m.backends.len() >= dataplane::lb::snapshot::MAX_BACKENDS {
        return Err("backend ids exhausted; reload or restart".into());
    }
    m.backends.push(crate::manager::new_backend_slot(
        pool,
        name,
        sa.ip(),
        Some(sa.port()),
        port_index,
        weight,
    ));
    let id = (m.backends.len() - 1) as u32;
    m.pools[pi].members.push(id);
    changed(
        m,
        who,
        &format!("add server {pool}/{name}"),
        "absent",
        &format!("{sa} weight {weight}"),
    )
}

fn del_server(m: &mut Manager, args: &[&str], who: &Who) -> Result<Reply, String> {
    let [key] = args else {
        return Err("need POOL/NAME".into());
    };
    let id = backend_arg(m, key)?;
    m.backends[id as usize].removed = true;
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

fn enable_health(m: &mut Manager, args: &[&str], who: &Who) -> Result<Reply, String> {
    set_check(m, args, who, true)
}

fn disable_health(m: &mut Manager, args: &[&str], who: &Who) -> Result<Reply, String> {
    set_check(m, args, who, false)
}

fn reload(m: &mut Manager, args: &[&str], who: &Who) -> Result<Reply, String> {
    no_args(args)?;
    crate::reload::reload(m, who).map(|summary| Reply {
        text: format!("{summary}\n"),
        json: json!({"ok": true, "summary": summary}),
    })
}
