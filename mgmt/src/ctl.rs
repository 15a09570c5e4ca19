//! `weir ctl`: the admin socket's client. Sends one command, prints the answer, and
//! exits non-zero if it was an error.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::process::ExitCode;

/// Exit status when the socket could not be used at all (as against an answer
/// that is an error, which is 1).
const NO_EXCHANGE: u8 = 2;

pub fn run(socket: &str, json: bool, words: &[String]) -> ExitCode {
    let line = format!("{}{}\n", if json { "json " } else { "" }, words.join(" "));
    match exchange(socket, &line) {
        Ok(answer) => {
            print!("{answer}");
            exit_for(&answer)
        }
        Err(e) => {
            eprintln!("weir ctl: {e}");
            ExitCode::from(NO_EXCHANGE)
        }
    }
}

/// Sends `line` and returns the answer: the lines up to the empty one that ends
/// it (or up to the end of the connection).
fn exchange(socket: &str, line: &str) -> Result<String, String> {
    let mut conn = UnixStream::connect(socket).map_err(|e| {
        let hint = match e.kind() {
            std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused => {
                "; is weir running with this [admin] socket? (-s names another)"
            }
            _ => "",
        };
        format!("cannot connect to {socket}: {e}{hint}")
    })?;
    conn.write_all(line.as_bytes())
        .map_err(|e| format!("write failed: {e}"))?;
    let mut reader = BufReader::new(conn);
    let mut answer = String::new();
    loop {
        let mut l = String::new();
        match reader.read_line(&mut l) {
            Ok(0) => return Ok(answer),
            Ok(_) if l == "\n" => return Ok(answer),
            Ok(_) => answer.push_str(&l),
            Err(e) => return Err(format!("read failed: {e}")),
        }
    }
}

/// 1 for an answer that is an error, else 0.
fn exit_for(answer: &str) -> ExitCode {
    if answer.starts_with("error:") {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scratch_dir::ScratchDir;
    use std::os::unix::net::UnixListener;
    use std::thread::JoinHandle;

    /// A server that takes one connection, reads one line, writes `reply` and
    /// closes; joined, it gives the line it read.
    fn serve_once(listener: UnixListener, reply: &'static str) -> JoinHandle<String> {
        std::thread::spawn(move || {
            let (conn, _) = listener.accept().unwrap();
            let mut line = String::new();
            BufReader::new(&conn).read_line(&mut line).unwrap();
            (&conn).write_all(reply.as_bytes()).unwrap();
            line
        })
    }

    #[test]
    fn the_answer_ends_at_the_empty_line() {
        let dir = ScratchDir::new("ctl-answer");
        let path = dir.join("admin.sock");
        let server = serve_once(
            UnixListener::bind(&path).unwrap(),
            "web/b1 up\nweb/b2 down\n\nnot part of it\n",
        );
        let socket = path.to_str().unwrap();
        assert_eq!(
            exchange(socket, "json show servers\n").unwrap(),
            "web/b1 up\nweb/b2 down\n"
        );
        assert_eq!(server.join().unwrap(), "json show servers\n");
        // An answer cut short by the server closing is what came.
        let other = dir.join("b.sock");
        let server = serve_once(UnixListener::bind(&other).unwrap(), "partial\n");
        assert_eq!(
            exchange(other.to_str().unwrap(), "show info\n").unwrap(),
            "partial\n"
        );
        server.join().unwrap();
    }

    #[test]
    fn run_exits_1_for_an_error_answer_0_for_another_and_sends_json_first() {
        let dir = ScratchDir::new("ctl-exit");
        for (i, (reply, json, code, sent)) in [
            (
                "error: unknown command\n\n",
                false,
                ExitCode::FAILURE,
                "frob\n",
            ),
            ("{\"ok\":true}\n\n", true, ExitCode::SUCCESS, "json frob\n"),
            // "error:" anywhere but at the start is not an error answer.
            (
                "backend error: none\n\n",
                false,
                ExitCode::SUCCESS,
                "frob\n",
            ),
        ]
        .into_iter()
        .enumerate()
        {
            let path = dir.join(&format!("{i}.sock"));
            let server = serve_once(UnixListener::bind(&path).unwrap(), reply);
            let got = run(path.to_str().unwrap(), json, &["frob".to_string()]);
            assert_eq!(got, code, "answer {reply:?}");
            assert_eq!(server.join().unwrap(), sent);
        }
    }

    #[test]
    fn a_missing_or_dead_socket_is_exit_2_with_a_hint() {
        let dir = ScratchDir::new("ctl-dead");
        let missing = dir.join("none.sock");
        let e = exchange(missing.to_str().unwrap(), "show info\n").unwrap_err();
        assert!(e.starts_with("cannot connect to "), "{e}");
        assert!(e.ends_with("is weir running with this [admin] socket? (-s names another)"));
        assert_eq!(
            run(missing.to_str().unwrap(), false, &[]),
            ExitCode::from(NO_EXCHANGE)
        );
        // A socket file left by a process that is gone: refused, same hint.
        let dead = dir.join("dead.sock");
        drop(UnixListener::bind(&dead).unwrap());
        let e = exchange(dead.to_str().unwrap(), "show info\n").unwrap_err();
        assert!(
            e.contains("refused") && e.contains("is weir running"),
            "{e}"
        );
        // Any other failure has no hint: a path too long for a socket address.
        let long = format!("/tmp/{}", "x".repeat(200));
        let e = exchange(&long, "show info\n").unwrap_err();
        assert!(!e.contains("is weir running"), "{e}");
    }
}
