//! The management core's state and its one owner: backends, pools and services with
//! stable ids, runtime weights and states, health verdicts, neighbour MACs. Every
//! change goes through here and ends in a new snapshot for the workers.

mod audit;
mod backend_ids;
mod retired;
mod totals;

pub use audit::Who;
pub use backend_ids::{free_backend_id, new_slot, recyclable_backend_id, RECYCLE_AFTER};

use crate::announce::Announcer;
use crate::config::model::{CheckKind, Config};
use crate::health::engine::{self, CheckResult, Probe, Target};
use crate::health::{http, verdict::Transition};
use crate::log;
use crate::neigh::{self, Resolver};
use crate::snapshot_build::CachedRing;
use crate::state::{AdminState, BackendSlot, PoolState, ServiceSlot};
use arc_swap::ArcSwap;
use audit::open_audit;
use dataplane::dpdk::mempool::PoolUse;
use dataplane::dpdk::port::PortStats;
use dataplane::lb::snapshot::{LbSnapshot, MAX_BACKENDS, MAX_SERVICES};
use dataplane::lb::stats::{BackendStat, LbCounters, LbTally, ServiceStat};
use dataplane::pipeline::control::Query;
use dataplane::pipeline::counters::CoreCounters;
use dataplane::wire::ethernet::format_mac;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Port facts for `show info`.
pub struct PortView {
    pub name: String,
    pub driver: String,
    pub mac: [u8; 6],
    pub link: Box<dyn Fn() -> (bool, u32) + Send>,
    /// The device's own counters (what it dropped before a worker saw it).
    pub stats: Box<dyn Fn() -> PortStats + Send>,
}

/// A port's link as the management core last read it.
#[derive(Debug, Clone, Copy)]
pub struct LinkWatch {
    pub up: bool,
    /// Times it went down or came back up since start.
    pub changes: u64,
}

/// How often the links are read (each read is a syscall per kernel-backed port).
const LINK_EVERY: Duration = Duration::from_millis(100);

pub struct Manager {
    pub cfg_path: std::path::PathBuf,
    pub cfg: Config,
    pub workers: usize,
    /// How the workers own client flows where the devices spread them by RSS
    /// (`show flow` asks the owner).
    pub steering: Option<Arc<dataplane::lb::rss_steer::RssSteering>>,
    /// The rule that steering follows, in words (`show info`).
    pub flow_owners: String,
    pub started: Instant,
    pub ports: Vec<PortView>,
    pub backends: Vec<BackendSlot>,
    pub pools: Vec<PoolState>,
    pub services: Vec<ServiceSlot>,
    /// Each service id's name, kept after the service is removed: a service
    /// of that name added again takes its id back once none of its
    /// connections is left.
    service_names: Vec<String>,
    pub(crate) rings: HashMap<u32, CachedRing>,
    /// Counts to hide from the workers' sums: those of the backends that held
    /// an id before the one holding it now.
    pub(crate) stats_base: LbTally,
    pub(crate) generation: u64,
    pub snapshot: Arc<ArcSwap<LbSnapshot>>,
    /// Snapshots replaced but maybe still in a worker's hands: freed here.
    pub(crate) retired: retired::Retired<LbSnapshot>,
    resolvers: Vec<Resolver>,
    announcer: Announcer,
    pub macs: HashMap<IpAddr, [u8; 6]>,
    health: Sender<engine::Command>,
    pub counters: Vec<Arc<CoreCounters>>,
    pub lb_counters: Vec<Arc<LbCounters>>,
    pub queries: Vec<Sender<Query>>,
    pub mbufs: Box<dyn Fn() -> PoolUse + Send>,
    /// Per port: its link as last seen and how often it went down or up.
    pub links: Vec<LinkWatch>,
    links_read: Instant,
    audit_file: Option<std::fs::File>,
    /// Last sample of new-flow counts, for rates: (when, per service, per backend).
    rate_sample: (Instant, Vec<u64>, Vec<u64>),
    pub rates: (Vec<f64>, Vec<f64>),
}

pub struct Parts {
    pub cfg_path: std::path::PathBuf,
    pub cfg: Config,
    pub ports: Vec<PortView>,
    pub snapshot: Arc<ArcSwap<LbSnapshot>>,
    pub resolvers: Vec<Resolver>,
    pub health: Sender<engine::Command>,
    pub counters: Vec<Arc<CoreCounters>>,
    pub lb_counters: Vec<Arc<LbCounters>>,
    pub queries: Vec<Sender<Query>>,
    /// The packet pool's use, read on demand.
    pub mbufs: Box<dyn Fn() -> PoolUse + Send>,
}

impl Manager {
    pub fn new(p: Parts) -> Manager {
        let audit_file = p.cfg.admin.audit_log.as_deref().and_then(open_audit);
        let links = (p.ports.iter())
            .map(|v| LinkWatch {
                up: (v.link)().0,
                changes: 0,
            })
            .collect();
        let mut m = Manager {
            cfg_path: p.cfg_path,
            workers: p.cfg.workers(),
            steering: None,
            flow_owners: String::new(),
            cfg: p.cfg.clone(),
            started: Instant::now(),
            ports: p.ports,
            backends: Vec::new(),
            pools: Vec::new(),
            services: Vec::new(),
            rings: HashMap::new(),
            stats_base: LbTally::default(),
            service_names: Vec::new(),
            generation: 0,
            snapshot: p.snapshot,
            retired: retired::Retired::default(),
            resolvers: p.resolvers,
            announcer: Announcer::default(),
            macs: HashMap::new(),
            health: p.health,
            counters: p.counters,
            lb_counters: p.lb_counters,
            queries: p.queries,
            mbufs: p.mbufs,
            links,
            links_read: Instant::now(),
            audit_file,
            rate_sample: (Instant::now(), Vec::new(), Vec::new()),
            rates: (Vec::new(), Vec::new()),
        };
        // Cannot fail: the ids start from empty and the config was validated.
        let _ = m.apply_config(p.cfg);
        m
    }

    /// Takes pools, backends and services from `cfg`, keeping the ids, runtime state
    /// and health of backends and services that stay. A backend or service that
    /// comes back under a name it had takes its old id again once no connection
    /// uses it (its counts go on under that name); otherwise a new one. Refused
    /// (nothing changed) if the ids would run out.
    pub fn apply_config(&mut self, cfg: Config) -> Result<(), String> {
        let totals = self.lb_totals();
        let now = Instant::now();
        let mut backends = self.backends.clone();
        // Ids that other backends held, given to new ones because the ids ran
        // out: their counts start from zero once the change is taken.
        let mut recycled = Vec::new();
        let mut pools = Vec::new();
        let mut live = vec![false; backends.len()];
        for p in &cfg.pools {
            let mut members = Vec::new();
            for b in &p.backends {
                let kept = backends
                    .iter()
                    .position(|s| !s.removed && s.pool == p.name && s.name == b.name);
                let again = match kept {
                    None => free_backend_id(&backends, &totals, &p.name, &b.name),
                    Some(_) => None,
                };
                let id = match (kept, again) {
                    (Some(id), _) => {
                        let s = &mut backends[id];
                        if s.addr != b.addr || s.port != b.port {
                            s.health = Default::default();
                            s.last_check = None;
                        }
                        s.addr = b.addr;
                        s.port = b.port;
                        s.port_index = b.port_index;
                        s.weight = b.weight;
                        id
                    }
                    (None, Some(id)) => {
                        backends[id] =
                            new_slot(&p.name, &b.name, b.addr, b.port, b.port_index, b.weight);
                        id
                    }
                    (None, None) if backends.len() >= MAX_BACKENDS => {
                        let id = recyclable_backend_id(&backends, &totals, now)
                            .filter(|id| !recycled.contains(id))
                            .ok_or_else(|| {
                                format!(
                                    "backend ids exhausted ({MAX_BACKENDS}), none free of \
                                     connections for {} s; try again later",
                                    RECYCLE_AFTER.as_secs()
                                )
                            })?;
                        backends[id] =
                            new_slot(&p.name, &b.name, b.addr, b.port, b.port_index, b.weight);
                        recycled.push(id);
                        id
                    }
                    (None, None) => {
                        backends.push(new_slot(
                            &p.name,
                            &b.name,
                            b.addr,
                            b.port,
                            b.port_index,
                            b.weight,
                        ));
                        live.push(false);
                        backends.len() - 1
                    }
                };
                live[id] = true;
                members.push(id as u32);
            }
            pools.push(PoolState {
                name: p.name.clone(),
                health: p.health.clone(),
                drain_timeout: p.drain_timeout,
                members,
            });
        }
        for (s, l) in backends.iter_mut().zip(&live) {
            if !l && !s.removed {
                s.removed = true;
                s.removed_at = Some(now);
            }
        }
        let mut services: Vec<ServiceSlot> = self.services.clone();
        let mut names = self.service_names.clone();
        let mut seen = vec![false; services.len()];
        for svc in &cfg.services {
            let live = services
                .iter()
                .position(|s| s.as_ref().is_some_and(|s| s.name == svc.name));
            let again = (0..services.len()).find(|&i| {
                services[i].is_none()
                    && names.get(i) == Some(&svc.name)
                    && totals.get_service(i as u32, ServiceStat::Active) == 0
            });
            let id = match live.or(again) {
                Some(id) => id,
                None => {
                    if services.len() >= MAX_SERVICES {
                        return Err(format!(
                            "service ids exhausted ({MAX_SERVICES}); restart weir"
                        ));
                    }
                    services.push(None);
                    seen.push(false);
                    services.len() - 1
                }
            };
            services[id] = Some(svc.clone());
            names.resize(services.len(), String::new());
            names[id] = svc.name.clone();
            seen[id] = true;
        }
        for (s, keep) in services.iter_mut().zip(&seen) {
            if !keep {
                *s = None;
            }
        }
        let raw = self.raw_lb_totals();
        for &id in &recycled {
            self.stats_base.take_backend(id as u32, &raw);
        }
        self.backends = backends;
        self.pools = pools;
        self.services = services;
        self.service_names = names;
        self.cfg = cfg;
        Ok(())
    }

    /// Backend `id`'s weight for new flows in `pool`: its own (state, health),
    /// but zero while its MAC is unknown and another member's is. A backend
    /// that does not answer ARP/ND (never did, or stopped 30 s ago) cannot be
    /// sent to: its share goes to the others instead of being dropped
    /// (`drop_no_neighbor`). Before any member is resolved (the first
    /// milliseconds) the weights stand, so that no flow is refused for it.
    pub fn new_flow_weight(&self, id: u32, pool: &PoolState) -> u32 {
        self.weight_with(id, pool, self.any_resolved(pool))
    }

    /// [`new_flow_weight`](Self::new_flow_weight) of every member of `pool`, in
    /// order (whether any member is resolved is found once, not per member).
    pub fn pool_weights(&self, pool: &PoolState) -> Vec<u32> {
        let any = self.any_resolved(pool);
        pool.members
            .iter()
            .map(|&i| self.weight_with(i, pool, any))
            .collect()
    }

    fn weight_with(&self, id: u32, pool: &PoolState, any_resolved: bool) -> u32 {
        let own = self.backends[id as usize].new_flow_weight(&pool.health);
        if any_resolved && !self.resolved(id) {
            0
        } else {
            own
        }
    }

    fn resolved(&self, id: u32) -> bool {
        self.backends
            .get(id as usize)
            .is_some_and(|b| self.macs.contains_key(&b.addr))
    }

    fn any_resolved(&self, pool: &PoolState) -> bool {
        pool.members.iter().any(|&i| self.resolved(i))
    }

    fn pool_of(&self, id: u32) -> Option<&PoolState> {
        self.pools.iter().find(|p| p.members.contains(&id))
    }

    /// Publishes a new snapshot and tells the health engine what to check.
    pub fn publish(&mut self) {
        let snap = self.build_snapshot();
        self.retired.replace(&self.snapshot, snap);
        let _ = self
            .health
            .send(engine::Command::Targets(self.health_targets()));
        let targets = self.neighbour_targets();
        for r in self.resolvers.iter_mut() {
            r.set_targets(&targets);
        }
        let wanted = self.announced_addresses();
        self.announcer.want(wanted, Instant::now());
    }

    /// The addresses whose MACs the resolvers keep: every backend not removed.
    pub(crate) fn neighbour_targets(&self) -> Vec<IpAddr> {
        (self.backends.iter())
            .filter(|b| !b.removed)
            .map(|b| b.addr)
            .collect()
    }

    /// The addresses the appliance announces (gratuitous ARP, unsolicited
    /// neighbour advertisements): its own, its FullNAT sources, every VIP.
    pub(crate) fn announced_addresses(&self) -> Vec<IpAddr> {
        let ours = self.cfg.ports.iter().flat_map(|p| {
            let own = p.ipv4.iter().map(|c| IpAddr::V4(c.addr));
            let own6 = p.ipv6.iter().map(|c| IpAddr::V6(c.addr));
            let local = p.local_ipv4.iter().map(|&a| IpAddr::V4(a));
            let local6 = p.local_ipv6.iter().map(|&a| IpAddr::V6(a));
            own.chain(own6).chain(local).chain(local6)
        });
        let vips = self.services.iter().flatten().map(|s| s.vip);
        ours.chain(vips).collect()
    }

    fn health_targets(&self) -> Vec<Target> {
        let mut out = Vec::new();
        for pool in &self.pools {
            let h = &pool.health;
            if h.kind == CheckKind::None {
                continue;
            }
            for &id in &pool.members {
                let b = &self.backends[id as usize];
                if !b.health_checked() {
                    continue;
                }
                let port = h
                    .port
                    .or(b.port)
                    .or_else(|| self.default_port(pool))
                    .unwrap_or(80);
                let probe = match h.kind {
                    CheckKind::Tcp | CheckKind::None => Probe::Tcp,
                    CheckKind::Http => {
                        let host = h.http_host.clone().unwrap_or_else(|| match b.addr {
                            IpAddr::V4(a) => a.to_string(),
                            IpAddr::V6(a) => format!("[{a}]"),
                        });
                        Probe::Http {
                            request: http::request(&h.http_path, &host),
                            status: h.http_status.clone(),
                            body: h.http_body.clone(),
                        }
                    }
                };
                out.push(Target {
                    id,
                    addr: SocketAddr::new(b.addr, port),
                    probe,
                    interval: Duration::from_millis(h.interval_ms as u64),
                    timeout: Duration::from_millis(h.timeout_ms as u64),
                    jitter: Duration::from_millis(h.jitter_ms as u64),
                });
            }
        }
        out
    }

    /// The port of the first service using `pool`.
    fn default_port(&self, pool: &PoolState) -> Option<u16> {
        self.services
            .iter()
            .flatten()
            .find(|s| self.pools.get(s.pool).is_some_and(|p| p.name == pool.name))
            .map(|s| s.port)
    }

    /// A finished check; true when the backend's verdict changed. A check that
    /// was in flight when its backend stopped being checked (`disable health`,
    /// `maint`, removed) is not counted: its result would otherwise move the
    /// counts and the verdict of a backend the operator took out of checking.
    /// The same rule picks the engine's targets.
    pub fn on_check(&mut self, r: CheckResult) -> bool {
        let Some((rise, fall)) = self.pool_of(r.id).map(|p| (p.health.rise, p.health.fall)) else {
            return false;
        };
        let Some(b) = self.backends.get_mut(r.id as usize) else {
            return false;
        };
        if !b.health_checked() {
            return false;
        }
        if r.ok {
            b.checks_ok += 1;
        } else {
            b.checks_failed += 1;
        }
        let t = b.health.record(r.ok, rise, fall);
        match t {
            Transition::WentDown => {
                log!(
                    "backend {} is DOWN: {} ({fall} failed checks)",
                    b.key(),
                    r.reason
                );
            }
            Transition::WentUp => log!("backend {} is UP ({rise} good checks)", b.key()),
            Transition::None => {}
        }
        b.last_check = Some(r);
        t != Transition::None
    }

    /// Periodic work: neighbour replies and requests, drain deadlines, rates,
    /// port links.
    /// Returns true when a new snapshot is needed.
    pub fn tick(&mut self, now: Instant) -> bool {
        self.retired.reclaim();
        let announced = self.announcer.tick(&self.resolvers, now);
        if announced > 0 {
            log!("announced {announced} addresses (gratuitous ARP, unsolicited neighbour advertisements)");
        }
        let mut changed = false;
        for r in self.resolvers.iter_mut() {
            changed |= r.poll(now);
        }
        if changed {
            let table = neigh::merged(&self.resolvers);
            for (a, m) in &table {
                if self.macs.get(a) != Some(m) {
                    log!("neighbour {a} is at {}", format_mac(m));
                }
            }
            for a in self.macs.keys() {
                if !table.contains_key(a) {
                    log!("neighbour {a} stopped answering");
                }
            }
            self.macs = table;
        }
        // A drain reaching its deadline blocks the backend's remaining connections.
        let snap = self.snapshot.load();
        for (id, b) in self.backends.iter().enumerate() {
            if let AdminState::Drain(_) = b.admin {
                let drain = self.pool_of(id as u32).map_or(Duration::ZERO, |p| {
                    Duration::from_secs(p.drain_timeout as u64)
                });
                let blocked = b.blocked(drain, now);
                if snap.backends.get(id).is_some_and(|s| s.blocked != blocked) {
                    log!("backend {} drain deadline reached", b.key());
                    changed = true;
                }
            }
        }
        if now.duration_since(self.rate_sample.0) >= Duration::from_secs(1) {
            self.sample_rates(now);
        }
        if now.duration_since(self.links_read) >= LINK_EVERY {
            self.links_read = now;
            self.watch_links();
        }
        changed
    }

    /// Logs and counts each port's link going down or coming back.
    fn watch_links(&mut self) {
        for (p, w) in self.ports.iter().zip(self.links.iter_mut()) {
            let up = (p.link)().0;
            if up != w.up {
                w.up = up;
                w.changes += 1;
                log!("port {}: link {}", p.name, if up { "up" } else { "down" });
            }
        }
    }

    fn sample_rates(&mut self, now: Instant) {
        let t = self.lb_totals();
        let svc: Vec<u64> = (0..self.services.len())
            .map(|i| t.get_service(i as u32, ServiceStat::NewFlows))
            .collect();
        let be: Vec<u64> = (0..self.backends.len())
            .map(|i| t.get_backend(i as u32, BackendStat::NewFlows))
            .collect();
        let dt = now.duration_since(self.rate_sample.0).as_secs_f64();
        let rate = |new: &[u64], old: &[u64]| -> Vec<f64> {
            new.iter()
                .enumerate()
                .map(|(i, n)| (n - old.get(i).copied().unwrap_or(*n).min(*n)) as f64 / dt)
                .collect()
        };
        self.rates = (
            rate(&svc, &self.rate_sample.1),
            rate(&be, &self.rate_sample.2),
        );
        self.rate_sample = (now, svc, be);
    }

    pub fn stop_health(&self) {
        let _ = self.health.send(engine::Command::Stop);
    }
}
