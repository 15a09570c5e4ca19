//! What the manager tells the health engine: which backends to check, on which
//! port, with which probe; and that a backend moved to a new address starts its
//! verdict again.

use crate::config;
use crate::health::engine::{CheckResult, Command, Probe, Target};
use crate::health::http;
use crate::manager::Manager;
use crate::manager_tests::{manager, EXAMPLE};
use crate::state::AdminState;
use std::path::Path;
use std::sync::mpsc::Receiver;
use std::time::Duration;

/// The target list of the last `Targets` command sent, by backend key.
fn last_targets(m: &Manager, rx: &Receiver<Command>) -> Vec<(String, Target)> {
    let mut last = None;
    while let Ok(c) = rx.try_recv() {
        if let Command::Targets(t) = c {
            last = Some(t);
        }
    }
    let targets = last.expect("a Targets command was sent");
    targets
        .into_iter()
        .map(|t| (m.backends[t.id as usize].key(), t))
        .collect()
}

/// The targets a manager of `src` sends at its first publish.
fn targets_of(src: &str) -> Vec<(String, Target)> {
    let (mut m, rx) = manager(src);
    m.publish();
    last_targets(&m, &rx)
}

fn keys(targets: &[(String, Target)]) -> Vec<&str> {
    targets.iter().map(|(k, _)| k.as_str()).collect()
}

fn fail(id: u32) -> CheckResult {
    CheckResult {
        id,
        ok: false,
        reason: "refused".into(),
        latency: Duration::from_millis(1),
    }
}

#[test]
fn only_checked_pools_and_members_are_sent_to_the_engine_with_their_probe() {
    let (mut m, rx) = manager(EXAMPLE);
    m.publish();
    // Only the web pool has a check; web6 and dns are `kind = none`.
    let t = last_targets(&m, &rx);
    assert_eq!(keys(&t), ["web/b1", "web/b2", "web/b3"]);
    let (_, b1) = &t[0];
    assert_eq!(b1.id, m.backend_id("web/b1").unwrap());
    // No port anywhere: the port of the first service on the pool (web, 80).
    assert_eq!(b1.addr, "198.18.0.11:80".parse().unwrap());
    assert_eq!(
        b1.probe,
        Probe::Http {
            request: http::request("/", "198.18.0.11"),
            status: vec![200],
            body: None,
        }
    );
    assert_eq!(
        (b1.interval, b1.timeout, b1.jitter),
        (
            Duration::from_millis(1000),
            Duration::from_millis(500),
            Duration::from_millis(100)
        )
    );
    // Out of checking: maint, check disabled. A draining backend is still checked.
    let id = |m: &Manager, k| m.backend_id(k).unwrap() as usize;
    let (b1, b2, b3) = (id(&m, "web/b1"), id(&m, "web/b2"), id(&m, "web/b3"));
    m.backends[b1].admin = AdminState::Maint;
    m.backends[b2].check_enabled = false;
    m.backends[b3].admin = AdminState::Drain(std::time::Instant::now());
    m.publish();
    assert_eq!(keys(&last_targets(&m, &rx)), ["web/b3"]);
}

#[test]
fn the_check_port_is_the_checks_then_the_backends_then_the_first_services() {
    // The web service on 8080, web-dr (second on the pool) on 80.
    let src = fullnat_only(EXAMPLE).replacen("port = 80\n", "port = 8080\n", 1);
    let src = src.replacen(
        "name = \"b2\"\naddress = \"198.18.0.12\"\n",
        "name = \"b2\"\naddress = \"198.18.0.12\"\nport = 9000\n",
        1,
    );
    let ports = |src: &str| -> Vec<u16> {
        let t = targets_of(src);
        t.iter().map(|(_, t)| t.addr.port()).collect()
    };
    assert_eq!(ports(&src), [8080, 9000, 8080]);
    // The check's own port wins over both.
    let src = src.replacen("# port = 8080", "port = 7000", 1);
    assert_eq!(ports(&src), [7000, 7000, 7000]);
}

/// `src` with web-dr in fullnat mode (dr cannot send to a backend on another
/// port than the service's).
fn fullnat_only(src: &str) -> String {
    src.replacen("mode = \"dr\"", "mode = \"fullnat\"", 1)
}

/// `src` without the service named `name`.
fn without_service(src: &str, name: &str) -> String {
    let cut = src
        .find(&format!("[[service]]\nname = \"{name}\"\n"))
        .unwrap();
    let rest = &src[cut + 1..];
    let end = cut + 1 + rest.find("[[service]]").or(rest.find("[admin]")).unwrap();
    format!("{}{}", &src[..cut], &src[end..])
}

#[test]
fn a_pool_no_service_uses_is_checked_on_port_80() {
    let src = without_service(&without_service(EXAMPLE, "web"), "web-dr").replacen(
        "[pool.health]\nkind = \"http\"",
        "[pool.health]\nkind = \"tcp\"",
        1,
    );
    let (mut m, rx) = manager(&src);
    m.publish();
    let t = last_targets(&m, &rx);
    assert_eq!(keys(&t), ["web/b1", "web/b2", "web/b3"]);
    for (k, t) in &t {
        assert_eq!(t.addr.port(), 80, "{k}");
        assert_eq!(t.probe, Probe::Tcp, "{k}");
    }
}

/// The engine's target for backend `key` of a manager of `src`.
fn target_of(src: &str, key: &str) -> Target {
    let found = targets_of(src).into_iter().find(|(k, _)| k == key);
    found.unwrap_or_else(|| panic!("no target {key}")).1
}

#[test]
fn an_ipv6_backend_is_named_in_brackets_unless_a_host_is_configured() {
    let src = EXAMPLE.replacen(
        "[[pool]]\nname = \"web6\"\n",
        "[[pool]]\nname = \"web6\"\n[pool.health]\nkind = \"http\"\nhttp_path = \"/up\"\n",
        1,
    );
    let b1 = target_of(&src, "web6/b1");
    assert_eq!(b1.addr, "[2001:db8::11]:80".parse().unwrap());
    let request = |t: &Target| match &t.probe {
        Probe::Http { request, .. } => request.clone(),
        Probe::Tcp => panic!("a TCP probe"),
    };
    assert_eq!(request(&b1), http::request("/up", "[2001:db8::11]"));
    let src = src.replacen(
        "# http_host = \"www.example.com\"",
        "http_host = \"www.example.com\"",
        1,
    );
    let b1 = target_of(&src, "web/b1");
    assert_eq!(request(&b1), http::request("/", "www.example.com"));
}

#[test]
fn a_backend_moved_to_a_new_address_or_port_starts_its_verdict_again() {
    let base = fullnat_only(EXAMPLE);
    let (mut m, _rx) = manager(&base);
    let b1 = m.backend_id("web/b1").unwrap();
    let b2 = m.backend_id("web/b2").unwrap();
    // fall = 3 in the example: both go down.
    for id in [b1, b2] {
        for _ in 0..3 {
            m.on_check(fail(id));
        }
        assert!(!m.backends[id as usize].health.up);
    }
    // b1 moves to .21, b2 keeps its address but gains a port; b3 is untouched.
    let src = base
        .replacen("address = \"198.18.0.11\"", "address = \"198.18.0.21\"", 1)
        .replacen(
            "address = \"198.18.0.12\"\n",
            "address = \"198.18.0.12\"\nport = 8000\n",
            1,
        );
    let cfg = config::parse(&src, Path::new("weir.toml")).unwrap();
    m.apply_config(cfg).unwrap();
    for id in [b1, b2] {
        let b = &m.backends[id as usize];
        assert!(b.health.up, "{} starts up again", b.key());
        assert!(b.last_check.is_none(), "{}", b.key());
    }
    // Unmoved, the verdict stays: a reload does not bring a dead backend back.
    for _ in 0..3 {
        m.on_check(fail(b1));
    }
    let cfg = config::parse(&src, Path::new("weir.toml")).unwrap();
    m.apply_config(cfg).unwrap();
    let b = &m.backends[b1 as usize];
    assert!(!b.health.up);
    assert_eq!(
        b.last_check.as_ref().map(|r| r.reason.as_str()),
        Some("refused")
    );
}

#[test]
fn stopping_tells_the_engine_to_stop() {
    let (m, rx) = manager(EXAMPLE);
    while rx.try_recv().is_ok() {}
    m.stop_health();
    assert!(matches!(rx.try_recv(), Ok(Command::Stop)));
}
