//! The management core's loop while the workers run: admin commands, metrics
//! scrapes, SIGHUP reloads, health-check results and the manager's ticks, until
//! SIGINT/SIGTERM or a worker stops.

use crate::config::model::Config;
use crate::health::engine::CheckResult;
use crate::manager::{Manager, Who};
use crate::{admin, log, metrics, metrics_http, reload, signals};
use dataplane::dpdk::lcore::LcoreJob;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// What the management loop is asked.
enum Inbox {
    Admin(admin::server::Request),
    Metrics(mpsc::Sender<String>),
}

/// Opens the admin socket and the metrics endpoint and serves them, and
/// everything else the manager does, until asked to stop or a worker stops.
/// `Err` when the socket or the endpoint cannot be opened.
pub(super) fn serve(
    cfg: &Config,
    manager: &mut Manager,
    jobs: &[LcoreJob],
    health_results: &mpsc::Receiver<CheckResult>,
) -> Result<(), String> {
    signals::install();
    let (inbox_tx, inbox) = mpsc::channel::<Inbox>();
    let (admin_req_tx, admin_req_rx) = mpsc::channel::<admin::server::Request>();
    forward(admin_req_rx, inbox_tx.clone(), Inbox::Admin);
    admin::server::start(&cfg.admin.socket, admin_req_tx)
        .map_err(|e| format!("admin socket {}: {e}", cfg.admin.socket))?;
    log!("admin socket {}", cfg.admin.socket);
    let served =
        metrics_endpoint(cfg, inbox_tx).map(|()| run(manager, jobs, &inbox, health_results));
    // Only our own: a socket another process serves stays.
    let _ = std::fs::remove_file(&cfg.admin.socket);
    served
}

/// Opens the metrics endpoint, when one is configured.
fn metrics_endpoint(cfg: &Config, inbox_tx: mpsc::Sender<Inbox>) -> Result<(), String> {
    if cfg.admin.metrics.is_empty() {
        return Ok(());
    }
    let (m_tx, m_rx) = mpsc::channel::<mpsc::Sender<String>>();
    forward(m_rx, inbox_tx, Inbox::Metrics);
    metrics_http::start(&cfg.admin.metrics, m_tx)
        .map_err(|e| format!("metrics endpoint {}: {e}", cfg.admin.metrics))
}

/// Passes what `from` receives into the inbox, wrapped, on a thread of its
/// own, until either side closes.
fn forward<T: Send + 'static>(
    from: mpsc::Receiver<T>,
    inbox: mpsc::Sender<Inbox>,
    wrap: fn(T) -> Inbox,
) {
    std::thread::spawn(move || {
        for r in from {
            if inbox.send(wrap(r)).is_err() {
                return;
            }
        }
    });
}

fn run(
    manager: &mut Manager,
    jobs: &[LcoreJob],
    inbox: &mpsc::Receiver<Inbox>,
    health_results: &mpsc::Receiver<CheckResult>,
) {
    while !signals::stop_requested() && !jobs.iter().any(|j| j.finished()) {
        let mut changed = false;
        match inbox.recv_timeout(Duration::from_millis(20)) {
            Ok(Inbox::Admin(r)) => {
                let out = admin::commands::dispatch(manager, &r.line, &r.who).map(|rep| {
                    if r.json {
                        format!("{}\n", rep.json)
                    } else {
                        rep.text
                    }
                });
                let _ = r.reply.send(out);
            }
            Ok(Inbox::Metrics(reply)) => {
                let _ = reply.send(metrics::render(manager));
            }
            Err(_) => {}
        }
        if signals::take_reload() {
            let who = Who {
                uid: 0,
                pid: 0,
                via: "SIGHUP",
            };
            match reload::reload(manager, &who) {
                Ok(s) => log!("{s}"),
                Err(e) => log!("{e}"),
            }
        }
        while let Ok(r) = health_results.try_recv() {
            changed |= manager.on_check(r);
        }
        changed |= manager.tick(Instant::now());
        if changed {
            manager.publish();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config;
    use crate::manager_tests::{manager, EXAMPLE};
    use crate::scratch_dir::ScratchDir;
    use std::path::Path;

    /// What `serve` returned for the example config with this admin socket
    /// and metrics address; a panic if it did not return (it serves until
    /// told to stop: only a failure to open returns).
    fn serve_with(socket: &Path, metrics: &str) -> Result<(), String> {
        let mut cfg = config::parse(EXAMPLE, Path::new("x")).expect("the example");
        cfg.admin.socket = socket.to_str().unwrap().to_string();
        cfg.admin.metrics = metrics.to_string();
        let (done_tx, done) = mpsc::channel();
        std::thread::spawn(move || {
            let (mut m, _health) = manager(EXAMPLE);
            let (_results_tx, results) = mpsc::channel();
            let _ = done_tx.send(serve(&cfg, &mut m, &[], &results));
        });
        done.recv_timeout(Duration::from_secs(10))
            .expect("serve returned: only failures to open do")
    }

    #[test]
    fn an_admin_socket_that_cannot_be_made_stops_the_start_naming_it() {
        let dir = ScratchDir::new("mgmt-loop-socket");
        std::fs::write(dir.join("file"), b"").unwrap();
        let socket = dir.join("file/admin.sock");
        let e = serve_with(&socket, "").unwrap_err();
        assert!(
            e.starts_with(&format!("admin socket {}: ", socket.display())),
            "{e}"
        );
    }

    #[test]
    fn a_socket_another_process_serves_is_refused_and_left_to_it() {
        let dir = ScratchDir::new("mgmt-loop-taken");
        let socket = dir.join("admin.sock");
        let _other = std::os::unix::net::UnixListener::bind(&socket).unwrap();
        let e = serve_with(&socket, "").unwrap_err();
        assert!(e.ends_with("another process serves it"), "{e}");
        assert!(socket.exists(), "the other process's socket stays");
    }

    #[test]
    fn a_metrics_address_taken_stops_the_start_and_removes_our_socket() {
        let dir = ScratchDir::new("mgmt-loop-metrics");
        let socket = dir.join("admin.sock");
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = taken.local_addr().unwrap().to_string();
        let e = serve_with(&socket, &addr).unwrap_err();
        assert!(e.starts_with(&format!("metrics endpoint {addr}: ")), "{e}");
        assert!(!socket.exists(), "our own socket is removed");
    }
}
