//! Checks a parsed file and turns it into the runtime model, naming the field of
//! every problem.

use super::error::{FieldPath, Invalid};
use super::model::*;
use std::collections::HashSet;
use std::net::IpAddr;

mod eal;
mod pools;
mod port;
mod services;

use eal::validate_eal;
use pools::validate_pools;
use port::validate_port;
use services::validate_services;

fn invalid(path: FieldPath, message: impl Into<String>) -> Invalid {
    Invalid {
        path,
        message: message.into(),
    }
}

/// A name of a port, pool, backend or service: 1 to 32 letters, digits, `_`, `-`.
fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 32
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

pub fn validate(f: FileConfig) -> Result<Config, Invalid> {
    let root = FieldPath::default();
    let eal = validate_eal(f.eal, &root.key("eal"))?;
    if f.port.is_empty() {
        return Err(invalid(
            root.key("port"),
            "at least one [[port]] is required",
        ));
    }
    let mut names = HashSet::new();
    let mut devices = HashSet::new();
    let mut hostifs = HashSet::new();
    let mut v4_seen = HashSet::new();
    let mut v6_seen = HashSet::new();
    let mut ports = Vec::new();
    for (i, p) in f.port.into_iter().enumerate() {
        let path = root.key("port").index(i);
        let port = validate_port(p, &path, eal.worker_cpus.len())?;
        if !names.insert(port.name.clone()) {
            return Err(invalid(
                path.key("name"),
                format!("port name {:?} is used twice", port.name),
            ));
        }
        if !devices.insert(port.device.dpdk_name().to_string()) {
            return Err(invalid(
                path.key("device"),
                format!("device {:?} is used by two ports", port.device.dpdk_name()),
            ));
        }
        if let Some(h) = &port.host_interface {
            if !hostifs.insert(h.clone()) {
                return Err(invalid(
                    path.key("host_interface"),
                    format!("host interface {h:?} is used by two ports"),
                ));
            }
        }
        for (j, a) in port.ipv4.iter().enumerate() {
            if !v4_seen.insert(a.addr) {
                return Err(invalid(
                    path.key("ipv4").index(j),
                    format!("address {} is configured twice", a.addr),
                ));
            }
        }
        for (j, a) in port.ipv6.iter().enumerate() {
            if !v6_seen.insert(a.addr) {
                return Err(invalid(
                    path.key("ipv6").index(j),
                    format!("address {} is configured twice", a.addr),
                ));
            }
        }
        ports.push(port);
    }
    for (i, p) in ports.iter().enumerate() {
        let path = root.key("port").index(i);
        for (j, a) in p.local_ipv4.iter().enumerate() {
            if !v4_seen.insert(*a) {
                return Err(invalid(
                    path.key("local_ipv4").index(j),
                    format!("address {a} is configured twice"),
                ));
            }
        }
        for (j, a) in p.local_ipv6.iter().enumerate() {
            if !v6_seen.insert(*a) {
                return Err(invalid(
                    path.key("local_ipv6").index(j),
                    format!("address {a} is configured twice"),
                ));
            }
        }
    }
    check_conn_table(&f.conn_table, &root.key("conn_table"))?;
    let pools = validate_pools(f.pool, &ports, &root)?;
    let services = validate_services(f.service, &pools, &ports, &v4_seen, &v6_seen, &root)?;
    check_admin(&f.admin, &root.key("admin"))?;
    Ok(Config {
        eal,
        ports,
        conn_table: f.conn_table,
        pools,
        services,
        admin: f.admin,
    })
}

fn check_admin(a: &AdminConfig, path: &FieldPath) -> Result<(), Invalid> {
    if a.socket.is_empty() || !a.socket.starts_with('/') || a.socket.len() > 100 {
        return Err(invalid(
            path.key("socket"),
            "an absolute path of at most 100 bytes",
        ));
    }
    if !a.metrics.is_empty() && a.metrics.parse::<std::net::SocketAddr>().is_err() {
        return Err(invalid(
            path.key("metrics"),
            format!("{:?} is not ADDRESS:PORT (e.g. 127.0.0.1:9100)", a.metrics),
        ));
    }
    Ok(())
}

fn check_conn_table(c: &ConnTableConfig, path: &FieldPath) -> Result<(), Invalid> {
    if !(16..=16_777_216).contains(&c.capacity) {
        return Err(invalid(
            path.key("capacity"),
            "must be between 16 and 16777216",
        ));
    }
    for (k, v) in [
        ("tcp_syn_timeout", c.tcp_syn_timeout),
        ("tcp_established_timeout", c.tcp_established_timeout),
        ("tcp_fin_timeout", c.tcp_fin_timeout),
        ("tcp_close_timeout", c.tcp_close_timeout),
        ("udp_timeout", c.udp_timeout),
    ] {
        if !(1..=86_400).contains(&v) {
            return Err(invalid(path.key(k), "must be between 1 and 86400 seconds"));
        }
    }
    if c.tcp_idle_reclaim > 86_400 {
        return Err(invalid(
            path.key("tcp_idle_reclaim"),
            "must be between 0 (never) and 86400 seconds",
        ));
    }
    Ok(())
}

/// The index of the port whose own prefix holds `a` (so it is reachable on-link).
pub fn port_for(a: IpAddr, ports: &[Port]) -> Option<usize> {
    ports.iter().position(|p| match a {
        IpAddr::V4(v4) => p.ipv4.iter().any(|c| c.contains(v4)),
        IpAddr::V6(v6) => p.ipv6.iter().any(|c| c.contains(v6)),
    })
}
