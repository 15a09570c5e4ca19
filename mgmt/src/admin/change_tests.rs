//! The changing commands do what they say to the backend they name, and refuse
//! what is out of range. (The property test checks that a refused command
//! changes nothing; these check that an accepted one changes the right thing,
//! and that the limits sit where the help says.)

use super::commands::dispatch;
use crate::manager::{Manager, Who};
use crate::manager_tests::{manager, EXAMPLE};

const WHO: Who = Who {
    uid: 0,
    pid: 1,
    via: "test",
};

fn run(m: &mut Manager, line: &str) -> Result<String, String> {
    dispatch(m, line, &WHO).map(|r| r.text)
}

/// Why `line` was refused, without the usage line `dispatch` adds.
fn refusal(m: &mut Manager, line: &str) -> String {
    let e = run(m, line).expect_err(line);
    match e.split_once(" (usage: ") {
        Some((why, _)) => why.to_string(),
        None => e,
    }
}

fn backend<'a>(m: &'a Manager, key: &str) -> &'a crate::state::BackendSlot {
    &m.backends[m.backend_id(key).unwrap_or_else(|| panic!("no {key}")) as usize]
}

/// The weights the published snapshot gives the service's backends.
fn published_weights(m: &Manager, service: &str) -> Vec<u32> {
    let snap = m.snapshot.load();
    let s = snap.services.iter().find(|s| s.name == service).unwrap();
    s.weights.clone()
}

#[test]
fn a_weight_goes_to_the_named_backend_within_0_to_10000() {
    let (mut m, _health) = manager(EXAMPLE);
    assert_eq!(
        run(&mut m, "set server dns/b2 weight 10000").unwrap(),
        "set server dns/b2 weight: 1 -> 10000\n"
    );
    assert_eq!(backend(&m, "dns/b2").weight, 10_000);
    assert_eq!(backend(&m, "dns/b1").weight, 1);
    assert_eq!(published_weights(&m, "dns"), [1, 10_000, 1]);
    run(&mut m, "set server dns/b3 weight 0").unwrap();
    assert_eq!(published_weights(&m, "dns"), [1, 10_000, 0]);
    for bad in ["10001", "-1", "x", "4294967296"] {
        let e = refusal(&mut m, &format!("set server dns/b1 weight {bad}"));
        assert_eq!(e, format!("weight {bad:?} is not 0..10000"));
    }
    assert!(refusal(&mut m, "set server dns/b9 weight 1").contains("no backend \"dns/b9\""));
    assert_eq!(published_weights(&m, "dns"), [1, 10_000, 0]);
}

#[test]
fn a_state_changes_once_and_then_is_already_so() {
    let (mut m, _health) = manager(EXAMPLE);
    assert_eq!(
        run(&mut m, "set server web/b3 state maint").unwrap(),
        "set server web/b3 state: ready -> maint\n"
    );
    assert_eq!(backend(&m, "web/b3").admin.name(), "maint");
    assert_eq!(backend(&m, "web/b1").admin.name(), "ready");
    assert_eq!(
        run(&mut m, "set server web/b3 state maint").unwrap(),
        "web/b3 is already maint\n"
    );
    assert_eq!(
        run(&mut m, "set server web/b3 state drain").unwrap(),
        "set server web/b3 state: maint -> drain\n"
    );
    assert_eq!(backend(&m, "web/b3").admin.name(), "drain");
    assert_eq!(
        refusal(&mut m, "set server web/b3 state up"),
        "state \"up\" is not ready, drain or maint"
    );
}

#[test]
fn a_server_is_added_with_the_weight_given_and_a_name_of_1_to_32_safe_characters() {
    let (mut m, _health) = manager(EXAMPLE);
    run(&mut m, "add server dns n1 198.18.0.51:53 weight 7").unwrap();
    let n1 = backend(&m, "dns/n1");
    assert_eq!((n1.weight, n1.pool.as_str()), (7, "dns"));
    assert_eq!(published_weights(&m, "dns"), [1, 1, 1, 7]);
    run(&mut m, "add server dns n2 198.18.0.52:53").unwrap();
    assert_eq!(backend(&m, "dns/n2").weight, 1, "the default weight");
    run(&mut m, "add server dns n3 198.18.0.53:53 weight 10000").unwrap();
    assert_eq!(
        refusal(&mut m, "add server dns n4 198.18.0.54:53 weight 10001"),
        "weight \"10001\" is not 0..10000"
    );
    let longest = "a".repeat(32);
    for good in [longest.as_str(), "x", "b-2_c"] {
        run(&mut m, &format!("add server dns {good} 198.18.0.55:53")).unwrap();
        assert!(m.backend_id(&format!("dns/{good}")).is_some(), "{good}");
    }
    let too_long = "a".repeat(33);
    for bad in [too_long.as_str(), "a.b", "a/b", "é", "a:b"] {
        let e = refusal(&mut m, &format!("add server dns {bad} 198.18.0.56:53"));
        assert_eq!(
            e,
            format!("{bad:?}: use 1 to 32 letters, digits, '-' and '_'"),
            "{bad}"
        );
    }
    assert_eq!(
        refusal(&mut m, "add server dns n1 198.18.0.57:53"),
        "dns/n1 exists"
    );
    assert_eq!(
        refusal(&mut m, "add server dns n9 198.18.0.57:53 weight"),
        "wrong arguments"
    );
}

#[test]
fn a_server_the_pools_services_cannot_use_is_refused() {
    let (mut m, _health) = manager(EXAMPLE);
    // The web pool serves web-dr, dr on port 80.
    assert_eq!(
        refusal(&mut m, "add server web n1 198.18.0.51:8080"),
        "service web-dr is dr on port 80: the backend must listen there"
    );
    run(&mut m, "add server web n1 198.18.0.51:80").unwrap();
    assert_eq!(
        refusal(&mut m, "add server web6 n1 198.18.0.51:80"),
        "service web6 has a IPv6 VIP"
    );
    assert_eq!(
        refusal(&mut m, "add server dns n1 [2001:db8::51]:53"),
        "service dns has a IPv4 VIP"
    );
    run(&mut m, "add server web6 n1 [2001:db8::51]:80").unwrap();
    assert_eq!(
        refusal(&mut m, "add server dns n1 10.0.0.1:53"),
        "10.0.0.1 is not in any port's prefix: unreachable"
    );
    assert_eq!(published_weights(&m, "web-dr"), [1, 1, 1, 1]);
    assert_eq!(published_weights(&m, "web6"), [1, 1, 1, 1]);
    assert_eq!(published_weights(&m, "dns"), [1, 1, 1]);
}

#[test]
fn a_fullnat_pool_needs_a_local_address_of_the_servers_family() {
    let (mut m, _health) = manager(EXAMPLE);
    // As if the port had been configured without IPv6 local addresses: web6
    // is fullnat, so its new server could not be reached from the appliance.
    m.cfg.ports[0].local_ipv6.clear();
    assert_eq!(
        refusal(&mut m, "add server web6 n1 [2001:db8::51]:80"),
        "service web6 is fullnat and port wan has no local address of that family"
    );
    // The IPv4 pools are unaffected until the IPv4 local addresses go too.
    run(&mut m, "add server dns n1 198.18.0.51:53").unwrap();
    m.cfg.ports[0].local_ipv4.clear();
    assert_eq!(
        refusal(&mut m, "add server dns n2 198.18.0.52:53"),
        "service dns is fullnat and port wan has no local address of that family"
    );
}

#[test]
fn a_deleted_server_leaves_its_pool_and_only_it() {
    let (mut m, _health) = manager(EXAMPLE);
    run(&mut m, "del server web/b2").unwrap();
    assert_eq!(m.backend_id("web/b2"), None);
    assert_eq!(published_weights(&m, "web"), [1, 1]);
    let snap = m.snapshot.load();
    let web = snap.services.iter().find(|s| s.name == "web").unwrap();
    let names: Vec<&str> = web
        .backends
        .iter()
        .map(|&b| snap.backends[b as usize].name.as_str())
        .collect();
    assert_eq!(names, ["web/b1", "web/b3"]);
    assert_eq!(
        refusal(&mut m, "del server web/b2"),
        "no backend \"web/b2\" (POOL/NAME)"
    );
}
