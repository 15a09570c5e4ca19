//! Packet-buffer pools.

use super::error::DpdkError;
use std::ffi::CString;
use std::ptr::NonNull;

pub struct Mempool {
    raw: NonNull<dpdk_sys::rte_mempool>,
}

/// How much of a pool is taken: a count that does not come back to its idle
/// level after traffic stops is a leak, and one near `capacity` starves the ports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolUse {
    pub capacity: u32,
    pub in_use: u32,
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

    /// Mbufs in use (out of the pool and the per-lcore caches) and the pool's
    /// size. Read from any thread: a sum over the caches that may be a burst
    /// off while workers run, exact once they stop.
    pub fn usage(&self) -> PoolUse {
        // SAFETY: the pool is valid for our lifetime; both only read it.
        unsafe {
            PoolUse {
                capacity: (*self.raw.as_ptr()).size,
                in_use: dpdk_sys::rte_mempool_in_use_count(self.raw.as_ptr()),
            }
        }
    }
}

impl Drop for Mempool {
    fn drop(&mut self) {
        // SAFETY: ports using the pool are closed before the pool is dropped (the
        // runtime's drop order guarantees it).
        unsafe { dpdk_sys::rte_mempool_free(self.raw.as_ptr()) }
    }
}
