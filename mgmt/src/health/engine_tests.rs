//! The engine against real sockets on loopback: a TCP listener, a closed port
//! and a small HTTP server whose paths answer 200, 503 or nothing at all.
//! Each check's verdict and reason, the timeout, the interval and jitter, and
//! a target list replaced or stopped, as the manager uses them.

use super::engine::{self, CheckResult, Command, Probe, Target};
use super::http;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// An HTTP server on loopback: `/ok` answers 200 with "alive", `/down` 503,
/// `/reset` resets the connection, `/huge` sends 2 MiB with no length, and
/// anything else reads the request and says nothing for 3 s. Runs until the test
/// process ends (its thread blocks in `accept`).
fn http_server() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            std::thread::spawn(move || {
                let mut req = Vec::new();
                let mut buf = vec![0u8; 1 << 16];
                // Looks for the blank line in what came last (requests may be
                // megabytes long).
                while !req[req.len().saturating_sub(buf.len() + 3)..]
                    .windows(4)
                    .any(|w| w == b"\r\n\r\n")
                {
                    match s.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => req.extend_from_slice(&buf[..n]),
                    }
                }
                let line = String::from_utf8_lossy(&req);
                let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
                let (status, body) = match path.as_str() {
                    "/reset" => {
                        // Close with a reset (linger 0).
                        let _ = socket2::SockRef::from(&s).set_linger(Some(Duration::ZERO));
                        return;
                    }
                    "/huge" => {
                        // 2 MiB with no Content-Length, the connection kept open:
                        // the check stops reading at 1 MiB.
                        let _ = s.write_all(b"HTTP/1.1 200 OK\r\n\r\n");
                        let _ = s.write_all(&vec![b'x'; 2 << 20]);
                        std::thread::sleep(Duration::from_secs(3));
                        return;
                    }
                    "/ok" => ("200 OK", "alive"),
                    "/down" => ("503 Service Unavailable", "busy"),
                    _ => {
                        std::thread::sleep(Duration::from_secs(3));
                        return;
                    }
                };
                let _ = write!(
                    s,
                    "HTTP/1.1 {status}\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                );
                // Keep the connection open: the check must stop at Content-Length.
                std::thread::sleep(Duration::from_secs(3));
            });
        }
    });
    addr
}

/// Each result's target, verdict and reason.
fn verdicts(got: &[CheckResult]) -> Vec<(u32, bool, &str)> {
    got.iter()
        .map(|r| (r.id, r.ok, r.reason.as_str()))
        .collect()
}

/// A loopback port nothing listens on.
fn closed_port() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

fn target(id: u32, addr: SocketAddr, probe: Probe) -> Target {
    Target {
        id,
        addr,
        probe,
        interval: Duration::from_millis(100),
        timeout: Duration::from_millis(300),
        jitter: Duration::ZERO,
    }
}

fn http_probe(path: &str, body: Option<&str>) -> Probe {
    Probe::Http {
        request: http::request(path, "test"),
        status: vec![200],
        body: body.map(str::to_string),
    }
}

struct Engine {
    commands: Sender<Command>,
    results: Receiver<CheckResult>,
    thread: Option<JoinHandle<()>>,
}

impl Engine {
    fn start(targets: Vec<Target>) -> Engine {
        let (commands, rx) = mpsc::channel();
        let (tx, results) = mpsc::channel();
        let thread = Some(std::thread::spawn(move || engine::run(rx, tx)));
        commands.send(Command::Targets(targets)).unwrap();
        Engine {
            commands,
            results,
            thread,
        }
    }

    /// The first result for each of `ids`.
    fn first_of(&self, ids: &[u32]) -> Vec<CheckResult> {
        let mut got: Vec<Option<CheckResult>> = vec![None; ids.len()];
        let deadline = Instant::now() + Duration::from_secs(10);
        while got.iter().any(Option::is_none) {
            let left = deadline.saturating_duration_since(Instant::now());
            let r = self.results.recv_timeout(left).expect("a result in 10 s");
            if let Some(i) = ids.iter().position(|&id| id == r.id) {
                got[i].get_or_insert(r);
            }
        }
        got.into_iter().map(Option::unwrap).collect()
    }

    /// Every result that arrives within `d`.
    fn during(&self, d: Duration) -> Vec<CheckResult> {
        let end = Instant::now() + d;
        let mut v = Vec::new();
        while let Ok(r) = self
            .results
            .recv_timeout(end.saturating_duration_since(Instant::now()))
        {
            v.push(r);
        }
        v
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        let _ = self.commands.send(Command::Stop);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[test]
fn each_check_says_why_it_passed_or_failed() {
    let web = http_server();
    let tcp = TcpListener::bind("127.0.0.1:0").unwrap();
    let e = Engine::start(vec![
        target(1, tcp.local_addr().unwrap(), Probe::Tcp),
        target(2, closed_port(), Probe::Tcp),
        target(3, web, http_probe("/ok", None)),
        target(4, web, http_probe("/ok", Some("alive"))),
        target(5, web, http_probe("/ok", Some("dead"))),
        target(6, web, http_probe("/down", None)),
        target(7, web, http_probe("/silent", None)),
        target(8, closed_port(), http_probe("/ok", None)),
    ]);
    let got = e.first_of(&[1, 2, 3, 4, 5, 6, 7, 8]);
    assert_eq!(
        verdicts(&got),
        [
            (1, true, "ok"),
            (2, false, "refused"),
            (3, true, "ok"),
            (4, true, "ok"),
            (5, false, "body mismatch"),
            (6, false, "status 503"),
            (7, false, "timeout"),
            (8, false, "refused"),
        ]
    );
    // The timeout is the target's (300 ms), measured by the engine; a check
    // that finished did not wait for the server to close (it stays open 3 s).
    let silent = &got[6];
    assert!(
        (Duration::from_millis(300)..Duration::from_millis(2500)).contains(&silent.latency),
        "{:?}",
        silent.latency
    );
    assert!(
        got[2].latency < Duration::from_millis(2500),
        "{:?}",
        got[2].latency
    );
}

#[test]
fn checks_repeat_at_their_interval_and_stop_when_left_out() {
    let a = TcpListener::bind("127.0.0.1:0").unwrap();
    let b = TcpListener::bind("127.0.0.1:0").unwrap();
    let e = Engine::start(vec![
        target(1, a.local_addr().unwrap(), Probe::Tcp),
        target(2, b.local_addr().unwrap(), Probe::Tcp),
    ]);
    let window = e.during(Duration::from_millis(1000));
    let count = |id| window.iter().filter(|r| r.id == id).count();
    // Every 100 ms: about ten in a second. Bounds wide enough for a busy
    // machine, narrow enough to catch a check run once, or without a pause.
    for id in [1, 2] {
        assert!((4..=14).contains(&count(id)), "target {id}: {}", count(id));
    }
    // Target 2 left out: no result for it once the engine has the new list
    // (one already in flight may still finish).
    e.commands
        .send(Command::Targets(vec![target(
            1,
            a.local_addr().unwrap(),
            Probe::Tcp,
        )]))
        .unwrap();
    e.during(Duration::from_millis(150));
    let later = e.during(Duration::from_millis(600));
    assert!(later.iter().all(|r| r.id == 1), "target 2 still checked");
    assert!(
        later.len() >= 2,
        "target 1 no longer checked: {}",
        later.len()
    );
}

#[test]
fn a_stop_ends_the_engine_and_so_does_a_closed_channel() {
    let (commands, rx) = mpsc::channel();
    let (tx, _results) = mpsc::channel();
    let t = std::thread::spawn(move || engine::run(rx, tx));
    commands.send(Command::Stop).unwrap();
    t.join().unwrap();
    let (commands, rx) = mpsc::channel::<Command>();
    let (tx, _results) = mpsc::channel();
    let t = std::thread::spawn(move || engine::run(rx, tx));
    drop(commands);
    t.join().unwrap();
}

#[test]
fn jitter_spreads_intervals_within_its_bounds() {
    let t = Target {
        jitter: Duration::from_millis(10),
        ..target(1, closed_port(), Probe::Tcp)
    };
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let gaps: Vec<Duration> = (0..1000).map(|_| engine::jittered(&t, &mut rng)).collect();
    let (lo, hi) = (Duration::from_millis(90), Duration::from_millis(110));
    assert!(gaps.iter().all(|g| (lo..=hi).contains(g)));
    // Spread over the whole range, both sides of the interval.
    assert!(gaps.iter().any(|g| *g < Duration::from_millis(92)));
    assert!(gaps.iter().any(|g| *g > Duration::from_millis(108)));
    let without = Target {
        jitter: Duration::ZERO,
        ..t
    };
    assert_eq!(
        engine::jittered(&without, &mut rng),
        Duration::from_millis(100)
    );
}

#[test]
fn a_connect_refused_at_once_is_a_failed_check_retried_at_the_interval() {
    // The kernel refuses a TCP connect to the broadcast address before any
    // packet is sent (ENETUNREACH): the engine's synchronous failure path.
    let e = Engine::start(vec![target(
        1,
        "255.255.255.255:9".parse().unwrap(),
        Probe::Tcp,
    )]);
    let got = e.during(Duration::from_millis(1000));
    assert!(got
        .iter()
        .all(|r| !r.ok && r.reason == "unreachable" && r.latency.is_zero()));
    // Every 100 ms, not as fast as the loop can go.
    assert!((4..=14).contains(&got.len()), "{} results", got.len());
}

#[test]
fn a_target_sent_again_unchanged_keeps_its_check_and_a_changed_one_starts_afresh() {
    let web = http_server();
    let silent = Target {
        timeout: Duration::from_millis(400),
        ..target(1, web, http_probe("/silent", None))
    };
    let e = Engine::start(vec![silent.clone()]);
    // The manager sends the whole list on every change: a check in flight
    // must survive it, or a slow backend would never be judged.
    let mut got = Vec::new();
    for _ in 0..12 {
        got.extend(e.during(Duration::from_millis(100)));
        e.commands
            .send(Command::Targets(vec![silent.clone()]))
            .unwrap();
    }
    assert!(
        got.iter().any(|r| r.reason == "timeout"),
        "no check finished while the list was sent again: {got:?}"
    );
    drop(e);
    // Changed while a check is in flight (one that would last 3 s, until the
    // server closes): the old check is dropped, and the first result is the
    // new target's.
    let slow = Target {
        timeout: Duration::from_secs(5),
        ..target(1, web, http_probe("/silent", None))
    };
    let e = Engine::start(vec![slow]);
    assert!(e.during(Duration::from_millis(200)).is_empty());
    e.commands
        .send(Command::Targets(vec![target(
            1,
            web,
            http_probe("/ok", None),
        )]))
        .unwrap();
    let r = e.first_of(&[1]).remove(0);
    assert_eq!((r.ok, r.reason.as_str()), (true, "ok"));
}

#[test]
fn the_first_checks_of_a_new_list_are_spread_over_its_first_200_ms() {
    // Sixteen targets with a 1 s interval: the i-th starts i/16 of the
    // interval in, at most 200 ms in (so a large pool is not checked in one
    // burst, and none waits long for its first verdict).
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let targets: Vec<Target> = (0..16)
        .map(|i| Target {
            interval: Duration::from_secs(1),
            ..target(i, addr, Probe::Tcp)
        })
        .collect();
    let sent = Instant::now();
    let e = Engine::start(targets);
    let mut first: Vec<Option<Duration>> = vec![None; 16];
    while first.iter().any(Option::is_none) {
        let r = e
            .results
            .recv_timeout(Duration::from_secs(5))
            .expect("a result");
        first[r.id as usize].get_or_insert(sent.elapsed());
    }
    let at = |i: usize| first[i].unwrap().as_millis();
    assert!(at(0) < 150, "the first at {} ms", at(0));
    // 1/16 s in; then 2/16; from the fourth on, 200 ms.
    assert!((40..180).contains(&at(1)), "the second at {} ms", at(1));
    for i in 4..16 {
        assert!((150..600).contains(&at(i)), "target {i} at {} ms", at(i));
    }
}

#[test]
fn a_request_longer_than_the_socket_takes_is_sent_whole_and_a_reset_or_an_endless_answer_ends_a_check(
) {
    let web = http_server();
    // 16 MiB: more than the kernel buffers on loopback, so the writes stop
    // part way and the engine resumes them when the socket is writable.
    let mut long = b"GET /ok HTTP/1.1\r\nHost: test\r\nX-Pad: ".to_vec();
    long.resize(long.len() + (16 << 20), b'a');
    long.extend_from_slice(b"\r\nConnection: close\r\n\r\n");
    let long = Probe::Http {
        request: long,
        status: vec![200],
        body: Some("alive".into()),
    };
    let slow = |t: Target| Target {
        timeout: Duration::from_secs(5),
        ..t
    };
    let e = Engine::start(vec![
        slow(target(1, web, long)),
        slow(target(2, web, http_probe("/reset", None))),
        slow(target(3, web, http_probe("/huge", None))),
    ]);
    let got = e.first_of(&[1, 2, 3]);
    assert_eq!(
        verdicts(&got),
        [(1, true, "ok"), (2, false, "reset"), (3, true, "ok")]
    );
    // None waited for its timeout, or for the server to close (3 s).
    assert!(
        got.iter().all(|r| r.latency < Duration::from_millis(2500)),
        "{got:?}"
    );
}
