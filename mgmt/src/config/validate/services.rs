//! The services: VIP, port and protocol (each once), mode, scheduler, pool.

use super::{invalid, is_name};
use crate::config::error::{FieldPath, Invalid};
use crate::config::model::*;
use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Every service: a VIP none of the ports' own addresses, each VIP, port and
/// protocol once, a pool that exists.
pub(super) fn validate_services(
    services: Vec<ServiceConfig>,
    pools: &[Pool],
    ports: &[Port],
    own_v4: &HashSet<Ipv4Addr>,
    own_v6: &HashSet<Ipv6Addr>,
    root: &FieldPath,
) -> Result<Vec<Service>, Invalid> {
    let mut out: Vec<Service> = Vec::new();
    if services.len() > dataplane::lb::snapshot::MAX_SERVICES {
        return Err(invalid(root.key("service"), "at most 256 services"));
    }
    for (i, s) in services.into_iter().enumerate() {
        let path = root.key("service").index(i);
        if !is_name(&s.name) || out.iter().any(|x| x.name == s.name) {
            return Err(invalid(
                path.key("name"),
                format!(
                    "{:?}: service names are unique, 1 to 32 letters, digits, '-' and '_'",
                    s.name
                ),
            ));
        }
        let vip: IpAddr = s
            .vip
            .parse()
            .map_err(|_| invalid(path.key("vip"), format!("{:?} is not an IP address", s.vip)))?;
        let taken = match vip {
            IpAddr::V4(a) => {
                own_v4.contains(&a) || a.is_unspecified() || a.is_multicast() || a.is_broadcast()
            }
            IpAddr::V6(a) => own_v6.contains(&a) || a.is_unspecified() || a.is_multicast(),
        };
        if taken {
            return Err(invalid(
                path.key("vip"),
                format!("{vip} is a port or local address, or not unicast"),
            ));
        }
        if s.port == 0 {
            return Err(invalid(path.key("port"), "must be between 1 and 65535"));
        }
        let proto = s.protocol;
        if out
            .iter()
            .any(|x| x.vip == vip && x.port == s.port && x.protocol == proto)
        {
            return Err(invalid(
                path.key("vip"),
                format!(
                    "another service already has {vip} port {} {:?}",
                    s.port, proto
                ),
            ));
        }
        let Some(pool) = pools.iter().position(|p| p.name == s.pool) else {
            return Err(invalid(
                path.key("pool"),
                format!("no [[pool]] named {:?}", s.pool),
            ));
        };
        for b in &pools[pool].backends {
            if b.addr.is_ipv4() != vip.is_ipv4() {
                return Err(invalid(
                    path.key("pool"),
                    format!(
                        "backend {} is {} but the VIP is not: no address-family translation",
                        b.name, b.addr
                    ),
                ));
            }
            match s.mode {
                ModeConfig::Dr => {
                    if b.port.is_some_and(|p| p != s.port) {
                        return Err(invalid(
                            path.key("mode"),
                            format!("dr cannot change ports: backend {} listens on {}, the service on {}", b.name, b.port.unwrap_or(0), s.port),
                        ));
                    }
                }
                ModeConfig::Fullnat => {
                    let p = &ports[b.port_index];
                    let has_local = if vip.is_ipv4() {
                        !p.local_ipv4.is_empty()
                    } else {
                        !p.local_ipv6.is_empty()
                    };
                    if !has_local {
                        return Err(invalid(
                            path.key("mode"),
                            format!(
                                "fullnat needs a local_{} address on port {} (where backend {} is)",
                                if vip.is_ipv4() { "ipv4" } else { "ipv6" },
                                p.name,
                                b.name
                            ),
                        ));
                    }
                }
            }
            if ports[b.port_index].host_interface.is_none() {
                return Err(invalid(
                    path.key("pool"),
                    format!(
                        "port {} needs a host_interface to resolve backend {}'s MAC",
                        ports[b.port_index].name, b.name
                    ),
                ));
            }
        }
        let hash_seed = match s.hash_secret.as_deref() {
            None => dataplane::lb::flow::FLOW_HASH_SEED,
            Some(secret) if secret.chars().count() < 16 => {
                return Err(invalid(
                    path.key("hash_secret"),
                    "at least 16 characters: a secret clients cannot guess",
                ))
            }
            Some(secret) => dataplane::lb::flow::seed_from_secret(secret),
        };
        if s.fragments && s.mode != ModeConfig::Dr {
            return Err(invalid(
                path.key("fragments"),
                "fragments can only be forwarded in dr mode",
            ));
        }
        out.push(Service {
            name: s.name,
            vip,
            port: s.port,
            protocol: proto,
            mode: s.mode,
            scheduler: s.scheduler,
            hash_key: s.hash_key,
            hash_seed,
            pool,
            fragments: s.fragments,
        });
    }
    Ok(out)
}
