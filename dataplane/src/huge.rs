//! Fixed-length arrays for the big per-core tables (connection entries, the flow
//! index, the timer wheel), backed by transparent huge pages when the kernel allows
//! them. A million-entry table spans 160 MiB: over 4 KiB pages every look-up also
//! misses the TLB (and, in a VM, walks two page tables); over 2 MiB pages the
//! translations stay cached. Small arrays, and machines where the mapping or the
//! advice fails, get ordinary heap memory: only speed differs.

use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;

const HUGE_PAGE: usize = 2 << 20;

pub struct HugeArray<T: Copy> {
    ptr: NonNull<T>,
    len: usize,
    backing: Backing<T>,
}

enum Backing<T> {
    /// An anonymous mapping of `len` bytes at `base`; the array starts at the first
    /// 2 MiB boundary inside it.
    Mapped { base: *mut libc::c_void, len: usize },
    /// Held only to be freed with the array.
    Heap(#[allow(dead_code)] Box<[T]>),
}

// SAFETY: a HugeArray owns its memory exclusively, like a Box<[T]>.
unsafe impl<T: Copy + Send> Send for HugeArray<T> {}
// SAFETY: shared access only hands out &[T], like a Box<[T]>.
unsafe impl<T: Copy + Sync> Sync for HugeArray<T> {}

impl<T: Copy> HugeArray<T> {
    /// `len` copies of `fill`.
    pub fn new(len: usize, fill: T) -> HugeArray<T> {
        let bytes = len.saturating_mul(std::mem::size_of::<T>());
        if bytes >= HUGE_PAGE && std::mem::align_of::<T>() <= HUGE_PAGE {
            if let Some(a) = Self::mapped(len, bytes, fill) {
                return a;
            }
        }
        let mut heap = vec![fill; len].into_boxed_slice();
        HugeArray {
            ptr: NonNull::new(heap.as_mut_ptr()).unwrap_or(NonNull::dangling()),
            len,
            backing: Backing::Heap(heap),
        }
    }

    fn mapped(len: usize, bytes: usize, fill: T) -> Option<HugeArray<T>> {
        let map_len = bytes.checked_add(HUGE_PAGE)?;
        // SAFETY: a fresh private anonymous mapping; no existing memory is touched.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                map_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return None;
        }
        let offset = (HUGE_PAGE - base as usize % HUGE_PAGE) % HUGE_PAGE;
        // SAFETY: offset < HUGE_PAGE, so start..start + bytes lies inside the mapping.
        let start = unsafe { (base as *mut u8).add(offset) };
        // Advice before the first touch, so faults take huge pages. Failure (THP
        // off) leaves 4 KiB pages, which is correct, only slower.
        // SAFETY: the range is inside our own mapping.
        unsafe { libc::madvise(start as *mut libc::c_void, bytes, libc::MADV_HUGEPAGE) };
        let ptr = start as *mut T;
        for i in 0..len {
            // SAFETY: i < len and the range holds len elements; start is 2 MiB
            // aligned, which satisfies T's alignment (checked by the caller).
            unsafe { ptr.add(i).write(fill) };
        }
        Some(HugeArray {
            ptr: NonNull::new(ptr)?,
            len,
            backing: Backing::Mapped { base, len: map_len },
        })
    }

    /// Whether the array lives in its own mapping advised for huge pages.
    pub fn is_mapped(&self) -> bool {
        matches!(self.backing, Backing::Mapped { .. })
    }
}

impl<T: Copy> Deref for HugeArray<T> {
    type Target = [T];
    #[inline]
    fn deref(&self) -> &[T] {
        // SAFETY: ptr points at len initialised elements owned by self.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl<T: Copy> DerefMut for HugeArray<T> {
    #[inline]
    fn deref_mut(&mut self) -> &mut [T] {
        // SAFETY: as in deref, and &mut self makes the access exclusive.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl<T: Copy> Drop for HugeArray<T> {
    fn drop(&mut self) {
        if let Backing::Mapped { base, len } = self.backing {
            // SAFETY: base/len are exactly the mapping made in `mapped`; T is Copy,
            // so there is nothing to drop inside.
            unsafe { libc::munmap(base, len) };
        }
    }
}

impl<T: Copy + std::fmt::Debug> std::fmt::Debug for HugeArray<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "HugeArray(len {}, mapped {})",
            self.len,
            self.is_mapped()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_arrays_use_the_heap_and_big_ones_a_2mib_aligned_mapping() {
        let mut small = HugeArray::new(100, 7u32);
        assert!(!small.is_mapped());
        assert!(small.iter().all(|&v| v == 7));
        small[99] = 1;
        assert_eq!(small[99], 1);

        let n = (3 << 20) / 8;
        let mut big = HugeArray::new(n, u64::MAX);
        assert!(big.is_mapped());
        assert_eq!(big.as_ptr() as usize % HUGE_PAGE, 0);
        assert_eq!(big.len(), n);
        assert!(big.iter().all(|&v| v == u64::MAX));
        big[n - 1] = 3;
        assert_eq!(big[n - 1], 3);
        assert!(HugeArray::new(0, 0u8).is_empty());
    }
}
