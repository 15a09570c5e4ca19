//! SIGINT/SIGTERM set a flag the management loop polls; nothing else runs in the
//! handler.

use std::sync::atomic::{AtomicBool, Ordering};

static STOP: AtomicBool = AtomicBool::new(false);
static RELOAD: AtomicBool = AtomicBool::new(false);

extern "C" fn on_stop(_sig: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

extern "C" fn on_hup(_sig: libc::c_int) {
    RELOAD.store(true, Ordering::SeqCst);
}

/// Installs the handlers: SIGINT/SIGTERM stop, SIGHUP reloads.
pub fn install() {
    let handlers: [(libc::c_int, extern "C" fn(libc::c_int)); 3] = [
        (libc::SIGINT, on_stop),
        (libc::SIGTERM, on_stop),
        (libc::SIGHUP, on_hup),
    ];
    for (sig, handler) in handlers {
        // SAFETY: the handlers only store to atomics, which is async-signal-safe.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = handler as *const () as usize;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(sig, &sa, std::ptr::null_mut());
        }
    }
}

/// True once per SIGHUP.
pub fn take_reload() -> bool {
    RELOAD.swap(false, Ordering::SeqCst)
}

pub fn stop_requested() -> bool {
    STOP.load(Ordering::SeqCst)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raise(sig: libc::c_int) {
        // SAFETY: raise(3) runs the handler on this thread before it returns.
        assert_eq!(unsafe { libc::raise(sig) }, 0);
    }

    #[test]
    fn each_signal_sets_its_flag_once_installed() {
        install();
        assert!(!take_reload() && !stop_requested());
        raise(libc::SIGHUP);
        assert!(!stop_requested());
        assert!(take_reload(), "SIGHUP asks for a reload");
        assert!(!take_reload(), "once");
        for sig in [libc::SIGTERM, libc::SIGINT] {
            raise(sig);
            assert!(stop_requested(), "signal {sig} stops");
            assert!(stop_requested(), "and stays asked");
            assert!(!take_reload());
            STOP.store(false, Ordering::SeqCst);
        }
    }
}
