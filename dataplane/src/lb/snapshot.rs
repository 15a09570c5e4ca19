//! The immutable load-balancing state the management core builds and publishes to
//! the workers: services, backends (with their resolved MACs), VIPs, FullNAT local
//! addresses and timeouts. Workers load it once per burst; ids are indexes into
//! `services` and `backends` and stay below `MAX_SERVICES` / `MAX_BACKENDS`, which
//! size the per-core counters.

use super::addr_table::{AddrEntry, AddrTable};
use super::flow::FlowKey;
use super::least_conn_layout::LeastConnLayout;
use super::ring::RingTable;
use super::tcp_state::Timeouts;
use hashbrown::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

pub const MAX_SERVICES: usize = 256;
pub const MAX_BACKENDS: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Destination and source rewritten; replies come back through the balancer.
    FullNat,
    /// Only the destination MAC rewritten; the backend answers the client directly.
    Dr,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SchedKind {
    RingHash,
    RoundRobin,
    WeightedRoundRobin,
    LeastConn,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashKey {
    FiveTuple,
    Source,
}

#[derive(Debug, Clone)]
pub struct Backend {
    /// `pool/name`.
    pub name: String,
    pub addr: IpAddr,
    pub port: u16,
    pub weight: u32,
    /// Resolved by ARP/ND on the management core; `None` until then.
    pub mac: Option<[u8; 6]>,
    /// Index of the port the backend is reached through.
    pub port_index: usize,
    /// In maintenance (or drained past its deadline): not even existing TCP
    /// connections are forwarded to it (UDP flows move, as for `down`).
    pub blocked: bool,
    /// Failing its health checks: UDP flows on it move to another backend (TCP
    /// connections stay: they cannot move, and a check can fail while they work).
    pub down: bool,
}

#[derive(Debug, Clone)]
pub struct Service {
    pub name: String,
    pub vip: IpAddr,
    pub port: u16,
    pub proto: u8,
    pub mode: Mode,
    pub sched: SchedKind,
    pub hash_key: HashKey,
    /// Seed of the flow hash that picks backends ([`FLOW_HASH_SEED`], or the
    /// service's `hash_secret`'s).
    ///
    /// [`FLOW_HASH_SEED`]: super::flow::FLOW_HASH_SEED
    pub hash_seed: u64,
    /// Backend ids, in pool order.
    pub backends: Vec<u32>,
    /// Their weights in this service (0: no new flows).
    pub weights: Vec<u32>,
    /// The port each backend listens on for this service.
    pub ports: Vec<u16>,
    /// Over `backends` (indexes into it); used by `ring_hash` and as the stateless
    /// fallback of every scheduler.
    pub ring: Arc<RingTable>,
    /// Smooth weighted round-robin order (indexes into `backends`).
    pub wrr: Vec<u16>,
    /// Forward IPv4/IPv6 fragments by a 3-tuple hash (dr only).
    pub fragments: bool,
}

/// FullNAT source addresses of one port.
#[derive(Debug, Clone, Default)]
pub struct LocalAddrs {
    pub v4: Vec<Ipv4Addr>,
    pub v6: Vec<Ipv6Addr>,
}

/// Where a port's FullNAT addresses sit in the flat list (`LbSnapshot::local_flat`).
#[derive(Debug, Clone, Default)]
pub struct LocalRanges {
    pub v4: std::ops::Range<usize>,
    pub v6: std::ops::Range<usize>,
}

#[derive(Debug, Clone, Default)]
pub struct LbSnapshot {
    /// Different in every snapshot published (`show info`, metrics).
    pub generation: u64,
    pub services: Vec<Service>,
    pub backends: Vec<Backend>,
    /// (VIP, port, protocol) -> service id.
    pub by_vip: HashMap<([u8; 16], u16, u8), u32>,
    /// Every VIP address (answered for ARP, ND and ping).
    pub vips: Vec<IpAddr>,
    /// FullNAT local addresses per port index.
    pub locals: Vec<LocalAddrs>,
    /// Every local address, port by port, IPv4 before IPv6: the index a worker's
    /// source-port pools use.
    pub local_flat: Vec<IpAddr>,
    pub local_ranges: Vec<LocalRanges>,
    /// IP MTU of each port, by index.
    pub port_mtu: Vec<u16>,
    /// VIPs and local addresses, for one look-up per packet.
    /// Built by [`LbSnapshot::index_locals`] from `vips`, `locals` and `by_vip`:
    /// what the packet path looks addresses and services up in.
    pub addrs: AddrTable,
    pub timeouts: Timeouts,
    /// The `least_conn` trees of `services`, with room for each worker's
    /// winners: the same one from snapshot to snapshot while those pools and
    /// their weights stay the same ([`LbSnapshot::lay_out_least_conn`]).
    pub least_conn: Arc<LeastConnLayout>,
}

/// What an address the balancer answers for is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddrKind {
    Vip,
    /// A FullNAT source address: traffic to it is a reply from a backend.
    Local,
}

impl LbSnapshot {
    /// Lays out the `least_conn` trees of `services` for `workers` workers
    /// (after the services change; the management core keeps the previous
    /// layout instead when it has the same trees).
    pub fn lay_out_least_conn(&mut self, workers: usize) {
        self.least_conn = Arc::new(LeastConnLayout::build(&self.services, workers));
    }

    /// Fills `local_flat`, `local_ranges` and `kinds` from `locals` and `vips`.
    pub fn index_locals(&mut self) {
        self.local_flat.clear();
        self.local_ranges.clear();
        for l in &self.locals {
            let a = self.local_flat.len();
            self.local_flat.extend(l.v4.iter().map(|&x| IpAddr::V4(x)));
            let b = self.local_flat.len();
            self.local_flat.extend(l.v6.iter().map(|&x| IpAddr::V6(x)));
            let c = self.local_flat.len();
            self.local_ranges.push(LocalRanges { v4: a..b, v6: b..c });
        }
        let key = |a: IpAddr| {
            let k = FlowKey::new(a, a, 0, 0, 0);
            (k.dst, k.v6)
        };
        let addrs = self
            .vips
            .iter()
            .map(|&v| (key(v), AddrKind::Vip))
            .chain(self.local_flat.iter().map(|&l| (key(l), AddrKind::Local)));
        let services = self.by_vip.iter().map(|(&(dst, port, proto), &id)| {
            let v6 = self
                .services
                .get(id as usize)
                .is_some_and(|s| s.vip.is_ipv6());
            ((dst, v6), port, proto, id)
        });
        self.addrs = AddrTable::build(addrs, services);
    }

    #[inline]
    pub fn kind(&self, a: IpAddr) -> Option<AddrKind> {
        let k = FlowKey::new(a, a, 0, 0, 0);
        self.addrs.kind(&k.dst, k.v6)
    }

    #[inline]
    pub fn local_range(&self, port: usize, v6: bool) -> std::ops::Range<usize> {
        match self.local_ranges.get(port) {
            Some(r) if v6 => r.v6.clone(),
            Some(r) => r.v4.clone(),
            None => 0..0,
        }
    }

    /// The service a client packet with key `k` is for.
    #[inline]
    pub fn service_for(&self, k: &FlowKey) -> Option<u32> {
        self.addrs.service(&k.dst, k.v6, k.dport, k.proto)
    }

    /// Addresses the dataplane answers ARP/ND/ping for beyond the port's own.
    /// `kind` for an IPv4 address, without the family dispatch.
    #[inline]
    pub fn kind_v4(&self, a: Ipv4Addr) -> Option<AddrKind> {
        self.addrs.kind(&a.to_ipv6_mapped().octets(), false)
    }

    /// The table entry of an IPv4 address (its kind, and its services).
    #[inline]
    pub fn entry_v4(&self, a: Ipv4Addr) -> Option<AddrEntry<'_>> {
        self.addrs.entry(&a.to_ipv6_mapped().octets(), false)
    }

    /// The table entry of an IPv6 address.
    #[inline]
    pub fn entry_v6(&self, a: &Ipv6Addr) -> Option<AddrEntry<'_>> {
        self.addrs.entry(&a.octets(), true)
    }

    #[inline]
    pub fn answers_v4(&self, a: Ipv4Addr) -> bool {
        self.kind_v4(a).is_some()
    }

    #[inline]
    pub fn answers_v6(&self, a: &Ipv6Addr) -> bool {
        self.kind(IpAddr::V6(*a)).is_some()
    }

    /// Solicited-node group of a VIP or local address.
    pub fn solicited_node_v6(&self, group: &Ipv6Addr) -> bool {
        let ours = |a: &Ipv6Addr| crate::wire::ipv6::solicited_node(a) == *group;
        self.vips
            .iter()
            .any(|v| matches!(v, IpAddr::V6(a) if ours(a)))
            || self.locals.iter().any(|l| l.v6.iter().any(ours))
    }
}

/// A smooth weighted round-robin order (nginx's algorithm): each backend appears
/// `weight` times, spread out rather than in runs. Long weights are scaled down so
/// the order stays at most `max_len` long.
pub fn smooth_wrr(weights: &[u32], max_len: usize) -> Vec<u16> {
    let total: u64 = weights.iter().map(|&w| w as u64).sum();
    if total == 0 {
        return Vec::new();
    }
    let scale = (total as f64 / max_len as f64).max(1.0);
    let w: Vec<i64> = weights
        .iter()
        .map(|&x| {
            if x == 0 {
                0
            } else {
                ((x as f64 / scale).round() as i64).max(1)
            }
        })
        .collect();
    let sum: i64 = w.iter().sum();
    let mut current = vec![0i64; w.len()];
    let mut out = Vec::with_capacity(sum as usize);
    for _ in 0..sum {
        let mut best = 0;
        for i in 0..w.len() {
            current[i] += w[i];
            if current[i] > current[best] {
                best = i;
            }
        }
        current[best] -= sum;
        out.push(best as u16);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smooth_wrr_interleaves_by_weight() {
        let s = smooth_wrr(&[5, 1, 1], 1000);
        assert_eq!(s, vec![0, 0, 1, 0, 2, 0, 0]);
        let s = smooth_wrr(&[1, 2, 3], 1000);
        let count = |i| s.iter().filter(|&&x| x == i).count();
        assert_eq!((count(0), count(1), count(2)), (1, 2, 3));
        assert!(smooth_wrr(&[0, 0], 10).is_empty());
        let s = smooth_wrr(&[1_000_000, 1], 100);
        assert!(s.len() <= 101 && s.contains(&1));
    }
}
