//! `Worker::run`, the loop a worker lcore runs, on a thread of this process
//! against a real DPDK port (`net_ring`: a queue receives what the same queue
//! transmits): what its TSC timer does besides polling. A lone packet leaves
//! without more traffic behind it (the TX drain); the counters are published
//! while it runs; an idle worker sleeps after runs of empty polls, not after
//! each; the management core's questions are answered; connections expire at
//! the snapshot's timeouts, in seconds; and at quit the loop returns, with a
//! fragment still waiting for its first counted as dropped, every packet
//! accounted for and every mbuf back in the pool.
//!
//! Times are read from the worker (its counters and its own report of a
//! connection's age and expiry); the test's own waits are generous bounds.
//! It starts DPDK in the test process (`ScratchEal`); root is not needed.

use arc_swap::ArcSwap;
use dataplane::buf::PacketBuf;
use dataplane::dpdk::scratch::ScratchEal;
use dataplane::dpdk::{Mbuf, MbufArray, Mempool, Port, PortSpec, RxQueue, TxQueue};
use dataplane::lb::core::LbCore;
use dataplane::lb::flow::{FlowKey, FLOW_HASH_SEED};
use dataplane::lb::ring::{RingMember, RingTable};
use dataplane::lb::snapshot::{
    Backend, HashKey, LbSnapshot, LocalAddrs as SnapLocals, Mode, SchedKind, Service,
};
use dataplane::pipeline::control::{ConnReport, Control, Query};
use dataplane::pipeline::counters::{CoreCounters, Counter, Tally};
use dataplane::pipeline::local::LocalAddrs;
use dataplane::pipeline::worker::{Handoff, Worker, WorkerPort};
use dataplane::wire::build::TcpV4;
use dataplane::wire::{arp, ipv4, tcp};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

const OUR: [u8; 6] = [2, 0, 0, 0, 0, 1];
const CLIENT_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0x10];
const BACKEND_MAC: [u8; 6] = [2, 0, 0, 0, 1, 0];
const OUR_V4: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
const CLIENT: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 10);
const BACKEND: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 11);
const VIP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 100);
/// The snapshot's timeout for a connection that has sent only its SYN.
const SYN_TIMEOUT_S: u32 = 1;
/// How long the worker sleeps once idle.
const IDLE_SLEEP_US: u32 = 1000;

/// One dr service (port 80/tcp on the VIP) with one backend, later fragments
/// kept for their first, SYN-only connections kept `SYN_TIMEOUT_S`.
fn snapshot() -> LbSnapshot {
    let ring = RingTable::build(&[RingMember {
        key: "p/b0",
        weight: 1,
    }]);
    let mut s = LbSnapshot {
        generation: 1,
        backends: vec![Backend {
            name: "p/b0".into(),
            addr: IpAddr::V4(BACKEND),
            port: 8080,
            weight: 1,
            mac: Some(BACKEND_MAC),
            port_index: 0,
            blocked: false,
            down: false,
        }],
        services: vec![Service {
            name: "web".into(),
            vip: IpAddr::V4(VIP),
            port: 80,
            proto: 6,
            mode: Mode::Dr,
            sched: SchedKind::RingHash,
            hash_key: HashKey::FiveTuple,
            hash_seed: FLOW_HASH_SEED,
            backends: vec![0],
            weights: vec![1],
            ports: vec![8080],
            ring: Arc::new(ring),
            wrr: vec![],
            fragments: false,
        }],
        vips: vec![IpAddr::V4(VIP)],
        locals: vec![SnapLocals {
            v4: vec![Ipv4Addr::new(198, 18, 0, 2)],
            v6: vec![],
        }],
        port_mtu: vec![1500],
        ..Default::default()
    };
    let k = FlowKey::new(IpAddr::V4(VIP), IpAddr::V4(VIP), 0, 80, 6);
    s.by_vip.insert((k.dst, 80, 6), 0);
    s.timeouts.tcp_syn = SYN_TIMEOUT_S;
    s.index_locals();
    s
}

fn arp_request(target: Ipv4Addr) -> Vec<u8> {
    let mut f = vec![0u8; 14 + 28];
    f[..6].copy_from_slice(&[0xff; 6]);
    f[6..12].copy_from_slice(&CLIENT_MAC);
    f[12..14].copy_from_slice(&[8, 6]);
    let mut p = arp::Packet::new_unchecked(&mut f[14..]);
    p.set_ethernet_ipv4();
    p.set_operation(arp::OP_REQUEST);
    p.set_sender(CLIENT_MAC, CLIENT);
    p.set_target([0; 6], target);
    f
}

fn to_vip(sport: u16) -> TcpV4 {
    TcpV4 {
        src_mac: CLIENT_MAC,
        dst_mac: OUR,
        src: CLIENT,
        sport,
        dst: VIP,
        dport: 80,
    }
}

/// The second (and last) fragment of a 100-byte segment to the VIP: the
/// bytes from 24 on of its TCP header and payload, whose first never comes.
fn later_fragment(sport: u16) -> Vec<u8> {
    let whole = to_vip(sport).frame(tcp::flags::ACK, 80);
    let mut f = whole[..34].to_vec();
    f.extend_from_slice(&whole[34 + 24..]);
    let mut ip = ipv4::Packet::new_unchecked(&mut f[14..]);
    ip.set_total_len((20 + 100 - 24) as u16);
    ip.set_ident(0x4242);
    ip.set_unfragmented(false);
    ip.set_fragment(3, false);
    ip.fill_checksum();
    f
}

/// The test's ends of the port: into the worker's RX queue, out of its TX one.
struct Wire {
    into: TxQueue,
    out: RxQueue,
    /// Frames sent in and taken out.
    sent: u64,
    taken: u64,
}

impl Wire {
    fn send(&mut self, pool: &Mempool, frame: &[u8]) {
        let mut m = Mbuf::alloc(pool).expect("mbuf");
        m.set_len(frame.len()).expect("room");
        m.data_mut().copy_from_slice(frame);
        let mut b = MbufArray::default();
        let _ = b.push(m);
        assert_eq!(self.into.flush(&mut b).packets, 1);
        self.sent += 1;
    }

    /// The frames the worker sent, waiting up to `within` for at least one.
    fn take(&mut self, within: Duration) -> Vec<Vec<u8>> {
        let until = Instant::now() + within;
        let mut b = MbufArray::default();
        loop {
            if self.out.burst(&mut b) > 0 {
                let frames: Vec<Vec<u8>> = b.drain().map(|m| m.data().to_vec()).collect();
                self.taken += frames.len() as u64;
                return frames;
            }
            if Instant::now() > until {
                return vec![];
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

/// Waits up to `within` for the published counters to satisfy `ok`; returns
/// the last read.
fn counters_until(c: &CoreCounters, within: Duration, ok: impl Fn(&Tally) -> bool) -> Tally {
    let until = Instant::now() + within;
    loop {
        let t = c.snapshot();
        if ok(&t) || Instant::now() > until {
            return t;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// The counters that are not zero, by name.
fn named(t: &Tally) -> String {
    let v: Vec<String> = Counter::ALL
        .iter()
        .filter(|c| t.get(**c) > 0)
        .map(|c| format!("{} {}", c.name(), t.get(*c)))
        .collect();
    v.join(", ")
}

fn connections(queries: &Sender<Query>) -> Vec<ConnReport> {
    let (reply, answer) = mpsc::channel();
    queries
        .send(Query::Conns {
            service: None,
            limit: 10,
            reply,
        })
        .expect("the worker holds the other end");
    answer
        .recv_timeout(Duration::from_secs(5))
        .expect("an answer within 5 s")
}

#[test]
fn the_running_loop_drains_publishes_sleeps_answers_expires_and_stops() {
    let eal = ScratchEal::start("weir-run", 128, &["net_ring0"]).expect("EAL");
    let pool = Mempool::new("wrun", 1023, 0, 2176, 0).expect("mempool");
    let mut port = Port::open("net_ring0", "wire").expect("net_ring0");
    port.start(&PortSpec::queues(2, 1024), &pool)
        .expect("start");
    let snap = Arc::new(snapshot());
    let (queries, control) = mpsc::channel();
    let counters: Arc<CoreCounters> = Default::default();
    let quit: Arc<AtomicBool> = Default::default();
    let worker = Worker {
        id: 0,
        ports: vec![WorkerPort {
            rx: port.take_rx_queue(0),
            tx: port.take_tx_queue(1).expect("tx 1"),
            host: None,
            local: LocalAddrs {
                mac: OUR,
                vlan: None,
                mtu: 1500,
                ipv4: vec![OUR_V4],
                ipv6: vec![],
                host_interface: false,
                host_mtu: 1500,
                reassembled_len: 0,
            },
        }],
        counters: counters.clone(),
        lb_counters: Default::default(),
        quit: quit.clone(),
        tsc_hz: eal.eal().tsc_hz(),
        idle_sleep_us: IDLE_SLEEP_US,
        lb: LbCore::new(0, 1, 1024, snap.local_flat.len()),
        snapshot: Arc::new(ArcSwap::from(snap.clone())),
        handoff: Handoff {
            to: vec![None],
            from: vec![],
            stopped: Default::default(),
        },
        port_index: vec![0u8; 1 << 16],
        macs: vec![OUR],
        control: Control { queries: control },
    };
    let mut wire = Wire {
        into: port.take_tx_queue(0).expect("tx 0"),
        out: port.take_rx_queue(1).expect("rx 1"),
        sent: 0,
        taken: 0,
    };
    let running = std::thread::spawn(move || worker.run());

    // A lone ARP request: its reply is the only packet in the TX batch, and
    // leaves on the drain timer.
    wire.send(&pool, &arp_request(OUR_V4));
    let out = wire.take(Duration::from_secs(5));
    assert_eq!(out.len(), 1, "the ARP reply, alone, drained");
    assert_eq!(&out[0][..6], &CLIENT_MAC);
    assert_eq!(&out[0][12..14], &[8, 6]);
    // Published while the worker runs, not only when it stops.
    let t = counters_until(&counters, Duration::from_secs(5), |t| {
        t.get(Counter::TxPackets) == 1
    });
    assert_eq!(
        [Counter::RxPackets, Counter::ArpReplies, Counter::TxPackets].map(|c| t.get(c)),
        [1, 1, 1]
    );

    // Idle: runs of 256 empty polls, each followed by a sleep of 1 ms.
    let (t0, at0) = (counters.snapshot(), Instant::now());
    std::thread::sleep(Duration::from_millis(300));
    let t1 = counters_until(&counters, Duration::from_secs(1), |t| {
        t.get(Counter::LoopsTotal) > t0.get(Counter::LoopsTotal)
    });
    let elapsed_ms = at0.elapsed().as_millis() as u64;
    let loops = t1.get(Counter::LoopsTotal) - t0.get(Counter::LoopsTotal);
    assert_eq!(t1.get(Counter::LoopsBusy), t0.get(Counter::LoopsBusy));
    assert!(
        loops > 1000,
        "{loops} loops in {elapsed_ms} ms: sleeping after every poll?"
    );
    assert!(
        loops <= 256 * (elapsed_ms + 2),
        "{loops} loops in {elapsed_ms} ms: not sleeping?"
    );

    // A SYN: forwarded to the backend, its connection reported by the worker
    // with the SYN timeout ahead of it, then expired by the worker's timer.
    wire.send(&pool, &to_vip(40000).frame(tcp::flags::SYN, 0));
    let out = wire.take(Duration::from_secs(5));
    assert_eq!(out.len(), 1);
    assert_eq!(&out[0][..6], &BACKEND_MAC, "dr: to the backend's MAC");
    let conns = connections(&queries);
    assert_eq!(conns.len(), 1, "{conns:?}");
    let c = &conns[0];
    assert!(c.age_s < 1.0, "{c:?}");
    assert!(
        c.expires_in_s > 0.0 && c.expires_in_s <= SYN_TIMEOUT_S as f64 + 0.1,
        "{c:?}"
    );
    let t = counters_until(&counters, Duration::from_secs(10), |t| {
        t.get(Counter::FlowsExpired) == 1
    });
    assert_eq!(t.get(Counter::FlowsExpired), 1);
    assert_eq!(t.get(Counter::ConnEntries), 0);
    assert!(connections(&queries).is_empty());

    // A later fragment whose first never comes is kept; at quit the loop
    // returns, counting it as dropped (unless it expired first).
    wire.send(&pool, &later_fragment(40001));
    quit.store(true, Ordering::Relaxed);
    let until = Instant::now() + Duration::from_secs(10);
    while !running.is_finished() && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(running.is_finished(), "the loop returns after quit");
    running.join().expect("no panic");
    let t = counters.snapshot();
    assert_eq!(t.get(Counter::FragmentsParked), 1, "{}", named(&t));
    assert_eq!(t.get(Counter::DropFragment), 1);
    assert_eq!(t.unaccounted(), 0);
    assert_eq!(t.get(Counter::RxPackets), wire.sent);
    assert!(wire.take(Duration::ZERO).is_empty());
    assert_eq!(t.get(Counter::TxPackets), wire.taken);
    assert_eq!(pool.usage().in_use, 0, "every mbuf back in the pool");
    port.stop();
}
