//! Builds the dataplane's load-balancing snapshot from the configuration and the
//! neighbour table. Ring tables depend only on the pools' names and weights, so they
//! are built once and shared by every snapshot that follows.

use crate::config::model::{Config, HashKeyConfig, ModeConfig, Protocol, SchedulerConfig};
use dataplane::lb::ring::{RingMember, RingTable};
use dataplane::lb::snapshot::{
    smooth_wrr, Backend, HashKey, LbSnapshot, LocalAddrs, Mode, SchedKind, Service,
};
use dataplane::lb::tcp_state::Timeouts;
use dataplane::wire::ip_proto;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

/// Longest weighted round-robin order kept per service.
const WRR_MAX: usize = 4096;

pub struct SnapshotBuilder {
    rings: Vec<Arc<RingTable>>,
    generation: u64,
}

impl SnapshotBuilder {
    pub fn new(cfg: &Config) -> SnapshotBuilder {
        let rings = cfg
            .services
            .iter()
            .map(|s| {
                let pool = &cfg.pools[s.pool];
                let keys: Vec<String> = pool
                    .backends
                    .iter()
                    .map(|b| format!("{}/{}", pool.name, b.name))
                    .collect();
                let members: Vec<RingMember<'_>> = keys
                    .iter()
                    .zip(&pool.backends)
                    .map(|(k, b)| RingMember {
                        key: k,
                        weight: b.weight,
                    })
                    .collect();
                Arc::new(RingTable::build(&members))
            })
            .collect();
        SnapshotBuilder {
            rings,
            generation: 0,
        }
    }

    /// A snapshot with the MACs known now.
    pub fn build(&mut self, cfg: &Config, macs: &HashMap<IpAddr, [u8; 6]>) -> LbSnapshot {
        self.generation += 1;
        let mut snap = LbSnapshot {
            generation: self.generation,
            timeouts: Timeouts {
                tcp_syn: cfg.conn_table.tcp_syn_timeout,
                tcp_established: cfg.conn_table.tcp_established_timeout,
                tcp_fin: cfg.conn_table.tcp_fin_timeout,
                tcp_close: cfg.conn_table.tcp_close_timeout,
                udp: cfg.conn_table.udp_timeout,
            },
            ..Default::default()
        };
        // Backend ids: pools in order, backends in order.
        let mut first_id = Vec::new();
        for pool in &cfg.pools {
            first_id.push(snap.backends.len() as u32);
            for b in &pool.backends {
                snap.backends.push(Backend {
                    name: format!("{}/{}", pool.name, b.name),
                    addr: b.addr,
                    port: 0, // set per service below when the pool is used
                    weight: b.weight,
                    mac: macs.get(&b.addr).copied(),
                    port_index: b.port_index,
                });
            }
        }
        for (i, s) in cfg.services.iter().enumerate() {
            let pool = &cfg.pools[s.pool];
            let ids: Vec<u32> = (0..pool.backends.len() as u32)
                .map(|j| first_id[s.pool] + j)
                .collect();
            for (id, b) in ids.iter().zip(&pool.backends) {
                snap.backends[*id as usize].port = b.port.unwrap_or(s.port);
            }
            let weights: Vec<u32> = pool.backends.iter().map(|b| b.weight).collect();
            let proto = match s.protocol {
                Protocol::Tcp => ip_proto::TCP,
                Protocol::Udp => ip_proto::UDP,
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
                sched: match s.scheduler {
                    SchedulerConfig::RingHash => SchedKind::RingHash,
                    SchedulerConfig::RoundRobin => SchedKind::RoundRobin,
                    SchedulerConfig::WeightedRoundRobin => SchedKind::WeightedRoundRobin,
                    SchedulerConfig::LeastConn => SchedKind::LeastConn,
                },
                hash_key: match s.hash_key {
                    HashKeyConfig::FiveTuple => HashKey::FiveTuple,
                    HashKeyConfig::Source => HashKey::Source,
                },
                wrr: smooth_wrr(&weights, WRR_MAX),
                weights,
                backends: ids,
                ring: self.rings[i].clone(),
                fragments: s.fragments,
            });
            let key = dataplane::lb::flow::FlowKey::new(s.vip, s.vip, 0, s.port, proto);
            snap.by_vip.insert((key.dst, s.port, proto), i as u32);
            if !snap.vips.contains(&s.vip) {
                snap.vips.push(s.vip);
            }
        }
        snap.locals = cfg
            .ports
            .iter()
            .map(|p| LocalAddrs {
                v4: p.local_ipv4.clone(),
                v6: p.local_ipv6.clone(),
            })
            .collect();
        snap.port_mtu = cfg.ports.iter().map(|p| p.mtu).collect();
        snap.index_locals();
        snap
    }
}
