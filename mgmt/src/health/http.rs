//! The HTTP check: the request we send and the judgement of the response.

/// `GET path HTTP/1.1` with a Host header, closing the connection.
pub fn request(path: &str, host: &str) -> Vec<u8> {
    format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: weir-health\r\nConnection: close\r\n\r\n"
    )
    .into_bytes()
}

/// What a complete (or closed) response says: `Ok(())` or the reason it failed.
pub fn judge(
    resp: &[u8],
    expect_status: &[u16],
    body_contains: Option<&str>,
) -> Result<(), String> {
    let Some(head_end) = find(resp, b"\r\n\r\n") else {
        return Err("incomplete response".into());
    };
    let head = String::from_utf8_lossy(&resp[..head_end]);
    let status_line = head.lines().next().unwrap_or_default();
    let mut words = status_line.split_whitespace();
    let (Some(proto), Some(code)) = (words.next(), words.next()) else {
        return Err(format!("bad status line {status_line:?}"));
    };
    if !proto.starts_with("HTTP/") {
        return Err(format!("bad status line {status_line:?}"));
    }
    let code: u16 = code
        .parse()
        .map_err(|_| format!("bad status line {status_line:?}"))?;
    if !expect_status.contains(&code) {
        return Err(format!("status {code}"));
    }
    if let Some(want) = body_contains {
        let body = &resp[head_end + 4..];
        if find(body, want.as_bytes()).is_none() {
            return Err("body mismatch".into());
        }
    }
    Ok(())
}

/// True once `resp` holds the headers and, if given, Content-Length bytes of body.
pub fn complete(resp: &[u8]) -> bool {
    let Some(head_end) = find(resp, b"\r\n\r\n") else {
        return false;
    };
    let head = String::from_utf8_lossy(&resp[..head_end]).to_ascii_lowercase();
    match head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok())
    {
        // (Subtracted: a Content-Length near usize::MAX must not overflow.)
        Some(n) => resp.len() - (head_end + 4) >= n,
        None => false,
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    const OK: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\nbackend b1\r\n";

    #[test]
    fn judges_status_and_body() {
        assert_eq!(judge(OK, &[200], None), Ok(()));
        assert_eq!(judge(OK, &[200], Some("backend b1")), Ok(()));
        assert_eq!(
            judge(OK, &[200], Some("backend b2")),
            Err("body mismatch".into())
        );
        // The body is what follows the blank line: a header's words do not count.
        let in_header = b"HTTP/1.1 200 OK\r\nX-State: up\r\n\r\ndown";
        assert_eq!(
            judge(in_header, &[200], Some("up")),
            Err("body mismatch".into())
        );
        assert_eq!(judge(OK, &[204], None), Err("status 200".into()));
        let e503 = b"HTTP/1.0 503 Service Unavailable\r\n\r\n";
        assert_eq!(judge(e503, &[200], None), Err("status 503".into()));
        assert!(judge(b"garbage\r\n\r\n", &[200], None).is_err());
        assert!(judge(b"HTTP/1.1 200", &[200], None).is_err());
    }

    #[test]
    fn completeness_by_content_length() {
        assert!(complete(OK));
        assert!(!complete(&OK[..OK.len() - 1]));
        assert!(!complete(b"HTTP/1.1 200 OK\r\n\r\nno length"));
    }

    #[test]
    fn a_huge_content_length_is_never_complete() {
        let r = b"HTTP/1.1 200 OK\r\nContent-Length: 18446744073709551615\r\n\r\nab";
        assert!(!complete(r));
    }

    proptest::proptest! {
        /// Whatever a backend answers, judging it neither panics nor calls a
        /// complete response incomplete.
        #[test]
        fn any_answer_is_judged(
            head in "(HTTP/1\\.[01] [0-9]{1,6} [A-Za-z ]{0,8}|[ -~]{0,20})",
            headers in proptest::collection::vec("(Content-Length|content-length|X-A): ?[0-9a-z ]{0,22}", 0..3),
            body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..40),
            cut in proptest::prelude::any::<usize>(),
        ) {
            let mut r = format!("{head}\r\n{}\r\n", headers.iter().map(|h| format!("{h}\r\n")).collect::<String>()).into_bytes();
            r.extend_from_slice(&body);
            let r = &r[..cut % (r.len() + 1)];
            let verdict = judge(r, &[200], Some("ok"));
            if complete(r) {
                proptest::prop_assert_ne!(verdict, Err("incomplete response".to_string()));
            }
        }
    }

    #[test]
    fn request_bytes() {
        assert_eq!(
            request("/health", "198.18.0.11"),
            b"GET /health HTTP/1.1\r\nHost: 198.18.0.11\r\nUser-Agent: weir-health\r\nConnection: close\r\n\r\n"
        );
    }
}
