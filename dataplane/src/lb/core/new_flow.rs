//! A connection's start: the scheduler's choice of backend, a FullNAT source
//! address and port, the entry (making room in a full table first), and its
//! counts. Out of the per-packet path of established flows.

use super::{key_hash, retire, LbCore, Prepared, TICKS_PER_SEC};
use crate::lb::conn_table::Conn;
use crate::lb::flow::FlowKey;
use crate::lb::reclaim::{reclaimable, QUIET_TCP};
use crate::lb::ring::NO_BACKEND;
use crate::lb::snapshot::{Backend, LbSnapshot, Mode, SchedKind, Service};
use crate::lb::stats::{BackendStat, ServiceStat};
use crate::lb::tcp_state::{ConnState, Timeouts};
use crate::pipeline::counters::{Counter, Tally};
use crate::wire::{ip_proto, tcp};

impl LbCore {
    /// The table (or the pool of local ports) is full: gives up a finished or
    /// half-open connection, or a quiet UDP flow, for a new one (see
    /// [`reclaimable`](super::reclaim::reclaimable)), if it finds one.
    #[cold]
    #[inline(never)]
    pub(super) fn reclaim(&mut self, timeouts: &Timeouts, tally: &mut Tally) {
        let now = self.now;
        if self.reclaim_missed == now {
            return;
        }
        let rank = |c: &Conn| reclaimable(c, now, timeouts);
        let good_enough = match self.settle_for {
            (tick, r) if tick == now => r,
            _ => 0,
        };
        match self.table.reclaim(rank, good_enough) {
            Some(c) => {
                let r = rank(&c);
                match r {
                    Some(r) if r > good_enough => self.settle_for = (now, r),
                    _ => {}
                }
                retire(&c, &mut self.ports, &mut self.loads, &mut self.stats);
                tally.add(Counter::FlowsReclaimed, 1);
                if r == Some(QUIET_TCP) {
                    tally.add(Counter::FlowsReclaimedQuiet, 1);
                }
            }
            None => self.reclaim_missed = now,
        }
    }

    /// Creates the connection for a packet (from `peer_mac`, `len` bytes) with no
    /// entry; returns its backend and its entry (none when a full table sent a
    /// `dr` flow on statelessly).
    pub(super) fn new_flow(
        &mut self,
        prep: &Prepared,
        sid: u32,
        svc: &Service,
        (peer_mac, len): ([u8; 6], u64),
        snap: &LbSnapshot,
        tally: &mut Tally,
    ) -> Result<(u32, Option<u32>), Counter> {
        let (p, hash, in_port) = (&prep.p, prep.hash, prep.at.in_port);
        let is_tcp = p.key.proto == ip_proto::TCP;
        let syn = p.tcp_flags & (tcp::flags::SYN | tcp::flags::ACK) == tcp::flags::SYN;
        let midstream = is_tcp && !syn;
        if midstream && svc.mode == Mode::FullNat {
            // The backend knows this connection by a source port we no longer have.
            return Err(Counter::DropNoFlow);
        }
        // The trees catch up with the counts that moved since the last new
        // flow (and are played afresh for a new layout) before one picks.
        self.loads.follow(&snap.least_conn);
        // Mid-stream packets follow the consistent hash whatever the scheduler, so an
        // established flow finds its backend again after a restart or failover.
        let idx = if midstream {
            svc.ring.choose(key_hash(svc, &p.key))
        } else {
            self.schedule(sid, svc, &p.key, snap)
        };
        if idx == NO_BACKEND || idx as usize >= svc.backends.len() {
            return Err(Counter::DropNoBackend);
        }
        let backend = svc.backends[idx as usize];
        let state = if !is_tcp {
            ConnState::Udp
        } else if midstream {
            ConnState::Established
        } else {
            ConnState::SynSent
        };
        let mut conn = Conn {
            fwd: p.key,
            rev: None,
            service: sid,
            backend,
            state,
            fin_from: 0,
            peer_mac,
            client_port: in_port as u8,
            local_idx: 0,
            expires: self.now + snap.timeouts.for_state(state) as u64 * TICKS_PER_SEC,
            created: self.now as u32,
            packets: 1,
            bytes: len,
        };
        if svc.mode == Mode::FullNat {
            let be = &snap.backends[backend as usize];
            let range = snap.local_range(be.port_index, p.v6);
            let be_port = svc.ports.get(idx as usize).copied().unwrap_or(be.port);
            let mut taken = self.take_local_port(range.clone(), be, be_port, p.key.proto, snap);
            if taken.is_none() {
                // Every local port in use (fewer ports than entries): a
                // reclaimed connection gives one back, on its own address.
                self.reclaim(&snap.timeouts, tally);
                taken = self.take_local_port(range, be, be_port, p.key.proto, snap);
            }
            let Some((local_idx, lport)) = taken else {
                return Err(Counter::DropNoLocalPort);
            };
            let local = snap.local_flat[local_idx];
            conn.local_idx = local_idx as u16;
            conn.rev = Some(FlowKey::new(be.addr, local, be_port, lport, p.key.proto));
        }
        if self.table.is_full() {
            self.reclaim(&snap.timeouts, tally);
        }
        let Ok(id) = self.table.add(conn, hash) else {
            if let Some(rev) = conn.rev {
                self.ports.give_back(conn.local_idx as usize, rev.dport);
                return Err(Counter::DropTableFull);
            }
            // DR needs no state to forward: go on by the consistent hash, as the
            // flow's next packets will (whatever the scheduler), and count it.
            let idx = svc.ring.choose(key_hash(svc, &p.key));
            let Some(&backend) = svc.backends.get(idx as usize) else {
                return Err(Counter::DropNoBackend);
            };
            tally.add(Counter::FlowsStateless, 1);
            return Ok((backend, None));
        };
        self.loads.add(backend);
        tally.add(
            if midstream {
                Counter::FlowsMidstream
            } else {
                Counter::FlowsNew
            },
            1,
        );
        self.stats.service(sid, ServiceStat::NewFlows, 1);
        self.stats.service(sid, ServiceStat::Active, 1);
        self.stats.backend(backend, BackendStat::NewFlows, 1);
        self.stats.backend(backend, BackendStat::Active, 1);
        Ok((backend, Some(id)))
    }

    /// A FullNAT source (local address index, port) for a connection to `be`
    /// on `be_port`. Where the device spreads flows by RSS, a port whose
    /// replies RSS gives to this worker, if one of the next few free ones is
    /// (each fits for about one worker in N): the backend's packets then come
    /// in where the connection is, not through a hand-off.
    #[inline]
    fn take_local_port(
        &mut self,
        range: std::ops::Range<usize>,
        be: &Backend,
        be_port: u16,
        proto: u8,
        snap: &LbSnapshot,
    ) -> Option<(usize, u16)> {
        let Some(steer) = self.steer.as_deref() else {
            return self.ports.take(range);
        };
        let tries = 8 * self.workers as usize;
        let (me, v6) = (self.worker, be.addr.is_ipv6());
        // The reply's hash but for the port, once for the address chosen.
        let base = std::cell::Cell::new(None::<(usize, u32)>);
        self.ports.take_fitting(range, tries, |a, port| {
            let h = match base.get() {
                Some((at, h)) if at == a => h,
                _ => {
                    let reply = FlowKey::new(be.addr, snap.local_flat[a], be_port, 0, proto);
                    let h = steer.hash_without_dport(&reply);
                    base.set(Some((a, h)));
                    h
                }
            };
            steer.owner_with_dport(h, v6, port) == me
        })
    }

    /// The scheduler's choice for a new flow (an index into `svc.backends`).
    fn schedule(&mut self, sid: u32, svc: &Service, key: &FlowKey, snap: &LbSnapshot) -> u16 {
        let n = svc.backends.len();
        if n == 0 {
            return NO_BACKEND;
        }
        match svc.sched {
            SchedKind::RingHash => svc.ring.choose(key_hash(svc, key)),
            SchedKind::WeightedRoundRobin => {
                if svc.wrr.is_empty() {
                    return NO_BACKEND;
                }
                let i = self.rr[sid as usize] as usize % svc.wrr.len();
                self.rr[sid as usize] = self.rr[sid as usize].wrapping_add(1);
                svc.wrr[i]
            }
            SchedKind::RoundRobin => {
                // Plain rotation over the backends that take traffic (weight > 0).
                for _ in 0..n {
                    let i = self.rr[sid as usize] as usize % n;
                    self.rr[sid as usize] = self.rr[sid as usize].wrapping_add(1);
                    if svc.weights.get(i).copied().unwrap_or(0) > 0 {
                        return i as u16;
                    }
                }
                NO_BACKEND
            }
            // `new_flow` has brought the trees up to date for `snap`.
            SchedKind::LeastConn => (self.loads)
                .least(sid, &snap.least_conn)
                .unwrap_or(NO_BACKEND),
        }
    }
}
