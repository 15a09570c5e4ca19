//! The poll-mode worker loop, one per lcore: burst RX from each port queue it owns,
//! classify, act (reply, hand to the host interface, drop), buffered burst TX, and
//! the host interface's RX back to the wire. Slow work (counter publication, TX
//! drain) runs on a TSC timer, as in DPDK's l3fwd.

use super::classify::{classify, Verdict};
use super::counters::{CoreCounters, Counter, Tally};
use super::local::LocalAddrs;
use super::vlan_tag;
use crate::buf::PacketBuf;
use crate::dpdk::{Mbuf, MbufArray, RxQueue, TxQueue};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Microseconds a partial TX batch may wait before it is sent (l3fwd uses 100).
pub const TX_DRAIN_US: u64 = 100;

/// How many packets ahead of the one being handled are prefetched.
const PREFETCH_AHEAD: usize = 3;

/// One port as seen by one worker: its RX and TX queue, and the host interface's.
pub struct WorkerPort {
    pub rx: RxQueue,
    pub tx: TxQueue,
    pub host: Option<HostQueues>,
    pub local: LocalAddrs,
}

/// The TAP device's queues that pair with a worker's port queues.
pub struct HostQueues {
    pub rx: RxQueue,
    pub tx: TxQueue,
}

pub struct Worker {
    pub id: usize,
    pub ports: Vec<WorkerPort>,
    pub counters: Arc<CoreCounters>,
    pub quit: Arc<AtomicBool>,
    pub tsc_hz: u64,
}

/// TX buffers of one port: to the wire and to the host interface.
#[derive(Default)]
struct PortBuffers {
    wire: MbufArray,
    host: MbufArray,
}

impl Worker {
    pub fn run(mut self) {
        let mut tally = Tally::default();
        let mut bufs: Vec<PortBuffers> = self.ports.iter().map(|_| Default::default()).collect();
        let mut rx = MbufArray::default();
        let drain_ticks = (self.tsc_hz / 1_000_000).max(1) * TX_DRAIN_US;
        let mut last_drain = tsc();
        while !self.quit.load(Ordering::Relaxed) {
            for (port, buf) in self.ports.iter_mut().zip(bufs.iter_mut()) {
                poll_port(port, buf, &mut rx, &mut tally);
            }
            let now = tsc();
            if now.wrapping_sub(last_drain) >= drain_ticks {
                for (port, buf) in self.ports.iter_mut().zip(bufs.iter_mut()) {
                    flush_port(port, buf, &mut tally);
                }
                self.counters.publish(&tally);
                last_drain = now;
            }
        }
        for (port, buf) in self.ports.iter_mut().zip(bufs.iter_mut()) {
            flush_port(port, buf, &mut tally);
        }
        self.counters.publish(&tally);
    }
}

fn poll_port(port: &mut WorkerPort, buf: &mut PortBuffers, rx: &mut MbufArray, tally: &mut Tally) {
    let n = port.rx.burst(rx);
    if n > 0 {
        tally.add(Counter::RxPackets, n as u64);
        for i in 0..PREFETCH_AHEAD {
            rx.prefetch(i);
        }
        let mut packets = rx.drain();
        while let Some(m) = packets.next() {
            packets.prefetch_ahead(PREFETCH_AHEAD);
            tally.add(Counter::RxBytes, m.len() as u64);
            handle(m, port, buf, tally);
        }
    }
    // Kernel to wire through the host interface: no inspection but the VLAN tag.
    if let Some(host) = port.host.as_mut() {
        let n = host.rx.burst(rx);
        if n > 0 {
            tally.add(Counter::FromHost, n as u64);
            for mut m in rx.drain() {
                if let Some(vid) = port.local.vlan {
                    if vlan_tag::insert(&mut m, vid).is_err() {
                        tally.add(Counter::DropNoRoom, 1);
                        continue;
                    }
                }
                push(&mut buf.wire, &mut port.tx, m, tally);
            }
        }
    }
}

#[inline]
fn handle(mut m: Mbuf, port: &mut WorkerPort, buf: &mut PortBuffers, tally: &mut Tally) {
    if m.nb_segs() != 1 {
        tally.add(Counter::DropMultiSegment, 1);
        return;
    }
    match classify(&mut m, &port.local) {
        Verdict::Reply(c) => {
            tally.add(c, 1);
            push(&mut buf.wire, &mut port.tx, m, tally);
        }
        Verdict::ToHost => {
            let Some(host) = port.host.as_mut() else {
                tally.add(Counter::DropNoHostInterface, 1);
                return;
            };
            if vlan_tag::is_tagged(m.data()) && vlan_tag::strip(&mut m).is_err() {
                tally.add(Counter::DropNoRoom, 1);
                return;
            }
            tally.add(Counter::ToHost, 1);
            push_host(&mut buf.host, &mut host.tx, m, tally);
        }
        Verdict::Drop(c) => tally.add(c, 1),
    }
}

/// Buffers `m` for the wire, sending the batch first when it is full.
#[inline]
fn push(batch: &mut MbufArray, tx: &mut TxQueue, m: Mbuf, tally: &mut Tally) {
    if batch.is_full() {
        send_wire(batch, tx, tally);
    }
    // Cannot fail: the batch was just emptied if it was full.
    let _ = batch.push(m);
}

/// Buffers `m` for the host interface.
#[inline]
fn push_host(batch: &mut MbufArray, tx: &mut TxQueue, m: Mbuf, tally: &mut Tally) {
    if batch.is_full() {
        send_host(batch, tx, tally);
    }
    let _ = batch.push(m);
}

#[inline]
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

fn flush_port(port: &mut WorkerPort, buf: &mut PortBuffers, tally: &mut Tally) {
    send_wire(&mut buf.wire, &mut port.tx, tally);
    if let Some(host) = port.host.as_mut() {
        send_host(&mut buf.host, &mut host.tx, tally);
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
