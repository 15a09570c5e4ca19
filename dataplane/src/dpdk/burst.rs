//! Burst RX/TX on queues a worker owns, and the fixed-size mbuf array both use.

use super::mbuf::Mbuf;
use crate::buf::PacketBuf;

/// Packets per RX burst and per TX flush.
pub const BURST: usize = 32;

/// Up to [`BURST`] owned mbufs. Whatever is left in it when dropped is freed.
pub struct MbufArray {
    ptrs: [*mut dpdk_sys::rte_mbuf; BURST],
    len: usize,
    /// Bytes of the packets held, for TX byte counters.
    bytes: u64,
}

// SAFETY: the array owns its mbufs exactly as a Vec<Mbuf> would.
unsafe impl Send for MbufArray {}

impl Default for MbufArray {
    fn default() -> Self {
        MbufArray {
            ptrs: [std::ptr::null_mut(); BURST],
            len: 0,
            bytes: 0,
        }
    }
}

impl MbufArray {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn is_full(&self) -> bool {
        self.len == BURST
    }

    /// Bytes of the packets held (summed as they were received or pushed).
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Adds `m`, or gives it back when the array is full.
    #[inline]
    pub fn push(&mut self, m: Mbuf) -> Result<(), Mbuf> {
        if self.len == BURST {
            return Err(m);
        }
        self.bytes += m.pkt_len() as u64;
        self.ptrs[self.len] = m.into_raw();
        self.len += 1;
        Ok(())
    }

    /// The owned pointers, for a bulk hand-over.
    pub(crate) fn raw_parts(&mut self) -> (*mut *mut dpdk_sys::rte_mbuf, usize) {
        (self.ptrs.as_mut_ptr(), self.len)
    }

    /// After the first `n` mbufs were handed over: frees the rest, empties the
    /// array, and returns how many were freed.
    pub(crate) fn forget_first(&mut self, n: usize) -> u64 {
        for &p in &self.ptrs[n..self.len] {
            // SAFETY: the tail was not taken; it is still ours.
            drop(unsafe { Mbuf::from_raw(p) });
        }
        let dropped = (self.len - n) as u64;
        self.len = 0;
        self.bytes = 0;
        dropped
    }

    /// The free tail, for a bulk fill.
    pub(crate) fn free_tail(&mut self) -> (*mut *mut dpdk_sys::rte_mbuf, usize) {
        // SAFETY: len <= BURST, so the pointer stays inside the array.
        (
            unsafe { self.ptrs.as_mut_ptr().add(self.len) },
            BURST - self.len,
        )
    }

    /// Takes ownership of `n` mbufs written into the free tail.
    pub(crate) fn commit_tail(&mut self, n: usize) {
        for i in self.len..self.len + n {
            // SAFETY: freshly written, owned mbufs; reading the length only.
            let m = std::mem::ManuallyDrop::new(unsafe { Mbuf::from_raw(self.ptrs[i]) });
            self.bytes += m.pkt_len() as u64;
        }
        self.len += n;
    }

    /// Takes every mbuf out, in order.
    #[inline]
    pub fn drain(&mut self) -> Drain<'_> {
        let len = std::mem::replace(&mut self.len, 0);
        self.bytes = 0;
        Drain {
            array: self,
            next: 0,
            len,
        }
    }

    /// The mbuf at `i`, for prefetching the next packets of a burst.
    #[inline]
    pub fn prefetch(&self, i: usize) {
        if i < self.len {
            // SAFETY: ptrs[..len] are valid mbufs we own; the temporary view is
            // forgotten, not dropped.
            let m = std::mem::ManuallyDrop::new(unsafe { Mbuf::from_raw(self.ptrs[i]) });
            m.prefetch();
        }
    }
}

impl Drop for MbufArray {
    fn drop(&mut self) {
        for &p in &self.ptrs[..self.len] {
            // SAFETY: ptrs[..len] are mbufs we own.
            drop(unsafe { Mbuf::from_raw(p) });
        }
    }
}

/// Iterator over the mbufs of a drained array; frees any it did not yield.
pub struct Drain<'a> {
    array: &'a mut MbufArray,
    next: usize,
    len: usize,
}

impl Iterator for Drain<'_> {
    type Item = Mbuf;

    #[inline]
    fn next(&mut self) -> Option<Mbuf> {
        if self.next == self.len {
            return None;
        }
        let p = self.array.ptrs[self.next];
        self.next += 1;
        // SAFETY: each slot in ..len is yielded once and ownership passes to the caller.
        Some(unsafe { Mbuf::from_raw(p) })
    }
}

impl Drain<'_> {
    /// Prefetches the packet `ahead` places after the next one to be yielded.
    #[inline]
    pub fn prefetch_ahead(&self, ahead: usize) {
        let i = self.next + ahead;
        if i < self.len {
            // SAFETY: slot i (not yet yielded) is a valid mbuf we own; the view is
            // forgotten, not dropped.
            let m = std::mem::ManuallyDrop::new(unsafe { Mbuf::from_raw(self.array.ptrs[i]) });
            m.prefetch();
        }
    }
}

impl Drop for Drain<'_> {
    fn drop(&mut self) {
        for _ in self.by_ref() {}
    }
}

/// Queue `queue` of port `port` for receiving. One owner (a worker) per queue.
pub struct RxQueue {
    pub(crate) port: u16,
    pub(crate) queue: u16,
}

impl RxQueue {
    /// Receives up to the free space of `into` (which should be empty).
    #[inline]
    pub fn burst(&mut self, into: &mut MbufArray) -> usize {
        let room = BURST - into.len;
        // SAFETY: the queue is configured and owned by this thread; DPDK writes at most
        // `room` valid mbuf pointers into the free tail of the array.
        let n = unsafe {
            dpdk_sys::rte_eth_rx_burst(
                self.port,
                self.queue,
                into.ptrs.as_mut_ptr().add(into.len),
                room as u16,
            )
        } as usize;
        for i in into.len..into.len + n {
            // SAFETY: freshly received mbufs; reading the length only.
            let m = std::mem::ManuallyDrop::new(unsafe { Mbuf::from_raw(into.ptrs[i]) });
            into.bytes += m.len() as u64;
        }
        into.len += n;
        n
    }

    pub fn port(&self) -> u16 {
        self.port
    }
}

/// Queue `queue` of port `port` for transmitting. One owner (a worker) per queue.
pub struct TxQueue {
    pub(crate) port: u16,
    pub(crate) queue: u16,
}

/// What a flush did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Sent {
    pub packets: u64,
    pub bytes: u64,
    /// Packets the queue had no room for, freed.
    pub dropped: u64,
}

impl TxQueue {
    /// Transmits everything in `from`; what the NIC does not take is freed and counted.
    #[inline]
    pub fn flush(&mut self, from: &mut MbufArray) -> Sent {
        if from.len == 0 {
            return Sent::default();
        }
        let total_bytes = from.bytes;
        // SAFETY: ptrs[..len] are valid mbufs; DPDK takes ownership of the first `n`.
        let n = unsafe {
            dpdk_sys::rte_eth_tx_burst(
                self.port,
                self.queue,
                from.ptrs.as_mut_ptr(),
                from.len as u16,
            )
        } as usize;
        let mut dropped_bytes = 0u64;
        for &p in &from.ptrs[n..from.len] {
            // SAFETY: the unsent tail is still ours; free it.
            let m = unsafe { Mbuf::from_raw(p) };
            dropped_bytes += m.pkt_len() as u64;
        }
        let dropped = (from.len - n) as u64;
        from.len = 0;
        from.bytes = 0;
        Sent {
            packets: n as u64,
            bytes: total_bytes - dropped_bytes,
            dropped,
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }
}

// SAFETY: a queue handle is a pair of integers; its single owner may live on any thread.
unsafe impl Send for RxQueue {}
// SAFETY: as above.
unsafe impl Send for TxQueue {}
