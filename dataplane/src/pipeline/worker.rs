//! The poll-mode worker loop, one per lcore: burst RX from each port queue it owns
//! and from the hand-off rings of the other workers, classify, act (reply, balance,
//! hand to the host interface or to the owning worker, drop), buffered burst TX, and
//! the host interface's RX back to the wire. Slow work (TX drain, connection expiry,
//! counter publication) runs on a TSC timer, as in DPDK's l3fwd.

use super::classify::{classify_general, Verdict};
use super::control::Control;
use super::counters::{CoreCounters, Counter, Tally};
use super::fast_v4::classify_fast;
use super::fast_v6::classify_fast_v6;
use super::fragment_v4;
use super::local::LocalAddrs;
use super::vlan_tag;
use crate::buf::PacketBuf;
use crate::dpdk::ring::{Consumer, Producer};
use crate::dpdk::{Mbuf, MbufArray, RxQueue, TxQueue, BURST};
use crate::lb::core::{Arrival, LbCore, LbVerdict, Prepared, TICKS_PER_SEC};
use crate::lb::frag_parking::{Done, PLACES};
use crate::lb::nat::Parsed;
use crate::lb::snapshot::LbSnapshot;
use crate::lb::stats::LbCounters;
use arc_swap::ArcSwap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

/// Microseconds a partial TX batch may wait before it is sent (l3fwd uses 100).
pub const TX_DRAIN_US: u64 = 100;

/// Per-service and per-backend counters (words) a tick publishes at most:
/// ~1.5 us of its 100 us. A configuration with fewer (100 backends and a few
/// services) publishes them all each tick; the largest (256 services, 4,096
/// backends: 39,424 words) in 39 ticks, 4 ms. All of them each tick took 61 us
/// of every 100 with 4,096 backends.
pub const PUBLISH_WORDS: usize = 1024;

/// Empty polls in a row before an idle worker may sleep (see `idle_sleep_us`).
const IDLE_POLLS_BEFORE_SLEEP: u32 = 256;

/// How many packets ahead of the one being handled are prefetched.
const PREFETCH_AHEAD: usize = 3;

/// How many packets ahead of the one being finished its connection entry is
/// looked up in the index and prefetched.
pub(crate) const ENTRY_AHEAD: usize = 8;

/// One port as seen by one worker: the RX queue it polls (if any), its own TX queue,
/// and the host interface's queues paired with the RX queue.
pub struct WorkerPort {
    pub rx: Option<RxQueue>,
    pub tx: TxQueue,
    pub host: Option<HostQueues>,
    pub local: LocalAddrs,
}

/// The TAP device's queues that pair with a worker's port queues.
pub struct HostQueues {
    pub rx: RxQueue,
    pub tx: TxQueue,
}

/// Rings to and from the other workers (`to[w]` is `None` for this worker).
#[derive(Default)]
pub struct Handoff {
    pub to: Vec<Option<Producer>>,
    pub from: Vec<Consumer>,
    /// Workers that have sent their last hand-off at shutdown; shared by all.
    pub stopped: Arc<AtomicUsize>,
}

pub struct Worker {
    pub id: usize,
    pub ports: Vec<WorkerPort>,
    pub counters: Arc<CoreCounters>,
    pub lb_counters: Arc<LbCounters>,
    pub quit: Arc<AtomicBool>,
    pub tsc_hz: u64,
    /// When non-zero, sleep this long after a run of empty polls (shared or small
    /// machines); zero polls without pause, as a dedicated core should.
    pub idle_sleep_us: u32,
    pub lb: LbCore,
    pub snapshot: Arc<ArcSwap<LbSnapshot>>,
    pub handoff: Handoff,
    /// DPDK port id -> port index (for packets arriving through a hand-off ring).
    pub port_index: Vec<u8>,
    /// The MAC of each port, by index.
    pub macs: Vec<[u8; 6]>,
    pub control: Control,
}

/// A packet kept for the balancer (a fragment waiting for its first), with where
/// it came from.
struct Kept {
    m: Mbuf,
    in_port: u16,
    handed: bool,
}

/// Per-port TX buffers of one worker: to the wire and to the host interface.
#[derive(Default)]
struct PortBuffers {
    wire: MbufArray,
    host: MbufArray,
}

/// What `handle` needs besides the packet.
struct Ctx<'a> {
    ports: &'a mut [WorkerPort],
    bufs: &'a mut [PortBuffers],
    to_peer: &'a mut [MbufArray],
    handoff: &'a mut Handoff,
    lb: &'a mut LbCore,
    snap: &'a LbSnapshot,
    macs: &'a [[u8; 6]],
    /// DPDK port id -> port index, for packets from hand-off rings.
    port_index: &'a [u8],
    tally: &'a mut Tally,
    /// Fragments kept until their first comes, by `FragParking` place.
    parked: &'a mut [Option<Kept>],
}

/// What a worker's loop keeps between iterations: its private tally, TX batches and
/// the RX burst array.
pub struct LoopState {
    pub tally: Tally,
    bufs: Vec<PortBuffers>,
    to_peer: Vec<MbufArray>,
    rx: MbufArray,
    parked: Vec<Option<Kept>>,
    /// Where the next tick goes on publishing the per-service and per-backend
    /// counters (see [`LbCounters::publish_part`]).
    published: usize,
}

impl Worker {
    /// Fresh loop state for this worker's ports and peers.
    pub fn loop_state(&self) -> LoopState {
        LoopState {
            tally: Tally::default(),
            bufs: self.ports.iter().map(|_| Default::default()).collect(),
            to_peer: self.handoff.to.iter().map(|_| Default::default()).collect(),
            rx: MbufArray::default(),
            parked: (0..PLACES).map(|_| None).collect(),
            published: 0,
        }
    }

    /// The packet path of one loop iteration: one burst from every port and every
    /// hand-off ring, each packet handled; TX batches go out as they fill. Returns
    /// whether anything arrived. (`run` calls it; benchmarks drive it directly.)
    #[inline]
    pub fn poll(&mut self, snap: &LbSnapshot, st: &mut LoopState) -> bool {
        let LoopState {
            tally,
            bufs,
            to_peer,
            rx,
            parked,
            ..
        } = st;
        let mut ctx = self.ctx(snap, bufs, to_peer, tally, parked);
        let before = ctx.tally.get(Counter::RxPackets) + ctx.tally.get(Counter::HandoffIn);
        for p in 0..ctx.ports.len() {
            poll_port(&mut ctx, p, rx);
        }
        receive_handoffs(&mut ctx, rx);
        if ctx.lb.parking.any_done() {
            unpark(&mut ctx);
        }
        ctx.tally.add(Counter::LoopsTotal, 1);
        let busy = ctx.tally.get(Counter::RxPackets) + ctx.tally.get(Counter::HandoffIn) != before;
        if busy {
            ctx.tally.add(Counter::LoopsBusy, 1);
        }
        busy
    }

    /// Sends every partial TX batch (ports, host interfaces, hand-off rings).
    pub fn flush(&mut self, snap: &LbSnapshot, st: &mut LoopState) {
        let LoopState {
            tally,
            bufs,
            to_peer,
            parked,
            ..
        } = st;
        flush_all(&mut self.ctx(snap, bufs, to_peer, tally, parked));
    }

    /// The work of the TSC timer, every `TX_DRAIN_US`: partial TX batches
    /// sent, connections expired up to table tick `now`, the counters
    /// published (the per-service and per-backend ones a part per tick, all of
    /// them when `whole`), one step of the management core's question.
    /// (`run` calls it; benchmarks drive it at the same pace.)
    pub fn tick(&mut self, snap: &LbSnapshot, st: &mut LoopState, now: u64, whole: bool) {
        self.flush(snap, st);
        let tally = &mut st.tally;
        self.lb.expire(now, tally);
        tally.set(Counter::ConnEntries, self.lb.table.len() as u64);
        tally.set(Counter::LocalPortsInUse, self.lb.ports.in_use() as u64);
        tally.set(Counter::LocalPortsCapacity, self.lb.ports.capacity() as u64);
        self.counters.publish(tally);
        let (services, backends) = (snap.services.len(), snap.backends.len());
        let words = if whole { usize::MAX } else { PUBLISH_WORDS };
        st.published = (self.lb_counters).publish_part(
            &self.lb.stats,
            services,
            backends,
            st.published,
            words,
        );
        self.control.step(self.id, &self.lb.table, self.lb.now);
    }

    fn ctx<'a>(
        &'a mut self,
        snap: &'a LbSnapshot,
        bufs: &'a mut [PortBuffers],
        to_peer: &'a mut [MbufArray],
        tally: &'a mut Tally,
        parked: &'a mut [Option<Kept>],
    ) -> Ctx<'a> {
        Ctx {
            ports: &mut self.ports,
            bufs,
            to_peer,
            handoff: &mut self.handoff,
            lb: &mut self.lb,
            snap,
            macs: &self.macs,
            port_index: &self.port_index,
            tally,
            parked,
        }
    }

    pub fn run(mut self) {
        let mut st = self.loop_state();
        let drain_ticks = (self.tsc_hz / 1_000_000).max(1) * TX_DRAIN_US;
        let tsc_per_tick = (self.tsc_hz / TICKS_PER_SEC).max(1);
        let start = tsc();
        let mut last_drain = start;
        let mut quitting = false;
        let mut idle_polls = 0u32;
        let snapshot = self.snapshot.clone();
        loop {
            let snap = snapshot.load();
            if self.poll(&snap, &mut st) {
                idle_polls = 0;
            } else {
                idle_polls += 1;
                // Only after a run of empty polls with nothing waiting to be sent:
                // a busy worker never sleeps.
                if self.idle_sleep_us > 0 && idle_polls >= IDLE_POLLS_BEFORE_SLEEP {
                    self.flush(&snap, &mut st);
                    std::thread::sleep(std::time::Duration::from_micros(self.idle_sleep_us as u64));
                    idle_polls = 0;
                }
            }
            let now = tsc();
            if quitting {
                // Send the last hand-offs, then keep taking the others' until every
                // worker has sent its last: nothing is left in a ring at exit.
                // Bounded: a worker that died must not hold the others (100 ms).
                let give_up = now.wrapping_add(self.tsc_hz / 10);
                let LoopState {
                    tally,
                    bufs,
                    to_peer,
                    rx,
                    parked,
                    ..
                } = &mut st;
                let mut ctx = self.ctx(&snap, bufs, to_peer, tally, parked);
                flush_all(&mut ctx);
                let workers = ctx.handoff.to.len();
                ctx.handoff.stopped.fetch_add(1, Ordering::SeqCst);
                while ctx.handoff.stopped.load(Ordering::SeqCst) < workers && tsc() < give_up {
                    receive_handoffs(&mut ctx, rx);
                    flush_all(&mut ctx);
                }
                receive_handoffs(&mut ctx, rx);
            }
            if now.wrapping_sub(last_drain) >= drain_ticks || quitting {
                if quitting {
                    // Fragments still waiting for their first go with the worker.
                    let kept = st.parked.iter_mut().filter_map(Option::take).count();
                    st.tally.add(Counter::DropFragment, kept as u64);
                }
                let ticks = now.wrapping_sub(start) / tsc_per_tick;
                self.tick(&snap, &mut st, ticks, quitting);
                last_drain = now;
                if quitting {
                    break;
                }
                // One more round after the flag: drain what is in flight.
                quitting = self.quit.load(Ordering::Relaxed);
            }
        }
    }
}

fn receive_handoffs(ctx: &mut Ctx<'_>, rx: &mut MbufArray) {
    for r in 0..ctx.handoff.from.len() {
        let n = ctx.handoff.from[r].receive(rx);
        if n > 0 {
            ctx.tally.add(Counter::HandoffIn, n as u64);
            for m in rx.drain() {
                match ctx.port_index.get(m.port() as usize).copied() {
                    Some(p) if (p as usize) < ctx.ports.len() => handle(ctx, m, p as usize, true),
                    // Every worker has every port: a bug if it ever counts.
                    _ => ctx.tally.add(Counter::DropHandoffBadPort, 1),
                }
            }
            ctx.lb.end_burst();
        }
    }
}

fn poll_port(ctx: &mut Ctx<'_>, p: usize, rx: &mut MbufArray) {
    let Some(q) = ctx.ports[p].rx.as_mut() else {
        return;
    };
    let n = q.burst(rx);
    if n > 0 {
        ctx.tally.add(Counter::RxPackets, n as u64);
        ctx.tally.add(Counter::RxBytes, rx.bytes());
        for i in 0..PREFETCH_AHEAD {
            rx.prefetch(i);
        }
        // Two passes over the burst so that the table look-ups of its packets
        // overlap: classify and hash (prefetching index slots); then, a few
        // packets apart, find each entry in the index (prefetching it) and act.
        // Each packet's stage is written once into its slot and read in place.
        let mut mbufs: [Option<Mbuf>; BURST] = [const { None }; BURST];
        let mut stages: [Stage; BURST] = [const { Stage::Done(Verdict::ToHost) }; BURST];
        let mut packets = rx.drain();
        let mut i = 0;
        while let Some(mut m) = packets.next() {
            packets.prefetch_ahead(PREFETCH_AHEAD);
            stages[i] = stage(ctx, &mut m, p, false);
            mbufs[i] = Some(m);
            i += 1;
        }
        drop(packets);
        // The entry of packet k + ENTRY_AHEAD starts loading as packet k is
        // finished, so each has several packets' work to arrive in (staging all
        // first left the first packets of a burst waiting on memory).
        for s in stages[..i.min(ENTRY_AHEAD)].iter_mut() {
            if let Stage::Balance(prep) = s {
                ctx.lb.prefetch_entry(prep);
            }
        }
        for k in 0..i {
            if let Some(Stage::Balance(prep)) = stages[..i].get_mut(k + ENTRY_AHEAD) {
                ctx.lb.prefetch_entry(prep);
            }
            if let Some(m) = mbufs[k].take() {
                act(ctx, m, &stages[k], p);
            }
        }
        ctx.lb.end_burst();
    }
    // Kernel to wire through the host interface: no inspection but the VLAN tag.
    let port = &mut ctx.ports[p];
    if let Some(host) = port.host.as_mut() {
        let n = host.rx.burst(rx);
        if n > 0 {
            ctx.tally.add(Counter::FromHost, n as u64);
            for mut m in rx.drain() {
                if let Some(vid) = port.local.vlan {
                    if vlan_tag::insert(&mut m, vid).is_err() {
                        ctx.tally.add(Counter::DropNoRoom, 1);
                        continue;
                    }
                }
                push_wire(&mut ctx.bufs[p].wire, &mut port.tx, m, ctx.tally);
            }
        }
    }
}

/// What the first pass over a burst decided for a packet.
enum Stage {
    Done(Verdict),
    /// For the balancer: parsed, hashed, its index slot being loaded.
    Balance(Prepared),
}

/// First pass: classify, and for balanced packets parse, hash and prefetch.
#[inline(always)]
fn stage(ctx: &mut Ctx<'_>, m: &mut Mbuf, in_port: usize, handed: bool) -> Stage {
    if m.nb_segs() != 1 {
        return Stage::Done(Verdict::Drop(Counter::DropMultiSegment));
    }
    let addrs = &ctx.ports[in_port].local;
    // The common case builds its stage in its own arm, straight into the slot the
    // caller keeps it in (merged with the general path, it was built twice).
    let v = match classify_fast(m, addrs, ctx.snap) {
        Some(Verdict::Balance { p, local, service }) => {
            return balance_stage(ctx.lb, p, in_port, handed, local, service)
        }
        Some(v) => v,
        None => classify_other(m, addrs, ctx.snap),
    };
    match v {
        Verdict::Balance { p, local, service } => {
            balance_stage(ctx.lb, p, in_port, handed, local, service)
        }
        v => Stage::Done(v),
    }
}

/// Everything but the IPv4 common case: the IPv6 common case, else the general
/// path. Out of line, so that the IPv4 case keeps the loop to itself.
#[inline(never)]
fn classify_other(m: &mut Mbuf, addrs: &LocalAddrs, snap: &LbSnapshot) -> Verdict {
    match classify_fast_v6(m, addrs, snap) {
        Some(v) => v,
        None => classify_general(m, addrs, snap),
    }
}

/// A packet for the balancer, staged: hashed, its index slot starting to load.
#[inline(always)]
fn balance_stage(
    lb: &LbCore,
    p: Parsed,
    in_port: usize,
    handed: bool,
    local: bool,
    service: Option<u32>,
) -> Stage {
    let at = Arrival {
        l2: p.l2,
        v6: p.v6,
        in_port: in_port as u16,
        handed,
        local,
    };
    Stage::Balance(lb.prepare(p, at, service))
}

/// Last pass: act on the decision.
#[inline(always)]
fn act(ctx: &mut Ctx<'_>, mut m: Mbuf, stage: &Stage, in_port: usize) {
    let verdict = match stage {
        Stage::Done(v) => *v,
        Stage::Balance(prep) => {
            let v = ctx.lb.finish(&mut m, prep, ctx.snap, ctx.macs, ctx.tally);
            return balanced(ctx, m, v, prep.arrival());
        }
    };
    match verdict {
        Verdict::Reply(c) => {
            ctx.tally.add(c, 1);
            let port = &mut ctx.ports[in_port];
            push_wire(&mut ctx.bufs[in_port].wire, &mut port.tx, m, ctx.tally);
        }
        Verdict::ToHost => {
            let port = &mut ctx.ports[in_port];
            let host_mtu = port.local.host_mtu;
            let Some(host) = port.host.as_mut() else {
                ctx.tally.add(Counter::DropNoHostInterface, 1);
                return;
            };
            if vlan_tag::is_tagged(m.data()) && vlan_tag::strip(&mut m).is_err() {
                ctx.tally.add(Counter::DropNoRoom, 1);
                return;
            }
            if fragment_v4::exceeds(m.data(), host_mtu) {
                return fragment_to_host(ctx, m, in_port);
            }
            push_host(&mut ctx.bufs[in_port].host, &mut host.tx, m, ctx.tally);
        }
        Verdict::Drop(c) => ctx.tally.add(c, 1),
        // `stage` turns these into Stage::Balance.
        Verdict::Balance { .. } => ctx.tally.add(Counter::DropNotForUs, 1),
    }
}

#[inline(always)]
fn balanced(ctx: &mut Ctx<'_>, m: Mbuf, v: LbVerdict, at: &Arrival) {
    match v {
        LbVerdict::Tx(out) if out < ctx.ports.len() => {
            let port = &mut ctx.ports[out];
            if fragment_v4::exceeds(m.data(), port.local.mtu) {
                return fragment_out(ctx, m, out);
            }
            push_wire(&mut ctx.bufs[out].wire, &mut port.tx, m, ctx.tally);
        }
        LbVerdict::Tx(_) => ctx.tally.add(Counter::DropNoBackend, 1),
        LbVerdict::Handoff(w) => push_peer(ctx, w as usize, m),
        LbVerdict::Park(i) => park(ctx, m, i, at),
        LbVerdict::Drop(c) => ctx.tally.add(c, 1),
    }
}

/// A later fragment that came before its first (see `lb::frag_parking`): kept
/// under place `i`, whose previous packet, if any, waited longest and is dropped.
#[cold]
#[inline(never)]
fn park(ctx: &mut Ctx<'_>, m: Mbuf, i: u16, at: &Arrival) {
    let kept = Kept {
        m,
        in_port: at.in_port,
        handed: at.handed,
    };
    match ctx.parked.get_mut(i as usize) {
        Some(place) => {
            if place.replace(kept).is_some() {
                ctx.tally.add(Counter::DropFragment, 1);
            }
        }
        None => ctx.tally.add(Counter::DropFragment, 1),
    }
}

/// Takes back the kept fragments whose first fragment has been handled (they go
/// through again, after it) or that waited too long (dropped).
#[cold]
#[inline(never)]
fn unpark(ctx: &mut Ctx<'_>) {
    while let Some(done) = ctx.lb.parking.take_done() {
        let (Done::Retry(i) | Done::Expired(i)) = done;
        let Some(kept) = ctx.parked.get_mut(i as usize).and_then(Option::take) else {
            continue;
        };
        match done {
            Done::Retry(_) => handle(ctx, kept.m, kept.in_port as usize, kept.handed),
            Done::Expired(_) => ctx.tally.add(Counter::DropFragment, 1),
        }
    }
    ctx.lb.end_burst();
}

/// Bigger than the way out and DF clear (DF got ICMP from the balancer): sends
/// fragments, or counts the drop.
#[cold]
#[inline(never)]
fn fragment_out(ctx: &mut Ctx<'_>, m: Mbuf, out: usize) {
    let port = &mut ctx.ports[out];
    let mtu = port.local.mtu;
    let (wire, tx, tally) = (&mut ctx.bufs[out].wire, &mut port.tx, &mut *ctx.tally);
    let emit = |f| push_wire(wire, tx, f, tally);
    let cut = fragment_v4::fragment(m.data(), mtu, || m.alloc_sibling(), emit);
    count_cut(ctx.tally, cut);
}

/// Bigger than the host interface takes: a datagram the port's kernel
/// reassembled (af_packet), for the appliance's own kernel, which gets it in
/// fragments and puts it together again; one that cannot be cut (DF, not IPv4)
/// is counted as `drop_fragment_failed`.
#[cold]
#[inline(never)]
fn fragment_to_host(ctx: &mut Ctx<'_>, m: Mbuf, p: usize) {
    let port = &mut ctx.ports[p];
    let mtu = port.local.host_mtu;
    let Some(host) = port.host.as_mut() else {
        ctx.tally.add(Counter::DropNoHostInterface, 1);
        return;
    };
    let (batch, tx, tally) = (&mut ctx.bufs[p].host, &mut host.tx, &mut *ctx.tally);
    let emit = |f| push_host(batch, tx, f, tally);
    let cut = fragment_v4::fragment(m.data(), mtu, || m.alloc_sibling(), emit);
    count_cut(ctx.tally, cut);
}

/// Counts a packet cut into `n` fragments, or the reason it could not be.
fn count_cut(tally: &mut Tally, cut: Result<usize, Counter>) {
    match cut {
        Ok(n) => {
            tally.add(Counter::FragmentsOut, n as u64);
            tally.add(Counter::Fragmented, 1);
        }
        Err(c) => tally.add(c, 1),
    }
}

/// One packet, start to finish (hand-offs: they arrive one ring at a time).
#[inline]
fn handle(ctx: &mut Ctx<'_>, mut m: Mbuf, in_port: usize, handed: bool) {
    let s = stage(ctx, &mut m, in_port, handed);
    act(ctx, m, &s, in_port);
}

/// Buffers `m` for the owning worker's ring.
#[inline]
fn push_peer(ctx: &mut Ctx<'_>, w: usize, m: Mbuf) {
    let (Some(batch), Some(Some(ring))) = (ctx.to_peer.get_mut(w), ctx.handoff.to.get_mut(w))
    else {
        ctx.tally.add(Counter::DropHandoffFull, 1);
        return;
    };
    if batch.is_full() {
        let dropped = ring.send(batch);
        ctx.tally.add(Counter::DropHandoffFull, dropped);
    }
    ctx.tally.add(Counter::HandoffOut, 1);
    let _ = batch.push(m);
}

/// Buffers `m` for the wire, sending the batch first when it is full.
#[inline(always)]
fn push_wire(batch: &mut MbufArray, tx: &mut TxQueue, m: Mbuf, tally: &mut Tally) {
    if batch.is_full() {
        send_wire(batch, tx, tally);
    }
    // Cannot fail: the batch was just emptied if it was full.
    let _ = batch.push(m);
}

/// Buffers `m` for the host interface (counted as to_host: the packets queued
/// for the kernel, fragments included).
#[inline]
fn push_host(batch: &mut MbufArray, tx: &mut TxQueue, m: Mbuf, tally: &mut Tally) {
    tally.add(Counter::ToHost, 1);
    if batch.is_full() {
        send_host(batch, tx, tally);
    }
    let _ = batch.push(m);
}

#[inline(never)]
fn send_wire(batch: &mut MbufArray, tx: &mut TxQueue, tally: &mut Tally) {
    let s = tx.flush(batch);
    tally.add(Counter::TxPackets, s.packets);
    tally.add(Counter::TxBytes, s.bytes);
    tally.add(Counter::DropTxQueueFull, s.dropped);
}

#[inline]
fn send_host(batch: &mut MbufArray, tx: &mut TxQueue, tally: &mut Tally) {
    let s = tx.flush(batch);
    tally.add(Counter::DropHostQueueFull, s.dropped);
}

fn flush_all(ctx: &mut Ctx<'_>) {
    for (port, buf) in ctx.ports.iter_mut().zip(ctx.bufs.iter_mut()) {
        send_wire(&mut buf.wire, &mut port.tx, ctx.tally);
        if let Some(host) = port.host.as_mut() {
            send_host(&mut buf.host, &mut host.tx, ctx.tally);
        }
    }
    for (batch, ring) in ctx.to_peer.iter_mut().zip(ctx.handoff.to.iter_mut()) {
        if let Some(ring) = ring {
            let dropped = ring.send(batch);
            ctx.tally.add(Counter::DropHandoffFull, dropped);
        }
    }
}

#[inline]
fn tsc() -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: rdtsc has no preconditions.
        unsafe { std::arch::x86_64::_rdtsc() }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        // SAFETY: valid once the EAL is up, which it is on any worker.
        unsafe { dpdk_sys::rte_get_tsc_cycles() }
    }
}
