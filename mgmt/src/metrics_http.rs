//! The metrics endpoint's HTTP side: answers `GET /metrics` with the text the
//! management core renders for each scrape. Each connection has its own thread,
//! bounded in number and in time, so a client that connects and says nothing,
//! trickles its headers, or never reads the answer holds only itself: the next
//! scrape is answered at once.

use crate::log;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Connections served at once; more are closed unanswered.
const MAX_CONNECTIONS: usize = 16;
/// How long a connection may take to send its request, and each write.
const REQUEST_TIME: Duration = Duration::from_secs(5);
/// The most a request may send (its line and headers).
const MAX_REQUEST_BYTES: u64 = 16 * 1024;

/// Serves `GET /metrics` on `addr`; each scrape asks the manager for fresh text.
pub fn start(addr: &str, ask: Sender<Sender<String>>) -> std::io::Result<()> {
    let listener = TcpListener::bind(addr)?;
    log!("metrics on http://{addr}/metrics");
    let open = Arc::new(AtomicUsize::new(0));
    std::thread::Builder::new()
        .name("weir-metrics".into())
        .spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                if open.fetch_add(1, Ordering::SeqCst) >= MAX_CONNECTIONS {
                    open.fetch_sub(1, Ordering::SeqCst);
                    continue;
                }
                let slot = Slot(open.clone());
                let ask = ask.clone();
                // A failed spawn drops the closure, and with it the slot.
                let _ = std::thread::Builder::new()
                    .name("weir-metrics-conn".into())
                    .spawn(move || {
                        let _slot = slot;
                        serve(conn, &ask);
                    });
            }
        })?;
    Ok(())
}

/// One connection's place among the `MAX_CONNECTIONS`, given back when dropped.
struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

fn serve(mut conn: TcpStream, ask: &Sender<Sender<String>>) {
    let Some(line) = read_request(&conn) else {
        return;
    };
    let path = line.split_whitespace().nth(1).unwrap_or("");
    let (status, body, ctype) = if line.starts_with("GET ") && (path == "/metrics" || path == "/") {
        let (tx, rx) = mpsc::channel();
        let text = ask
            .send(tx)
            .ok()
            .and_then(|_| rx.recv_timeout(Duration::from_secs(5)).ok());
        match text {
            Some(t) => ("200 OK", t, "text/plain; version=0.0.4; charset=utf-8"),
            None => ("503 Service Unavailable", "stopping\n".into(), "text/plain"),
        }
    } else {
        ("404 Not Found", "try /metrics\n".into(), "text/plain")
    };
    let _ = conn.set_write_timeout(Some(REQUEST_TIME));
    let _ = write!(
        conn,
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

/// The request line, once the headers after it are read: `None` when the
/// client closed, sent too much, or took longer than `REQUEST_TIME` in all.
fn read_request(conn: &TcpStream) -> Option<String> {
    let deadline = Instant::now() + REQUEST_TIME;
    let mut reader = BufReader::new(conn.try_clone().ok()?.take(MAX_REQUEST_BYTES));
    let mut next = |line: &mut String| -> Option<()> {
        let left = deadline.checked_duration_since(Instant::now())?;
        conn.set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .ok()?;
        match reader.read_line(line) {
            Ok(n) if n > 0 && line.ends_with('\n') => Some(()),
            _ => None,
        }
    };
    let mut request = String::new();
    next(&mut request)?;
    loop {
        let mut h = String::new();
        next(&mut h)?;
        if h == "\r\n" || h == "\n" {
            return Some(request);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    /// A connected pair: (client, server side).
    fn pair() -> (TcpStream, TcpStream) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        (c, l.accept().unwrap().0)
    }

    #[test]
    fn a_request_is_its_line_once_the_headers_end() {
        let (mut c, s) = pair();
        c.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n")
            .unwrap();
        assert_eq!(
            read_request(&s).as_deref(),
            Some("GET /metrics HTTP/1.1\r\n")
        );
    }

    #[test]
    fn a_request_without_end_or_too_long_is_none() {
        let (mut c, s) = pair();
        c.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
            .unwrap();
        drop(c);
        assert_eq!(read_request(&s), None);
        let (mut c, s) = pair();
        let long = format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(20_000));
        std::thread::spawn(move || c.write_all(long.as_bytes()));
        assert_eq!(read_request(&s), None);
        // Headers of 4 KiB are within the limit.
        let (mut c, s) = pair();
        let long = format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(4096));
        c.write_all(long.as_bytes()).unwrap();
        assert_eq!(read_request(&s).as_deref(), Some("GET / HTTP/1.1\r\n"));
    }

    /// What `serve` answers to `request`, with the manager's side answering
    /// each scrape "weir_up 1" (or gone, when `stopping`).
    fn answer(request: &str, stopping: bool) -> String {
        let (ask, asked) = mpsc::channel::<Sender<String>>();
        let manager = std::thread::spawn(move || {
            if stopping {
                drop(asked);
                return;
            }
            for reply in asked {
                let _ = reply.send("weir_up 1\n".into());
            }
        });
        let (mut c, s) = pair();
        c.write_all(request.as_bytes()).unwrap();
        serve(s, &ask);
        drop(ask);
        manager.join().unwrap();
        let mut out = String::new();
        c.read_to_string(&mut out).unwrap();
        out
    }

    #[test]
    fn a_get_of_metrics_or_the_root_is_the_text_anything_else_not_found() {
        let ok = "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; \
                  charset=utf-8\r\nContent-Length: 10\r\nConnection: close\r\n\r\nweir_up 1\n";
        for path in ["/metrics", "/"] {
            assert_eq!(answer(&format!("GET {path} HTTP/1.1\r\n\r\n"), false), ok);
        }
        for request in [
            "GET /other HTTP/1.1",
            "POST /metrics HTTP/1.1",
            "HEAD / HTTP/1.1",
        ] {
            let a = answer(&format!("{request}\r\n\r\n"), false);
            assert!(
                a.starts_with("HTTP/1.1 404 Not Found\r\n"),
                "{request}: {a}"
            );
            assert!(a.ends_with("\r\n\r\ntry /metrics\n"), "{request}: {a}");
        }
        // The manager gone (weir stopping): 503.
        let a = answer("GET /metrics HTTP/1.1\r\n\r\n", true);
        assert!(a.starts_with("HTTP/1.1 503 Service Unavailable\r\n"), "{a}");
    }

    /// A GET of /metrics on `addr`: the answer, or "" when the connection is
    /// closed unanswered.
    fn scrape(addr: std::net::SocketAddr) -> String {
        let mut c = TcpStream::connect(addr).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let _ = c.write_all(b"GET /metrics HTTP/1.1\r\n\r\n");
        let mut out = String::new();
        let _ = c.read_to_string(&mut out);
        out
    }

    #[test]
    fn sixteen_silent_clients_hold_their_places_and_free_them_on_leaving() {
        // A free port: taken, noted and given back for `start` to bind.
        let addr = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let (ask, asked) = mpsc::channel::<Sender<String>>();
        std::thread::spawn(move || {
            for reply in asked {
                let _ = reply.send("weir_up 1\n".into());
            }
        });
        start(&addr.to_string(), ask).unwrap();
        assert!(scrape(addr).ends_with("weir_up 1\n"));
        let silent: Vec<TcpStream> = (0..MAX_CONNECTIONS)
            .map(|_| TcpStream::connect(addr).unwrap())
            .collect();
        // Connections are accepted in order: the one after them finds every
        // place taken (each silent one waits 5 s for its request).
        assert_eq!(scrape(addr), "", "a seventeenth is closed unanswered");
        drop(silent);
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut answered = scrape(addr);
        while answered.is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
            answered = scrape(addr);
        }
        assert!(
            answered.ends_with("weir_up 1\n"),
            "places given back: {answered:?}"
        );
    }
}
