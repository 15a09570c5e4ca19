//! How the manager's state becomes the workers' snapshot: services with their
//! backends' weights, ring tables (kept from one snapshot to the next and
//! updated in place), round-robin orders, `least_conn` trees (kept while their
//! pools are the same), MACs, local addresses and timeouts.

use crate::config::model::{ModeConfig, Protocol};
use crate::manager::Manager;
use crate::state::PoolState;
use dataplane::lb::ring::{RingMember, RingTable};
use dataplane::lb::snapshot::{
    smooth_wrr, Backend, HashKey, LbSnapshot, LocalAddrs, Mode, SchedKind, Service,
};
use dataplane::lb::tcp_state::Timeouts;
use dataplane::wire::ip_proto;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A service's ring and the (backend, weight) list it was built from.
pub(crate) type CachedRing = (Vec<(String, u32)>, Arc<RingTable>);

/// Service `id`'s ring table for the (backend, weight) list `keys`: the one it
/// has when `keys` are unchanged, one another service has for the same list (a
/// shared pool), or its previous table updated: a backend going down or up
/// changes one weight, and an update takes a millisecond or two where a build
/// takes about 0.2 s for 1,000 backends.
fn ring_for(
    cache: &mut HashMap<u32, CachedRing>,
    id: u32,
    keys: &[(String, u32)],
) -> Arc<RingTable> {
    if let Some((k, r)) = cache.get(&id) {
        if k == keys {
            return r.clone();
        }
    }
    let r = match cache.values().find(|(k, _)| k == keys) {
        Some((_, r)) => r.clone(),
        None => Arc::new(match cache.get(&id) {
            Some((old, r)) => r.update(&ring_members(old), &ring_members(keys)),
            None => RingTable::build(&ring_members(keys)),
        }),
    };
    cache.insert(id, (keys.to_vec(), r.clone()));
    r
}

fn ring_members(keys: &[(String, u32)]) -> Vec<RingMember<'_>> {
    keys.iter()
        .map(|(k, w)| RingMember { key: k, weight: *w })
        .collect()
}

/// Longest weighted round-robin order kept per service.
const WRR_MAX: usize = 4096;

impl Manager {
    pub(crate) fn build_snapshot(&mut self) -> LbSnapshot {
        self.generation += 1;
        let now = Instant::now();
        let t = &self.cfg.conn_table;
        let mut snap = LbSnapshot {
            generation: self.generation,
            timeouts: Timeouts {
                tcp_syn: t.tcp_syn_timeout,
                tcp_established: t.tcp_established_timeout,
                tcp_fin: t.tcp_fin_timeout,
                tcp_close: t.tcp_close_timeout,
                udp: t.udp_timeout,
                tcp_idle_reclaim: t.tcp_idle_reclaim,
            },
            ..Default::default()
        };
        // Each backend's pool, found once (not a search per backend).
        let mut pool_of: Vec<Option<&PoolState>> = vec![None; self.backends.len()];
        for p in &self.pools {
            for &m in &p.members {
                if let Some(slot @ None) = pool_of.get_mut(m as usize) {
                    *slot = Some(p);
                }
            }
        }
        for (b, &pool) in self.backends.iter().zip(&pool_of) {
            let drain = pool.map_or(Duration::ZERO, |p| {
                Duration::from_secs(p.drain_timeout as u64)
            });
            snap.backends.push(Backend {
                name: b.key(),
                addr: b.addr,
                port: b.port.unwrap_or(0),
                weight: b.weight,
                mac: self.macs.get(&b.addr).copied(),
                port_index: b.port_index,
                blocked: b.blocked(drain, now),
                down: pool.is_some_and(|p| b.health_name(&p.health) == "down"),
            });
        }
        // Tables of removed services go (the cache would keep each one alive).
        let services = &self.services;
        self.rings
            .retain(|&id, _| services.get(id as usize).is_some_and(Option::is_some));
        for (id, slot) in self.services.iter().enumerate() {
            let Some(s) = slot else {
                snap.services.push(placeholder_service(id));
                continue;
            };
            let pool = &self.pools[s.pool];
            let ids = pool.members.clone();
            let weights = self.pool_weights(pool);
            let ports: Vec<u16> = ids
                .iter()
                .map(|&i| self.backends[i as usize].port.unwrap_or(s.port))
                .collect();
            let keys: Vec<(String, u32)> = ids
                .iter()
                .zip(&weights)
                .map(|(&i, &w)| (self.backends[i as usize].key(), w))
                .collect();
            let ring = ring_for(&mut self.rings, id as u32, &keys);
            let proto = match s.protocol {
                Protocol::Tcp => ip_proto::TCP,
                Protocol::Udp => ip_proto::UDP,
            };
            let sched = match s.scheduler {
                crate::config::model::SchedulerConfig::RingHash => SchedKind::RingHash,
                crate::config::model::SchedulerConfig::RoundRobin => SchedKind::RoundRobin,
                crate::config::model::SchedulerConfig::WeightedRoundRobin => {
                    SchedKind::WeightedRoundRobin
                }
                crate::config::model::SchedulerConfig::LeastConn => SchedKind::LeastConn,
            };
            snap.services.push(Service {
                name: s.name.clone(),
                vip: s.vip,
                port: s.port,
                proto,
                mode: match s.mode {
                    ModeConfig::Fullnat => Mode::FullNat,
                    ModeConfig::Dr => Mode::Dr,
                },
                sched,
                hash_key: match s.hash_key {
                    crate::config::model::HashKeyConfig::FiveTuple => HashKey::FiveTuple,
                    crate::config::model::HashKeyConfig::Source => HashKey::Source,
                },
                hash_seed: s.hash_seed,
                // Only its own scheduler reads the order (up to 4096 long, at
                // a cost of its length times the pool's size).
                wrr: if sched == SchedKind::WeightedRoundRobin {
                    smooth_wrr(&weights, WRR_MAX)
                } else {
                    Vec::new()
                },
                weights,
                ports,
                backends: ids,
                ring,
                fragments: s.fragments,
            });
            let key = dataplane::lb::flow::FlowKey::new(s.vip, s.vip, 0, s.port, proto);
            snap.by_vip.insert((key.dst, s.port, proto), id as u32);
            if !snap.vips.contains(&s.vip) {
                snap.vips.push(s.vip);
            }
        }
        snap.locals = self
            .cfg
            .ports
            .iter()
            .map(|p| LocalAddrs {
                v4: p.local_ipv4.clone(),
                v6: p.local_ipv6.clone(),
            })
            .collect();
        snap.port_mtu = self.cfg.ports.iter().map(|p| p.mtu).collect();
        snap.index_locals();
        // The workers' least_conn winners stay valid while the trees do: a
        // new layout costs each worker a pass over all of its nodes.
        let layout = self.snapshot.load().least_conn.clone();
        if layout.same_trees(&snap.services) {
            snap.least_conn = layout;
        } else {
            snap.lay_out_least_conn(self.workers);
        }
        snap
    }
}

/// The ring of a service with no backends, shared by every placeholder (a
/// table is 128 KiB).
fn empty_ring() -> Arc<RingTable> {
    static EMPTY: std::sync::OnceLock<Arc<RingTable>> = std::sync::OnceLock::new();
    EMPTY
        .get_or_init(|| Arc::new(RingTable::build(&[])))
        .clone()
}

/// A removed service keeps its id; it takes no traffic.
fn placeholder_service(id: usize) -> Service {
    Service {
        name: format!("(removed {id})"),
        vip: IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
        port: 0,
        proto: 0,
        mode: Mode::Dr,
        sched: SchedKind::RingHash,
        hash_key: HashKey::FiveTuple,
        hash_seed: dataplane::lb::flow::FLOW_HASH_SEED,
        backends: Vec::new(),
        weights: Vec::new(),
        ports: Vec::new(),
        ring: empty_ring(),
        wrr: Vec::new(),
        fragments: false,
    }
}
