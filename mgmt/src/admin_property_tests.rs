//! Random admin command lines against a manager running the example
//! configuration: nothing panics; a refused command says why and changes
//! nothing (configuration, backends, pools, services, the published snapshot);
//! after an accepted one, the snapshot the workers read is whole, and each
//! service's ring table (updated from the previous one when a few weights or
//! members changed) is the one a whole build gives.

use crate::admin::commands::dispatch;
use crate::manager::{Manager, Who};
use crate::manager_tests::{manager, EXAMPLE};
use crate::scratch_dir::ScratchDir;
use dataplane::lb::ring::{RingMember, RingTable, NO_BACKEND, TABLE_SLOTS};
use proptest::prelude::*;
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

const VERBS: &[&str] = &[
    "help",
    "show info",
    "show stat",
    "show servers",
    "show health",
    "show conns",
    "show flow",
    "set server",
    "add server",
    "del server",
    "enable health",
    "disable health",
    "reload",
    "show",
    "set",
    "",
];

const ARGS: &[&str] = &[
    "web/b1",
    "web/b2",
    "web6/b3",
    "dns/b1",
    "web/b9",
    "nosuch/b1",
    "web/",
    "/b1",
    "web",
    "dns",
    "b4",
    "b1",
    "weight",
    "state",
    "ready",
    "drain",
    "maint",
    "0",
    "1",
    "7",
    "256",
    "65535",
    "4294967296",
    "-1",
    "x",
    "198.18.0.50:8080",
    "198.18.0.11:8080",
    "[2001:db8::50]:8080",
    "300.1.1.1:80",
    "198.18.0.50",
    "198.18.0.50:0",
    "tcp",
    "udp",
    "icmp",
    "198.18.0.10",
    "40000",
    "198.18.0.100",
    "80",
    "é",
    "\u{0}",
];

/// Command lines: mostly well-formed changes with arguments good and bad, else
/// words in any order, else any text.
fn line() -> impl Strategy<Value = String> {
    let pick = |v: &'static [&'static str]| prop::sample::select(v);
    const NAMES: &[&str] = &[
        "web/b1", "web/b2", "web6/b3", "dns/b1", "web/n1", "dns/n2", "web/b9", "x/b1",
    ];
    const POOLS: &[&str] = &["web", "web6", "dns", "nosuch"];
    const NEW: &[&str] = &["n1", "n2", "b1", "a/b", ""];
    const ADDRS: &[&str] = &[
        "198.18.0.50:8080",
        "198.18.0.51:53",
        "[2001:db8::50]:8080",
        "198.18.0.50",
        "300.1.1.1:80",
        "198.18.0.11:8080",
        "10.0.0.1:80",
    ];
    const NUMS: &[&str] = &["0", "1", "3", "256", "4294967296", "-1", "x"];
    const STATES: &[&str] = &["ready", "drain", "maint", "up"];
    let words = (pick(VERBS), prop::collection::vec(pick(ARGS), 0..6)).prop_map(|(verb, args)| {
        [verb]
            .iter()
            .chain(&args)
            .copied()
            .collect::<Vec<_>>()
            .join(" ")
    });
    prop_oneof![
        3 => (pick(NAMES), pick(NUMS)).prop_map(|(n, w)| format!("set server {n} weight {w}")),
        3 => (pick(NAMES), pick(STATES)).prop_map(|(n, st)| format!("set server {n} state {st}")),
        3 => (pick(POOLS), pick(NEW), pick(ADDRS), prop::option::of(pick(NUMS)))
            .prop_map(|(p, n, a, w)| format!("add server {p} {n} {a}{}", w.map(|w| format!(" weight {w}")).unwrap_or_default())),
        2 => pick(NAMES).prop_map(|n| format!("del server {n}")),
        1 => (pick(NAMES), any::<bool>()).prop_map(|(n, on)| format!("{} health {n}", if on { "enable" } else { "disable" })),
        4 => words,
        1 => ".{0,40}",
    ]
}

/// What a refused command must leave as it was.
fn state(m: &Manager) -> String {
    format!(
        "{:?}\n{:?}\n{:?}\n{:?}\n{}",
        m.cfg,
        m.backends,
        m.pools,
        m.services,
        m.snapshot.load().generation
    )
}

/// The published snapshot is whole: every service's backends exist, its
/// weights and ports match them, its ring picks only backends of weight > 0,
/// and every (VIP, port, protocol) leads to a service.
/// Ring tables by the (backend, weight) list they were built for.
type Built = HashMap<Vec<(String, u32)>, Arc<RingTable>>;

/// `RingTable::build` of `pool`, built once per pool and weights (the tests
/// meet the same few many times).
fn built_ring(pool: &[(String, u32)]) -> Arc<RingTable> {
    thread_local! {
        static BUILT: RefCell<Built> = Default::default();
    }
    BUILT.with(|b| {
        b.borrow_mut()
            .entry(pool.to_vec())
            .or_insert_with(|| {
                let members: Vec<RingMember<'_>> = pool
                    .iter()
                    .map(|(key, weight)| RingMember {
                        key,
                        weight: *weight,
                    })
                    .collect();
                Arc::new(RingTable::build(&members))
            })
            .clone()
    })
}

pub(crate) fn check_snapshot(m: &Manager) {
    let snap = m.snapshot.load();
    for svc in &snap.services {
        let n = svc.backends.len();
        assert_eq!((svc.weights.len(), svc.ports.len()), (n, n), "{}", svc.name);
        assert!(svc
            .backends
            .iter()
            .all(|&b| (b as usize) < snap.backends.len()));
        for h in 0..64u64 {
            let pick = svc.ring.choose(h.wrapping_mul(0x9e37_79b9_7f4a_7c15));
            if pick != NO_BACKEND {
                assert!(
                    svc.weights[pick as usize] > 0,
                    "{} picks a zero weight",
                    svc.name
                );
            }
        }
        let pool: Vec<(String, u32)> = svc
            .backends
            .iter()
            .zip(&svc.weights)
            .map(|(&b, &w)| (snap.backends[b as usize].name.clone(), w))
            .collect();
        let built = built_ring(&pool);
        let differing = (0..TABLE_SLOTS as u64)
            .filter(|&slot| svc.ring.choose(slot << 48) != built.choose(slot << 48))
            .count();
        assert_eq!(
            differing, 0,
            "{}: the ring is not a build's for {pool:?}",
            svc.name
        );
    }
    assert!(snap
        .by_vip
        .values()
        .all(|&s| (s as usize) < snap.services.len()));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn admin_commands_refused_change_nothing(lines in prop::collection::vec(line(), 1..25)) {
        let (mut m, _health) = manager(EXAMPLE);
        // `reload` reads this file: the example, as the manager started with.
        let dir = ScratchDir::new("admin-prop");
        m.cfg_path = dir.join("weir.toml");
        std::fs::write(&m.cfg_path, EXAMPLE).unwrap();
        let who = Who { uid: 0, pid: 1, via: "test" };
        for l in &lines {
            let before = state(&m);
            match dispatch(&mut m, l, &who) {
                Ok(_) => check_snapshot(&m),
                Err(e) => {
                    prop_assert!(!e.trim().is_empty(), "{l:?} refused without a reason");
                    prop_assert_eq!(&before, &state(&m), "{:?} was refused ({}) but changed things", l, e);
                }
            }
        }
    }

    /// `reload` of the example with a few settings changed, some of them only
    /// a restart can change: refused (invalid, or needing a restart) with
    /// nothing changed, or applied whole.
    #[test]
    fn reloads_of_changed_files_apply_whole_or_change_nothing(
        mutations in prop::collection::vec(crate::config::mutation_tests::change(), 0..3),
        edits in prop::collection::vec((0..RELOAD_EDITS.len(), any::<usize>()), 1..4),
    ) {
        let (mut m, _health) = manager(EXAMPLE);
        let dir = ScratchDir::new("reload-prop");
        m.cfg_path = dir.join("weir.toml");
        let mut text = crate::config::mutation_tests::changed(&mutations);
        for (e, pick) in edits {
            text = edit(&text, RELOAD_EDITS[e], pick);
        }
        std::fs::write(&m.cfg_path, text).unwrap();
        let who = Who { uid: 0, pid: 1, via: "test" };
        let before = state(&m);
        match dispatch(&mut m, "reload", &who) {
            Ok(_) => check_snapshot(&m),
            Err(e) => {
                prop_assert!(e.contains("reload refused"), "{e}");
                prop_assert_eq!(&before, &state(&m), "refused ({}) but changed things", e);
            }
        }
    }
}

/// Valid changes a reload may meet: (setting, values), the first three only
/// applied by a restart.
const RELOAD_EDITS: &[(&str, &[&str])] = &[
    ("mbufs", &["4095", "8191"]),
    ("mtu", &["1400", "1500"]),
    ("capacity", &["1024", "65536"]),
    ("weight", &["0", "1", "2", "3"]),
    (
        "scheduler",
        &["\"ring_hash\"", "\"round_robin\"", "\"least_conn\""],
    ),
    ("mode", &["\"fullnat\"", "\"dr\""]),
    ("tcp_established_timeout", &["100", "900"]),
    ("drain_timeout", &["0", "300"]),
];

/// `text` with one of the lines `key = ...` (picked by `pick`) given one of
/// `values` (picked by it too).
fn edit(text: &str, (key, values): (&str, &[&str]), pick: usize) -> String {
    let prefix = format!("{key} = ");
    let at: Vec<usize> = text
        .lines()
        .enumerate()
        .filter(|(_, l)| l.starts_with(&prefix))
        .map(|(i, _)| i)
        .collect();
    if at.is_empty() {
        return text.to_string();
    }
    let line = at[pick % at.len()];
    let value = values[pick / at.len() % values.len()];
    text.lines()
        .enumerate()
        .map(|(i, l)| {
            if i == line {
                format!("{prefix}{value}")
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}
