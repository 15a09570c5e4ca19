//! The manager's periodic work, driven by the times a test gives it: drain
//! deadlines that ask for a new snapshot, the new-flow rates `show` reports, and
//! the workers' counters summed.

use crate::manager_tests::{manager, with_worker_tallies, EXAMPLE};
use crate::state::AdminState;
use dataplane::lb::stats::{BackendStat, LbTally, ServiceStat};
use dataplane::pipeline::counters::{Counter, Tally};
use std::time::{Duration, Instant};

#[test]
fn a_drain_asks_for_a_snapshot_once_its_deadline_passes() {
    let src = EXAMPLE.replace("drain_timeout = 300", "drain_timeout = 2");
    let (mut m, _rx) = manager(&src);
    let id = |k| m.backend_id(k).unwrap() as usize;
    let (b1, b2, b3) = (id("web/b1"), id("web/b2"), id("web/b3"));
    let t0 = Instant::now();
    m.backends[b1].admin = AdminState::Drain(t0);
    // Already past its deadline, and in maint: the snapshot has them blocked.
    m.backends[b2].admin = AdminState::Drain(t0 - Duration::from_secs(3));
    m.backends[b3].admin = AdminState::Maint;
    m.publish();
    let blocked = |m: &crate::manager::Manager| {
        let snap = m.snapshot.load();
        [b1, b2, b3].map(|i| snap.backends[i].blocked)
    };
    assert_eq!(blocked(&m), [false, true, true]);
    assert!(!m.tick(t0), "nothing changed");
    assert!(
        !m.tick(t0 + Duration::from_millis(1900)),
        "b1's deadline is 2 s"
    );
    assert!(m.tick(t0 + Duration::from_secs(2)));
    // Until a snapshot takes the change, each tick asks again.
    assert!(m.tick(t0 + Duration::from_millis(2100)));
}

#[test]
fn new_flow_rates_are_sampled_each_second_per_service_and_backend() {
    let (mut m, _rx) = manager(EXAMPLE);
    m.publish();
    let web = 0;
    let b1 = m.backend_id("web/b1").unwrap();
    let (services, backends) = (m.services.len(), m.backends.len());
    let counts = |m: &crate::manager::Manager, svc: u64, be: u64| {
        let mut t = LbTally::default();
        t.service(web, ServiceStat::NewFlows, svc);
        t.backend(b1, BackendStat::NewFlows, be);
        m.lb_counters[0].publish(&t, services, backends);
    };
    counts(&m, 10, 4);
    let t0 = Instant::now();
    m.tick(t0 + Duration::from_millis(500));
    assert!(m.rates.0.is_empty(), "no sample before a second passed");
    // The first sample has nothing before it: every rate 0.
    m.tick(t0 + Duration::from_secs(1));
    assert_eq!(m.rates.0.len(), services);
    assert_eq!(m.rates.1.len(), backends);
    assert!(m.rates.0.iter().chain(&m.rates.1).all(|r| *r == 0.0));
    // 30 more flows to web in 2 s, 20 more to b1.
    counts(&m, 40, 24);
    m.tick(t0 + Duration::from_millis(1500));
    assert_eq!(m.rates.0[web as usize], 0.0, "not sampled again yet");
    m.tick(t0 + Duration::from_secs(3));
    assert_eq!(m.rates.0[web as usize], 15.0);
    assert_eq!(m.rates.1[b1 as usize], 10.0);
    let others = (m.rates.0.iter().enumerate())
        .filter(|(i, _)| *i != web as usize)
        .chain(
            m.rates
                .1
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != b1 as usize),
        );
    assert!(others.map(|(_, r)| r).all(|r| *r == 0.0));
    // A count that went back (an id given to a new backend) reads as 0, not
    // as a wrapped subtraction.
    counts(&m, 40, 3);
    m.tick(t0 + Duration::from_secs(4));
    assert_eq!(m.rates.1[b1 as usize], 0.0);
}

#[test]
fn core_totals_sum_every_worker_and_keep_each() {
    let (mut m, _rx) = manager(EXAMPLE);
    with_worker_tallies(&mut m, 2, |w| {
        let mut t = Tally::default();
        t.add(Counter::RxPackets, 100 * w);
        t.add(Counter::DropRunt, w);
        t
    });
    let (total, per) = m.core_totals();
    assert_eq!(total.get(Counter::RxPackets), 300);
    assert_eq!(total.get(Counter::DropRunt), 3);
    let rx: Vec<u64> = per.iter().map(|t| t.get(Counter::RxPackets)).collect();
    assert_eq!(rx, [100, 200]);
}

#[test]
fn a_snapshot_replaced_while_a_worker_reads_it_is_freed_by_a_tick() {
    let (mut m, _rx) = manager(EXAMPLE);
    m.publish();
    // A worker in the middle of a poll.
    let worker = m.snapshot.load();
    let first = m.snapshot.load_full();
    let freed = std::sync::Arc::downgrade(&first);
    drop(first);
    m.publish();
    assert_ne!(worker.generation, m.snapshot.load().generation);
    drop(worker);
    assert!(
        freed.upgrade().is_some(),
        "the worker's guard freed the snapshot"
    );
    m.tick(Instant::now());
    assert!(
        freed.upgrade().is_none(),
        "the tick left the snapshot allocated"
    );
    // One nobody reads is freed by the publish that replaces it.
    let second = std::sync::Arc::downgrade(&m.snapshot.load_full());
    m.publish();
    assert!(second.upgrade().is_none());
}
