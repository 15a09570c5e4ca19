//! Ids of backends and services that go and come back: a name that returns
//! takes its old id once no connection uses it, so changes that come and go
//! (reloads, `del server` then `add server`) never run the ids out, and the
//! ring tables of removed services are let go. When new names have taken
//! every backend id, a new backend takes one long removed and free of
//! connections, its counts starting from zero.

use crate::admin::commands::dispatch;
use crate::config;
use crate::manager::{new_slot, Manager, Who, RECYCLE_AFTER};
use crate::manager_tests::{manager, EXAMPLE};
use crate::stats::Summary;
use dataplane::lb::snapshot::{MAX_BACKENDS, MAX_SERVICES};
use dataplane::lb::stats::{BackendStat, LbTally, ServiceStat};
use std::path::Path;
use std::time::{Duration, Instant};

/// The example without the dns service and without web's b3.
fn smaller() -> String {
    let src = EXAMPLE.replacen(
        "[[pool.backend]]\nname = \"b3\"\naddress = \"198.18.0.13\"\nweight = 1\n",
        "",
        1,
    );
    assert_ne!(src, EXAMPLE);
    let cut = src.find("[[service]]\nname = \"dns\"").unwrap();
    let end = src[cut..].find("[admin]").unwrap() + cut;
    format!("{}{}", &src[..cut], &src[end..])
}

fn operator() -> Who {
    Who {
        uid: 0,
        pid: 1,
        via: "test",
    }
}

fn apply(m: &mut Manager, src: &str) -> Result<(), String> {
    m.apply_config(config::parse(src, Path::new("weir.toml")).expect("valid"))?;
    m.publish();
    Ok(())
}

fn service_id(m: &Manager, name: &str) -> Option<usize> {
    m.services
        .iter()
        .position(|s| s.as_ref().is_some_and(|s| s.name == name))
}

/// Workers report `n` active connections on backend `b` and service `s`.
fn connections(m: &Manager, b: Option<u32>, s: Option<usize>, n: u64) {
    let mut t = LbTally::default();
    if let Some(b) = b {
        t.backend(b, BackendStat::Active, n);
    }
    if let Some(s) = s {
        t.service(s as u32, ServiceStat::Active, n);
    }
    m.lb_counters[0].publish(&t, m.services.len(), m.backends.len());
}

#[test]
fn reloads_that_remove_and_restore_keep_the_ids_and_free_the_rings() {
    let (mut m, _rx) = manager(EXAMPLE);
    m.publish();
    let b3 = m.backend_id("web/b3").unwrap();
    let dns = service_id(&m, "dns").unwrap();
    let (backends, services) = (m.backends.len(), m.services.len());
    let small = smaller();
    // Many more rounds than there are service ids.
    for round in 0..MAX_SERVICES * 2 {
        apply(&mut m, &small).unwrap_or_else(|e| panic!("round {round}: {e}"));
        assert_eq!(m.backend_id("web/b3"), None);
        assert!(m.rings.keys().all(|&id| m.services[id as usize].is_some()));
        apply(&mut m, EXAMPLE).unwrap_or_else(|e| panic!("round {round}: {e}"));
        assert_eq!(m.backend_id("web/b3"), Some(b3));
        assert_eq!(service_id(&m, "dns"), Some(dns));
    }
    assert_eq!((m.backends.len(), m.services.len()), (backends, services));
    let live = m.services.iter().flatten().count();
    assert!(
        m.rings.len() <= live,
        "{} tables for {live} services",
        m.rings.len()
    );
    // The restored service is whole again in the workers' snapshot.
    let snap = m.snapshot.load();
    assert_eq!(snap.services[dns].name, "dns");
    assert!(!snap.services[dns].backends.is_empty());
}

#[test]
fn a_name_whose_connections_are_still_running_out_gets_a_new_id() {
    let (mut m, _rx) = manager(EXAMPLE);
    m.publish();
    let b3 = m.backend_id("web/b3").unwrap();
    let dns = service_id(&m, "dns").unwrap();
    apply(&mut m, &smaller()).unwrap();
    connections(&m, Some(b3), Some(dns), 1);
    apply(&mut m, EXAMPLE).unwrap();
    let (b3_again, dns_again) = (
        m.backend_id("web/b3").unwrap(),
        service_id(&m, "dns").unwrap(),
    );
    assert_ne!(
        b3_again, b3,
        "b3's old connections would count for the new one"
    );
    assert_ne!(dns_again, dns);
    // Once they are gone, the next return takes the old ids.
    connections(&m, None, None, 0);
    apply(&mut m, &smaller()).unwrap();
    apply(&mut m, EXAMPLE).unwrap();
    assert_eq!(m.backend_id("web/b3"), Some(b3));
    assert_eq!(service_id(&m, "dns"), Some(dns));
}

#[test]
fn a_server_deleted_and_added_again_takes_its_id_back_once_drained() {
    let (mut m, _rx) = manager(EXAMPLE);
    m.publish();
    let who = operator();
    let b1 = m.backend_id("web/b1").unwrap();
    let backends = m.backends.len();
    // Without reuse each round would take a new id, until they ran out.
    for _ in 0..100 {
        dispatch(&mut m, "del server web/b1", &who).unwrap();
        dispatch(&mut m, "add server web b1 198.18.0.11:80", &who).unwrap();
    }
    assert_eq!(m.backend_id("web/b1"), Some(b1));
    assert_eq!(m.backends.len(), backends);
    // With a connection left on it, the name comes back under a new id.
    dispatch(&mut m, "del server web/b1", &who).unwrap();
    connections(&m, Some(b1), None, 1);
    dispatch(&mut m, "add server web b1 198.18.0.11:80", &who).unwrap();
    assert_eq!(m.backend_id("web/b1"), Some(backends as u32));
    let snap = m.snapshot.load();
    assert_eq!(snap.backends[backends].name, "web/b1");
}

/// Fills the backend ids with removed slots, removed `ago` earlier and each
/// with one connection left, but for `free`, which has none and had
/// `packets` packets.
fn fill_ids(m: &mut Manager, ago: Duration, free: usize, packets: u64) {
    let at = Instant::now() - ago;
    while m.backends.len() < MAX_BACKENDS {
        let i = m.backends.len();
        let mut s = new_slot(
            "web",
            &format!("gone{i}"),
            "198.18.0.13".parse().unwrap(),
            None,
            0,
            1,
        );
        s.removed = true;
        s.removed_at = Some(at);
        m.backends.push(s);
    }
    let mut t = left_connections(m, free);
    t.backend(free as u32, BackendStat::PacketsIn, packets);
    m.lb_counters[0].publish(&t, m.services.len(), m.backends.len());
}

/// One connection left on every removed backend but `free`.
fn left_connections(m: &Manager, free: usize) -> LbTally {
    let mut t = LbTally::default();
    for i in (0..m.backends.len()).filter(|&i| m.backends[i].removed && i != free) {
        t.backend(i as u32, BackendStat::Active, 1);
    }
    t
}

#[test]
fn when_the_ids_run_out_a_drained_one_goes_to_a_new_backend_counting_from_zero() {
    let (mut m, _rx) = manager(EXAMPLE);
    m.publish();
    let who = operator();
    let free = MAX_BACKENDS - 7;
    // Removed a moment ago: a worker may still be on a snapshot that has it.
    fill_ids(&mut m, Duration::from_secs(1), free, 100);
    let e = dispatch(&mut m, "add server web fresh 198.18.0.14:80", &who)
        .err()
        .unwrap();
    assert!(
        e.contains("ids exhausted") && e.contains("try again later"),
        "{e}"
    );
    let e = apply(&mut m, &EXAMPLE.replacen("\"b3\"", "\"b9\"", 1)).unwrap_err();
    assert!(e.contains("ids exhausted"), "{e}");
    // Long enough ago: the one with no connection left is taken, from zero.
    m.backends.truncate(9);
    fill_ids(&mut m, RECYCLE_AFTER, free, 100);
    dispatch(&mut m, "add server web fresh 198.18.0.14:80", &who).unwrap();
    assert_eq!(m.backend_id("web/fresh"), Some(free as u32));
    assert_eq!(m.backends.len(), MAX_BACKENDS);
    let packets = |m: &Manager| {
        m.lb_totals()
            .get_backend(free as u32, BackendStat::PacketsIn)
    };
    assert_eq!(packets(&m), 0, "the old holder's packets");
    // The old holder had 100: the workers' sum says 105.
    let mut t = left_connections(&m, free);
    t.backend(free as u32, BackendStat::PacketsIn, 105);
    m.lb_counters[0].publish(&t, m.services.len(), m.backends.len());
    assert_eq!(packets(&m), 5);
    assert_eq!(m.snapshot.load().backends[free].name, "web/fresh");
    // So says the summary at exit.
    let summary = Summary::collect(
        &m.counters,
        &m.lb_counters,
        &m.stats_base,
        &m.snapshot.load(),
        Duration::ZERO,
    );
    let (_, fresh) = summary
        .backends
        .iter()
        .find(|(n, _)| n == "web/fresh")
        .unwrap();
    assert_eq!(fresh[BackendStat::PacketsIn as usize], 5);
    // No other is free: the next one is refused, and nothing changes.
    let e = dispatch(&mut m, "add server web fresh2 198.18.0.14:80", &who)
        .err()
        .unwrap();
    assert!(e.contains("ids exhausted"), "{e}");
    assert_eq!(m.backend_id("web/fresh2"), None);
}

#[test]
fn a_reload_that_needs_an_id_when_they_ran_out_takes_a_drained_one() {
    let (mut m, _rx) = manager(EXAMPLE);
    m.publish();
    let free = 20;
    fill_ids(&mut m, RECYCLE_AFTER, free, 7);
    apply(&mut m, &EXAMPLE.replacen("\"b3\"", "\"b9\"", 1)).unwrap();
    assert_eq!(m.backend_id("web/b9"), Some(free as u32));
    assert_eq!(
        m.lb_totals()
            .get_backend(free as u32, BackendStat::PacketsIn),
        0
    );
    assert!(m.backend_id("web/b3").is_none());
}
