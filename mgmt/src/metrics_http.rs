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
    }
}
