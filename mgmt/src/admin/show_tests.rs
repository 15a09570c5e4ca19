//! The `show` commands against a manager whose workers are threads answering
//! the query channels as a worker does: `show conns` gathers every worker's
//! connections (of one service or all), `show flow` asks the owner and falls
//! back to what the hash would pick, a worker that does not answer is an error,
//! `show stat` reports counts and only the drops that happened.

use super::commands::dispatch;
use crate::manager::{Manager, Who};
use crate::manager_tests::{manager, EXAMPLE};
use dataplane::lb::conn_table::Conn;
use dataplane::lb::flow::FlowKey;
use dataplane::lb::stats::{BackendStat, LbTally};
use dataplane::lb::tcp_state::ConnState;
use dataplane::pipeline::control::{ConnReport, Query};
use dataplane::pipeline::counters::{Counter, Tally};
use serde_json::Value;
use std::net::IpAddr;
use std::sync::mpsc;

const WHO: Who = Who {
    uid: 0,
    pid: 1,
    via: "test",
};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// Worker `worker`'s one connection: a client of web (service 0) on port
/// `sport`, to `backend`, through local port 1024 + `sport` % 100.
fn report(m: &Manager, worker: usize, sport: u16, backend: &str) -> ConnReport {
    let fwd = FlowKey::new(ip("198.18.1.5"), ip("198.18.0.100"), sport, 80, 6);
    let rev = FlowKey::new(
        ip("198.18.0.11"),
        ip("198.18.0.2"),
        80,
        1024 + sport % 100,
        6,
    );
    let conn = Conn {
        fwd,
        rev: Some(rev),
        state: ConnState::Established,
        service: 0,
        backend: m.backend_id(backend).unwrap(),
        packets: 12,
        bytes: 3400,
        ..Conn::default()
    };
    ConnReport {
        worker,
        entry: 7,
        conn,
        age_s: 1.5,
        expires_in_s: 898.5,
    }
}

/// Gives `m` one worker thread per report, each answering its queries as a
/// worker would from a table holding that one connection. The threads end
/// when `m` is dropped.
fn workers(m: &mut Manager, reports: Vec<ConnReport>) {
    m.workers = reports.len();
    m.queries = reports
        .into_iter()
        .map(|r| {
            let (tx, rx) = mpsc::channel::<Query>();
            std::thread::spawn(move || {
                for q in rx {
                    match q {
                        Query::Conns { service, reply, .. } => {
                            let mine = service.is_none_or(|s| s == r.conn.service);
                            let _ = reply.send(if mine { vec![r.clone()] } else { vec![] });
                        }
                        Query::Flow(key, reply) => {
                            let hit = key == r.conn.fwd || Some(key) == r.conn.rev;
                            let _ = reply.send(hit.then(|| r.clone()));
                        }
                    }
                }
            });
            tx
        })
        .collect();
}

#[test]
fn show_conns_lists_every_workers_connections_or_one_services() {
    let (mut m, _rx) = manager(EXAMPLE);
    let rs = vec![
        report(&m, 0, 40000, "web/b2"),
        report(&m, 1, 40001, "web/b3"),
    ];
    workers(&mut m, rs);
    let r = dispatch(&mut m, "show conns", &WHO).unwrap();
    assert_eq!(
        r.text,
        "2 connection(s)\n\
         core 0 tcp 198.18.1.5:40000 -> 198.18.0.100:80 via 198.18.0.2:1024 -> web/b2 established age 1.5s expires 898.5s\n\
         core 1 tcp 198.18.1.5:40001 -> 198.18.0.100:80 via 198.18.0.2:1025 -> web/b3 established age 1.5s expires 898.5s\n"
    );
    let j = &r.json[1];
    assert_eq!(j["service"], "web");
    assert_eq!(
        (j["packets"].as_u64(), j["bytes"].as_u64()),
        (Some(12), Some(3400))
    );
    // One service: the workers are asked for its id only.
    let r = dispatch(&mut m, "show conns web", &WHO).unwrap();
    assert!(r.text.starts_with("2 connection(s)\n"), "{}", r.text);
    let r = dispatch(&mut m, "show conns dns", &WHO).unwrap();
    assert_eq!(r.text, "0 connection(s)\n");
    let e = dispatch(&mut m, "show conns nosuch", &WHO).err().unwrap();
    assert!(e.starts_with("no service \"nosuch\""), "{e}");
    let e = dispatch(&mut m, "show conns web dns", &WHO).err().unwrap();
    assert!(e.starts_with("too many arguments"), "{e}");
}

#[test]
fn show_flow_asks_the_owner_then_says_what_the_hash_picks() {
    let (mut m, _rx) = manager(EXAMPLE);
    m.publish();
    let rs = vec![report(&m, 0, 40000, "web/b2")];
    workers(&mut m, rs);
    // The client's direction and the backend's reach the same entry.
    for line in [
        "show flow tcp 198.18.1.5 40000 198.18.0.100 80",
        "show flow tcp 198.18.0.11 80 198.18.0.2 1024",
    ] {
        let r = dispatch(&mut m, line, &WHO).unwrap();
        assert_eq!(r.json["why"], "entry", "{line}");
        assert!(
            r.text
                .starts_with("owner: core 0\nentry: 7 (established)\nservice: web\nbackend: web/b2 (entry hit)\n"),
            "{line}: {}",
            r.text
        );
    }
    // No entry: the consistent hash's pick, as the snapshot's ring has it.
    let r = dispatch(
        &mut m,
        "show flow tcp 198.18.1.5 40002 198.18.0.100 80",
        &WHO,
    )
    .unwrap();
    assert_eq!(r.json["why"], "hash");
    let snap = m.snapshot.load();
    let web = snap.services.iter().find(|s| s.name == "web").unwrap();
    let key = FlowKey::new(ip("198.18.1.5"), ip("198.18.0.100"), 40002, 80, 6);
    let pick = web.backends[web.ring.choose(key.hash_5tuple(web.hash_seed)) as usize];
    assert_eq!(r.json["backend"], m.backends[pick as usize].key());
    // A reply to a local address with no entry is dropped, not hashed.
    let r = dispatch(&mut m, "show flow tcp 198.18.0.11 80 198.18.0.2 1099", &WHO).unwrap();
    assert_eq!(r.json["why"], "no entry");
    let e = dispatch(&mut m, "show flow tcp 198.18.1.5 1 198.18.0.100 81", &WHO)
        .err()
        .unwrap();
    assert!(e.starts_with("no service on 198.18.0.100:81 tcp"), "{e}");
}

#[test]
fn a_worker_that_does_not_answer_is_an_error_not_an_empty_table() {
    let (mut m, _rx) = manager(EXAMPLE);
    m.publish();
    let rs = vec![report(&m, 0, 40000, "web/b2")];
    workers(&mut m, rs);
    // Core 1 takes its questions and drops them unanswered; core 2 has quit.
    let (tx, rx) = mpsc::channel::<Query>();
    std::thread::spawn(move || rx.into_iter().for_each(drop));
    m.queries.push(tx);
    let (gone, _) = mpsc::channel::<Query>();
    m.queries.push(gone);
    m.workers = 3;
    let e = dispatch(&mut m, "show conns", &WHO).err().unwrap();
    assert!(e.starts_with("core 2 has stopped"), "{e}");
    m.queries.pop();
    m.workers = 2;
    let e = dispatch(&mut m, "show conns", &WHO).err().unwrap();
    assert!(e.starts_with("core 1 did not answer within 1.0 s"), "{e}");
    // The flow of a key core 1 owns (by Weir's hash over two workers).
    let owned_by = |w: u16| {
        (40000u16..)
            .map(|p| {
                (
                    p,
                    FlowKey::new(ip("198.18.1.5"), ip("198.18.0.100"), p, 80, 6),
                )
            })
            .find(|(_, k)| k.owner_by(2, None) == w)
            .unwrap()
            .0
    };
    let line = format!("show flow tcp 198.18.1.5 {} 198.18.0.100 80", owned_by(1));
    let e = dispatch(&mut m, &line, &WHO).err().unwrap();
    assert!(e.starts_with("core 1 did not answer"), "{e}");
    let line = format!("show flow tcp 198.18.1.5 {} 198.18.0.100 80", owned_by(0));
    assert!(dispatch(&mut m, &line, &WHO).is_ok());
}

#[test]
fn the_wait_for_a_worker_covers_reading_its_table_a_slice_a_tick() {
    use crate::admin::show_conns::answer_wait;
    use dataplane::pipeline::control::SCAN_SLOTS;
    use std::time::Duration;
    // 100 us a slice, twice over, and a second.
    assert_eq!(answer_wait(0), Duration::from_micros(1_000_200));
    assert_eq!(
        answer_wait(SCAN_SLOTS - 1),
        Duration::from_micros(1_000_200)
    );
    assert_eq!(answer_wait(SCAN_SLOTS), Duration::from_micros(1_000_400));
    // 128 M entries: 16,384 slices (and the one the count rounds up).
    assert_eq!(answer_wait(1 << 27), Duration::from_micros(4_277_000));
}

#[test]
fn show_stat_reports_active_connections_and_only_the_drops_that_happened() {
    let (mut m, _rx) = manager(EXAMPLE);
    m.publish();
    let drops_line = |m: &mut Manager| {
        let r = dispatch(m, "show stat", &WHO).unwrap();
        let line = r.text.lines().find(|l| l.starts_with("drops: ")).unwrap();
        (line.to_string(), r.json)
    };
    assert_eq!(drops_line(&mut m).0, "drops: none");
    let b2 = m.backend_id("web/b2").unwrap();
    let mut lb = LbTally::default();
    lb.backend(b2, BackendStat::Active, 5);
    m.lb_counters[0].publish(&lb, m.services.len(), m.backends.len());
    let mut t = Tally::default();
    t.add(Counter::DropRunt, 3);
    m.counters[0].publish(&t);
    let (line, json) = drops_line(&mut m);
    assert_eq!(line, "drops: drop_runt 3");
    let backends = json["backends"].as_array().unwrap();
    let active = |name: &str| {
        let b = backends.iter().find(|b| b["name"] == name).unwrap();
        b["active"].as_u64()
    };
    assert_eq!((active("web/b1"), active("web/b2")), (Some(0), Some(5)));
    assert_eq!(json["drops"]["drop_runt"], Value::from(3));
    // An argument is refused.
    let e = dispatch(&mut m, "show stat web", &WHO).err().unwrap();
    assert!(e.starts_with("unexpected \"web\""), "{e}");
}
