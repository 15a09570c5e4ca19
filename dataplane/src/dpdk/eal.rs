//! The Environment Abstraction Layer: initialised once per process from an argument
//! list built out of the configuration, cleaned up on drop.

use super::error::DpdkError;
use std::ffi::{c_char, CString};
use std::sync::atomic::{AtomicBool, Ordering};

static INITIALISED: AtomicBool = AtomicBool::new(false);

/// Proof that the EAL is up. Dropping it runs `rte_eal_cleanup`; drop every port and
/// mempool first.
pub struct Eal {
    _private: (),
}

impl Eal {
    /// Starts the EAL with `args` (the first is the program name). Fails if called twice.
    pub fn init(args: &[String]) -> Result<Eal, DpdkError> {
        if INITIALISED.swap(true, Ordering::SeqCst) {
            return Err(DpdkError {
                op: "rte_eal_init (already initialised)".into(),
                code: libc::EALREADY,
            });
        }
        // EAL may keep pointers into argv (it permutes it with getopt), so the strings
        // live for the rest of the process: a one-time, bounded leak.
        let owned: Vec<CString> = args
            .iter()
            .map(|a| CString::new(a.as_str()).unwrap_or_default())
            .collect();
        let argv: &mut [*mut c_char] = Box::leak(
            owned
                .into_iter()
                .map(|c| c.into_raw())
                .collect::<Vec<_>>()
                .into_boxed_slice(),
        );
        // SAFETY: argv holds argc valid NUL-terminated strings that are never freed.
        let ret = unsafe { dpdk_sys::rte_eal_init(argv.len() as i32, argv.as_mut_ptr()) };
        if ret < 0 {
            INITIALISED.store(false, Ordering::SeqCst);
            return Err(DpdkError::from_errno(format!(
                "rte_eal_init {}",
                args.join(" ")
            )));
        }
        Ok(Eal { _private: () })
    }

    /// TSC ticks per second.
    pub fn tsc_hz(&self) -> u64 {
        // SAFETY: valid after EAL init.
        unsafe { dpdk_sys::rte_get_tsc_hz() }
    }

    /// The lcore ids of the worker lcores (every enabled lcore but the main one).
    pub fn worker_lcores(&self) -> Vec<u32> {
        let mut out = Vec::new();
        // SAFETY: rte_get_next_lcore is safe to call after init; RTE_MAX_LCORE ends it.
        unsafe {
            let mut i = dpdk_sys::rte_get_next_lcore(u32::MAX, 1, 0);
            while i < dpdk_sys::RTE_MAX_LCORE {
                out.push(i);
                i = dpdk_sys::rte_get_next_lcore(i, 1, 0);
            }
        }
        out
    }

    pub fn main_lcore(&self) -> u32 {
        // SAFETY: valid after EAL init.
        unsafe { dpdk_sys::rte_get_main_lcore() }
    }

    /// The directory the EAL keeps its runtime files in (`/var/run/dpdk/PREFIX`
    /// as root, under `$XDG_RUNTIME_DIR` or `/tmp` otherwise).
    pub fn runtime_dir(&self) -> std::path::PathBuf {
        // SAFETY: valid after EAL init; it returns a pointer to a static,
        // NUL-terminated buffer that the EAL does not change after init.
        let dir = unsafe { std::ffi::CStr::from_ptr(dpdk_sys::rte_eal_get_runtime_dir()) };
        std::path::PathBuf::from(dir.to_string_lossy().into_owned())
    }

    /// The DPDK version string, e.g. "DPDK 22.11.4".
    pub fn version() -> String {
        // SAFETY: rte_version returns a pointer to a static string.
        unsafe {
            std::ffi::CStr::from_ptr(dpdk_sys::rte_version())
                .to_string_lossy()
                .into_owned()
        }
    }
}

impl Drop for Eal {
    fn drop(&mut self) {
        // SAFETY: all lcores are idle and ports closed by the owner before this runs.
        unsafe {
            dpdk_sys::rte_eal_cleanup();
        }
    }
}
