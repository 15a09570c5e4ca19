//! Packet-buffer pools.

use super::error::DpdkError;
use std::ffi::CString;
use std::ptr::NonNull;

pub struct Mempool {
    raw: NonNull<dpdk_sys::rte_mempool>,
}

// SAFETY: DPDK mempools are multi-producer/multi-consumer safe; the handle is shared
// by workers that alloc/free through per-lcore caches.
unsafe impl Send for Mempool {}
// SAFETY: as above, every operation on a mempool is thread-safe.
unsafe impl Sync for Mempool {}

impl Mempool {
    /// A pool of `n` mbufs with `data_room` bytes each (headroom included).
    pub fn new(
        name: &str,
        n: u32,
        cache: u32,
        data_room: u16,
        socket: i32,
    ) -> Result<Mempool, DpdkError> {
        let cname = CString::new(name).map_err(|_| DpdkError {
            op: format!("mempool name {name:?}"),
            code: libc::EINVAL,
        })?;
        // SAFETY: cname is a valid C string; DPDK copies it.
        let p = unsafe {
            dpdk_sys::rte_pktmbuf_pool_create(cname.as_ptr(), n, cache, 0, data_room, socket)
        };
        NonNull::new(p).map(|raw| Mempool { raw }).ok_or_else(|| {
            // The size says whether `eal.memory_mb` (or the hugepages) can hold it.
            let mib = (n as u64 * (data_room as u64 + 128)) >> 20;
            DpdkError::from_errno(format!(
                "create mempool {name} ({n} mbufs of {data_room} bytes, about {mib} MiB)"
            ))
        })
    }

    pub fn as_ptr(&self) -> *mut dpdk_sys::rte_mempool {
        self.raw.as_ptr()
    }

    /// Mbufs currently in the pool (not in use).
    pub fn available(&self) -> u32 {
        // SAFETY: the pool is valid for our lifetime.
        unsafe { dpdk_sys::rte_mempool_avail_count(self.raw.as_ptr()) }
    }
}

impl Drop for Mempool {
    fn drop(&mut self) {
        // SAFETY: ports using the pool are closed before the pool is dropped (the
        // runtime's drop order guarantees it).
        unsafe { dpdk_sys::rte_mempool_free(self.raw.as_ptr()) }
    }
}
