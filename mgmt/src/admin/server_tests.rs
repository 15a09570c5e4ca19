//! The admin socket below the binary: `start` on a scratch path, a thread in the
//! manager's place answering the requests, and clients speaking the line
//! protocol to it.

use super::server::{start, Request};
use crate::admin::commands::MAX_LINE;
use crate::scratch_dir::ScratchDir;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::os::unix::process::CommandExt;
use std::sync::mpsc::{self, Receiver};
use std::time::Duration;

/// The manager's part: answers each request with what it was told, or an
/// error for the line "fail", or text without a final newline for "bare".
fn answer_requests(requests: Receiver<Request>) {
    std::thread::spawn(move || {
        for r in requests {
            let said = match r.line.as_str() {
                "fail" => Err("no such thing".to_string()),
                "bare" => Ok("no newline".to_string()),
                line => Ok(format!("line={line:?} json={} who={}\n", r.json, r.who)),
            };
            let _ = r.reply.send(said);
        }
    });
}

/// A client of the socket at `path`, answers read up to their empty line.
struct Client {
    out: UnixStream,
    reader: BufReader<UnixStream>,
}

impl Client {
    fn connect(path: &std::path::Path) -> Client {
        let out = UnixStream::connect(path).unwrap();
        out.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let reader = BufReader::new(out.try_clone().unwrap());
        Client { out, reader }
    }

    /// Sends `bytes` as they are and returns the answer with its empty line.
    fn ask(&mut self, bytes: &[u8]) -> String {
        self.out.write_all(bytes).unwrap();
        let mut answer = String::new();
        loop {
            let mut l = String::new();
            assert!(
                self.reader.read_line(&mut l).unwrap() > 0,
                "closed after {answer:?}"
            );
            answer.push_str(&l);
            if l == "\n" {
                return answer;
            }
        }
    }
}

/// How the server names this process, the peer of the tests' connections.
fn me() -> String {
    // SAFETY: geteuid has no preconditions.
    let uid = unsafe { libc::geteuid() };
    format!("admin uid={uid} pid={}", std::process::id())
}

fn served(dir: &ScratchDir) -> std::path::PathBuf {
    let path = dir.join("run/weir/admin.sock");
    let (tx, rx) = mpsc::channel();
    start(path.to_str().unwrap(), tx).unwrap();
    answer_requests(rx);
    path
}

#[test]
fn commands_are_answered_in_turn_each_ending_with_an_empty_line() {
    let dir = ScratchDir::new("admin-server-lines");
    let path = served(&dir);
    // Made in a directory of its own, for its owner only.
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let mut c = Client::connect(&path);
    let me = me();
    assert_eq!(
        c.ask(b"show info\n"),
        format!("line=\"show info\" json=false who={me}\n\n")
    );
    // `json ` first (after blanks) asks for JSON; a CR before the newline goes.
    assert_eq!(
        c.ask(b"  json show stat\r\n"),
        format!("line=\"show stat\" json=true who={me}\n\n")
    );
    assert_eq!(c.ask(b"fail\n"), "error: no such thing\n\n");
    assert_eq!(c.ask(b"bare\n"), "no newline\n\n");
    // Tabs are text.
    assert_eq!(
        c.ask(b"set\tweight\n"),
        format!("line=\"set\\tweight\" json=false who={me}\n\n")
    );
}

#[test]
fn bad_lines_get_an_error_and_the_connection_stays_usable() {
    let dir = ScratchDir::new("admin-server-bad");
    let path = served(&dir);
    let mut c = Client::connect(&path);
    assert_eq!(
        c.ask(b"show\x01info\n"),
        "error: control characters in the command\n\n"
    );
    assert_eq!(c.ask(b"show \xff\xfe\n"), "error: not UTF-8 text\n\n");
    // The longest line taken, and one byte more.
    let longest = "x".repeat(MAX_LINE);
    assert_eq!(
        c.ask(format!("{longest}\n").as_bytes()),
        format!("line={longest:?} json=false who={}\n\n", me())
    );
    let over = format!("{longest}y and more after it\n");
    assert_eq!(
        c.ask(over.as_bytes()),
        format!("error: line longer than {MAX_LINE} bytes\n\n")
    );
    // The rest of the long line was skipped: the next command is read whole.
    assert!(c.ask(b"show info\n").starts_with("line=\"show info\""));
}

#[test]
fn a_last_line_without_its_newline_is_answered() {
    let dir = ScratchDir::new("admin-server-eof");
    let path = served(&dir);
    for line in ["show info".to_string(), "x".repeat(MAX_LINE)] {
        let mut c = Client::connect(&path);
        c.out.write_all(line.as_bytes()).unwrap();
        c.out.shutdown(std::net::Shutdown::Write).unwrap();
        assert_eq!(
            c.ask(b""),
            format!("line={line:?} json=false who={}\n\n", me())
        );
    }
}

#[test]
fn a_stopping_manager_is_said_so() {
    let dir = ScratchDir::new("admin-server-stopping");
    let path = dir.join("admin.sock");
    let (tx, rx) = mpsc::channel();
    start(path.to_str().unwrap(), tx).unwrap();
    drop(rx);
    let mut c = Client::connect(&path);
    assert_eq!(c.ask(b"show info\n"), "error: weir is stopping\n\n");
}

#[test]
fn a_stale_socket_is_replaced_and_a_live_one_refused() {
    let dir = ScratchDir::new("admin-server-stale");
    let path = dir.join("admin.sock");
    // Left by a process that is gone: nobody answers on it.
    drop(UnixListener::bind(&path).unwrap());
    let (tx, rx) = mpsc::channel();
    start(path.to_str().unwrap(), tx).unwrap();
    answer_requests(rx);
    assert!(Client::connect(&path)
        .ask(b"show info\n")
        .starts_with("line="));
    // A second server on the same path is refused, and the first still answers.
    let (tx2, _rx2) = mpsc::channel();
    let e = start(path.to_str().unwrap(), tx2).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::AddrInUse);
    assert!(Client::connect(&path)
        .ask(b"show info\n")
        .starts_with("line="));
}

#[test]
fn a_peer_of_another_uid_is_refused_with_a_line_saying_so() {
    let dir = ScratchDir::new("admin-server-uid");
    let path = served(&dir);
    // Let anyone reach it, so that only the server's own check stands.
    for p in [
        dir.join(""),
        dir.join("run"),
        dir.join("run/weir"),
        path.clone(),
    ] {
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o777)).unwrap();
    }
    let client = "import socket,sys\n\
                  s=socket.socket(socket.AF_UNIX)\n\
                  s.settimeout(10)\n\
                  s.connect(sys.argv[1])\n\
                  d=b''\n\
                  while True:\n\
                  \x20   b=s.recv(4096)\n\
                  \x20   if not b: break\n\
                  \x20   d+=b\n\
                  sys.stdout.write(d.decode())\n";
    let out = std::process::Command::new("/usr/bin/python3")
        .args(["-c", client, path.to_str().unwrap()])
        .uid(65534)
        .gid(65534)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Said at once, and closed, before the client has sent anything.
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "error: permission denied: only the user running weir may connect\n\n"
    );
}
