//! `weir ctl`: the admin socket's client. Sends one command, prints the answer, and
//! exits non-zero if it was an error.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::process::ExitCode;

pub fn run(socket: &str, json: bool, words: &[String]) -> ExitCode {
    let mut conn = match UnixStream::connect(socket) {
        Ok(c) => c,
        Err(e) => {
            let hint = match e.kind() {
                std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused => {
                    "; is weir running with this [admin] socket? (-s names another)"
                }
                _ => "",
            };
            eprintln!("weir ctl: cannot connect to {socket}: {e}{hint}");
            return ExitCode::from(2);
        }
    };
    let line = format!("{}{}\n", if json { "json " } else { "" }, words.join(" "));
    if conn.write_all(line.as_bytes()).is_err() {
        eprintln!("weir ctl: write failed");
        return ExitCode::from(2);
    }
    let mut reader = BufReader::new(conn);
    let mut answer = String::new();
    loop {
        let mut l = String::new();
        match reader.read_line(&mut l) {
            Ok(0) => break,
            Ok(_) if l == "\n" => break,
            Ok(_) => answer.push_str(&l),
            Err(e) => {
                eprintln!("weir ctl: read failed: {e}");
                return ExitCode::from(2);
            }
        }
    }
    print!("{answer}");
    if answer.starts_with("error:") {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
