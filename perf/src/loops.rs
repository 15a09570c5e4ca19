//! The loops a run measures: the bare forwarder, Weir's worker, and worker 0 of
//! two handing every packet over; each takes the bench's queues for a run.

use crate::bench::{tsc, Bench};
use crate::frames::{flow, flow6, frame, frame6, OUR_MAC};
use crate::lab::{port_addrs, snapshot};
use crate::reference::Reference;
use arc_swap::ArcSwap;
use dataplane::dpdk::ring::{handoff_ring, Consumer};
use dataplane::dpdk::{MbufArray, RxQueue, TxQueue};
use dataplane::lb::core::{Arrival, LbCore, LbVerdict};
use dataplane::lb::snapshot::LbSnapshot;
use dataplane::lb::table_hash::TableHasher;
use dataplane::pipeline::control::Control;
use dataplane::pipeline::counters::{Counter, Tally};
use dataplane::pipeline::worker::{Handoff, LoopState, Worker, WorkerPort, TX_DRAIN_US};
use dataplane::wire::tcp;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

/// A loop under test: one iteration of it.
pub trait Loop {
    fn step(&mut self);
    /// Sends anything it holds back and hands the queues back.
    fn release(&mut self) -> (RxQueue, TxQueue);
}

/// A loop that takes the queues for a run and says what it could not forward.
pub trait Measured: Loop {
    fn attach(&mut self, queues: (RxQueue, TxQueue));
    fn not_forwarded(&self) -> u64;
    /// Connections it holds (0 for a stateless loop).
    fn entries(&self) -> usize;
}

/// The floor: receive a burst, transmit it.
pub struct Bare {
    pub queues: Option<(RxQueue, TxQueue)>,
    pub batch: MbufArray,
}

impl Loop for Bare {
    #[inline]
    fn step(&mut self) {
        if let Some((rx, tx)) = self.queues.as_mut() {
            rx.burst(&mut self.batch);
            tx.flush(&mut self.batch);
        }
    }

    fn release(&mut self) -> (RxQueue, TxQueue) {
        self.queues.take().expect("queues")
    }
}

/// Weir's worker, polled as its own `run` loop polls it, with its timer's
/// work every `TX_DRAIN_US` as `run` does it (the table's clock held still,
/// so that no entry expires in the middle of a scenario).
pub struct UnderTest {
    pub worker: Worker,
    pub st: LoopState,
    /// Held like the worker's loop holds its per-iteration snapshot guard.
    pub snap: Arc<LbSnapshot>,
    /// TSC of the last timer tick, and TSC ticks between two.
    last_tick: u64,
    tick_every: u64,
}

impl Loop for UnderTest {
    #[inline]
    fn step(&mut self) {
        self.worker.poll(&self.snap, &mut self.st);
        let now = tsc();
        if now.wrapping_sub(self.last_tick) >= self.tick_every {
            let table_now = self.worker.lb.now;
            self.worker.tick(&self.snap, &mut self.st, table_now, false);
            self.last_tick = now;
        }
    }

    fn release(&mut self) -> (RxQueue, TxQueue) {
        self.worker.flush(&self.snap, &mut self.st);
        let port = self.worker.ports.pop().expect("one port");
        (port.rx.expect("rx queue"), port.tx)
    }
}

impl Measured for UnderTest {
    /// Gives the worker the queues again (after a bare run had them).
    fn attach(&mut self, queues: (RxQueue, TxQueue)) {
        self.worker.ports.push(Self::port(queues));
    }

    /// Packets the worker received that it did not forward (for any reason).
    fn not_forwarded(&self) -> u64 {
        let t = &self.st.tally;
        t.get(Counter::RxPackets) - t.get(Counter::LbForward) - t.get(Counter::LbReverse)
    }

    fn entries(&self) -> usize {
        self.worker.lb.table.len()
    }
}

/// Worker 0 of two, given packets of flows worker 1 owns: it hands each one
/// over, and a stand-in for worker 1 sends them on untouched. What a packet
/// costs the worker that receives it when the device put it on the wrong
/// queue (worker 1's own processing of it is not counted: it is owed anyway).
pub struct HandingOver {
    pub under: UnderTest,
    pub from_peer: Consumer,
    pub batch: MbufArray,
}

impl HandingOver {
    pub fn new(bench: &mut Bench) -> HandingOver {
        let mut under = UnderTest::of_workers(bench, 2000, 2);
        let (to, from) = handoff_ring("perf_handoff", 1024).expect("hand-off ring");
        under.worker.handoff = Handoff {
            to: vec![None, Some(to)],
            from: vec![],
            stopped: Default::default(),
        };
        under.st = under.worker.loop_state();
        HandingOver {
            under,
            from_peer: from,
            batch: MbufArray::default(),
        }
    }

    fn send_on(&mut self) {
        self.from_peer.receive(&mut self.batch);
        if let Some(port) = self.under.worker.ports.last_mut() {
            port.tx.flush(&mut self.batch);
        }
    }
}

impl Loop for HandingOver {
    #[inline]
    fn step(&mut self) {
        self.under.step();
        self.send_on();
    }

    fn release(&mut self) -> (RxQueue, TxQueue) {
        self.under
            .worker
            .flush(&self.under.snap, &mut self.under.st);
        self.send_on();
        self.under.release()
    }
}

impl Measured for HandingOver {
    fn attach(&mut self, queues: (RxQueue, TxQueue)) {
        self.under.attach(queues);
    }

    /// Packets worker 0 neither handed over nor forwarded.
    fn not_forwarded(&self) -> u64 {
        let t = &self.under.st.tally;
        t.get(Counter::RxPackets) - t.get(Counter::HandoffOut)
    }

    fn entries(&self) -> usize {
        0
    }
}

impl Measured for Reference {
    fn attach(&mut self, queues: (RxQueue, TxQueue)) {
        Reference::attach(self, queues);
    }

    fn not_forwarded(&self) -> u64 {
        self.missed
    }

    fn entries(&self) -> usize {
        0
    }
}

impl UnderTest {
    pub fn new(bench: &mut Bench, flows_capacity: usize) -> UnderTest {
        UnderTest::of_workers(bench, flows_capacity, 1)
    }

    /// Worker 0 of `workers` (the others are not run: flows they own would be
    /// handed to them).
    pub fn of_workers(bench: &mut Bench, flows_capacity: usize, workers: u16) -> UnderTest {
        UnderTest::with(bench, flows_capacity, workers, snapshot())
    }

    pub fn with(
        bench: &mut Bench,
        flows_capacity: usize,
        workers: u16,
        snap: LbSnapshot,
    ) -> UnderTest {
        let hasher = *TableHasher::process();
        UnderTest::hashed_by(bench, flows_capacity, workers, snap, hasher)
    }

    /// As `with`, the connection table hashing keys with `hasher`.
    pub fn hashed_by(
        bench: &mut Bench,
        flows_capacity: usize,
        workers: u16,
        snap: LbSnapshot,
        hasher: TableHasher,
    ) -> UnderTest {
        let snap = Arc::new(snap);
        let locals = snap.local_flat.len();
        let (_, queries) = std::sync::mpsc::channel();
        let mut worker = Worker {
            id: 0,
            ports: vec![],
            counters: Default::default(),
            lb_counters: Default::default(),
            quit: Default::default(),
            tsc_hz: bench.tsc_hz,
            idle_sleep_us: 0,
            lb: LbCore::with_table_hasher(0, workers, flows_capacity, locals, hasher),
            snapshot: Arc::new(ArcSwap::from(snap.clone())),
            handoff: Default::default(),
            port_index: vec![0; 8],
            macs: vec![OUR_MAC],
            control: Control::new(queries),
        };
        worker
            .ports
            .push(Self::port(bench.fwd.take().expect("queues")));
        let st = worker.loop_state();
        let tick_every = (bench.tsc_hz / 1_000_000).max(1) * TX_DRAIN_US;
        UnderTest {
            worker,
            st,
            snap,
            last_tick: tsc(),
            tick_every,
        }
    }

    fn port((rx, tx): (RxQueue, TxQueue)) -> WorkerPort {
        WorkerPort {
            rx: Some(rx),
            tx,
            host: None,
            local: port_addrs(),
        }
    }

    /// Creates `n` connections to `vip` (SYNs through the balancer, not timed).
    pub fn establish(&mut self, n: usize, vip: Ipv4Addr) {
        self.establish_with(n, false, |i| {
            let (src, sport) = flow(i);
            frame(src, sport, vip, tcp::flags::SYN).to_vec()
        });
    }

    /// Creates `n` IPv6 connections to `vip`.
    pub fn establish6(&mut self, n: usize, vip: Ipv6Addr) {
        self.establish_with(n, true, |i| {
            let (src, sport) = flow6(i);
            frame6(src, sport, vip, tcp::flags::SYN).to_vec()
        });
    }

    /// Creates `n` connections from the SYNs `syn(i)` makes.
    pub fn establish_with(&mut self, n: usize, v6: bool, syn: impl Fn(usize) -> Vec<u8>) {
        let mut tally = Tally::default();
        for i in 0..n {
            let mut buf = dataplane::buf::VecBuf::from_slice(&syn(i));
            let at = Arrival {
                l2: 14,
                v6,
                in_port: 0,
                handed: false,
                local: false,
            };
            let v = self
                .worker
                .lb
                .process(&mut buf, at, &self.snap, &[OUR_MAC], &mut tally);
            assert!(matches!(v, LbVerdict::Tx(_)), "setup flow {i}: {v:?}");
        }
    }
}
