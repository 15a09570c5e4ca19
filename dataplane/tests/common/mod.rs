//! What the tests of `Worker::run` share: a one-service snapshot, frames to
//! the VIP, a worker on a port's queues, and the test's ends of the port.

// Each test binary uses its own part of this module.
#![allow(dead_code)]

use arc_swap::ArcSwap;
use dataplane::buf::PacketBuf;
use dataplane::dpdk::ring::handoff_ring;
use dataplane::dpdk::{Mbuf, MbufArray, Mempool, RxQueue, TxQueue};
use dataplane::lb::core::LbCore;
use dataplane::lb::flow::{FlowKey, FLOW_HASH_SEED};
use dataplane::lb::ring::{RingMember, RingTable};
use dataplane::lb::snapshot::{
    Backend, HashKey, LbSnapshot, LocalAddrs as SnapLocals, Mode, SchedKind, Service,
};
use dataplane::pipeline::control::{Control, Query};
use dataplane::pipeline::counters::{CoreCounters, Tally};
use dataplane::pipeline::local::LocalAddrs;
use dataplane::pipeline::worker::{Handoff, Worker, WorkerPort};
use dataplane::wire::build::TcpV4;
use dataplane::wire::{ipv4, tcp};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicBool, AtomicUsize};
use std::sync::mpsc::{self, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub const OUR: [u8; 6] = [2, 0, 0, 0, 0, 1];
pub const CLIENT_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0x10];
pub const BACKEND_MAC: [u8; 6] = [2, 0, 0, 0, 1, 0];
pub const OUR_V4: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
pub const CLIENT: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 10);
pub const BACKEND: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 11);
pub const VIP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 100);
/// The snapshot's timeout for a connection that has sent only its SYN.
pub const SYN_TIMEOUT_S: u32 = 1;

/// One dr service (port 80/tcp on the VIP) with one backend, later fragments
/// kept for their first, SYN-only connections kept `SYN_TIMEOUT_S`.
pub fn snapshot() -> LbSnapshot {
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

pub fn arp_request(target: Ipv4Addr) -> Vec<u8> {
    dataplane::wire::build::arp_request(CLIENT_MAC, CLIENT, target)
}

pub fn to_vip(sport: u16) -> TcpV4 {
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
pub fn later_fragment(sport: u16) -> Vec<u8> {
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

/// What the test keeps of a worker it hands to a thread.
pub struct Handles {
    pub counters: Arc<CoreCounters>,
    pub quit: Arc<AtomicBool>,
    pub queries: Sender<Query>,
}

/// Worker `id` of `workers`, receiving on `rx` and sending on `tx` of the
/// port, with `handoff` to and from the others.
pub fn worker(
    (id, workers): (usize, usize),
    (rx, tx): (RxQueue, TxQueue),
    handoff: Handoff,
    tsc_hz: u64,
    idle_sleep_us: u32,
    snap: &Arc<LbSnapshot>,
) -> (Worker, Handles) {
    let (queries, control) = mpsc::channel();
    let h = Handles {
        counters: Default::default(),
        quit: Default::default(),
        queries,
    };
    let w = Worker {
        id,
        ports: vec![WorkerPort {
            rx: Some(rx),
            tx,
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
        counters: h.counters.clone(),
        lb_counters: Default::default(),
        quit: h.quit.clone(),
        tsc_hz,
        idle_sleep_us,
        lb: LbCore::new(id as u16, workers as u16, 1024, snap.local_flat.len()),
        snapshot: Arc::new(ArcSwap::from(snap.clone())),
        handoff,
        port_index: vec![0u8; 1 << 16],
        macs: vec![OUR],
        control: Control::new(control),
    };
    (w, h)
}

/// The test's ends of the port: into the worker's RX queue, out of its TX one.
pub struct Wire {
    pub into: TxQueue,
    pub out: RxQueue,
    /// Frames sent in and taken out.
    pub sent: u64,
    pub taken: u64,
}

impl Wire {
    pub fn send(&mut self, pool: &Mempool, frame: &[u8]) {
        send_frame(&mut self.into, pool, frame);
        self.sent += 1;
    }

    /// The frames the worker sent, waiting up to `within` for at least one.
    pub fn take(&mut self, within: Duration) -> Vec<Vec<u8>> {
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
pub fn counters_until(c: &CoreCounters, within: Duration, ok: impl Fn(&Tally) -> bool) -> Tally {
    let until = Instant::now() + within;
    loop {
        let t = c.snapshot();
        if ok(&t) || Instant::now() > until {
            return t;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// `frame` in an mbuf of `pool`, sent on `into`.
pub fn send_frame(into: &mut TxQueue, pool: &Mempool, frame: &[u8]) {
    let mut m = Mbuf::alloc(pool).expect("mbuf");
    m.set_len(frame.len()).expect("room");
    m.data_mut().copy_from_slice(frame);
    let mut b = MbufArray::default();
    let _ = b.push(m);
    assert_eq!(into.flush(&mut b).packets, 1);
}

/// Two workers' hand-off rings to each other (named after `name`), and what
/// they share to say they have stopped.
pub fn two_handoffs(name: &str) -> ([Handoff; 2], Arc<AtomicUsize>) {
    let stopped = Arc::new(AtomicUsize::new(0));
    let (to_1, from_0) = handoff_ring(&format!("{name}_0_1"), 1024).expect("ring");
    let (to_0, from_1) = handoff_ring(&format!("{name}_1_0"), 1024).expect("ring");
    let handoffs = [
        Handoff {
            to: vec![None, Some(to_1)],
            from: vec![from_1],
            stopped: stopped.clone(),
        },
        Handoff {
            to: vec![Some(to_0), None],
            from: vec![from_0],
            stopped: stopped.clone(),
        },
    ];
    (handoffs, stopped)
}
