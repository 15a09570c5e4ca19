//! The manager's rules, without DPDK: ids stay stable across changes, and runtime
//! state (weights, drain, maint, health) reaches the snapshot the workers read.

use crate::config;
use crate::health::engine::CheckResult;
use crate::manager::{LinkWatch, Manager, Parts, PortView};
use crate::state::AdminState;
use arc_swap::ArcSwap;
use dataplane::dpdk::mempool::PoolUse;
use dataplane::lb::snapshot::LbSnapshot;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

pub(crate) const EXAMPLE: &str = include_str!("../../examples/weir.toml");

pub(crate) fn manager(src: &str) -> (Manager, mpsc::Receiver<crate::health::engine::Command>) {
    manager_with(src, Vec::new())
}

/// Gives `m` one worker's counter block per tally `tally(w)` returns, for
/// workers numbered 1 to `workers`, each published as a worker publishes it.
pub(crate) fn with_worker_tallies(
    m: &mut Manager,
    workers: u64,
    tally: impl Fn(u64) -> dataplane::pipeline::counters::Tally,
) {
    m.counters = (1..=workers)
        .map(|w| {
            let block: Arc<dataplane::pipeline::counters::CoreCounters> = Arc::default();
            block.publish(&tally(w));
            block
        })
        .collect();
}

/// A manager of `src` whose neighbours are resolved by `resolvers`.
pub(crate) fn manager_with(
    src: &str,
    resolvers: Vec<crate::neigh::Resolver>,
) -> (Manager, mpsc::Receiver<crate::health::engine::Command>) {
    let cfg = config::parse(src, Path::new("weir.toml")).expect("valid");
    let (health, rx) = mpsc::channel();
    let m = Manager::new(Parts {
        cfg_path: "weir.toml".into(),
        cfg,
        ports: Vec::new(),
        snapshot: Arc::new(ArcSwap::from_pointee(LbSnapshot::default())),
        resolvers,
        health,
        counters: vec![Arc::default()],
        lb_counters: vec![Arc::default()],
        queries: Vec::new(),
        mbufs: Box::new(PoolUse::default),
    });
    (m, rx)
}

fn weights(m: &Manager, service: &str) -> Vec<u32> {
    let snap = m.snapshot.load();
    snap.services
        .iter()
        .find(|s| s.name == service)
        .unwrap()
        .weights
        .clone()
}

#[test]
fn link_changes_are_seen_on_the_next_read_and_counted() {
    let (mut m, _rx) = manager(EXAMPLE);
    let up = Arc::new(AtomicBool::new(true));
    let link = up.clone();
    m.ports = vec![PortView {
        name: "wan".into(),
        driver: "net_af_packet".into(),
        mac: [2, 0, 0, 0, 0, 1],
        link: Box::new(move || (link.load(Ordering::SeqCst), 10_000)),
        stats: Box::new(Default::default),
    }];
    m.links = vec![LinkWatch {
        up: true,
        changes: 0,
    }];
    let t0 = Instant::now();
    up.store(false, Ordering::SeqCst);
    // Read at most every 100 ms; then down, and back up on a later read.
    m.tick(t0 + Duration::from_millis(150));
    assert!(!m.links[0].up && m.links[0].changes == 1);
    up.store(true, Ordering::SeqCst);
    m.tick(t0 + Duration::from_millis(200));
    assert!(!m.links[0].up, "read again before 100 ms passed");
    m.tick(t0 + Duration::from_millis(260));
    assert!(m.links[0].up && m.links[0].changes == 2);
}

#[test]
fn runtime_state_reaches_the_snapshot() {
    let (mut m, _rx) = manager(EXAMPLE);
    m.publish();
    assert_eq!(weights(&m, "web"), vec![1, 1, 1]);
    let b1 = m.backend_id("web/b1").unwrap() as usize;
    let b2 = m.backend_id("web/b2").unwrap() as usize;
    let b3 = m.backend_id("web/b3").unwrap() as usize;
    m.backends[b1].weight = 7;
    m.backends[b2].admin = AdminState::Drain(Instant::now());
    m.backends[b3].admin = AdminState::Maint;
    m.publish();
    assert_eq!(weights(&m, "web"), vec![7, 0, 0]);
    let snap = m.snapshot.load();
    // Draining keeps existing flows until the deadline; maint blocks them at once.
    assert!(!snap.backends[b2].blocked);
    assert!(snap.backends[b3].blocked);
    // The same pool serves the dr service: it sees the same state.
    assert_eq!(weights(&m, "web-dr"), vec![7, 0, 0]);
}

#[test]
fn a_backend_whose_mac_is_unknown_takes_no_new_flows_once_another_is_known() {
    let (mut m, _rx) = manager(EXAMPLE);
    m.publish();
    // Nothing resolved yet (the first milliseconds): the weights stand.
    assert_eq!(weights(&m, "web"), vec![1, 1, 1]);
    let addr = |m: &Manager, name: &str| m.backends[m.backend_id(name).unwrap() as usize].addr;
    let (a1, a2) = (addr(&m, "web/b1"), addr(&m, "web/b2"));
    m.macs.insert(a1, [2, 0, 0, 0, 0, 0x11]);
    m.macs.insert(a2, [2, 0, 0, 0, 0, 0x12]);
    m.publish();
    // b3 does not answer ARP: its share goes to b1 and b2.
    assert_eq!(weights(&m, "web"), vec![1, 1, 0]);
    let a3 = addr(&m, "web/b3");
    m.macs.insert(a3, [2, 0, 0, 0, 0, 0x13]);
    m.publish();
    assert_eq!(weights(&m, "web"), vec![1, 1, 1]);
}

#[test]
fn a_drain_past_its_deadline_blocks_the_backend() {
    let src = EXAMPLE.replace("drain_timeout = 300", "drain_timeout = 0");
    let (mut m, _rx) = manager(&src);
    let b1 = m.backend_id("web/b1").unwrap() as usize;
    m.backends[b1].admin = AdminState::Drain(Instant::now() - Duration::from_secs(1));
    m.publish();
    assert!(m.snapshot.load().backends[b1].blocked);
}

#[test]
fn health_verdicts_take_backends_out_of_new_flows() {
    let (mut m, _rx) = manager(EXAMPLE);
    let b2 = m.backend_id("web/b2").unwrap();
    let fail = |id| CheckResult {
        id,
        ok: false,
        reason: "refused".into(),
        latency: Duration::from_millis(1),
    };
    // fall = 3 in the example.
    assert!(!m.on_check(fail(b2)));
    assert!(!m.on_check(fail(b2)));
    assert!(m.on_check(fail(b2)));
    m.publish();
    assert_eq!(weights(&m, "web"), vec![1, 0, 1]);
    // The workers are told it is down (its UDP flows move), and only it.
    let down = |m: &Manager| {
        m.snapshot
            .load()
            .backends
            .iter()
            .map(|b| b.down)
            .collect::<Vec<_>>()
    };
    let is_down = down(&m);
    assert!(is_down[b2 as usize]);
    assert_eq!(is_down.iter().filter(|d| **d).count(), 1);
    // A backend whose check is disabled counts as up.
    m.backends[b2 as usize].check_enabled = false;
    m.publish();
    assert_eq!(weights(&m, "web"), vec![1, 1, 1]);
    assert!(!down(&m)[b2 as usize]);
}

#[test]
fn a_check_that_ends_after_its_backend_left_checking_is_not_counted() {
    let (mut m, _rx) = manager(EXAMPLE);
    let b1 = m.backend_id("web/b1").unwrap();
    let result = |id, ok| CheckResult {
        id,
        ok,
        reason: "refused".into(),
        latency: Duration::from_millis(1),
    };
    assert!(!m.on_check(result(b1, true)));
    assert_eq!(m.backends[b1 as usize].checks_ok, 1);
    // In flight when checking stopped: neither counted nor able to bring it down
    // (fall = 3 in the example).
    for stop in 0..3 {
        let b = &mut m.backends[b1 as usize];
        match stop {
            0 => b.check_enabled = false,
            1 => b.admin = AdminState::Maint,
            _ => b.removed = true,
        }
        for _ in 0..3 {
            assert!(!m.on_check(result(b1, false)));
        }
        assert!(!m.on_check(result(b1, true)));
        let b = &mut m.backends[b1 as usize];
        assert_eq!((b.checks_ok, b.checks_failed), (1, 0), "stop {stop}");
        assert!(b.health.up, "stop {stop}");
        (b.check_enabled, b.admin, b.removed) = (true, AdminState::Ready, false);
    }
    // Checked again: counted again.
    assert!(!m.on_check(result(b1, false)));
    assert_eq!(m.backends[b1 as usize].checks_failed, 1);
}

#[test]
fn ids_survive_a_config_change() {
    let (mut m, _rx) = manager(EXAMPLE);
    let b1 = m.backend_id("web/b1").unwrap();
    let b3 = m.backend_id("web/b3").unwrap();
    m.backends[b1 as usize].admin = AdminState::Maint;
    // b2 leaves the web pool, b4 joins; the dns service goes away.
    let src = EXAMPLE.replacen(
        "name = \"b2\"\naddress = \"198.18.0.12\"\nweight = 1\n",
        "name = \"b4\"\naddress = \"198.18.0.14\"\nweight = 1\n",
        1,
    );
    let cut = src.find("[[service]]\nname = \"dns\"").unwrap();
    let end = src[cut..].find("[admin]").unwrap() + cut;
    let src = format!("{}{}", &src[..cut], &src[end..]);
    let cfg = config::parse(&src, Path::new("weir.toml")).expect("valid");
    let before = m.backends.len();
    m.apply_config(cfg).unwrap();
    m.publish();
    assert_eq!(m.backend_id("web/b1"), Some(b1), "kept its id");
    assert_eq!(m.backend_id("web/b3"), Some(b3));
    assert_eq!(
        m.backends[b1 as usize].admin,
        AdminState::Maint,
        "kept its state"
    );
    assert_eq!(m.backend_id("web/b2"), None);
    assert_eq!(
        m.backend_id("web/b4"),
        Some(before as u32),
        "new id, never a reused one"
    );
    let snap = m.snapshot.load();
    assert!(snap.services.iter().all(|s| s.name != "dns"));
    assert_eq!(snap.by_vip.len(), 3);
}

#[test]
fn services_of_one_pool_share_one_ring_table_through_changes() {
    let (mut m, _rx) = manager(EXAMPLE);
    let shared = |m: &Manager| {
        let snap = m.snapshot.load();
        let ring = |name: &str| {
            snap.services
                .iter()
                .find(|s| s.name == name)
                .unwrap()
                .ring
                .clone()
        };
        Arc::ptr_eq(&ring("web"), &ring("web-dr"))
    };
    m.publish();
    assert!(shared(&m));
    let b2 = m.backend_id("web/b2").unwrap() as usize;
    m.backends[b2].admin = AdminState::Maint;
    m.publish();
    assert!(shared(&m));
    assert_eq!(weights(&m, "web-dr"), vec![1, 0, 1]);
}

#[test]
fn only_a_weighted_round_robin_service_gets_its_order() {
    let src = EXAMPLE.replacen(
        "scheduler = \"ring_hash\"",
        "scheduler = \"weighted_round_robin\"",
        1,
    );
    let (mut m, _rx) = manager(&src);
    let b1 = m.backend_id("web/b1").unwrap() as usize;
    m.backends[b1].weight = 3;
    m.publish();
    let snap = m.snapshot.load();
    let svc = |name: &str| snap.services.iter().find(|s| s.name == name).unwrap();
    // b1 three times in five, b2 and b3 once each.
    let mut counts = [0; 3];
    for &i in &svc("web").wrr {
        counts[i as usize] += 1;
    }
    assert_eq!(counts, [3, 1, 1]);
    // web-dr shares the pool but hashes: no order built for it.
    assert!(svc("web-dr").wrr.is_empty());
}

#[test]
fn the_least_conn_trees_are_laid_out_again_only_when_their_pools_change() {
    let src = EXAMPLE.replacen("scheduler = \"ring_hash\"", "scheduler = \"least_conn\"", 1);
    let (mut m, _rx) = manager(&src);
    m.publish();
    let layout = |m: &Manager| m.snapshot.load().least_conn.clone();
    let first = layout(&m);
    assert_ne!(first.id, 0);
    // Each worker has its nodes in it, and no more.
    assert!(first.segment(m.workers - 1).is_some());
    assert!(first.segment(m.workers).is_none());
    // What leaves web's pool and weights alone keeps the layout (and the
    // workers' winners in it): a publish, another pool's weight, a drain of
    // a backend web does not use.
    m.publish();
    assert!(Arc::ptr_eq(&first, &layout(&m)));
    let dns1 = m.backend_id("dns/b1").unwrap() as usize;
    m.backends[dns1].weight = 5;
    m.publish();
    assert!(Arc::ptr_eq(&first, &layout(&m)));
    // web/b1's weight is a new layout, laid out for the same workers.
    let b1 = m.backend_id("web/b1").unwrap() as usize;
    m.backends[b1].weight = 2;
    m.publish();
    let second = layout(&m);
    assert!(second.id > first.id);
    assert!(second.same_trees(&m.snapshot.load().services));
    assert!(second.segment(m.workers - 1).is_some());
    // So is web/b2 taken out of new flows.
    let b2 = m.backend_id("web/b2").unwrap() as usize;
    m.backends[b2].admin = AdminState::Maint;
    m.publish();
    assert!(layout(&m).id > second.id);
    assert_eq!(weights(&m, "web"), vec![2, 0, 1]);
}

#[test]
fn a_snapshot_carries_a_newer_generation_the_configured_timeouts_and_each_vip_once() {
    let src = EXAMPLE
        .replacen("tcp_syn_timeout = 30", "tcp_syn_timeout = 31", 1)
        .replacen(
            "tcp_established_timeout = 900",
            "tcp_established_timeout = 901",
            1,
        )
        .replacen("tcp_fin_timeout = 120", "tcp_fin_timeout = 121", 1)
        .replacen("tcp_close_timeout = 10", "tcp_close_timeout = 11", 1)
        .replacen("udp_timeout = 300", "udp_timeout = 301", 1)
        .replacen("tcp_idle_reclaim = 300", "tcp_idle_reclaim = 302", 1);
    let (mut m, _rx) = manager(&src);
    m.publish();
    let first = m.snapshot.load().generation;
    m.publish();
    let snap = m.snapshot.load();
    // `show info` and the metrics tell a new snapshot by its generation: it
    // must grow with every publish.
    assert_eq!(snap.generation, first + 1);
    assert!(first > 0);
    let t = snap.timeouts;
    assert_eq!(
        (
            t.tcp_syn,
            t.tcp_established,
            t.tcp_fin,
            t.tcp_close,
            t.udp,
            t.tcp_idle_reclaim
        ),
        (31, 901, 121, 11, 301, 302)
    );
    // web and dns share 198.18.0.100; web6 and web-dr have their own.
    let vips: Vec<String> = snap.vips.iter().map(|v| v.to_string()).collect();
    assert_eq!(vips, ["198.18.0.100", "2001:db8::100", "198.18.0.200"]);
}

#[test]
fn the_resolvers_keep_every_backend_not_removed_and_the_announcer_every_own_address() {
    let (mut m, _rx) = manager(EXAMPLE);
    let addrs = |v: Vec<std::net::IpAddr>| v.iter().map(|a| a.to_string()).collect::<Vec<_>>();
    // web, web6, dns: the dns pool repeats web's addresses (the resolver keeps one).
    let want = [
        "198.18.0.11",
        "198.18.0.12",
        "198.18.0.13",
        "2001:db8::11",
        "2001:db8::12",
        "2001:db8::13",
    ];
    assert_eq!(addrs(m.neighbour_targets())[..6], want);
    assert_eq!(m.neighbour_targets().len(), 9);
    let b2 = m.backend_id("web6/b2").unwrap() as usize;
    m.backends[b2].removed = true;
    assert!(!addrs(m.neighbour_targets()).contains(&"2001:db8::12".to_string()));
    assert_eq!(m.neighbour_targets().len(), 8);
    // The port's own addresses, its FullNAT sources, then each service's VIP.
    assert_eq!(
        addrs(m.announced_addresses()),
        [
            "198.18.0.1",
            "2001:db8::1",
            "198.18.0.2",
            "2001:db8::2",
            "198.18.0.100",
            "2001:db8::100",
            "198.18.0.200",
            "198.18.0.100"
        ]
    );
}

#[test]
fn a_backends_new_flow_weight_is_what_show_reports_and_the_snapshot_uses() {
    let (mut m, _rx) = manager(EXAMPLE);
    let b1 = m.backend_id("web/b1").unwrap();
    let b2 = m.backend_id("web/b2").unwrap();
    m.backends[b1 as usize].weight = 7;
    let pool = m.pools[0].clone();
    assert_eq!(m.new_flow_weight(b1, &pool), 7);
    m.backends[b2 as usize].admin = AdminState::Maint;
    assert_eq!(m.new_flow_weight(b2, &pool), 0);
    // Once another member answers ARP, an unresolved one takes no new flows.
    let a3 = m.backends[m.backend_id("web/b3").unwrap() as usize].addr;
    m.macs.insert(a3, [2, 0, 0, 0, 0, 0x13]);
    assert_eq!(m.new_flow_weight(b1, &pool), 0);
    assert_eq!(m.pool_weights(&pool), [0, 0, 1]);
}
