//! The pools: their backends (names, addresses on a port's network, weights)
//! and health checks.

use super::{invalid, is_name, port_for};
use crate::config::error::{FieldPath, Invalid};
use crate::config::model::*;
use std::net::IpAddr;

/// Every pool (each name once, at least one backend, weights not all zero),
/// each backend on the network of a port that holds its address.
pub(super) fn validate_pools(
    pools: Vec<PoolConfig>,
    ports: &[Port],
    root: &FieldPath,
) -> Result<Vec<Pool>, Invalid> {
    let mut out: Vec<Pool> = Vec::new();
    let mut total = 0usize;
    for (i, p) in pools.into_iter().enumerate() {
        let path = root.key("pool").index(i);
        if !is_name(&p.name) {
            return Err(invalid(
                path.key("name"),
                "use 1 to 32 letters, digits, '-' and '_'",
            ));
        }
        if out.iter().any(|q| q.name == p.name) {
            return Err(invalid(
                path.key("name"),
                format!("pool {:?} is defined twice", p.name),
            ));
        }
        if p.backend.is_empty() {
            return Err(invalid(
                path.key("backend"),
                "a pool needs at least one [[pool.backend]]",
            ));
        }
        let mut backends: Vec<Backend> = Vec::new();
        for (j, b) in p.backend.into_iter().enumerate() {
            let bp = path.key("backend").index(j);
            if !is_name(&b.name) || backends.iter().any(|x| x.name == b.name) {
                return Err(invalid(
                    bp.key("name"),
                    format!("{:?}: backend names are unique in a pool, 1 to 32 letters, digits, '-' and '_'", b.name),
                ));
            }
            let addr: IpAddr = b.address.parse().map_err(|_| {
                invalid(
                    bp.key("address"),
                    format!("{:?} is not an IP address", b.address),
                )
            })?;
            let Some(port_index) = port_for(addr, ports) else {
                return Err(invalid(
                    bp.key("address"),
                    format!("{addr} is not in the prefix of any port's ipv4/ipv6 addresses: it is not reachable"),
                ));
            };
            if b.weight > 10_000 {
                return Err(invalid(bp.key("weight"), "must be between 0 and 10000"));
            }
            if b.port == Some(0) {
                return Err(invalid(bp.key("port"), "must be between 1 and 65535"));
            }
            backends.push(Backend {
                name: b.name,
                addr,
                port: b.port,
                weight: b.weight,
                port_index,
            });
        }
        if backends.iter().all(|b| b.weight == 0) {
            return Err(invalid(
                path.key("backend"),
                "every backend has weight 0: the pool can take no traffic",
            ));
        }
        total += backends.len();
        if total > dataplane::lb::snapshot::MAX_BACKENDS {
            return Err(invalid(
                path,
                "more backends than the appliance supports (4096)",
            ));
        }
        check_health(&p.health, &path.key("health"))?;
        if p.drain_timeout > 86_400 {
            return Err(invalid(path.key("drain_timeout"), "at most 86400 seconds"));
        }
        out.push(Pool {
            name: p.name,
            backends,
            health: p.health,
            drain_timeout: p.drain_timeout,
        });
    }
    Ok(out)
}

/// Validates a pool's health check.
fn check_health(h: &HealthConfig, path: &FieldPath) -> Result<(), Invalid> {
    if !(100..=3_600_000).contains(&h.interval_ms) {
        return Err(invalid(
            path.key("interval_ms"),
            "must be between 100 and 3600000",
        ));
    }
    if h.timeout_ms == 0 || h.timeout_ms > h.interval_ms {
        return Err(invalid(
            path.key("timeout_ms"),
            "must be between 1 and interval_ms",
        ));
    }
    if h.jitter_ms >= h.interval_ms {
        return Err(invalid(
            path.key("jitter_ms"),
            "must be less than interval_ms",
        ));
    }
    for (k, v) in [("rise", h.rise), ("fall", h.fall)] {
        if !(1..=100).contains(&v) {
            return Err(invalid(path.key(k), "must be between 1 and 100"));
        }
    }
    if !h.http_path.starts_with('/') || h.http_path.contains(char::is_whitespace) {
        return Err(invalid(
            path.key("http_path"),
            "an absolute path without spaces",
        ));
    }
    if h.http_status.is_empty() || h.http_status.iter().any(|s| !(100..=599).contains(s)) {
        return Err(invalid(
            path.key("http_status"),
            "status codes between 100 and 599",
        ));
    }
    if h.port == Some(0) {
        return Err(invalid(path.key("port"), "must be between 1 and 65535"));
    }
    Ok(())
}
