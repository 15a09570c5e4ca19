//! A worker's `least_conn` path allocates nothing: new flows, expiries and a
//! publish whose pool grew tenfold, counted by this binary's allocator (a
//! binary of its own, so that no other test's allocations are in its count).

use dataplane::buf::{PacketBuf, VecBuf};
use dataplane::lb::core::{Arrival, LbCore, LbVerdict};
use dataplane::lb::flow::{FlowKey, FLOW_HASH_SEED};
use dataplane::lb::ring::{RingMember, RingTable};
use dataplane::lb::snapshot::{Backend, HashKey, LbSnapshot, LocalAddrs, Mode, SchedKind, Service};
use dataplane::pipeline::counters::Tally;
use dataplane::wire::build::TcpV4;
use dataplane::wire::tcp;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Allocations (and reallocations) made by a thread while it counts.
struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
}

fn note() {
    if COUNTING.with(Cell::get) {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
    }
}

// SAFETY: every call goes to the system allocator unchanged; counting only
// reads a thread-local flag and bumps an atomic, neither of which allocates.
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
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    COUNTING.with(|c| c.set(true));
    f();
    COUNTING.with(|c| c.set(false));
    ALLOCATIONS.load(Ordering::Relaxed) - before
}

const OUR: [u8; 6] = [2, 0, 0, 0, 0, 1];
const VIP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 100);

fn backend_mac(i: u32) -> [u8; 6] {
    [2, 0, 0, 1, (i >> 8) as u8, i as u8]
}

/// A dr `least_conn` service on the VIP's port 80 over `n` equal backends,
/// its trees laid out for one worker (as the management core does).
fn snapshot(n: u32) -> LbSnapshot {
    let names: Vec<String> = (0..n).map(|i| format!("p/b{i}")).collect();
    let members: Vec<RingMember<'_>> = names
        .iter()
        .map(|k| RingMember { key: k, weight: 1 })
        .collect();
    let mut s = LbSnapshot {
        backends: (0..n)
            .map(|i| Backend {
                name: names[i as usize].clone(),
                addr: IpAddr::V4(Ipv4Addr::from(0xc612_0400 + i)),
                port: 8080,
                weight: 1,
                mac: Some(backend_mac(i)),
                port_index: 0,
                blocked: false,
                down: false,
            })
            .collect(),
        services: vec![Service {
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
        }],
        vips: vec![IpAddr::V4(VIP)],
        locals: vec![LocalAddrs::default()],
        port_mtu: vec![1500],
        ..Default::default()
    };
    let k = FlowKey::new(IpAddr::V4(VIP), IpAddr::V4(VIP), 0, 80, 6);
    s.by_vip.insert((k.dst, 80, 6), 0);
    s.index_locals();
    s.lay_out_least_conn(1);
    s
}

/// SYNs to the VIP from client ports `ports`, in buffers made beforehand.
fn syns(ports: std::ops::Range<u16>) -> Vec<VecBuf> {
    ports
        .map(|sport| {
            let f = TcpV4 {
                src_mac: [2, 0, 0, 0, 0, 0x10],
                dst_mac: OUR,
                src: Ipv4Addr::new(198, 18, 0, 10),
                sport,
                dst: VIP,
                dport: 80,
            }
            .frame(tcp::flags::SYN, 0);
            VecBuf::new(&f, 2048)
        })
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
    let small = snapshot(100);
    let grown = snapshot(1000);
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
