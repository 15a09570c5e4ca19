//! Launching closures on worker lcores with panic capture.

use super::error::DpdkError;
use std::ffi::{c_int, c_void};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex};

type Outcome = Arc<Mutex<Option<Result<(), String>>>>;

struct Job {
    f: Box<dyn FnOnce() + Send>,
    outcome: Outcome,
}

/// A running lcore job; `join` waits for it and reports a panic as an error.
pub struct LcoreJob {
    lcore: u32,
    outcome: Outcome,
}

unsafe extern "C" fn trampoline(arg: *mut c_void) -> c_int {
    // SAFETY: arg is the Box<Job> leaked by `launch`, handed to exactly one lcore.
    let job = unsafe { Box::from_raw(arg as *mut Job) };
    let result = catch_unwind(AssertUnwindSafe(job.f)).map_err(|e| {
        e.downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| e.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "panic with a non-string payload".into())
    });
    let failed = result.is_err();
    if let Ok(mut slot) = job.outcome.lock() {
        *slot = Some(result);
    }
    if failed {
        -1
    } else {
        0
    }
}

/// Runs `f` on worker lcore `lcore`.
pub fn launch(lcore: u32, f: impl FnOnce() + Send + 'static) -> Result<LcoreJob, DpdkError> {
    let outcome: Outcome = Arc::new(Mutex::new(None));
    let job = Box::new(Job {
        f: Box::new(f),
        outcome: outcome.clone(),
    });
    let arg = Box::into_raw(job) as *mut c_void;
    // SAFETY: trampoline takes ownership of arg; on failure we take it back.
    let ret = unsafe { dpdk_sys::rte_eal_remote_launch(Some(trampoline), arg, lcore) };
    if ret < 0 {
        // SAFETY: the launch failed, so the lcore never saw arg.
        drop(unsafe { Box::from_raw(arg as *mut Job) });
        return Err(DpdkError::from_ret(format!("launch on lcore {lcore}"), ret));
    }
    Ok(LcoreJob { lcore, outcome })
}

impl LcoreJob {
    pub fn lcore(&self) -> u32 {
        self.lcore
    }

    /// True once the job has returned or panicked.
    pub fn finished(&self) -> bool {
        self.outcome
            .try_lock()
            .map(|s| s.is_some())
            .unwrap_or(false)
    }

    /// Waits for the job to finish; `Err` carries a panic message.
    pub fn join(self) -> Result<(), String> {
        // SAFETY: waiting on an lcore we launched.
        unsafe { dpdk_sys::rte_eal_wait_lcore(self.lcore) };
        let slot = self.outcome.lock().map_err(|_| "outcome lock poisoned")?;
        slot.clone()
            .unwrap_or(Err("lcore returned no outcome".into()))
    }
}
