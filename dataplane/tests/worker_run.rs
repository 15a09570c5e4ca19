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

mod common;

use common::{
    arp_request, counters_until, later_fragment, snapshot, to_vip, worker, Wire, BACKEND_MAC,
    CLIENT_MAC, OUR_V4, SYN_TIMEOUT_S,
};
use dataplane::dpdk::scratch::ScratchEal;
use dataplane::dpdk::{Mempool, Port, PortSpec};
use dataplane::pipeline::control::{ConnReport, Query};
use dataplane::pipeline::counters::Counter;
use dataplane::pipeline::worker::Handoff;
use dataplane::wire::tcp;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{self, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long the worker sleeps once idle.
const IDLE_SLEEP_US: u32 = 1000;

fn connections(queries: &Sender<Query>) -> Vec<ConnReport> {
    let (reply, answer) = mpsc::sync_channel(1);
    queries
        .send(Query::Conns {
            service: None,
            limit: 10,
            list: Vec::with_capacity(10),
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
    let handoff = Handoff {
        to: vec![None],
        from: vec![],
        stopped: Default::default(),
    };
    let queues = (
        port.take_rx_queue(0).expect("rx 0"),
        port.take_tx_queue(1).expect("tx 1"),
    );
    let tsc_hz = eal.eal().tsc_hz();
    let (worker, h) = worker((0, 1), queues, handoff, tsc_hz, IDLE_SLEEP_US, &snap);
    let (counters, quit, queries) = (h.counters, h.quit, h.queries);
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
    assert_eq!(t.get(Counter::FragmentsParked), 1, "{}", t.named());
    assert_eq!(t.get(Counter::DropFragment), 1);
    assert_eq!(t.unaccounted(), 0);
    assert_eq!(t.get(Counter::RxPackets), wire.sent);
    assert!(wire.take(Duration::ZERO).is_empty());
    assert_eq!(t.get(Counter::TxPackets), wire.taken);
    assert_eq!(pool.usage().in_use, 0, "every mbuf back in the pool");
    port.stop();
}
