//! The health-check engine: one thread on the management core running every check
//! with non-blocking kernel sockets and `poll(2)`. The kernel routes them through the
//! host interface, so checks travel the same wire as the traffic. Targets come in
//! over a channel; each finished check goes out as a [`CheckResult`].

use super::http;
use socket2::{Domain, Protocol, Socket, Type};
use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::mpsc::{Receiver, Sender, TryRecvError};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    Tcp,
    Http {
        request: Vec<u8>,
        status: Vec<u16>,
        body: Option<String>,
    },
}

/// One backend to check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The backend id.
    pub id: u32,
    pub addr: SocketAddr,
    pub probe: Probe,
    pub interval: Duration,
    pub timeout: Duration,
    pub jitter: Duration,
}

#[derive(Debug, Clone)]
pub struct CheckResult {
    pub id: u32,
    pub ok: bool,
    /// "ok", "timeout", "refused", "status 503", "body mismatch", ...
    pub reason: String,
    pub latency: Duration,
}

/// Messages to the engine.
pub enum Command {
    /// Replace the target list (ids missing from it stop being checked).
    Targets(Vec<Target>),
    Stop,
}

enum Stage {
    Connecting,
    Writing(usize),
    Reading(Vec<u8>),
}

struct InFlight {
    sock: Socket,
    stage: Stage,
    started: Instant,
    deadline: Instant,
}

struct Slot {
    target: Target,
    next: Instant,
    flight: Option<InFlight>,
}

/// Runs until `Command::Stop` or the channel closes.
pub fn run(commands: Receiver<Command>, results: Sender<CheckResult>) {
    let mut slots: HashMap<u32, Slot> = HashMap::new();
    let mut rng = 0x9e37_79b9_7f4a_7c15u64 ^ std::process::id() as u64;
    loop {
        loop {
            match commands.try_recv() {
                Ok(Command::Targets(ts)) => replace_targets(&mut slots, ts),
                Ok(Command::Stop) | Err(TryRecvError::Disconnected) => return,
                Err(TryRecvError::Empty) => break,
            }
        }
        let now = Instant::now();
        for s in slots.values_mut() {
            if s.flight.is_none() && s.next <= now {
                match start(&s.target, now) {
                    Ok(f) => s.flight = Some(f),
                    Err(reason) => {
                        // No socket to be had (descriptors exhausted, say), or a
                        // connect that failed at once (no route): a failed check,
                        // tried again at the next interval.
                        let _ = results.send(CheckResult {
                            id: s.target.id,
                            ok: false,
                            reason,
                            latency: Duration::ZERO,
                        });
                        s.next = now + jittered(&s.target, &mut rng);
                    }
                }
            }
        }
        // Wait for socket events, the next due check, or 50 ms (to see commands).
        let mut wait = Duration::from_millis(50);
        let mut fds = Vec::new();
        let mut ids = Vec::new();
        for (id, s) in &slots {
            match &s.flight {
                Some(f) => {
                    wait = wait.min(f.deadline.saturating_duration_since(now));
                    let events = match f.stage {
                        Stage::Connecting | Stage::Writing(_) => libc::POLLOUT,
                        Stage::Reading(_) => libc::POLLIN,
                    };
                    fds.push(libc::pollfd {
                        fd: f.sock.as_raw_fd(),
                        events,
                        revents: 0,
                    });
                    ids.push(*id);
                }
                None => wait = wait.min(s.next.saturating_duration_since(now)),
            }
        }
        // SAFETY: fds is a valid array of pollfd for its length.
        unsafe {
            libc::poll(
                fds.as_mut_ptr(),
                fds.len() as libc::nfds_t,
                wait.as_millis() as i32,
            );
        }
        let now = Instant::now();
        for (pfd, id) in fds.iter().zip(&ids) {
            let Some(s) = slots.get_mut(id) else { continue };
            let outcome = if pfd.revents != 0 {
                step(&s.target, s.flight.as_mut().expect("in flight"))
            } else {
                None
            };
            let outcome = outcome.or_else(|| {
                let f = s.flight.as_ref()?;
                (now >= f.deadline).then(|| Err("timeout".to_string()))
            });
            if let Some(outcome) = outcome {
                let f = s.flight.take().expect("in flight");
                let latency = now.duration_since(f.started);
                let (ok, reason) = match outcome {
                    Ok(()) => (true, "ok".to_string()),
                    Err(r) => (false, r),
                };
                let _ = results.send(CheckResult {
                    id: *id,
                    ok,
                    reason,
                    latency,
                });
                s.next = f.started + jittered(&s.target, &mut rng);
            }
        }
    }
}

fn replace_targets(slots: &mut HashMap<u32, Slot>, targets: Vec<Target>) {
    let now = Instant::now();
    let mut keep: HashMap<u32, Slot> = HashMap::new();
    for (i, t) in targets.into_iter().enumerate() {
        match slots.remove(&t.id) {
            Some(mut s) if s.target == t => {
                s.target = t;
                keep.insert(s.target.id, s);
            }
            _ => {
                // Spread the first checks over the first interval.
                let spread = t.interval.mul_f64((i % 16) as f64 / 16.0);
                keep.insert(
                    t.id,
                    Slot {
                        next: now + spread.min(Duration::from_millis(200)),
                        target: t,
                        flight: None,
                    },
                );
            }
        }
    }
    *slots = keep;
}

pub(super) fn jittered(t: &Target, rng: &mut u64) -> Duration {
    if t.jitter.is_zero() {
        return t.interval;
    }
    // xorshift: good enough to de-synchronise checks.
    *rng ^= *rng << 13;
    *rng ^= *rng >> 7;
    *rng ^= *rng << 17;
    let j = t.jitter.as_micros() as u64;
    let offset = (*rng % (2 * j + 1)) as i64 - j as i64;
    let base = t.interval.as_micros() as i64;
    Duration::from_micros((base + offset).max(1) as u64)
}

fn start(t: &Target, now: Instant) -> Result<InFlight, String> {
    let sock = Socket::new(
        Domain::for_address(t.addr),
        Type::STREAM,
        Some(Protocol::TCP),
    )
    .map_err(|e| format!("socket: {e}"))?;
    sock.set_nonblocking(true)
        .map_err(|e| format!("socket: {e}"))?;
    let _ = sock.set_cloexec(true);
    // EINPROGRESS is the normal answer (a local peer may accept at once). Any
    // other error is the check's result now: a connect refused by a route
    // (unreachable, no route) fails here, and its socket then polls writable
    // with no error pending, which would read as connected.
    match sock.connect(&t.addr.into()) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
        Err(e) => return Err(reason(&e)),
    }
    Ok(InFlight {
        sock,
        stage: Stage::Connecting,
        started: now,
        deadline: now + t.timeout,
    })
}

/// Advances one check; `Some` when it has finished.
fn step(t: &Target, f: &mut InFlight) -> Option<Result<(), String>> {
    loop {
        match &mut f.stage {
            Stage::Connecting => {
                match f.sock.take_error() {
                    Ok(None) => {}
                    Ok(Some(e)) | Err(e) => return Some(Err(reason(&e))),
                }
                // Writable is not connected: a socket with no connection polls
                // writable too.
                if let Err(e) = f.sock.peer_addr() {
                    return Some(Err(reason(&e)));
                }
                // Connected (POLLOUT without error).
                match &t.probe {
                    Probe::Tcp => return Some(Ok(())),
                    Probe::Http { .. } => f.stage = Stage::Writing(0),
                }
            }
            Stage::Writing(off) => {
                let Probe::Http { request, .. } = &t.probe else {
                    return Some(Ok(()));
                };
                match (&f.sock).write(&request[*off..]) {
                    Ok(n) => {
                        *off += n;
                        if *off < request.len() {
                            return None;
                        }
                        f.stage = Stage::Reading(Vec::new());
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => return None,
                    Err(e) => return Some(Err(reason(&e))),
                }
            }
            Stage::Reading(buf) => {
                let Probe::Http { status, body, .. } = &t.probe else {
                    return Some(Ok(()));
                };
                let mut chunk = [0u8; 8192];
                match (&f.sock).read(&mut chunk) {
                    Ok(0) => return Some(http::judge(buf, status, body.as_deref())),
                    Ok(n) => {
                        buf.extend_from_slice(&chunk[..n]);
                        if http::complete(buf) || buf.len() > 1 << 20 {
                            return Some(http::judge(buf, status, body.as_deref()));
                        }
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => return None,
                    Err(e) => return Some(Err(reason(&e))),
                }
            }
        }
    }
}

fn reason(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(libc::ECONNREFUSED) => "refused".into(),
        Some(libc::EHOSTUNREACH) | Some(libc::ENETUNREACH) => "unreachable".into(),
        Some(libc::ECONNRESET) => "reset".into(),
        _ => e.to_string(),
    }
}
