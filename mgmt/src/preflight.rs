//! Checks made before `weir run` touches the EAL, a port or an interface: a
//! second weir started on the same appliance (the same admin socket, or the
//! same host interface) is refused here, and so is a metrics address another
//! process holds. Past this point it would attach to
//! the running one's port and TAP device, where the kernel would share their
//! packets between the two, and would take its admin socket. And connection
//! tables bigger than the memory left are refused (see `memory_check`).

use crate::config::model::Config;
use std::ffi::CString;
use std::os::unix::net::UnixStream;

/// `Err` names what another process already holds, and what to do.
pub fn check(cfg: &Config) -> Result<(), String> {
    if socket_answers(&cfg.admin.socket) {
        return Err(format!(
            "admin socket {} answers: another weir is running with it; stop that one, \
             or give this one its own [admin] socket and host interfaces",
            cfg.admin.socket
        ));
    }
    for p in &cfg.ports {
        if let Some(name) = p.host_interface.as_deref() {
            if interface_exists(name) {
                return Err(format!(
                    "port {}: host interface {name} already exists: another weir (or another \
                     program) holds it; stop that one, or set another host_interface",
                    p.name
                ));
            }
        }
    }
    crate::memory_check::check(cfg)?;
    if !cfg.admin.metrics.is_empty() {
        // Bound and let go at once; weir binds it again once running.
        if let Err(e) = std::net::TcpListener::bind(&cfg.admin.metrics) {
            return Err(format!(
                "metrics endpoint {}: {e}: another process listens there; stop it, \
                 or set another [admin] metrics address",
                cfg.admin.metrics
            ));
        }
    }
    Ok(())
}

/// Whether a server accepts connections on the Unix socket at `path` (a file
/// left by a weir that died does not).
pub fn socket_answers(path: &str) -> bool {
    UnixStream::connect(path).is_ok()
}

/// Whether this network namespace has an interface called `name`.
fn interface_exists(name: &str) -> bool {
    let Ok(c) = CString::new(name) else {
        return false;
    };
    // SAFETY: c is a valid NUL-terminated string for the duration of the call.
    unsafe { libc::if_nametoindex(c.as_ptr()) != 0 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scratch_dir::ScratchDir;
    use std::os::unix::net::UnixListener;

    #[test]
    fn a_live_socket_answers_and_a_stale_one_does_not() {
        let dir = ScratchDir::new("preflight");
        let path = dir.join("admin.sock");
        let p = path.to_str().unwrap();
        assert!(!socket_answers(p), "no file");
        let listener = UnixListener::bind(&path).unwrap();
        assert!(socket_answers(p));
        // Closed without removing its file, as when a process dies.
        drop(listener);
        assert!(path.exists());
        assert!(!socket_answers(p));
    }

    #[test]
    fn check_names_what_another_process_holds() {
        let dir = ScratchDir::new("preflight-check");
        let text = include_str!("../../examples/weir.toml");
        let mut cfg = crate::config::parse(text, std::path::Path::new("t.toml")).unwrap();
        let socket = dir.join("admin.sock");
        cfg.admin.socket = socket.to_str().unwrap().to_string();
        // Held by nobody: a free port for the metrics, a made-up host interface.
        let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        cfg.admin.metrics = free.local_addr().unwrap().to_string();
        drop(free);
        cfg.ports[0].host_interface = Some("weir-nonesuch".into());
        assert_eq!(check(&cfg), Ok(()));
        cfg.admin.metrics = String::new();
        assert_eq!(check(&cfg), Ok(()), "no metrics endpoint");

        let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        cfg.admin.metrics = held.local_addr().unwrap().to_string();
        let e = check(&cfg).unwrap_err();
        assert!(
            e.starts_with(&format!("metrics endpoint {}: ", cfg.admin.metrics)),
            "{e}"
        );
        cfg.admin.metrics = String::new();

        cfg.ports[0].host_interface = Some("lo".into());
        let e = check(&cfg).unwrap_err();
        let port = &cfg.ports[0].name;
        assert!(e.starts_with(&format!("port {port}: host interface lo already exists")));

        let _live = UnixListener::bind(&socket).unwrap();
        let e = check(&cfg).unwrap_err();
        assert!(e.starts_with(&format!("admin socket {} answers", cfg.admin.socket)));
    }

    #[test]
    fn loopback_exists_and_a_made_up_name_does_not() {
        assert!(interface_exists("lo"));
        assert!(!interface_exists("weir-nonesuch"));
        assert!(!interface_exists("bad\0name"));
    }
}
