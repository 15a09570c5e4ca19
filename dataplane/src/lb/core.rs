//! A worker's load-balancing state and the per-packet decision for traffic to a VIP
//! or to a FullNAT local address: steer to the owning worker, find or create the
//! connection, choose a backend, rewrite, and say which port to send on.

use super::conn_table::{Conn, ConnTable, Hit, Staged};
use super::flow::{owner_of, FlowKey};
use super::frag_parking::FragParking;
use super::frag_routes::FragRoutes;

use super::icmp_sent;
use super::least_conn::Loads;
use super::local_ports::{LocalPorts, PortOwner};
use super::nat::{self, Parsed, Shape};
use super::rss_steer::RssSteering;
use super::snapshot::{HashKey, LbSnapshot, Mode, Service, MAX_SERVICES};
use super::stats::{BackendStat, LbTally, ServiceStat};
use super::table_hash::TableHasher;
use super::tcp_state::{next_state, Direction, Timeouts};
use crate::buf::PacketBuf;
use crate::pipeline::counters::{Counter, Tally};
use crate::wire::{ip_proto, tcp};
use std::sync::Arc;

mod fragments;
mod icmp_out;
mod icmp_relay;
mod moves;
mod new_flow;
mod refuse;

use moves::{must_move, troubled};

/// Ticks per second of the connection-table clock.
pub const TICKS_PER_SEC: u64 = 10;

/// Connection-table entries one [`LbCore::expire`] call visits at most. The
/// worker calls it every `TX_DRAIN_US` (100 us): up to 5 million entries a
/// second, more than a core can open, at ~30 us a call (a 64K-entry table)
/// to ~75 us (1M entries, out of cache); a million entries due in one tick
/// took 150-165 ms in one call (`weir-perf --expiry`).
pub const EXPIRE_PER_CALL: usize = 512;

/// What to do with a packet the balancer looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LbVerdict {
    /// Rewritten; transmit on port index `.0`.
    Tx(usize),
    /// Belongs to another worker's table: hand it over.
    Handoff(u16),
    /// A later fragment before its first: the worker keeps it under this index
    /// of [`FragParking`] until the first comes (or drops it).
    Park(u16),
    Drop(Counter),
}

pub struct LbCore {
    pub worker: u16,
    pub workers: u16,
    /// Which worker owns a local port (the FullNAT replies' steering).
    port_owner: PortOwner,
    /// Where the device spreads flows by RSS: which worker it gives a client
    /// flow to, which then owns it (else a hash of Weir's own decides).
    pub steer: Option<Arc<RssSteering>>,
    /// The ports (bit per index, below 64) whose devices spread packets by that
    /// steering: a whole TCP or UDP packet from one of them came to the worker
    /// RSS picks for its flow, which is this one.
    pub steered_ports: u64,
    pub table: ConnTable,
    pub ports: LocalPorts,
    rr: Box<[u32]>,
    /// Connections per backend, and the `least_conn` choice over them.
    loads: Loads,
    pub stats: LbTally,
    /// Connection-table clock, in ticks.
    pub now: u64,
    /// The tick in which a full table last found nothing to reclaim: it is not
    /// searched again before the next tick (a flood must not pay for a search
    /// per packet).
    reclaim_missed: u64,
    /// The tick in which a full table's search last found nothing better than
    /// rank `.1` (see [`reclaimable`](super::reclaim::reclaimable)), none of rank 0: until the next tick, the
    /// first entry of that rank will do (a SYN flood: one look instead of
    /// [`RECLAIM_VISITS`](super::conn_table::RECLAIM_VISITS)).
    settle_for: (u64, u8),
    /// The errors (ICMP, TCP resets) this worker may still send in this tick.
    error_budget: icmp_sent::Budget,
    /// Where the later fragments of recent datagrams go.
    frags: FragRoutes,
    pub parking: FragParking,
}

/// Where a packet came from and where its L3 header starts.
#[derive(Debug, Clone, Copy)]
pub struct Arrival {
    /// Length of the Ethernet header (and tag).
    pub l2: u16,
    pub v6: bool,
    /// Port index it arrived on.
    pub in_port: u16,
    /// Another worker steered it here: do not steer again.
    pub handed: bool,
    /// Addressed to a FullNAT local address (a backend's reply), not a VIP.
    pub local: bool,
}

/// A packet parsed and hashed by [`LbCore::prepare`].
#[derive(Debug, Clone, Copy)]
pub struct Prepared {
    p: Parsed,
    hash: u64,
    at: Arrival,
    /// What `prefetch_entry` found in the index. Entries leave the table only on
    /// the worker's tick, between bursts, so a candidate stays valid for the burst;
    /// an absent key is looked up again only if keys were added in its hash
    /// bucket since (an earlier packet of the burst may have created this one).
    staged: Staged,
    service: Option<u32>,
}

impl Prepared {
    /// Where the packet came from.
    #[inline(always)]
    pub fn arrival(&self) -> &Arrival {
        &self.at
    }
}

/// The port MACs, by port index.
pub type PortMacs<'a> = &'a [[u8; 6]];

impl LbCore {
    pub fn new(worker: u16, workers: u16, capacity: usize, local_addresses: usize) -> LbCore {
        let hasher = *TableHasher::process();
        LbCore::with_table_hasher(worker, workers, capacity, local_addresses, hasher)
    }

    /// As `new`, with the connection table hashing keys with `hasher` rather
    /// than this process's keys (for the benchmark of a flood aimed at known
    /// keys). Flows are then owned by `hasher`'s hash, not by `FlowKey::owner`.
    pub fn with_table_hasher(
        worker: u16,
        workers: u16,
        capacity: usize,
        local_addresses: usize,
        hasher: TableHasher,
    ) -> LbCore {
        LbCore {
            worker,
            workers: workers.max(1),
            port_owner: PortOwner::new(workers),
            steer: None,
            steered_ports: 0,
            table: ConnTable::with_hasher(capacity, 0, hasher),
            ports: LocalPorts::new(local_addresses, worker, workers.max(1)),
            rr: vec![0; MAX_SERVICES].into_boxed_slice(),
            loads: Loads::new(worker as usize),
            stats: LbTally::default(),
            now: 0,
            reclaim_missed: u64::MAX,
            settle_for: (u64::MAX, 0),
            error_budget: icmp_sent::Budget::default(),
            frags: FragRoutes::default(),
            parking: FragParking::default(),
        }
    }

    /// Expires connections up to `now` (ticks), returning their source ports and
    /// backend counts.
    pub fn expire(&mut self, now: u64, tally: &mut Tally) {
        self.now = now;
        self.parking.expire(now);
        let (ports, loads, stats) = (&mut self.ports, &mut self.loads, &mut self.stats);
        // At most 64 ticks (6.4 s) and EXPIRE_PER_CALL entries per call keep
        // one call short after a stall or a burst of flows due together.
        self.table.expire(now, 64, EXPIRE_PER_CALL, |c| {
            retire(c, ports, loads, stats);
            tally.add(Counter::FlowsExpired, 1);
        });
    }

    /// Handles a packet whose destination is a VIP or a local address (parsing it
    /// first; the worker gets it parsed from the classifier).
    pub fn process<B: PacketBuf>(
        &mut self,
        buf: &mut B,
        at: Arrival,
        snap: &LbSnapshot,
        macs: PortMacs<'_>,
        tally: &mut Tally,
    ) -> LbVerdict {
        match nat::parse(buf.data(), at.l2 as usize, at.v6) {
            Ok(p) => {
                let prep = self.prepare(p, at, None);
                let v = self.finish(buf, &prep, snap, macs, tally);
                self.end_burst();
                v
            }
            Err(c) => LbVerdict::Drop(c),
        }
    }

    /// Finishes what the burst's packets left pending (see [`ConnTable::add`]):
    /// the worker calls it after each burst, before any other packet is looked up.
    #[inline]
    pub fn end_burst(&mut self) {
        self.table.index_pending();
    }

    /// First stage: hash the parsed packet and start loading its index slot, so
    /// that a burst's look-ups overlap their memory latency. `service` is the
    /// classifier's answer for a VIP, when it has one.
    #[inline]
    pub fn prepare(&self, p: Parsed, at: Arrival, service: Option<u32>) -> Prepared {
        let hash = self.table.hash(&p.key);
        self.table.prefetch_slot(hash);
        Prepared {
            p,
            hash,
            at,
            staged: Staged::Unknown,
            service,
        }
    }

    /// Second stage: with the index slot loaded, start loading the entry it
    /// points at (its key is checked in `finish`, once it has arrived).
    #[inline]
    pub fn prefetch_entry(&self, prep: &mut Prepared) {
        prep.staged = self.table.stage(prep.hash);
    }

    /// The worker that owns the packet's connection, when it is another one and
    /// the packet has not been handed over already: the flow hash for packets to
    /// a VIP, the local port's partition for packets to a local address.
    #[inline(always)]
    fn owner_elsewhere(&self, prep: &Prepared) -> Option<u16> {
        if prep.at.handed || self.workers <= 1 {
            return None;
        }
        let owner = if prep.at.local {
            self.port_owner.of(prep.p.key.dport)
        } else if let Some(s) = &self.steer {
            let port = prep.at.in_port as u32;
            let by_device = port < 64 && self.steered_ports >> port & 1 == 1;
            if by_device && prep.p.shape == Shape::Whole {
                return None;
            }
            // A fragment (RSS hashes it by its addresses), an ICMP error, a
            // packet from another port: the worker RSS gives the flow to.
            s.owner(&prep.p.key)
        } else {
            owner_of(prep.hash, self.workers) // == p.key.owner(workers)
        };
        (owner != self.worker).then_some(owner)
    }

    /// The entry for a prepared packet (see [`ConnTable::confirm`]).
    #[inline(always)]
    fn entry(&self, prep: &Prepared) -> Option<Hit> {
        self.table.confirm(&prep.p.key, prep.hash, prep.staged)
    }

    /// Last half of `process`. Inlined into the worker's loop: a packet to a VIP
    /// goes straight to `forward`, a backend's reply to `reverse`; fragments take
    /// an out-of-line call.
    #[inline(always)]
    pub fn finish<B: PacketBuf>(
        &mut self,
        buf: &mut B,
        prep: &Prepared,
        snap: &LbSnapshot,
        macs: PortMacs<'_>,
        tally: &mut Tally,
    ) -> LbVerdict {
        match prep.p.shape {
            Shape::Whole => self.finish_whole(buf, prep, snap, macs, tally),
            Shape::IcmpError => self.relay_icmp_error(buf, prep, snap, macs, tally),
            Shape::FirstFragment | Shape::Fragment => self.fragment(buf, prep, snap, macs, tally),
        }
    }

    /// [`finish`](Self::finish) for a whole packet (or a datagram's first fragment).
    #[inline(always)]
    fn finish_whole<B: PacketBuf>(
        &mut self,
        buf: &mut B,
        prep: &Prepared,
        snap: &LbSnapshot,
        macs: PortMacs<'_>,
        tally: &mut Tally,
    ) -> LbVerdict {
        if prep.at.local {
            return self.reverse(buf, prep, snap, macs, tally);
        }
        let p = &prep.p;
        let Some(sid) = prep.service.or_else(|| snap.service_for(&p.key)) else {
            return LbVerdict::Drop(Counter::DropNoService);
        };
        let svc = &snap.services[sid as usize];
        if let Some(owner) = self.owner_elsewhere(prep) {
            return LbVerdict::Handoff(owner);
        }
        let v = self.forward(buf, prep, sid, svc, snap, macs, tally);
        if let LbVerdict::Drop(c) = v {
            self.stats.service_drop(sid, c);
        }
        v
    }

    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn forward<B: PacketBuf>(
        &mut self,
        buf: &mut B,
        prep: &Prepared,
        sid: u32,
        svc: &Service,
        snap: &LbSnapshot,
        macs: PortMacs<'_>,
        tally: &mut Tally,
    ) -> LbVerdict {
        let (p, in_port) = (&prep.p, prep.at.in_port as usize);
        let len = buf.len() as u64;
        self.stats.service_packet(sid, len);
        let timeouts = &snap.timeouts;
        let (backend, id) = match self.entry(prep) {
            Some(Hit { id, .. }) => {
                let now = self.now;
                let backend = self.table.touch(id, |c| {
                    c.packets += 1;
                    c.bytes += len;
                    let expires = update_state(c, p, Direction::Forward, timeouts, now);
                    (expires, c.backend)
                });
                // Rare: a backend gone, or a SYN on an entry (retransmitted, or
                // the ports of a finished connection reused).
                let suspect = p.tcp_flags & tcp::flags::SYN != 0 || troubled(snap, backend);
                if suspect && must_move(snap, svc, backend, p) {
                    let peer_mac = crate::wire::ethernet::Frame::new_unchecked(buf.data()).src();
                    match self.move_flow(id, prep, sid, svc, (peer_mac, len), snap, tally) {
                        Ok(moved) => moved,
                        // Nowhere to move to: refused as a new flow would be.
                        Err(c @ Counter::DropNoBackend) => {
                            return self.refuse_for(sid, buf, p, (in_port, macs), tally, c);
                        }
                        Err(c) => return LbVerdict::Drop(c),
                    }
                } else {
                    (backend, Some(id))
                }
            }
            None => {
                let peer_mac = crate::wire::ethernet::Frame::new_unchecked(buf.data()).src();
                match self.new_flow(prep, sid, svc, (peer_mac, len), snap, tally) {
                    Ok(created) => created,
                    // A fullnat connection mid-stream that the table lost, or no
                    // backend to take a new flow: the sender hears so.
                    Err(c @ (Counter::DropNoFlow | Counter::DropNoBackend)) => {
                        return self.refuse_for(sid, buf, p, (in_port, macs), tally, c);
                    }
                    Err(c) => return LbVerdict::Drop(c),
                }
            }
        };
        let (out_port, be_mac) = match next_hop(snap, backend, &mut self.stats) {
            Ok(hop) => hop,
            Err(c) => return LbVerdict::Drop(c),
        };
        if let Some(v) = self.refuse_too_big(buf, p, snap, (in_port, out_port), macs, tally) {
            return v;
        }
        let data = buf.data_mut();
        if nat::decrement_ttl(data, p).is_err() {
            // Answered, but not forwarded: the service counts it as a drop (when
            // not answered, the caller counts the verdict's reason instead).
            let v = self.time_exceeded(buf, p, in_port, macs, tally);
            if matches!(v, LbVerdict::Tx(_)) {
                self.stats.service_drop(sid, Counter::DropTtlExpired);
            }
            return v;
        }
        // A connection goes on in the mode it was made in (its entry has a
        // translation or not), whatever a reload made of its service since.
        match id.map(|id| self.table.get(id).rev.as_ref()) {
            // The reverse key holds the backend's address and port for this flow.
            Some(Some(rev)) => nat::rewrite(data, p, (&rev.dst, rev.dport), (&rev.src, rev.sport)),
            Some(None) => {}
            // No entry: only dr goes on without one (a full table).
            None if svc.mode == Mode::FullNat => return LbVerdict::Drop(Counter::DropNoFlow),
            None => {}
        }
        nat::set_macs(data, macs[out_port], be_mac);
        self.stats
            .backend_packet(backend, BackendStat::PacketsIn, len);
        tally.add(Counter::LbForward, 1);
        LbVerdict::Tx(out_port)
    }

    #[inline(always)]
    fn reverse<B: PacketBuf>(
        &mut self,
        buf: &mut B,
        prep: &Prepared,
        snap: &LbSnapshot,
        macs: PortMacs<'_>,
        tally: &mut Tally,
    ) -> LbVerdict {
        let (p, in_port) = (&prep.p, prep.at.in_port as usize);
        if let Some(owner) = self.owner_elsewhere(prep) {
            return LbVerdict::Handoff(owner);
        }
        let Some(Hit {
            id,
            dir: Direction::Reverse,
        }) = self.entry(prep)
        else {
            return self.refuse(buf, p, (in_port, macs), tally, Counter::DropNoFlow);
        };
        let len = buf.len() as u64;
        let timeouts = &snap.timeouts;
        let now = self.now;
        // Replies refresh the deadline as the client's packets do (a UDP flow that
        // only the backend talks on stays up while it talks).
        let (fwd, backend, sid, peer_mac, port) = self.table.touch(id, |c| {
            c.packets += 1;
            c.bytes += len;
            let expires = update_state(c, p, Direction::Reverse, timeouts, now);
            let port = c.client_port as usize;
            (expires, (c.fwd, c.backend, c.service, c.peer_mac, port))
        });
        let port = port.min(macs.len().saturating_sub(1));
        // A reply bigger than the client's side takes: the backend hears it from
        // the local address it sent to, as from any router on the path.
        if let Some(v) = self.refuse_too_big(buf, p, snap, (in_port, port), macs, tally) {
            return v;
        }
        let data = buf.data_mut();
        if nat::decrement_ttl(data, p).is_err() {
            self.stats.service_drop(sid, Counter::DropTtlExpired);
            return self.time_exceeded(buf, p, in_port, macs, tally);
        }
        nat::rewrite(data, p, (&fwd.dst, fwd.dport), (&fwd.src, fwd.sport));
        nat::set_macs(data, macs[port], peer_mac);
        self.stats
            .backend_packet(backend, BackendStat::PacketsOut, len);
        self.stats.service_packet(sid, len);
        tally.add(Counter::LbReverse, 1);
        LbVerdict::Tx(port)
    }

    /// Connections in this core's table for backend `id`.
    pub fn active(&self, id: u32) -> u32 {
        self.loads.get(id)
    }
}

/// The port and MAC to send a packet for `backend` by: refused (and counted for
/// the backend) when it is blocked or its MAC is not resolved yet.
#[inline(always)]
fn next_hop(
    snap: &LbSnapshot,
    backend: u32,
    stats: &mut LbTally,
) -> Result<(usize, [u8; 6]), Counter> {
    let be = snap
        .backends
        .get(backend as usize)
        .ok_or(Counter::DropNoBackend)?;
    match (be.blocked, be.mac) {
        (false, Some(mac)) => Ok((be.port_index, mac)),
        (blocked, _) => {
            let c = if blocked {
                Counter::DropBackendMaint
            } else {
                Counter::DropNoNeighbor
            };
            stats.backend_drop(backend, c);
            Err(c)
        }
    }
}

/// The hash the ring chooses a backend by (xxh3 with the service's seed,
/// portable across appliances);
/// computed for new flows only.
#[inline]
fn key_hash(svc: &Service, key: &FlowKey) -> u64 {
    match svc.hash_key {
        HashKey::FiveTuple => key.hash_5tuple(svc.hash_seed),
        HashKey::Source => key.hash_source(svc.hash_seed),
    }
}

/// The bookkeeping of a connection leaving the table: its local port goes back to
/// the pool, and its backend and service count one active connection fewer.
fn retire(c: &Conn, ports: &mut LocalPorts, loads: &mut Loads, stats: &mut LbTally) {
    if let Some(rev) = &c.rev {
        ports.give_back(c.local_idx as usize, rev.dport);
    }
    loads.remove(c.backend);
    stats.backend_dec(c.backend, BackendStat::Active);
    stats.service_dec(c.service, ServiceStat::Active);
}

/// Advances the TCP state and returns the new deadline.
#[inline]
fn update_state(c: &mut Conn, p: &Parsed, dir: Direction, t: &Timeouts, now: u64) -> u64 {
    if p.key.proto == ip_proto::TCP {
        c.state = next_state(c.state, p.tcp_flags, dir, &mut c.fin_from);
    }
    now + t.for_state(c.state) as u64 * TICKS_PER_SEC
}
