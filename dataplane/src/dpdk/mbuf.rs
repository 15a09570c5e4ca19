//! An owning handle to one `rte_mbuf`.

use crate::buf::{NoRoom, PacketBuf};
use std::ptr::NonNull;

/// One packet buffer. Dropping it returns it to its pool. `Send` (it moves between
/// queues on one thread or hands over to another), not `Sync`.
#[repr(transparent)]
pub struct Mbuf(NonNull<dpdk_sys::rte_mbuf>);

// SAFETY: an mbuf is owned by exactly one Mbuf at a time; moving it to another thread
// moves that ownership.
unsafe impl Send for Mbuf {}

impl Mbuf {
    /// # Safety
    /// `p` must be a valid mbuf that the caller owns and gives up.
    #[inline]
    pub unsafe fn from_raw(p: *mut dpdk_sys::rte_mbuf) -> Mbuf {
        // SAFETY: the caller promises p is a valid, non-null mbuf.
        Mbuf(unsafe { NonNull::new_unchecked(p) })
    }

    /// Gives up ownership (to a TX queue).
    #[inline]
    pub fn into_raw(self) -> *mut dpdk_sys::rte_mbuf {
        let p = self.0.as_ptr();
        std::mem::forget(self);
        p
    }

    /// A fresh mbuf from `pool`, or `None` if the pool is empty.
    pub fn alloc(pool: &super::Mempool) -> Option<Mbuf> {
        // SAFETY: the pool is valid; a null return means empty.
        let p = unsafe { dpdk_sys::rte_pktmbuf_alloc(pool.as_ptr()) };
        NonNull::new(p).map(Mbuf)
    }

    /// A fresh mbuf from the pool this one came from.
    pub fn alloc_sibling(&self) -> Option<Mbuf> {
        // SAFETY: an mbuf's pool pointer is the valid pool it was allocated from,
        // which outlives every mbuf in it; a null return means empty.
        let p = unsafe { dpdk_sys::rte_pktmbuf_alloc(self.raw().pool) };
        NonNull::new(p).map(Mbuf)
    }

    #[inline]
    fn raw(&self) -> &dpdk_sys::rte_mbuf {
        // SAFETY: we own a valid mbuf.
        unsafe { self.0.as_ref() }
    }

    #[inline]
    fn raw_mut(&mut self) -> &mut dpdk_sys::rte_mbuf {
        // SAFETY: we own a valid mbuf exclusively.
        unsafe { self.0.as_mut() }
    }

    /// Number of segments; Weir's pipeline handles single-segment packets only.
    #[inline]
    pub fn nb_segs(&self) -> u16 {
        self.raw().nb_segs
    }

    #[inline]
    pub fn pkt_len(&self) -> u32 {
        self.raw().pkt_len
    }

    /// The input port DPDK recorded at RX.
    #[inline]
    pub fn port(&self) -> u16 {
        self.raw().port
    }

    /// Hints the CPU to load the packet's first cache line.
    #[inline]
    pub fn prefetch(&self) {
        #[cfg(target_arch = "x86_64")]
        {
            let m = self.raw();
            // SAFETY: prefetch never faults, whatever the address.
            unsafe {
                let p = (m.buf_addr as *const i8).add(m.data_off as usize);
                std::arch::x86_64::_mm_prefetch(p, std::arch::x86_64::_MM_HINT_T0);
            }
        }
    }
}

impl PacketBuf for Mbuf {
    #[inline]
    fn ipv4_checksum(&self) -> crate::buf::HwCheck {
        use crate::buf::HwCheck;
        match self.raw().ol_flags & dpdk_sys::RTE_MBUF_F_RX_IP_CKSUM_MASK as u64 {
            f if f == dpdk_sys::RTE_MBUF_F_RX_IP_CKSUM_GOOD as u64 => HwCheck::Good,
            f if f == dpdk_sys::RTE_MBUF_F_RX_IP_CKSUM_BAD as u64 => HwCheck::Bad,
            _ => HwCheck::Unknown,
        }
    }

    #[inline]
    fn data(&self) -> &[u8] {
        let m = self.raw();
        // SAFETY: buf_addr + data_off .. + data_len lies inside the mbuf's buffer.
        unsafe {
            std::slice::from_raw_parts(
                (m.buf_addr as *const u8).add(m.data_off as usize),
                m.data_len as usize,
            )
        }
    }

    #[inline]
    fn data_mut(&mut self) -> &mut [u8] {
        let m = self.raw_mut();
        // SAFETY: as in data(); we hold the only reference to the mbuf.
        unsafe {
            std::slice::from_raw_parts_mut(
                (m.buf_addr as *mut u8).add(m.data_off as usize),
                m.data_len as usize,
            )
        }
    }

    fn set_len(&mut self, len: usize) -> Result<(), NoRoom> {
        let m = self.raw_mut();
        if m.nb_segs != 1 || m.data_off as usize + len > m.buf_len as usize {
            return Err(NoRoom);
        }
        m.data_len = len as u16;
        m.pkt_len = len as u32;
        Ok(())
    }

    fn prepend(&mut self, n: usize) -> Result<(), NoRoom> {
        let m = self.raw_mut();
        if m.nb_segs != 1 || n > m.data_off as usize {
            return Err(NoRoom);
        }
        m.data_off -= n as u16;
        m.data_len += n as u16;
        m.pkt_len += n as u32;
        Ok(())
    }

    fn adj(&mut self, n: usize) -> Result<(), NoRoom> {
        let m = self.raw_mut();
        if m.nb_segs != 1 || n > m.data_len as usize {
            return Err(NoRoom);
        }
        m.data_off += n as u16;
        m.data_len -= n as u16;
        m.pkt_len -= n as u32;
        Ok(())
    }
}

impl Drop for Mbuf {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: we own the mbuf (and its chain); it is freed exactly once.
        unsafe { dpdk_sys::rte_pktmbuf_free(self.0.as_ptr()) }
    }
}
