//! The neighbour resolvers (ARP and ND for the backends' MACs), one per port
//! with a host interface.

use super::port_start::PortState;
use crate::config::model::Config;
use crate::neigh::Resolver;
use std::net::IpAddr;

/// A resolver on each port's host interface, for the backends on that port's
/// networks (a port without backends gets one too: backends may be added later).
pub(super) fn open_resolvers(cfg: &Config, ports: &[PortState]) -> Result<Vec<Resolver>, String> {
    let mut out = Vec::new();
    for (i, p) in cfg.ports.iter().enumerate() {
        let targets: Vec<IpAddr> = cfg
            .pools
            .iter()
            .flat_map(|pool| pool.backends.iter())
            .filter(|b| b.port_index == i)
            .map(|b| b.addr)
            .collect();
        let Some(ifname) = &p.host_interface else {
            continue;
        };
        let (v4, v6) = (p.ipv4.clone(), p.ipv6.clone());
        let covers: Vec<Box<dyn Fn(IpAddr) -> bool + Send>> = vec![Box::new(move |a| match a {
            IpAddr::V4(x) => v4.iter().any(|c| c.contains(x)),
            IpAddr::V6(x) => v6.iter().any(|c| c.contains(x)),
        })];
        let r = Resolver::open(
            ifname,
            ports[i].local.mac,
            p.ipv4.first().map(|c| c.addr),
            p.ipv6.first().map(|c| c.addr),
            targets,
            covers,
        )
        .map_err(|e| format!("port {}: neighbour resolution on {ifname}: {e}", p.name))?;
        out.push(r);
    }
    Ok(out)
}
