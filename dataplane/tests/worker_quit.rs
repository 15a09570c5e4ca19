//! Two workers' loops (`Worker::run`) stopping one after the other, on a
//! real DPDK port (`net_ring`) in this process: the one that stops first
//! keeps taking the other's hand-offs until the other has sent its last, so
//! nothing is left in a ring at exit. Worker 0 takes every packet from the
//! wire and hands the flows worker 1 owns to it; worker 1 is told to quit
//! first, and only once it has said it is stopping does worker 0 get more
//! traffic, and then the order to quit.
//!
//! A worker that stopped waits for the others at most 100 ms of its TSC (a
//! dead one must not hold the rest); worker 1 is given a TSC 200 times as
//! fast as it is, so that wait is 20 s here and the test does not fail on the
//! machine's load (2 s was too short once, run beside a CI run). It starts DPDK in the test process (`ScratchEal`); root is
//! not needed.

mod common;

use common::{counters_until, snapshot, to_vip, two_handoffs, worker, Wire};
use dataplane::dpdk::scratch::ScratchEal;
use dataplane::dpdk::{Mempool, Port, PortSpec};
use dataplane::pipeline::counters::{Counter, Tally};
use dataplane::wire::tcp;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// SYNs of new flows sent in each phase.
const FLOWS: u16 = 64;

#[test]
fn the_worker_that_stops_first_takes_the_last_hand_offs_of_the_other() {
    let eal = ScratchEal::start("weir-quit", 128, &["net_ring0"]).expect("EAL");
    let pool = Mempool::new("wquit", 1023, 0, 2176, 0).expect("mempool");
    let mut port = Port::open("net_ring0", "wire").expect("net_ring0");
    port.start(&PortSpec::queues(4, 1024), &pool)
        .expect("start");
    let snap = Arc::new(snapshot());
    let (handoffs, stopped) = two_handoffs("wquit");
    let tsc_hz = eal.eal().tsc_hz();
    let mut handles = vec![];
    let mut running = vec![];
    for (w, handoff) in handoffs.into_iter().enumerate() {
        let q = w as u16;
        let queues = (
            port.take_rx_queue(q).expect("rx"),
            port.take_tx_queue(2 + q).expect("tx"),
        );
        let hz = if w == 1 { 200 * tsc_hz } else { tsc_hz };
        let (wk, h) = worker((w, 2), queues, handoff, hz, 1000, &snap);
        running.push(std::thread::spawn(move || wk.run()));
        handles.push(h);
    }
    // The test sends into worker 0's RX queue and takes from both TX queues.
    let mut wire = Wire {
        into: port.take_tx_queue(0).expect("tx 0"),
        out: port.take_rx_queue(2).expect("rx 2"),
        sent: 0,
        taken: 0,
    };
    let mut from_1 = Wire {
        into: port.take_tx_queue(1).expect("tx 1"),
        out: port.take_rx_queue(3).expect("rx 3"),
        sent: 0,
        taken: 0,
    };
    let take_all = |wire: &mut Wire, from_1: &mut Wire, want: u64| {
        let until = Instant::now() + Duration::from_secs(10);
        while wire.taken + from_1.taken < want && Instant::now() < until {
            wire.take(Duration::from_millis(1));
            from_1.take(Duration::from_millis(1));
        }
    };

    // Both running: worker 1's flows reach it through the ring.
    for sport in 0..FLOWS {
        wire.send(&pool, &to_vip(20000 + sport).frame(tcp::flags::SYN, 0));
    }
    take_all(&mut wire, &mut from_1, FLOWS as u64);
    assert_eq!(wire.taken + from_1.taken, FLOWS as u64);
    assert!(from_1.taken > 0 && wire.taken > 0, "flows on both workers");

    // Worker 1 stops first and says so; only then does worker 0 get the
    // second half, hand worker 1 its share, and stop.
    handles[1].quit.store(true, Ordering::Relaxed);
    let until = Instant::now() + Duration::from_secs(10);
    while stopped.load(Ordering::SeqCst) == 0 && Instant::now() < until {
        std::hint::spin_loop();
    }
    assert_eq!(stopped.load(Ordering::SeqCst), 1, "worker 1 is stopping");
    let before = from_1.taken;
    for sport in 0..FLOWS {
        wire.send(&pool, &to_vip(30000 + sport).frame(tcp::flags::SYN, 0));
    }
    // Worker 0 has handed them on before it is told to stop.
    counters_until(&handles[0].counters, Duration::from_secs(10), |t| {
        t.get(Counter::RxPackets) == 2 * FLOWS as u64
    });
    handles[0].quit.store(true, Ordering::Relaxed);
    let until = Instant::now() + Duration::from_secs(10);
    while running.iter().any(|r| !r.is_finished()) && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(5));
    }
    for r in running {
        assert!(r.is_finished(), "both loops return after quit");
        r.join().expect("no panic");
    }
    take_all(&mut wire, &mut from_1, 2 * FLOWS as u64);

    let (t0, t1) = (
        handles[0].counters.snapshot(),
        handles[1].counters.snapshot(),
    );
    let mut total = Tally::default();
    total.sum(&t0);
    total.sum(&t1);
    assert_eq!(stopped.load(Ordering::SeqCst), 2);
    assert!(
        from_1.taken > before,
        "worker 1 took hand-offs after it stopped"
    );
    assert_eq!(
        t1.get(Counter::HandoffIn),
        t0.get(Counter::HandoffOut),
        "{}",
        total.named()
    );
    assert_eq!(total.get(Counter::DropHandoffFull), 0);
    assert_eq!(total.unaccounted(), 0, "{}", total.named());
    assert_eq!(wire.taken + from_1.taken, 2 * FLOWS as u64);
    assert_eq!(total.get(Counter::TxPackets), 2 * FLOWS as u64);
    assert_eq!(pool.usage().in_use, 0, "every mbuf back in the pool");
    port.stop();
}
