//! `weir-perf`: cycles per packet of Weir's worker on its L4 path, measured against
//! a bare receive-and-transmit loop on the same DPDK queues in the same run.
//!
//! The port is a `net_ring` vdev, so no traffic leaves the process; its queue 0 and
//! queue 1 are two rings. The loop under test (the bare forwarder, or a real
//! `Worker` polled exactly as its `run` loop polls) receives on queue 0 and
//! transmits on queue 1. A traffic source on the same core takes what comes out of
//! queue 1, restores each packet from its template (a 64-byte copy) and sends it
//! into queue 0 again. Both loops pay the same source; 2048 packets circulate.
//! Cycles are TSC ticks over the whole measured loop divided by packets.
//!
//! Each scenario's ratio is taken against a bare loop run just before it; with
//! `--rounds R`, an established-flow scenario alternates R bare runs and R runs of
//! the worker (on the same table) and reports the medians, so that the machine's
//! drift during a run touches both sides alike.
//!
//! With `--veth A,B` (see `perf/veth_ports.sh`), the loop under test and the
//! source own an af_packet port each, on the two ends of a veth pair, instead.
//!
//!     weir-perf [--seconds S] [--rounds R] [--large N] [--only TEXT] [--in-flight N]
//!               [--packets N] [--no-huge] [--veth A,B]

mod reference;
mod ring_build;

use arc_swap::ArcSwap;
use dataplane::buf::PacketBuf;
use dataplane::dpdk::port::SYMMETRIC_RSS_KEY;
use dataplane::dpdk::ring::{handoff_ring, Consumer};
use dataplane::dpdk::{Eal, Mbuf, MbufArray, Mempool, Port, PortSpec, RxQueue, TxQueue};
use dataplane::lb::core::{Arrival, LbCore, LbVerdict};
use dataplane::lb::flow::FlowKey;
use dataplane::lb::ring::{RingMember, RingTable};
use dataplane::lb::rss_steer::RssSteering;
use dataplane::lb::snapshot::{Backend, HashKey, LbSnapshot, LocalAddrs, Mode, SchedKind, Service};
use dataplane::pipeline::control::Control;
use dataplane::pipeline::counters::{Counter, Tally};
use dataplane::pipeline::local::LocalAddrs as PortAddrs;
use dataplane::pipeline::worker::{Handoff, LoopState, Worker, WorkerPort};
use dataplane::wire::build::Tcp;
use dataplane::wire::{ipv4, tcp};
use reference::{Kind, Reference};
use serde_json::json;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

const OUR_MAC: [u8; 6] = [0x02, 0x57, 0x45, 0x49, 0x52, 0x01];
const CLIENT_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x10];
/// Packets circulating by default (`--in-flight N`).
const IN_FLIGHT: usize = 2048;
const FRAME_LEN: usize = 64;
/// Backends in the large pool of the new-flow scenarios that compare schedulers.
const POOL_SIZE: usize = 1000;

fn tsc() -> u64 {
    // SAFETY: rdtsc has no preconditions.
    unsafe { std::arch::x86_64::_rdtsc() }
}

/// A 64-byte Ethernet/IPv4/TCP frame from client `src:sport` to `dst:80`.
fn frame(src: Ipv4Addr, sport: u16, dst: Ipv4Addr, flags: u8) -> [u8; FRAME_LEN] {
    frame_between((src, sport), (dst, 80), flags)
}

/// A 64-byte Ethernet/IPv4/TCP frame to the appliance from `src` to `dst`.
fn frame_between(
    (src, sport): (Ipv4Addr, u16),
    (dst, dport): (Ipv4Addr, u16),
    flags: u8,
) -> [u8; FRAME_LEN] {
    let f = to_us((src, sport), (dst, dport)).frame(flags, FRAME_LEN - 54);
    f.try_into().expect("FRAME_LEN bytes")
}

/// The ends of a segment to the appliance (from a client, or a backend's reply).
fn to_us<A>((src, sport): (A, u16), (dst, dport): (A, u16)) -> Tcp<A> {
    Tcp {
        src_mac: CLIENT_MAC,
        dst_mac: OUR_MAC,
        src,
        sport,
        dst,
        dport,
    }
}

/// The shortest Ethernet/IPv6/TCP frame: no payload.
const FRAME6_LEN: usize = 14 + 40 + 20;

/// A 74-byte Ethernet/IPv6/TCP frame from client `src:sport` to `dst:80`.
fn frame6(src: Ipv6Addr, sport: u16, dst: Ipv6Addr, flags: u8) -> [u8; FRAME6_LEN] {
    let f = to_us((src, sport), (dst, 80)).frame(flags, 0);
    f.try_into().expect("FRAME6_LEN bytes")
}

/// The backends' replies to the FullNAT connections in `lb`'s table, in a
/// scattered order (from the backend to the local address and port).
fn replies(lb: &LbCore) -> Vec<[u8; FRAME_LEN]> {
    let v4 = |a: IpAddr| match a {
        IpAddr::V4(a) => a,
        IpAddr::V6(_) => unreachable!("IPv4 benchmark"),
    };
    let revs: Vec<_> = lb.table.iter().filter_map(|(_, c)| c.rev).collect();
    (0..revs.len().min(1 << 20))
        .map(|i| {
            let r = revs[(i * 7919) % revs.len()];
            let (from, to) = ((v4(r.src_ip()), r.sport), (v4(r.dst_ip()), r.dport));
            frame_between(from, to, tcp::flags::ACK)
        })
        .collect()
}

/// Entries of the table a SYN flood has filled (`... table full of half-open ones`).
const FULL_TABLE: usize = 65_536;

/// Client address and port of flow `i` (65 000 ports per address).
fn flow(i: usize) -> (Ipv4Addr, u16) {
    let a = (i / 65_000) as u32;
    (
        Ipv4Addr::from(u32::from(Ipv4Addr::new(198, 19, 0, 0)) + a),
        1024 + (i % 65_000) as u16,
    )
}

/// Client address and port of IPv6 flow `i`.
fn flow6(i: usize) -> (Ipv6Addr, u16) {
    let (a, port) = flow(i);
    let mut o = [
        0x20, 0x01, 0x0d, 0xb8, 0, 0x13, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ];
    o[12..].copy_from_slice(&a.octets());
    (Ipv6Addr::from(o), port)
}

const VIP6_NAT: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x100);
const VIP6_DR: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x200);

fn snapshot() -> LbSnapshot {
    // Backends 0-2 over IPv4, 3-5 over IPv6, each three on its own ring.
    let names = [
        "web/b1", "web/b2", "web/b3", "web6/b1", "web6/b2", "web6/b3",
    ];
    let ring = |names: &[&str]| {
        let members: Vec<RingMember<'_>> = names
            .iter()
            .map(|k| RingMember { key: k, weight: 1 })
            .collect();
        Arc::new(RingTable::build(&members))
    };
    let rings = [ring(&names[..3]), ring(&names[3..])];
    let backends = (0..6)
        .map(|i| Backend {
            name: names[i].into(),
            addr: if i < 3 {
                IpAddr::V4(Ipv4Addr::new(198, 18, 0, 11 + i as u8))
            } else {
                IpAddr::V6(Ipv6Addr::new(
                    0x2001,
                    0xdb8,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0x11 + i as u16 - 3,
                ))
            },
            port: 80,
            weight: 1,
            mac: Some([2, 0, 0, 0, 1, i as u8]),
            port_index: 0,
            blocked: false,
            down: false,
        })
        .collect();
    let mut snap = LbSnapshot {
        backends,
        ..Default::default()
    };
    for (i, (vip, mode)) in [
        (IpAddr::V4(Ipv4Addr::new(198, 18, 0, 100)), Mode::FullNat),
        (IpAddr::V4(Ipv4Addr::new(198, 18, 0, 200)), Mode::Dr),
        (IpAddr::V6(VIP6_NAT), Mode::FullNat),
        (IpAddr::V6(VIP6_DR), Mode::Dr),
    ]
    .into_iter()
    .enumerate()
    {
        let first = if vip.is_ipv4() { 0 } else { 3 };
        snap.services.push(Service {
            name: format!("svc{i}"),
            vip,
            port: 80,
            proto: 6,
            mode,
            sched: SchedKind::RingHash,
            hash_key: HashKey::FiveTuple,
            backends: vec![first, first + 1, first + 2],
            weights: vec![1, 1, 1],
            ports: vec![80, 80, 80],
            ring: rings[first as usize / 3].clone(),
            wrr: vec![0, 1, 2],
            fragments: false,
        });
        let key = dataplane::lb::flow::FlowKey::new(vip, vip, 0, 80, 6);
        snap.by_vip.insert((key.dst, 80, 6), i as u32);
        snap.vips.push(vip);
    }
    snap.locals = vec![LocalAddrs {
        v4: (2..30).map(|i| Ipv4Addr::new(198, 18, 0, i)).collect(),
        v6: (2..30)
            .map(|i| Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, i))
            .collect(),
    }];
    snap.index_locals();
    snap
}

/// The VIP of the large pool's service (dr), added by [`with_large_pool`].
const VIP_POOL: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 201);

/// [`snapshot`] plus a dr service on [`VIP_POOL`] over a pool of `n` equal
/// backends (198.18.4.0 onwards), scheduled by `sched`: what a new flow's
/// choice costs when the pool is large.
fn with_large_pool(n: usize, sched: SchedKind) -> LbSnapshot {
    let mut snap = snapshot();
    let first = snap.backends.len() as u32;
    let names: Vec<String> = (0..n).map(|i| format!("big/b{i}")).collect();
    for (i, name) in names.iter().enumerate() {
        let i = i as u32;
        snap.backends.push(Backend {
            name: name.clone(),
            addr: IpAddr::V4(Ipv4Addr::from(u32::from(Ipv4Addr::new(198, 18, 4, 0)) + i)),
            port: 80,
            weight: 1,
            mac: Some([2, 0, 0, 1, (i >> 8) as u8, i as u8]),
            port_index: 0,
            blocked: false,
            down: false,
        });
    }
    let members: Vec<RingMember<'_>> = names
        .iter()
        .map(|k| RingMember { key: k, weight: 1 })
        .collect();
    let sid = snap.services.len() as u32;
    snap.services.push(Service {
        name: "big".into(),
        vip: IpAddr::V4(VIP_POOL),
        port: 80,
        proto: 6,
        mode: Mode::Dr,
        sched,
        hash_key: HashKey::FiveTuple,
        backends: (first..first + n as u32).collect(),
        weights: vec![1; n],
        ports: vec![80; n],
        ring: Arc::new(RingTable::build(&members)),
        wrr: vec![],
        fragments: false,
    });
    let vip = IpAddr::V4(VIP_POOL);
    let key = FlowKey::new(vip, vip, 0, 80, 6);
    snap.by_vip.insert((key.dst, 80, 6), sid);
    snap.vips.push(vip);
    snap.index_locals();
    snap
}

fn port_addrs() -> PortAddrs {
    PortAddrs {
        mac: OUR_MAC,
        vlan: None,
        mtu: 1500,
        ipv4: vec![Ipv4Addr::new(198, 18, 0, 1)],
        ipv6: vec![Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1)],
        host_interface: false,
        host_mtu: 0,
        reassembled_len: 0,
    }
}

/// The rings and the traffic source. The loop under test owns `fwd` while it runs.
struct Bench {
    in_flight: usize,
    pool: Mempool,
    /// The source's side: it receives what the loop under test sent (queue 1) and
    /// sends into what the loop receives (queue 0).
    src_rx: RxQueue,
    src_tx: TxQueue,
    /// The loop under test's queues: receive on 0, transmit on 1.
    fwd: Option<(RxQueue, TxQueue)>,
    tsc_hz: u64,
}

/// A loop under test: one iteration of it.
trait Loop {
    fn step(&mut self);
    /// Sends anything it holds back and hands the queues back.
    fn release(&mut self) -> (RxQueue, TxQueue);
}

/// A loop that takes the queues for a run and says what it could not forward.
trait Measured: Loop {
    fn attach(&mut self, queues: (RxQueue, TxQueue));
    fn not_forwarded(&self) -> u64;
    /// Connections it holds (0 for a stateless loop).
    fn entries(&self) -> usize;
}

/// The floor: receive a burst, transmit it.
struct Bare {
    queues: Option<(RxQueue, TxQueue)>,
    batch: MbufArray,
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

/// Weir's worker, polled as its own `run` loop polls it.
struct UnderTest {
    worker: Worker,
    st: LoopState,
    /// Held like the worker's loop holds its per-iteration snapshot guard.
    snap: Arc<LbSnapshot>,
}

impl Loop for UnderTest {
    #[inline]
    fn step(&mut self) {
        self.worker.poll(&self.snap, &mut self.st);
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
struct HandingOver {
    under: UnderTest,
    from_peer: Consumer,
    batch: MbufArray,
}

impl HandingOver {
    fn new(bench: &mut Bench) -> HandingOver {
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
    fn new(bench: &mut Bench, flows_capacity: usize) -> UnderTest {
        UnderTest::of_workers(bench, flows_capacity, 1)
    }

    /// Worker 0 of `workers` (the others are not run: flows they own would be
    /// handed to them).
    fn of_workers(bench: &mut Bench, flows_capacity: usize, workers: u16) -> UnderTest {
        UnderTest::with(bench, flows_capacity, workers, snapshot())
    }

    fn with(bench: &mut Bench, flows_capacity: usize, workers: u16, snap: LbSnapshot) -> UnderTest {
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
            lb: LbCore::new(0, workers, flows_capacity, locals),
            snapshot: Arc::new(ArcSwap::from(snap.clone())),
            handoff: Default::default(),
            port_index: vec![0; 8],
            macs: vec![OUR_MAC],
            control: Control { queries },
        };
        worker
            .ports
            .push(Self::port(bench.fwd.take().expect("queues")));
        let st = worker.loop_state();
        UnderTest { worker, st, snap }
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
    fn establish(&mut self, n: usize, vip: Ipv4Addr) {
        self.establish_with(n, false, |i| {
            let (src, sport) = flow(i);
            frame(src, sport, vip, tcp::flags::SYN).to_vec()
        });
    }

    /// Creates `n` IPv6 connections to `vip`.
    fn establish6(&mut self, n: usize, vip: Ipv6Addr) {
        self.establish_with(n, true, |i| {
            let (src, sport) = flow6(i);
            frame6(src, sport, vip, tcp::flags::SYN).to_vec()
        });
    }

    /// Creates `n` connections from the SYNs `syn(i)` makes.
    fn establish_with(&mut self, n: usize, v6: bool, syn: impl Fn(usize) -> Vec<u8>) {
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

impl Bench {
    /// Runs `under_test` with packets built from `templates` (cycled) for `seconds`
    /// or `max_packets`; returns cycles per packet and packets. `vary(i, frame)` may
    /// alter a restored copy (new flows).
    fn run<const N: usize>(
        &mut self,
        templates: &[[u8; N]],
        under_test: &mut dyn Loop,
        seconds: f64,
        max_packets: usize,
        vary: &dyn Fn(usize, &mut [u8]),
    ) -> (f64, u64) {
        let mut batch = MbufArray::default();
        for i in 0..self.in_flight {
            let mut m = Mbuf::alloc(&self.pool).expect("mempool");
            m.set_len(N).expect("room");
            m.data_mut()
                .copy_from_slice(&templates[i % templates.len()]);
            let _ = batch.push(m);
            if batch.is_full() {
                self.src_tx.flush(&mut batch);
            }
        }
        self.src_tx.flush(&mut batch);
        let budget = (seconds * self.tsc_hz as f64) as u64;
        let mut rx = MbufArray::default();
        let mut packets = 0usize;
        let mut next = 0usize;
        let start = tsc();
        while tsc() - start < budget && packets < max_packets {
            under_test.step();
            let n = self.src_rx.burst(&mut rx);
            for mut m in rx.drain() {
                let t = &templates[next % templates.len()];
                m.data_mut().copy_from_slice(t);
                vary(next, m.data_mut());
                next += 1;
                let _ = batch.push(m);
            }
            self.src_tx.flush(&mut batch);
            packets += n;
        }
        let cycles = tsc() - start;
        (cycles as f64 / packets.max(1) as f64, packets as u64)
    }

    /// Takes the queues back from a loop and frees what still circulates.
    fn end(&mut self, under_test: &mut dyn Loop) {
        let (mut rx, tx) = under_test.release();
        let mut batch = MbufArray::default();
        while rx.burst(&mut batch) + self.src_rx.burst(&mut batch) > 0 {
            batch.drain().for_each(drop);
        }
        self.fwd = Some((rx, tx));
    }

    /// One run of the bare loop: cycles per packet and packets.
    fn bare<const N: usize>(
        &mut self,
        templates: &[[u8; N]],
        seconds: f64,
        max_packets: usize,
    ) -> (f64, u64) {
        let mut bare = Bare {
            queues: self.fwd.take(),
            batch: MbufArray::default(),
        };
        let r = self.run(templates, &mut bare, seconds, max_packets, &|_, _| {});
        self.end(&mut bare);
        r
    }
}

/// ACKs of the flows `flow(i)` for `i` in `flows`, to `vip`, in a scattered
/// order (so that a table misses the caches as real traffic would).
fn scattered_acks(flows: &[usize], vip: Ipv4Addr) -> Vec<[u8; FRAME_LEN]> {
    (0..flows.len())
        .map(|k| {
            let (s, p) = flow(flows[(k * 7919) % flows.len()]);
            frame(s, p, vip, tcp::flags::ACK)
        })
        .collect()
}

/// What every established-flow scenario runs with.
struct Opts {
    seconds: f64,
    rounds: usize,
    /// `--packets`, or `usize::MAX`.
    cap: usize,
    /// The first bare run's cycles per packet.
    first_bare: f64,
}

/// The bare loop a scenario is compared with: run just before it, except under
/// `--packets` (instruction counts, where only the loop under test should scale
/// with N), where it is the first run's.
fn paired_bare<const N: usize>(b: &mut Bench, templates: &[[u8; N]], o: &Opts) -> f64 {
    if o.cap == usize::MAX {
        b.bare(templates, o.seconds, o.cap).0
    } else {
        o.first_bare
    }
}

/// Runs `w` (its table set up) on `templates` in `o.rounds` rounds, each a bare
/// run and a run of `w`; returns the scenario's medians.
fn established<const N: usize>(
    b: &mut Bench,
    w: &mut dyn Measured,
    label: &str,
    templates: &[[u8; N]],
    o: &Opts,
) -> serde_json::Value {
    b.end(w);
    let (mut cycles, mut bares, mut ratios, mut packets) = (vec![], vec![], vec![], 0);
    for _ in 0..o.rounds {
        let bare = paired_bare(b, templates, o);
        w.attach(b.fwd.take().expect("queues"));
        let (c, n) = b.run(templates, w, o.seconds, o.cap, &|_, _| {});
        b.end(w);
        cycles.push(c);
        bares.push(bare);
        ratios.push(c / bare);
        packets += n;
    }
    assert_eq!(w.not_forwarded(), 0, "{label}: packets dropped");
    let (c, bare) = (median(&mut cycles), median(&mut bares));
    json!({"scenario": label, "entries": w.entries(),
           "cycles_per_packet": c, "bare_cycles_per_packet": bare,
           "ratio_to_bare": median(&mut ratios), "added_cycles": c - bare,
           "rounds": o.rounds, "packets": packets})
}

/// The median of `xs` (the mean of the middle two for an even count).
fn median(xs: &mut [f64]) -> f64 {
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    if n % 2 == 1 {
        xs[n / 2]
    } else {
        (xs[n / 2 - 1] + xs[n / 2]) / 2.0
    }
}

/// Free 2 MiB hugepages, in MiB.
fn free_hugepages_mib() -> u64 {
    let info = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let field = |name: &str| {
        info.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            .unwrap_or(0)
    };
    field("HugePages_Free:") * field("Hugepagesize:") / 1024
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str, default: f64| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    // `--ring N,N,...`: the management core's ring-table builds and updates
    // for pools of those sizes, instead of the packet loops (no DPDK).
    if let Some(sizes) = args.iter().position(|a| a == "--ring").map(|i| {
        args.get(i + 1)
            .map(|v| {
                v.split(',')
                    .filter_map(|n| n.parse().ok())
                    .collect::<Vec<usize>>()
            })
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| vec![3, 100, 1000])
    }) {
        println!("{:#}", ring_build::run(&sizes));
        return;
    }
    let seconds = arg("--seconds", 1.0);
    let large = arg("--large", 1_000_000.0) as usize;
    // `--only TEXT` runs the scenarios whose label contains TEXT (and the bare loop).
    let only = args
        .iter()
        .position(|a| a == "--only")
        .and_then(|i| args.get(i + 1))
        .cloned()
        .unwrap_or_default();
    let wanted = |label: &str| label.contains(only.as_str());
    // Hugepages as in production when the machine has them free (512 MiB for the
    // pool; the 4 KiB fallback adds a TLB miss per mbuf to both loops).
    let huge = !args.iter().any(|a| a == "--no-huge") && free_hugepages_mib() >= 512;
    let memory: &[&str] = if huge {
        &["--in-memory", "-m", "512"]
    } else {
        &["--no-huge", "-m", "512", "--no-shconf"]
    };
    // `--veth A,B`: two af_packet ports on the two ends of a veth pair (which
    // perf/veth_ports.sh creates in a namespace of its own) instead of net_ring.
    let veth = args
        .iter()
        .position(|a| a == "--veth")
        .and_then(|i| args.get(i + 1))
        .map(|v| v.split_once(',').expect("--veth A,B"));
    let eal_args: Vec<String> = ["weir-perf", "-l", "0"]
        .iter()
        .chain(memory)
        .chain(&["--no-telemetry", "--no-pci", "--log-level=warning"])
        .map(|s| s.to_string())
        .chain(
            vdevs(veth)
                .into_iter()
                .flat_map(|v| ["--vdev".to_string(), v]),
        )
        .collect();
    let eal = Eal::init(&eal_args).expect("EAL");
    let pool = Mempool::new("perf", 8191, 256, 2176, 0).expect("mempool");
    let (ports, src_rx, src_tx, fwd) = wire(veth.is_some(), &pool);
    let mut b = Bench {
        in_flight: (arg("--in-flight", IN_FLIGHT as f64) as usize).clamp(32, 4096),
        pool,
        src_rx,
        src_tx,
        fwd: Some(fwd),
        tsc_hz: eal.tsc_hz(),
    };
    let vip_nat = Ipv4Addr::new(198, 18, 0, 100);
    let vip_dr = Ipv4Addr::new(198, 18, 0, 200);
    let mut results = Vec::new();

    let templates: Vec<[u8; FRAME_LEN]> = (0..1000)
        .map(|i| {
            let (s, p) = flow(i);
            frame(s, p, vip_dr, tcp::flags::ACK)
        })
        .collect();
    // `--packets N` stops each established-flow run after N packets (for
    // instruction counts under callgrind, where time means nothing).
    let cap = arg("--packets", f64::INFINITY).min(usize::MAX as f64) as usize;
    let rounds = (arg("--rounds", 1.0) as usize).max(1);
    let (first_bare, n) = b.bare(&templates, seconds, cap);
    results.push(
        json!({"scenario": "bare rx/tx loop", "cycles_per_packet": first_bare, "packets": n}),
    );
    let opts = Opts {
        seconds,
        rounds,
        cap,
        first_bare,
    };

    // Established flows: the clients' packets (dr, fullnat) and the backends'
    // replies (fullnat).
    for (label, vip, flows, replying) in [
        ("established dr, 1k entries", vip_dr, 1000usize, false),
        ("established fullnat, 1k entries", vip_nat, 1000, false),
        (
            "established fullnat replies, 1k entries",
            vip_nat,
            1000,
            true,
        ),
        ("established dr, large table", vip_dr, large, false),
        ("established fullnat, large table", vip_nat, large, false),
        (
            "established fullnat replies, large table",
            vip_nat,
            large,
            true,
        ),
    ] {
        if !wanted(label) {
            continue;
        }
        let mut w = Box::new(UnderTest::new(&mut b, flows.max(1000) * 2));
        w.establish(flows, vip);
        // Visit the flows in a scattered order so that large tables miss the cache
        // as real traffic would.
        let templates: Vec<[u8; FRAME_LEN]> = if replying {
            replies(&w.worker.lb)
        } else {
            (0..flows.min(1 << 20))
                .map(|i| {
                    let (s, p) = flow((i * 7919) % flows);
                    frame(s, p, vip, tcp::flags::ACK)
                })
                .collect()
        };
        results.push(established(&mut b, w.as_mut(), label, &templates, &opts));
    }
    // As "established dr, 1k entries", on worker 0 of two, with flows it owns:
    // what deciding each packet's owner adds when there are several workers,
    // by Weir's own hash or (on a device that spreads flows by RSS) by the
    // Toeplitz hash and redirection table.
    let rss = {
        let reta = (0..512).map(|i| i % 2).collect();
        Arc::new(RssSteering::new(&SYMMETRIC_RSS_KEY, reta).expect("a power-of-two table"))
    };
    for (label, steer) in [
        ("worker 0 of 2: dr, 1k entries, established", None),
        (
            "worker 0 of 2, owning flows by RSS: dr, 1k entries, established",
            Some(rss),
        ),
    ] {
        if !wanted(label) {
            continue;
        }
        let vip = vip_dr;
        let own: Vec<usize> = (0..)
            .filter(|&i| {
                let (s, p) = flow(i);
                FlowKey::v4(s, vip, p, 80, 6).owner_by(2, steer.as_deref()) == 0
            })
            .take(1000)
            .collect();
        let mut w = Box::new(UnderTest::of_workers(&mut b, 2000, 2));
        // Port 0 spreads packets by that steering (a NIC would have put these
        // flows on queue 0).
        w.worker.lb.steered_ports = steer.is_some() as u64;
        w.worker.lb.steer = steer;
        w.establish_with(own.len(), false, |k| {
            let (s, p) = flow(own[k]);
            frame(s, p, vip, tcp::flags::SYN).to_vec()
        });
        let templates = scattered_acks(&own, vip);
        results.push(established(&mut b, w.as_mut(), label, &templates, &opts));
    }
    // The same flows' packets on worker 0 when worker 1 owns them: what a
    // hand-off costs the worker that receives the packet.
    let label = "worker 0 of 2, handing every packet to worker 1: dr, 1k flows";
    if wanted(label) {
        let theirs: Vec<usize> = (0..)
            .filter(|&i| {
                let (s, p) = flow(i);
                FlowKey::v4(s, vip_dr, p, 80, 6).owner(2) == 1
            })
            .take(1000)
            .collect();
        let mut w = Box::new(HandingOver::new(&mut b));
        let templates = scattered_acks(&theirs, vip_dr);
        results.push(established(&mut b, w.as_mut(), label, &templates, &opts));
    }
    // Reference loops on the packets of the dr 1k scenario (see reference.rs).
    let dr_templates: Vec<[u8; FRAME_LEN]> = (0..1000)
        .map(|i| {
            let (s, p) = flow((i * 7919) % 1000);
            frame(s, p, vip_dr, tcp::flags::ACK)
        })
        .collect();
    for (label, kind) in [
        ("reference: mac swap (l2fwd)", Kind::MacSwap),
        ("reference: route lookup, TTL (l3fwd-like)", Kind::Route),
        (
            "reference: 5-tuple lookup and count, TTL (least stateful dr), 1k",
            Kind::Track,
        ),
    ] {
        if !wanted(label) {
            continue;
        }
        let mut r = Reference::new(kind, &dr_templates);
        r.attach(b.fwd.take().expect("queues"));
        results.push(established(&mut b, &mut r, label, &dr_templates, &opts));
    }
    // The same over IPv6 (1k entries).
    for (label, vip) in [
        ("established dr ipv6, 1k entries", VIP6_DR),
        ("established fullnat ipv6, 1k entries", VIP6_NAT),
    ] {
        if !wanted(label) {
            continue;
        }
        let flows = 1000;
        let mut w = Box::new(UnderTest::new(&mut b, flows * 2));
        w.establish6(flows, vip);
        let templates: Vec<[u8; FRAME6_LEN]> = (0..flows)
            .map(|i| {
                let (s, p) = flow6((i * 7919) % flows);
                frame6(s, p, vip, tcp::flags::ACK)
            })
            .collect();
        results.push(established(&mut b, w.as_mut(), label, &templates, &opts));
    }

    // New flows: every packet is a SYN of a flow never seen, until the table holds
    // `large` connections; or, on a table already full of half-open connections
    // (a SYN flood's), each new flow taking the entry of one of them.
    // The last two pick among 1,000 backends rather than 3.
    let pool = |sched| Some((POOL_SIZE, sched));
    for (label, vip, full, large_pool) in [
        ("new flow (SYN) dr", vip_dr, 0, None),
        ("new flow (SYN) fullnat", vip_nat, 0, None),
        (
            "new flow, fullnat, table full of half-open ones (SYN flood)",
            vip_nat,
            FULL_TABLE,
            None,
        ),
        (
            "new flow (SYN) dr, 1k backends, ring_hash",
            VIP_POOL,
            0,
            pool(SchedKind::RingHash),
        ),
        (
            "new flow (SYN) dr, 1k backends, least_conn",
            VIP_POOL,
            0,
            pool(SchedKind::LeastConn),
        ),
    ] {
        if !wanted(label) {
            continue;
        }
        let bare = paired_bare(&mut b, &templates, &opts);
        let capacity = if full > 0 { full } else { large + b.in_flight };
        let snap = match large_pool {
            Some((n, sched)) => with_large_pool(n, sched),
            None => snapshot(),
        };
        let mut w = Box::new(UnderTest::with(&mut b, capacity, 1, snap));
        w.establish(full, vip);
        b.end(w.as_mut());
        w.attach(b.fwd.take().expect("queues"));
        let template = [frame(
            Ipv4Addr::new(198, 19, 0, 0),
            1024,
            vip,
            tcp::flags::SYN,
        )];
        let vary = |i: usize, f: &mut [u8]| {
            let (src, sport) = flow(full + i);
            let mut ip = ipv4::Packet::new_unchecked(&mut f[14..34]);
            ip.set_src(src);
            ip.fill_checksum();
            f[34..36].copy_from_slice(&sport.to_be_bytes());
        };
        // fullnat has 28 local addresses x 64k ports: stay within them.
        let max = if vip == vip_nat {
            large.min(1_500_000)
        } else {
            large
        };
        let (c, n) = b.run(&template, w.as_mut(), seconds * 4.0, max, &vary);
        assert_eq!(w.not_forwarded(), 0, "{label}: packets dropped");
        let entries = w.worker.lb.table.len();
        let reclaimed = w.st.tally.get(Counter::FlowsReclaimed);
        assert!(full == 0 || reclaimed > 0, "{label}: nothing reclaimed");
        b.end(w.as_mut());
        results.push(json!({"scenario": label, "entries": entries, "cycles_per_packet": c,
                            "bare_cycles_per_packet": bare,
                            "ratio_to_bare": c / bare, "added_cycles": c - bare, "packets": n,
                            "reclaimed": reclaimed,
                            "note": "includes the IPv4 checksum rewrite that makes each SYN a new flow"}));
    }
    println!(
        "{}",
        serde_json::to_string_pretty(&json!({
            "tsc_mhz": b.tsc_hz / 1_000_000,
            "hugepages": huge,
            "results": results,
        }))
        .unwrap()
    );
    drop(ports);
}

/// The EAL's `--vdev` devices: one `net_ring`, or an af_packet port on each end
/// of the veth pair `veth`.
fn vdevs(veth: Option<(&str, &str)>) -> Vec<String> {
    match veth {
        None => vec!["net_ring0".into()],
        Some((a, b)) => vec![
            format!("net_af_packet0,iface={a},qpairs=1"),
            format!("net_af_packet1,iface={b},qpairs=1"),
        ],
    }
}

/// Opens and starts the ports; returns them (to keep them open), the source's
/// RX and TX queues, and the loop under test's.
fn wire(veth: bool, pool: &Mempool) -> (Vec<Port>, RxQueue, TxQueue, (RxQueue, TxQueue)) {
    let spec = |queues| PortSpec {
        rx_queues: queues,
        tx_queues: queues,
        rx_desc: 4096,
        tx_desc: 4096,
        mtu: None,
        promiscuous: veth,
    };
    if veth {
        // What the loop under test sends on one end comes in at the source's on
        // the other, and the other way round: the kernel's veth carries them.
        let mut under = Port::open("net_af_packet0", "under test").expect("net_af_packet0");
        let mut source = Port::open("net_af_packet1", "source").expect("net_af_packet1");
        under.start(&spec(1), pool).expect("start");
        source.start(&spec(1), pool).expect("start");
        let fwd = queues(&mut under, 0, 0);
        let (src_rx, src_tx) = queues(&mut source, 0, 0);
        return (vec![under, source], src_rx, src_tx, fwd);
    }
    let mut port = Port::open("net_ring0", "loop").expect("net_ring0");
    port.start(&spec(2), pool).expect("start");
    // net_ring's queue i receives what queue i transmits: queue 0 carries the
    // source's packets to the loop under test, queue 1 carries them back.
    let fwd = queues(&mut port, 0, 1);
    let (src_rx, src_tx) = queues(&mut port, 1, 0);
    (vec![port], src_rx, src_tx, fwd)
}

/// RX queue `rx` and TX queue `tx` of a started port.
fn queues(port: &mut Port, rx: u16, tx: u16) -> (RxQueue, TxQueue) {
    (
        port.take_rx_queue(rx).expect("rx queue"),
        port.take_tx_queue(tx).expect("tx queue"),
    )
}
