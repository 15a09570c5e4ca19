//! The admin socket: a Unix stream socket, mode 0600, owned by the running user;
//! peers of any other uid are refused (SO_PEERCRED). Line protocol: one command per
//! line, the answer follows and ends with an empty line; a line starting with
//! `json ` gets the JSON form. Lines are checked before they reach the manager:
//! too long, not UTF-8, or control bytes get an error line and the connection
//! stays usable.

use super::commands::MAX_LINE;
use crate::log;
use crate::manager::Who;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::mpsc::{self, Sender};
use std::time::Duration;

/// A command line for the manager, and where to send the answer.
pub struct Request {
    pub line: String,
    pub json: bool,
    pub who: Who,
    pub reply: Sender<Result<String, String>>,
}

/// Binds the socket (replacing a stale one, never one a server answers on) and
/// serves it on its own thread.
pub fn start(path: &str, requests: Sender<Request>) -> std::io::Result<()> {
    if let Some(dir) = std::path::Path::new(path).parent() {
        std::fs::create_dir_all(dir)?;
    }
    if crate::preflight::socket_answers(path) {
        return Err(std::io::Error::new(
            std::io::ErrorKind::AddrInUse,
            "another process serves it",
        ));
    }
    let _ = std::fs::remove_file(path);
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    let path = path.to_string();
    std::thread::Builder::new()
        .name("weir-admin".into())
        .spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let requests = requests.clone();
                let _ = std::thread::Builder::new()
                    .name("weir-admin-conn".into())
                    .spawn(move || serve(conn, requests));
            }
            let _ = std::fs::remove_file(&path);
        })?;
    Ok(())
}

fn peer(conn: &UnixStream) -> Option<(u32, i32)> {
    // SAFETY: ucred is plain data; getsockopt writes at most its size.
    unsafe {
        let mut cred: libc::ucred = std::mem::zeroed();
        let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
        let ret = libc::getsockopt(
            std::os::fd::AsRawFd::as_raw_fd(conn),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            &mut cred as *mut _ as *mut libc::c_void,
            &mut len,
        );
        (ret == 0).then_some((cred.uid, cred.pid))
    }
}

fn serve(conn: UnixStream, requests: Sender<Request>) {
    let Some((uid, pid)) = peer(&conn) else {
        return;
    };
    // SAFETY: geteuid has no preconditions.
    let me = unsafe { libc::geteuid() };
    let mut out = match conn.try_clone() {
        Ok(c) => c,
        Err(_) => return,
    };
    if uid != me {
        log!("admin: refused a connection from uid {uid} pid {pid}");
        let _ =
            out.write_all(b"error: permission denied: only the user running weir may connect\n\n");
        return;
    }
    let _ = conn.set_read_timeout(Some(Duration::from_secs(300)));
    let who = Who {
        uid,
        pid,
        via: "admin",
    };
    let mut reader = BufReader::new(conn);
    loop {
        let mut raw = Vec::new();
        // Read one line, at most MAX_LINE bytes of it kept.
        let n = match (&mut reader)
            .take(MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut raw)
        {
            Ok(n) => n,
            Err(_) => return,
        };
        if n == 0 {
            return;
        }
        let answer = if raw.len() > MAX_LINE && !raw.ends_with(b"\n") {
            // Skip the rest of the over-long line.
            let mut rest = Vec::new();
            let _ = reader.read_until(b'\n', &mut rest);
            Err(format!("line longer than {MAX_LINE} bytes"))
        } else {
            check_line(&raw).and_then(|line| ask(&requests, line, &who))
        };
        let text = match answer {
            Ok(t) => t,
            Err(e) => format!("error: {e}\n"),
        };
        let mut text = text;
        if !text.ends_with('\n') {
            text.push('\n');
        }
        text.push('\n');
        if out.write_all(text.as_bytes()).is_err() {
            return;
        }
    }
}

/// Text, no control bytes but tab.
fn check_line(raw: &[u8]) -> Result<String, String> {
    let s = std::str::from_utf8(raw).map_err(|_| "not UTF-8 text".to_string())?;
    let s = s.trim_end_matches(['\n', '\r']);
    if s.chars().any(|c| c.is_control() && c != '\t') {
        return Err("control characters in the command".into());
    }
    Ok(s.to_string())
}

fn ask(requests: &Sender<Request>, line: String, who: &Who) -> Result<String, String> {
    let (line, json) = match line.trim_start().strip_prefix("json ") {
        Some(rest) => (rest.to_string(), true),
        None => (line, false),
    };
    let (tx, rx) = mpsc::channel();
    requests
        .send(Request {
            line,
            json,
            who: who.clone(),
            reply: tx,
        })
        .map_err(|_| "weir is stopping".to_string())?;
    rx.recv_timeout(Duration::from_secs(30))
        .map_err(|_| "no answer from the management core".to_string())?
}
