//! DPDK errors with the operation that failed and DPDK's own text for the code.

use std::ffi::CStr;
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DpdkError {
    /// What Weir was doing, e.g. "configure port wan".
    pub op: String,
    /// The positive errno / rte_errno value.
    pub code: i32,
}

impl DpdkError {
    /// From a negative-errno return value (`ret < 0`).
    pub fn from_ret(op: impl Into<String>, ret: i32) -> Self {
        DpdkError {
            op: op.into(),
            code: ret.abs(),
        }
    }

    /// From the calling thread's `rte_errno`.
    pub fn from_errno(op: impl Into<String>) -> Self {
        // SAFETY: weir_rte_errno only reads the thread-local rte_errno.
        let code = unsafe { dpdk_sys::weir_rte_errno() };
        DpdkError {
            op: op.into(),
            code,
        }
    }

    /// DPDK's description of the error code.
    pub fn text(&self) -> String {
        // SAFETY: rte_strerror returns a pointer to a static or thread-local C string
        // for any input, which we copy out at once.
        unsafe {
            let p = dpdk_sys::rte_strerror(self.code);
            if p.is_null() {
                return format!("error {}", self.code);
            }
            CStr::from_ptr(p).to_string_lossy().into_owned()
        }
    }
}

impl fmt::Display for DpdkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} (code {})", self.op, self.text(), self.code)
    }
}

impl std::error::Error for DpdkError {}
