//! A worker allocates nothing once running: its balancer through new flows,
//! expiry and a `least_conn` pool grown tenfold, and the whole loop
//! (`Worker::run` on a `net_ring` port) through dr (IPv4 and IPv6) and
//! FullNAT connections,
//! a backend's replies, ARP, ping, a reset, a fragment parked, traffic to
//! and from the kernel through the host interface, hand-offs between two
//! workers, publishes of growing pools,
//! the management core's questions and its timer's ticks and expiry. This
//! binary's allocator counts the allocations of the threads that ask it to.

mod common;

use common::{
    arp_request, counters_until, later_fragment, send_frame, to_vip, two_handoffs, worker,
    CLIENT_MAC, OUR, OUR_V4, SYN_TIMEOUT_S, VIP,
};
use dataplane::buf::{PacketBuf, VecBuf};
use dataplane::dpdk::scratch::ScratchEal;
use dataplane::dpdk::{MbufArray, Mempool, Port, PortSpec, RxQueue, TxQueue};
use dataplane::lb::core::{Arrival, LbCore, LbVerdict};
use dataplane::lb::flow::{FlowKey, FLOW_HASH_SEED};
use dataplane::lb::ring::{RingMember, RingTable};
use dataplane::lb::snapshot::{Backend, HashKey, LbSnapshot, LocalAddrs, Mode, SchedKind, Service};
use dataplane::pipeline::control::Query;
use dataplane::pipeline::counters::{Counter, Tally};
use dataplane::pipeline::worker::HostQueues;
use dataplane::wire::build::{TcpV4, TcpV6};
use dataplane::wire::tcp;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Counts allocations (and reallocations) of the threads that gave it a
/// counter.
struct Counting;

thread_local! {
    static COUNT_INTO: Cell<Option<&'static AtomicUsize>> = const { Cell::new(None) };
}

fn note() {
    // `try_with`: a thread being torn down still allocates (not counted).
    if let Ok(Some(c)) = COUNT_INTO.try_with(Cell::get) {
        c.fetch_add(1, Ordering::Relaxed);
    }
}

// SAFETY: every call goes to the system allocator unchanged; counting only
// reads a thread-local cell and bumps an atomic, neither of which allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note();
        // SAFETY: the caller's contract, passed on.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract, passed on.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note();
        // SAFETY: the caller's contract, passed on.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations `f` makes on this thread.
fn allocations_in(f: impl FnOnce()) -> usize {
    static IN_F: AtomicUsize = AtomicUsize::new(0);
    let before = IN_F.load(Ordering::Relaxed);
    COUNT_INTO.with(|c| c.set(Some(&IN_F)));
    f();
    COUNT_INTO.with(|c| c.set(None));
    IN_F.load(Ordering::Relaxed) - before
}

fn backend_mac(i: u32) -> [u8; 6] {
    [2, 0, 0, 1, (i >> 8) as u8, i as u8]
}

/// FullNAT source address of the `nat` service.
const LOCAL: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);

/// The VIP of `web6`.
const VIP6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x100);

/// Three `least_conn` services over one pool of `n` equal backends: `web`
/// (dr, port 80) and `nat` (fullnat, port 81) on the VIP, `web6` (dr, port
/// 80) on `VIP6`, the trees laid out for
/// `workers` (as the management core does), TCP connections in any state
/// kept `SYN_TIMEOUT_S`.
fn snapshot(n: u32, workers: usize) -> LbSnapshot {
    let names: Vec<String> = (0..n).map(|i| format!("p/b{i}")).collect();
    let members: Vec<RingMember<'_>> = names
        .iter()
        .map(|k| RingMember { key: k, weight: 1 })
        .collect();
    let web = Service {
        name: "web".into(),
        vip: IpAddr::V4(VIP),
        port: 80,
        proto: 6,
        mode: Mode::Dr,
        sched: SchedKind::LeastConn,
        hash_key: HashKey::FiveTuple,
        hash_seed: FLOW_HASH_SEED,
        backends: (0..n).collect(),
        weights: vec![1; n as usize],
        ports: vec![8080; n as usize],
        ring: Arc::new(RingTable::build(&members)),
        wrr: vec![],
        fragments: false,
    };
    let nat = Service {
        name: "nat".into(),
        port: 81,
        mode: Mode::FullNat,
        ..web.clone()
    };
    let web6 = Service {
        name: "web6".into(),
        vip: IpAddr::V6(VIP6),
        ..web.clone()
    };
    let mut s = LbSnapshot {
        backends: (0..n)
            .map(|i| Backend {
                name: names[i as usize].clone(),
                addr: IpAddr::V4(backend_addr(i)),
                port: 8080,
                weight: 1,
                mac: Some(backend_mac(i)),
                port_index: 0,
                blocked: false,
                down: false,
            })
            .collect(),
        services: vec![web, nat, web6],
        vips: vec![IpAddr::V4(VIP), IpAddr::V6(VIP6)],
        locals: vec![LocalAddrs {
            v4: vec![LOCAL],
            v6: vec![],
        }],
        port_mtu: vec![1500],
        ..Default::default()
    };
    for (id, vip, port) in [
        (0, VIP.into(), 80),
        (1, VIP.into(), 81),
        (2, VIP6.into(), 80),
    ] {
        let k = FlowKey::new(vip, vip, 0, port, 6);
        s.by_vip.insert((k.dst, port, 6), id);
    }
    let t = &mut s.timeouts;
    (t.tcp_syn, t.tcp_established) = (SYN_TIMEOUT_S, SYN_TIMEOUT_S);
    (t.tcp_fin, t.tcp_close) = (SYN_TIMEOUT_S, SYN_TIMEOUT_S);
    s.index_locals();
    s.lay_out_least_conn(workers);
    s
}

fn backend_addr(i: u32) -> Ipv4Addr {
    Ipv4Addr::from(0xc612_0400 + i)
}

/// SYNs to the VIP from client ports `ports`, in buffers made beforehand.
fn syns(ports: std::ops::Range<u16>) -> Vec<VecBuf> {
    ports
        .map(|sport| VecBuf::new(&to_vip(sport).frame(tcp::flags::SYN, 0), 2048))
        .collect()
}

/// Sends `bufs` through `core`; the backend index each went to.
fn send(core: &mut LbCore, s: &LbSnapshot, bufs: &mut [VecBuf], to: &mut Vec<u32>) {
    let at = Arrival {
        l2: 14,
        v6: false,
        in_port: 0,
        handed: false,
        local: false,
    };
    let mut t = Tally::default();
    for b in bufs.iter_mut() {
        let v = core.process(b, at, s, &[OUR], &mut t);
        assert!(matches!(v, LbVerdict::Tx(0)), "{v:?}");
        let mac = &b.data()[..6];
        let i = (0..s.backends.len() as u32).find(|&i| backend_mac(i) == mac);
        to.push(i.expect("a backend's MAC"));
    }
}

#[test]
fn new_flows_expiry_and_a_grown_pool_allocate_nothing_on_the_worker() {
    let small = snapshot(100, 1);
    let grown = snapshot(1000, 1);
    let mut core = LbCore::new(0, 1, 4096, 1);
    let mut first = syns(1000..1100);
    let mut second = syns(2000..2900);
    let mut to = Vec::with_capacity(first.len() + second.len());
    // One new flow for each of the 100: least_conn spreads them one each.
    let n = allocations_in(|| send(&mut core, &small, &mut first, &mut to));
    assert_eq!(n, 0, "allocations for 100 new flows");
    assert_eq!(to.iter().collect::<HashSet<_>>().len(), 100);
    // The pool grows tenfold: the first 100 hold one each, so the next 900
    // go one each to the 900 new backends, the trees laid out again first.
    let n = allocations_in(|| send(&mut core, &grown, &mut second, &mut to));
    assert_eq!(n, 0, "allocations for 900 new flows after a grown pool");
    assert_eq!(to.iter().collect::<HashSet<_>>().len(), 1000);
    assert!(to[100..].iter().all(|&b| b >= 100));
    // Every connection (SYN only) expires.
    let n = allocations_in(|| {
        let mut t = Tally::default();
        for _ in 0..10 {
            core.expire(core.now + 1_000_000, &mut t);
        }
        assert_eq!(
            t.get(dataplane::pipeline::counters::Counter::FlowsExpired),
            1000
        );
    });
    assert_eq!(n, 0, "allocations expiring 1000 connections");
    assert_eq!((0..1000).map(|b| core.active(b)).sum::<u32>(), 0);
}

/// Allocations made by the worker threads of the test below.
static WORKER_ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

/// Asks each worker for its connections (up to 100 each) and for one flow;
/// the connections reported.
fn ask(queries: &[mpsc::Sender<Query>], flow: FlowKey) -> usize {
    let mut conns = 0;
    for q in queries {
        let (reply, answer) = mpsc::sync_channel(1);
        let list = Vec::with_capacity(100);
        let limit = 100;
        (q.send(Query::Conns {
            service: None,
            limit,
            list,
            reply,
        }))
        .expect("a worker");
        conns += (answer
            .recv_timeout(Duration::from_secs(5))
            .expect("an answer"))
        .len();
        let (reply, answer) = mpsc::sync_channel(1);
        q.send(Query::Flow(flow, reply)).expect("a worker");
        answer
            .recv_timeout(Duration::from_secs(5))
            .expect("an answer");
    }
    conns
}

/// The test's ends of a port (the wire or the host interface): into worker
/// 0's RX queue, and out of each worker's TX queue.
struct Ends {
    into: TxQueue,
    out: [RxQueue; 2],
}

impl Ends {
    fn send(&mut self, pool: &Mempool, frame: &[u8]) {
        send_frame(&mut self.into, pool, frame);
    }

    /// The next `n` frames out of either worker (fewer after 5 s).
    fn take(&mut self, n: usize) -> Vec<Vec<u8>> {
        let until = Instant::now() + Duration::from_secs(5);
        let mut got = vec![];
        let mut b = MbufArray::default();
        while got.len() < n && Instant::now() < until {
            for q in self.out.iter_mut() {
                if q.burst(&mut b) > 0 {
                    got.extend(b.drain().map(|m| m.data().to_vec()));
                }
            }
        }
        got
    }
}

/// From each client port: one connection's life through `web` (SYN, ACK,
/// FIN), one through `web6` (SYN, ACK), and a SYN through `nat` answered by
/// its backend (each flow owned by one of the two workers: handed over by
/// worker 0 when it is worker 1's); a segment to the kernel and one from it;
/// then an ARP request, a later fragment whose first never comes, a segment
/// of no connection and a ping. The frames the workers sent.
fn traffic(
    ends: &mut Ends,
    host: &mut Ends,
    pool: &Mempool,
    sports: std::ops::Range<u16>,
) -> usize {
    let mut out = 0;
    // A segment for the appliance's own address, up to the kernel through
    // the host interface; one of the kernel's, out to the wire.
    let own = TcpV4 {
        dst: OUR_V4,
        dport: 22,
        ..to_vip(sports.start)
    };
    ends.send(pool, &own.frame(tcp::flags::SYN, 0));
    assert_eq!(host.take(1).len(), 1, "to the kernel");
    let kernels = TcpV4 {
        src_mac: OUR,
        dst_mac: CLIENT_MAC,
        src: OUR_V4,
        sport: 22,
        dst: common::CLIENT,
        dport: sports.start,
    };
    host.send(pool, &kernels.frame(tcp::flags::SYN | tcp::flags::ACK, 0));
    out += ends.take(1).len();
    for sport in sports {
        let c = to_vip(sport);
        for flags in [
            tcp::flags::SYN,
            tcp::flags::ACK,
            tcp::flags::FIN | tcp::flags::ACK,
        ] {
            ends.send(pool, &c.frame(flags, 0));
        }
        out += ends.take(3).len();
        let c6 = TcpV6 {
            src_mac: c.src_mac,
            dst_mac: OUR,
            src: Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x10),
            sport,
            dst: VIP6,
            dport: 80,
        };
        for flags in [tcp::flags::SYN, tcp::flags::ACK] {
            ends.send(pool, &c6.frame(flags, 0));
        }
        out += ends.take(2).len();
        ends.send(pool, &TcpV4 { dport: 81, ..c }.frame(tcp::flags::SYN, 0));
        let to_backend = ends.take(1);
        let [f] = &to_backend[..] else {
            panic!("one SYN to a backend: {to_backend:?}")
        };
        // The backend's SYN-ACK, to the local address and port it was given.
        let ip = |at: usize| Ipv4Addr::from(<[u8; 4]>::try_from(&f[at..at + 4]).unwrap());
        let port = |at: usize| u16::from_be_bytes([f[at], f[at + 1]]);
        assert_eq!(ip(26), LOCAL);
        let reply = TcpV4 {
            src_mac: f[..6].try_into().unwrap(),
            dst_mac: OUR,
            src: ip(30),
            sport: port(36),
            dst: LOCAL,
            dport: port(34),
        };
        ends.send(pool, &reply.frame(tcp::flags::SYN | tcp::flags::ACK, 0));
        let to_client = ends.take(1);
        assert_eq!(to_client.len(), 1, "the SYN-ACK back to the client");
        out += 1 + to_client.len();
    }
    ends.send(pool, &arp_request(OUR_V4));
    ends.send(pool, &later_fragment(1));
    // A segment of a FullNAT connection nobody holds, reset; a ping to the VIP.
    let lost = TcpV4 {
        dport: 81,
        ..to_vip(9)
    };
    ends.send(pool, &lost.frame(tcp::flags::ACK, 0));
    ends.send(pool, &to_vip(0).icmp_error(8, 0, 0x1234_0001, b"ping"));
    let replies = ends.take(3);
    assert_eq!(replies.len(), 3, "ARP and echo replies and a reset");
    out + replies.len()
}

/// Stops the workers when the test fails, before the port goes (else they
/// poll a stopped port, and the failure is a crash without its message).
struct QuitOnPanic(Vec<Arc<AtomicBool>>);

impl Drop for QuitOnPanic {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.iter().for_each(|q| q.store(true, Ordering::Relaxed));
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

#[test]
fn running_workers_allocate_nothing() {
    let eal = ScratchEal::start("weir-noalloc", 128, &["net_ring0", "net_ring1"]).expect("EAL");
    let pool = Mempool::new("noalloc", 2047, 0, 2176, 0).expect("mempool");
    let mut port = Port::open("net_ring0", "wire").expect("net_ring0");
    port.start(&PortSpec::queues(4, 1024), &pool)
        .expect("start");
    let mut host = Port::open("net_ring1", "host").expect("net_ring1");
    host.start(&PortSpec::queues(4, 1024), &pool)
        .expect("start");
    let (handoffs, _) = two_handoffs("noalloc");
    let first = Arc::new(snapshot(10, 2));
    let tsc_hz = eal.eal().tsc_hz();
    let (mut published, mut handles, mut running) = (vec![], vec![], vec![]);
    // Worker w receives on queue w and sends on queue 2 + w, of the wire and
    // of the host interface.
    for (w, handoff) in handoffs.into_iter().enumerate() {
        let q = w as u16;
        let queues = (
            port.take_rx_queue(q).expect("rx"),
            port.take_tx_queue(2 + q).expect("tx"),
        );
        let (mut wk, h) = worker((w, 2), queues, handoff, tsc_hz, 100, &first);
        wk.ports[0].host = Some(HostQueues {
            rx: host.take_rx_queue(q).expect("rx"),
            tx: host.take_tx_queue(2 + q).expect("tx"),
        });
        wk.ports[0].local.host_interface = true;
        published.push(wk.snapshot.clone());
        handles.push(h);
        running.push(std::thread::spawn(move || {
            COUNT_INTO.with(|c| c.set(Some(&WORKER_ALLOCATIONS)));
            wk.run()
        }));
    }
    let ends = |port: &mut Port| Ends {
        into: port.take_tx_queue(0).expect("tx 0"),
        out: [2, 3].map(|q| port.take_rx_queue(q).expect("rx")),
    };
    let (mut wire, mut kernel) = (ends(&mut port), ends(&mut host));
    let _quit = QuitOnPanic(handles.iter().map(|h| h.quit.clone()).collect());
    let queries: Vec<_> = handles.iter().map(|h| h.queries.clone()).collect();
    let publish = |snapshots: &mut Vec<Arc<LbSnapshot>>, n: u32| {
        let next = Arc::new(snapshot(n, 2));
        published.iter().for_each(|p| p.store(next.clone()));
        snapshots.push(next);
    };
    // Kept here, as the management core keeps what it replaced: the workers
    // never free a snapshot.
    let mut snapshots = vec![first.clone()];
    let flow = FlowKey::new(IpAddr::V4(common::CLIENT), IpAddr::V4(VIP), 1000, 80, 6);

    // Everything once first: what a thread allocates once for good (its
    // share of the snapshot cell's bookkeeping, say) is not the loop's.
    assert_eq!(traffic(&mut wire, &mut kernel, &pool, 1000..1010), 74);
    assert_eq!(ask(&queries, flow), 30);
    publish(&mut snapshots, 10);
    assert_eq!(traffic(&mut wire, &mut kernel, &pool, 1010..1020), 74);
    std::thread::sleep(Duration::from_millis(50));
    let before = WORKER_ALLOCATIONS.load(Ordering::Relaxed);

    // Pools growing tenfold twice, each publish met by new connections,
    // questions, the timer's ticks and, at the end, the timeouts' expiry of
    // every connection.
    let mut sport = 2000;
    for n in [100, 1000, 1000] {
        publish(&mut snapshots, n);
        assert_eq!(
            traffic(&mut wire, &mut kernel, &pool, sport..sport + 100),
            704
        );
        assert!(ask(&queries, flow) > 0);
        sport += 100;
        std::thread::sleep(Duration::from_millis(20));
    }
    let expired = |h: &common::Handles| {
        counters_until(&h.counters, Duration::from_secs(10), |t| {
            t.get(Counter::ConnEntries) == 0
        })
    };
    let (t0, t1) = (expired(&handles[0]), expired(&handles[1]));
    let during = WORKER_ALLOCATIONS.load(Ordering::Relaxed) - before;

    handles
        .iter()
        .for_each(|h| h.quit.store(true, Ordering::Relaxed));
    for r in running {
        r.join().expect("no panic");
    }
    assert_eq!(during, 0, "allocations on the running workers");
    let mut total = Tally::default();
    for h in &handles {
        total.sum(&h.counters.snapshot());
    }
    assert_eq!(
        t0.get(Counter::FlowsExpired) + t1.get(Counter::FlowsExpired),
        960
    );
    assert_eq!(total.get(Counter::FlowsNew), 960, "{}", total.named());
    // Both owned flows, and worker 0 handed worker 1 its share.
    assert!(t0.get(Counter::FlowsNew) > 0 && t1.get(Counter::FlowsNew) > 0);
    assert!(t1.get(Counter::HandoffIn) > 0);
    assert_eq!(total.unaccounted(), 0, "{}", total.named());
    assert_eq!(pool.usage().in_use, 0, "every mbuf back in the pool");
    port.stop();
    host.stop();
    drop(snapshots);
}
