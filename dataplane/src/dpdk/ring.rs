//! Single-producer/single-consumer rings of mbufs between two workers (DPDK
//! `rte_ring` with SP/SC flags): the software hand-off that brings a packet to the
//! worker that owns its connection when the NIC cannot steer it there.

use super::burst::MbufArray;
use super::error::DpdkError;
use super::mbuf::Mbuf;
use std::ffi::{c_void, CString};
use std::ptr::NonNull;
use std::sync::Arc;

// rte_ring.h flags (macros bindgen does not carry).
const RING_F_SP_ENQ: u32 = 0x0001;
const RING_F_SC_DEQ: u32 = 0x0002;

struct Inner(NonNull<dpdk_sys::rte_ring>);

// SAFETY: the ring is built for one producer and one consumer on any threads; the
// handles below enforce one of each.
unsafe impl Send for Inner {}
// SAFETY: as above; shared only through the two handles.
unsafe impl Sync for Inner {}

impl Drop for Inner {
    fn drop(&mut self) {
        // Free whatever is still queued, then the ring.
        let mut ptrs = [std::ptr::null_mut::<c_void>(); 32];
        loop {
            // SAFETY: both handles are gone (this is the last Arc), so this thread is
            // the only user.
            let n = unsafe {
                dpdk_sys::rte_ring_sc_dequeue_burst(
                    self.0.as_ptr(),
                    ptrs.as_mut_ptr(),
                    32,
                    std::ptr::null_mut(),
                )
            };
            if n == 0 {
                break;
            }
            for &p in &ptrs[..n as usize] {
                // SAFETY: the ring only ever holds mbufs handed over by a Producer.
                drop(unsafe { Mbuf::from_raw(p as *mut dpdk_sys::rte_mbuf) });
            }
        }
        // SAFETY: the ring is empty and unused.
        unsafe { dpdk_sys::rte_ring_free(self.0.as_ptr()) }
    }
}

pub struct Producer(Arc<Inner>);
pub struct Consumer(Arc<Inner>);

/// A ring of `size` (a power of two) slots.
pub fn handoff_ring(name: &str, size: u32) -> Result<(Producer, Consumer), DpdkError> {
    let c = CString::new(name).map_err(|_| DpdkError {
        op: format!("ring name {name:?}"),
        code: libc::EINVAL,
    })?;
    // SAFETY: valid name; DPDK copies it.
    let r =
        unsafe { dpdk_sys::rte_ring_create(c.as_ptr(), size, -1, RING_F_SP_ENQ | RING_F_SC_DEQ) };
    let r = NonNull::new(r).ok_or_else(|| DpdkError::from_errno(format!("create ring {name}")))?;
    let inner = Arc::new(Inner(r));
    Ok((Producer(inner.clone()), Consumer(inner)))
}

impl Producer {
    /// Enqueues everything in `from`; what does not fit is freed and counted.
    #[inline]
    pub fn send(&mut self, from: &mut MbufArray) -> u64 {
        let (ptrs, len) = from.raw_parts();
        if len == 0 {
            return 0;
        }
        // SAFETY: single producer (this handle); ptrs[..len] are owned mbufs whose
        // ownership passes to the ring for the first `n`.
        let n = unsafe {
            dpdk_sys::rte_ring_sp_enqueue_burst(
                (self.0).0.as_ptr(),
                ptrs as *const *mut c_void,
                len as u32,
                std::ptr::null_mut(),
            )
        } as usize;
        from.forget_first(n)
    }
}

impl Consumer {
    /// Dequeues into the free space of `into`.
    #[inline]
    pub fn receive(&mut self, into: &mut MbufArray) -> usize {
        let (ptr, room) = into.free_tail();
        // SAFETY: single consumer (this handle); DPDK writes at most `room` mbuf
        // pointers, each owned by the array afterwards.
        let n = unsafe {
            dpdk_sys::rte_ring_sc_dequeue_burst(
                (self.0).0.as_ptr(),
                ptr as *mut *mut c_void,
                room as u32,
                std::ptr::null_mut(),
            )
        } as usize;
        into.commit_tail(n);
        n
    }
}
