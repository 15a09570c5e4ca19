//! Two real workers on DPDK ports in this process (`net_ring`: a queue receives
//! what the same queue transmits), with their hand-off rings and host
//! interfaces, polled as their loop polls them, fed random traffic, clean and
//! damaged: balanced both ways over IPv4 fullnat and IPv6 dr, answers to what
//! left, ICMP errors, fragments, packets too big for the way out (cut into
//! fragments, or refused with DF), ARP and ping, packets for the appliance's
//! kernel (some cut to fit the host interface), frames from the kernel,
//! frames in two segments, and garbage; then all of it again on a VLAN port, some frames with another tag
//! or none (what leaves must carry the port's tag). After each round, once the
//! queues are quiet: every mbuf is back in the pool but the fragments kept for
//! their first; every packet the workers took is accounted for by their
//! counters; and the counters match what the rings carried (rx and from_host
//! what went in, tx and to_host what came out). Every IPv4 frame sent to the
//! wire has a valid header checksum.
//!
//! It starts DPDK in the test process (`ScratchEal`: no hugepages, no PCI, a
//! file prefix of its own, whose runtime directory it removes at the end); root
//! is not needed.

use super::counters::{Counter, Tally};
use super::local::LocalAddrs;
use super::worker::{Handoff, HostQueues, LoopState, Worker, WorkerPort};
use crate::buf::PacketBuf;
use crate::dpdk::ring::handoff_ring;
use crate::dpdk::scratch::ScratchEal;
use crate::dpdk::{Mbuf, MbufArray, Mempool, Port, PortSpec, RxQueue, TxQueue};
use crate::lb::core::LbCore;
use crate::lb::core_tests::{be_mac, CLIENT, CLIENT_MAC, OUR, V4, V6};
use crate::lb::snapshot::{LbSnapshot, Mode};
use crate::lb::test_traffic::{ends, ends_of, fragments, snapshot, Ends, BACKENDS, UDP_PORT};
use crate::test_rng::XorShift;
use crate::wire::build::Tcp;
use crate::wire::{ipv4, tcp};
use arc_swap::ArcSwap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

const WORKERS: usize = 2;
const OUR_V4: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
const OUR_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);

/// IPv4 services (TCP 80, UDP 53) in fullnat and IPv6 ones in dr, one snapshot.
fn both_families() -> LbSnapshot {
    let mut s = snapshot(&V4, Mode::FullNat);
    let six = snapshot(&V6, Mode::Dr);
    let (backends, services) = (s.backends.len() as u32, s.services.len() as u32);
    s.backends.extend(six.backends);
    for mut svc in six.services {
        svc.backends.iter_mut().for_each(|b| *b += backends);
        s.services.push(svc);
    }
    for (k, id) in six.by_vip {
        s.by_vip.insert(k, id + services);
    }
    s.vips.extend(six.vips);
    let v6 = six.locals[0].v6.clone();
    s.locals[0].v6.extend(v6);
    s.index_locals();
    s
}

/// The port's own addresses: the kernel's through the host interface, whose
/// MTU is lower than what the port takes whole (as af_packet's reassembly gives).
fn port_addrs() -> LocalAddrs {
    LocalAddrs {
        mac: OUR,
        vlan: None,
        mtu: 1500,
        ipv4: vec![OUR_V4],
        ipv6: vec![OUR_V6],
        host_interface: true,
        host_mtu: 1000,
        reassembled_len: 2000,
    }
}

fn arp_request(target: Ipv4Addr) -> Vec<u8> {
    crate::wire::build::arp_request(CLIENT_MAC, CLIENT, target)
}

/// A frame from the client's MAC to ours.
fn to_us<A>(src: A, dst: A, (sport, dport): (u16, u16)) -> Tcp<A> {
    ends(CLIENT_MAC, (src, sport), (dst, dport))
}

/// One worker with its loop state.
struct Looped {
    w: Worker,
    st: LoopState,
}

/// The fields drop in order: the queues' users, the ports, the pool, then
/// DPDK (which removes its runtime directory).
struct Rig {
    snap: Arc<LbSnapshot>,
    workers: Vec<Looped>,
    /// Into worker `w`'s port and host RX queues, and out of its TX queues.
    wire_in: Vec<TxQueue>,
    host_in: Vec<TxQueue>,
    wire_out: Vec<RxQueue>,
    host_out: Vec<RxQueue>,
    /// Frames sent in, and taken out, of the port and the host interface.
    counts: [u64; 4],
    /// Recent frames the workers sent to backends, to answer.
    forwarded: Vec<Vec<u8>>,
    v4: Ends,
    v6: Ends,
    now: u64,
    rng: XorShift,
    /// The port's VLAN, once the test gives it one.
    vlan: Option<u16>,
    _ports: [Port; 2],
    pool: Mempool,
    _eal: ScratchEal,
}

impl Rig {
    fn new() -> Rig {
        // Once per process: this is the only test that starts DPDK.
        let eal = ScratchEal::start("weir-unit", 128, &["net_ring0", "net_ring1"]).expect("EAL");
        let pool = Mempool::new("wtest", 4095, 0, 2176, 0).expect("mempool");
        let spec = PortSpec::queues(4, 1024);
        let mut wire = Port::open("net_ring0", "wire").expect("net_ring0");
        let mut host = Port::open("net_ring1", "host").expect("net_ring1");
        wire.start(&spec, &pool).expect("start wire");
        host.start(&spec, &pool).expect("start host");
        let snap = Arc::new(both_families());
        let stopped = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut handoffs: Vec<Handoff> = (0..WORKERS)
            .map(|_| Handoff {
                to: (0..WORKERS).map(|_| None).collect(),
                from: vec![],
                stopped: stopped.clone(),
            })
            .collect();
        for a in 0..WORKERS {
            for b in (0..WORKERS).filter(|&b| b != a) {
                let (p, c) = handoff_ring(&format!("wtest_{a}_{b}"), 1024).expect("ring");
                handoffs[a].to[b] = Some(p);
                handoffs[b].from.push(c);
            }
        }
        let q = |w: usize| w as u16;
        let mut workers = vec![];
        for (w, handoff) in handoffs.into_iter().enumerate() {
            let (_, queries) = std::sync::mpsc::channel();
            // DPDK port id -> port index: everything is port 0's.
            let port_index = vec![0u8; 1 << 16];
            let worker = Worker {
                id: w,
                ports: vec![WorkerPort {
                    rx: wire.take_rx_queue(q(w)),
                    tx: wire.take_tx_queue(q(2 + w)).unwrap(),
                    host: Some(HostQueues {
                        rx: host.take_rx_queue(q(w)).unwrap(),
                        tx: host.take_tx_queue(q(2 + w)).unwrap(),
                    }),
                    local: port_addrs(),
                }],
                counters: Default::default(),
                lb_counters: Default::default(),
                quit: Default::default(),
                tsc_hz: 1,
                idle_sleep_us: 0,
                lb: LbCore::new(w as u16, WORKERS as u16, 24, snap.local_flat.len()),
                snapshot: Arc::new(ArcSwap::from(snap.clone())),
                handoff,
                port_index,
                macs: vec![OUR],
                control: super::control::Control::new(queries),
            };
            let st = worker.loop_state();
            workers.push(Looped { w: worker, st });
        }
        let take = |p: &mut Port| -> (Vec<TxQueue>, Vec<RxQueue>) {
            (
                (0..WORKERS)
                    .map(|w| p.take_tx_queue(q(w)).unwrap())
                    .collect(),
                (0..WORKERS)
                    .map(|w| p.take_rx_queue(q(2 + w)).unwrap())
                    .collect(),
            )
        };
        let (wire_in, wire_out) = take(&mut wire);
        let (host_in, host_out) = take(&mut host);
        Rig {
            snap,
            workers,
            wire_in,
            host_in,
            wire_out,
            host_out,
            counts: [0; 4],
            forwarded: vec![],
            v4: Ends {
                f: &V4,
                client: IpAddr::V4(CLIENT),
            },
            v6: Ends {
                f: &V6,
                client: "2001:db8::10".parse().unwrap(),
            },
            now: 0,
            rng: XorShift(0x5eed_0f4e_12ab),
            vlan: None,
            _ports: [wire, host],
            pool,
            _eal: eal,
        }
    }

    fn next(&mut self, n: u64) -> u64 {
        self.rng.next() % n
    }

    /// One frame of random traffic, and whether it comes from the kernel.
    fn frame(&mut self) -> (Vec<u8>, bool) {
        use tcp::flags::{ACK, FIN, RST, SYN};
        let r: [u64; 8] = std::array::from_fn(|_| self.rng.next());
        let v6 = r[0].is_multiple_of(3);
        let sport = 40000 + (r[1] % 8) as u16;
        let n = (r[2] % 60) as usize;
        let flags = [SYN, ACK, FIN | ACK, RST][(r[3] % 4) as usize];
        let e = if v6 { &self.v6 } else { &self.v4 };
        let (client, vip) = (e.client, e.f.vip);
        let recent = (!self.forwarded.is_empty())
            .then(|| &self.forwarded[(r[4] % self.forwarded.len() as u64) as usize]);
        let mut f = match (r[5] % 14, recent) {
            (0..=2, _) => e.segment(client, sport, vip, 80, flags, n),
            (3, _) => e.datagram(client, sport, vip, UDP_PORT, n),
            (4 | 5, Some(out)) => answer(e, out, flags, n),
            (6, Some(out)) => e.error_about(out).unwrap_or_default(),
            (7, _) => {
                let whole = e.segment(client, sport, vip, 80, ACK, 24 + n);
                let [a, b] = fragments(&whole, r[6] as u16);
                if r[7].is_multiple_of(2) {
                    a
                } else {
                    b
                }
            }
            // Longer than the way out: cut into fragments, or "too big" with DF.
            (8, _) => {
                let mut f = e.segment(client, sport, vip, 80, ACK, 1600);
                if !v6 && r[6].is_multiple_of(2) {
                    let mut ip = ipv4::Packet::new_unchecked(&mut f[14..]);
                    ip.set_unfragmented(false);
                    ip.fill_checksum();
                }
                f
            }
            // For the appliance's kernel, some longer than the host interface.
            (9, _) => {
                let len = [n, 1400][(r[6] % 2) as usize];
                let mut f = to_us(CLIENT, OUR_V4, (sport, 22)).frame(ACK, len);
                let mut ip = ipv4::Packet::new_unchecked(&mut f[14..]);
                ip.set_unfragmented(false);
                ip.fill_checksum();
                f
            }
            (10, _) if v6 => {
                let client = "2001:db8::10".parse().unwrap();
                to_us(client, OUR_V6, (0, 0)).icmp_error(128, 0, 0x0001_0001, &[7; 16])
            }
            (10, _) => to_us(CLIENT, OUR_V4, (0, 0)).icmp_error(8, 0, 0x0001_0001, &[7; 16]),
            (11, _) => arp_request(OUR_V4),
            (12, _) => {
                // From the kernel: a segment it sends out through the port.
                let mut f = to_us(OUR_V4, CLIENT, (22, sport)).frame(ACK, n);
                f[..6].copy_from_slice(&CLIENT_MAC);
                f[6..12].copy_from_slice(&OUR);
                return (f, true);
            }
            _ => r.iter().flat_map(|x| x.to_ne_bytes()).take(1 + n).collect(),
        };
        if f.is_empty() {
            f = arp_request(OUR_V4);
        }
        // Damage a third of them: a byte in the headers, or a cut.
        match r[7] % 6 {
            0 if f.len() > 14 => {
                let at = 14 + (r[6] % (f.len() - 14).min(60) as u64) as usize;
                f[at] ^= 1 + (r[2] % 255) as u8;
            }
            1 => f.truncate(1 + (r[6] % f.len() as u64) as usize),
            _ => {}
        }
        // On a VLAN port: mostly tagged with its VLAN, else another or none.
        if let (Some(vid), true) = (self.vlan, f.len() >= 12) {
            let vid = match r[1] % 12 {
                0 => None,
                1 => Some(vid + 1),
                _ => Some(vid),
            };
            if let Some(v) = vid {
                f.splice(12..12, [0x81, 0x00, (v >> 8) as u8, v as u8]);
            }
        }
        (f, false)
    }

    /// From now on the port takes only frames tagged with `vid`, and tags what
    /// it sends.
    fn set_vlan(&mut self, vid: u16) {
        for l in self.workers.iter_mut() {
            l.w.ports[0].local.vlan = Some(vid);
        }
        self.vlan = Some(vid);
    }

    /// Sends `k` random frames in, each to a random worker's port or host queue.
    fn send(&mut self, k: usize) {
        let mut batches: Vec<MbufArray> = (0..2 * WORKERS).map(|_| MbufArray::default()).collect();
        for _ in 0..k {
            let (f, from_host) = self.frame();
            let w = self.next(WORKERS as u64) as usize;
            let mut m = Mbuf::alloc(&self.pool).expect("an mbuf");
            m.set_len(f.len()).expect("room");
            m.data_mut().copy_from_slice(&f);
            // Now and then a frame in two segments (the workers take only one).
            if !from_host && self.next(40) == 0 {
                m = self.chained(m);
            }
            let b = &mut batches[w * 2 + from_host as usize];
            if b.is_full() {
                self.flush_in(w, from_host, b);
            }
            let _ = b.push(m);
        }
        for (i, mut b) in batches.into_iter().enumerate() {
            self.flush_in(i / 2, i % 2 == 1, &mut b);
        }
    }

    /// `head` with a second segment of 8 bytes after it.
    fn chained(&mut self, head: Mbuf) -> Mbuf {
        let mut tail = Mbuf::alloc(&self.pool).expect("an mbuf");
        tail.set_len(8).expect("room");
        let (head, tail) = (head.into_raw(), tail.into_raw());
        // SAFETY: two valid mbufs we own; on success the chain owns the tail,
        // and the head (returned) owns the chain.
        unsafe {
            assert_eq!(dpdk_sys::rte_pktmbuf_chain(head, tail), 0);
            Mbuf::from_raw(head)
        }
    }

    fn flush_in(&mut self, w: usize, from_host: bool, b: &mut MbufArray) {
        let q = if from_host {
            &mut self.host_in[w]
        } else {
            &mut self.wire_in[w]
        };
        let s = q.flush(b);
        assert_eq!(s.dropped, 0, "the test's own queue was full");
        self.counts[from_host as usize] += s.packets;
    }

    /// Polls both workers, flushing and taking what they sent, until nothing moves.
    fn settle(&mut self) {
        for _ in 0..10_000 {
            let mut busy = false;
            for l in self.workers.iter_mut() {
                busy |= l.w.poll(&self.snap, &mut l.st);
                l.w.flush(&self.snap, &mut l.st);
            }
            if !self.take_out() && !busy {
                return;
            }
        }
        panic!("the workers never went quiet");
    }

    /// Takes and checks what the workers sent; whether there was any.
    fn take_out(&mut self) -> bool {
        let mut got = false;
        let mut rx = MbufArray::default();
        for w in 0..WORKERS {
            while self.wire_out[w].burst(&mut rx) > 0 {
                got = true;
                for m in rx.drain() {
                    self.counts[2] += 1;
                    let mut f = m.data().to_vec();
                    assert_eq!(f[6..12], OUR, "sent from the port's MAC");
                    if let Some(vid) = self.vlan {
                        let tag = [0x81, 0x00, (vid >> 8) as u8, vid as u8];
                        assert_eq!(f[12..16], tag, "tagged with the port's VLAN");
                        f.drain(12..16);
                    }
                    if f[12..14] == [8, 0] {
                        let ip = ipv4::Packet::new_checked(&f[14..]).expect("a whole IPv4 header");
                        assert!(ip.verify_checksum(), "IPv4 header checksum: {f:02x?}");
                    }
                    if (0..2 * BACKENDS).any(|b| f[..6] == be_mac(b % BACKENDS)) && f.len() < 200 {
                        self.forwarded.push(f);
                        if self.forwarded.len() > 32 {
                            self.forwarded.remove(0);
                        }
                    }
                }
            }
            while self.host_out[w].burst(&mut rx) > 0 {
                got = true;
                self.counts[3] += rx.drain().count() as u64;
            }
        }
        got
    }

    fn tick(&mut self, ticks: u64) {
        self.now += ticks;
        for l in self.workers.iter_mut() {
            l.w.lb.expire(self.now, &mut l.st.tally);
        }
    }

    /// The checks, with the queues quiet: `kept` fragments are still parked.
    fn check(&self, round: usize) {
        let mut total = Tally::default();
        for l in &self.workers {
            total.sum(&l.st.tally);
        }
        let kept: usize = self.workers.iter().map(|l| l.w.lb.parking.waiting()).sum();
        let c = |x| total.get(x);
        let [wire_in, host_in, wire_out, host_out] = self.counts;
        assert_eq!(
            self.pool.usage().in_use as usize,
            kept,
            "round {round}: mbufs out of the pool"
        );
        assert_eq!(
            total.unaccounted(),
            kept as i64,
            "round {round}: {}",
            total.named()
        );
        assert_eq!(
            (c(Counter::RxPackets), c(Counter::FromHost)),
            (wire_in, host_in),
            "round {round}"
        );
        assert_eq!(
            c(Counter::DropTxQueueFull) + c(Counter::DropHostQueueFull),
            0
        );
        assert_eq!(
            (c(Counter::TxPackets), c(Counter::ToHost)),
            (wire_out, host_out),
            "round {round}"
        );
    }
}

/// A segment from where `out` went, to where it came from.
fn answer(e: &Ends, out: &[u8], flags: u8, n: usize) -> Vec<u8> {
    let (src, sport, dst, dport, _) = ends_of(out);
    if src.is_ipv4() != e.f.vip.is_ipv4() {
        return vec![];
    }
    e.segment(dst, dport, src, sport, flags, n)
}

#[test]
fn two_workers_account_for_every_packet_and_mbuf_of_random_traffic() {
    let mut rig = Rig::new();
    const ROUNDS: usize = 150;
    for round in 0..ROUNDS {
        let k = 1 + rig.next(120) as usize;
        rig.send(k);
        rig.settle();
        rig.check(round);
        if rig.next(4) == 0 {
            let ticks = 1 + rig.next(30);
            rig.tick(ticks);
            rig.settle();
            rig.check(round);
        }
    }
    // The same on a VLAN port: tags taken off on the way in (to the balancer
    // and the kernel), put on on the way out (from the kernel too).
    let to_host = |rig: &Rig| -> u64 {
        rig.workers
            .iter()
            .map(|l| l.st.tally.get(Counter::ToHost))
            .sum()
    };
    let untagged_to_host = to_host(&rig);
    rig.set_vlan(7);
    for round in ROUNDS..ROUNDS + 100 {
        let k = 1 + rig.next(120) as usize;
        rig.send(k);
        rig.settle();
        rig.check(round);
    }
    // Tagged frames for the kernel reached it, their tag taken off.
    assert!(to_host(&rig) > untagged_to_host);
    // Long enough for every entry and kept fragment to expire.
    rig.tick(100_000);
    rig.settle();
    rig.check(ROUNDS + 100);
    assert_eq!(rig.pool.usage().in_use, 0);
    let mut t = Tally::default();
    for l in &rig.workers {
        t.sum(&l.st.tally);
    }
    // Every path named at the top was taken.
    for c in [
        Counter::LbForward,
        Counter::LbReverse,
        Counter::HandoffIn,
        Counter::FragmentsOut,
        Counter::Fragmented,
        Counter::FragmentsParked,
        Counter::TooBigSent,
        Counter::IcmpErrorsRelayed,
        Counter::ArpReplies,
        Counter::EchoRepliesV4,
        Counter::EchoRepliesV6,
        Counter::ToHost,
        Counter::FromHost,
        Counter::DropRunt,
        Counter::DropVlanMismatch,
        Counter::DropMultiSegment,
        Counter::DropFragment,
        Counter::TcpResetsSent,
    ] {
        assert!(t.get(c) > 0, "{} never happened: {}", c.name(), t.named());
    }
    // What one worker handed to the other, the other took and handled (none
    // dropped as arriving on a port it does not know).
    assert_eq!(t.get(Counter::HandoffIn), t.get(Counter::HandoffOut));
    assert_eq!(t.get(Counter::DropHandoffBadPort), 0, "{}", t.named());
    // Every frame had room for its tag to be put on or taken off.
    assert_eq!(t.get(Counter::DropNoRoom), 0, "{}", t.named());
}
