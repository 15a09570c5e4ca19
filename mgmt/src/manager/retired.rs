//! Snapshots the manager replaced, kept until no worker holds them, so that
//! they are freed here and never on a worker.
//!
//! A worker reads the published snapshot through an `ArcSwap` guard held for
//! a whole poll. When the manager stores a new one, `ArcSwap` turns each
//! guard on the old one into a reference of its own; if the manager then let
//! go of its reference, the worker whose guard dropped last would free the
//! snapshot (its ring tables, service and backend lists, maps): thousands of
//! frees, the allocator's lock and perhaps `munmap`, in the middle of the
//! packet path. Keeping the old one here until its count says only the
//! manager holds it moves all of that to the management core.

use arc_swap::ArcSwap;
use std::sync::Arc;

/// The replaced values of one `ArcSwap` cell that may still be in use.
pub struct Retired<T> {
    held: Vec<Arc<T>>,
}

impl<T> Default for Retired<T> {
    fn default() -> Self {
        Retired { held: Vec::new() }
    }
}

impl<T> Retired<T> {
    /// Stores `new` in `cell` and keeps the value it replaces.
    pub fn replace(&mut self, cell: &ArcSwap<T>, new: T) {
        // `swap` returns once every reader's guard on the old value has been
        // made a counted reference, so the count read by `reclaim` is exact.
        let old = cell.swap(Arc::new(new));
        self.held.push(old);
        self.reclaim();
    }

    /// Frees the replaced values no one else holds any more. Nothing can
    /// take a new reference to one: the cell no longer gives it out.
    pub fn reclaim(&mut self) {
        self.held.retain(|s| Arc::strong_count(s) > 1);
    }

    /// How many replaced values are still held by someone else.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.held.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::Weak;

    #[test]
    fn a_readers_guard_is_never_the_last_reference() {
        let cell = ArcSwap::from_pointee(vec![1u32; 64]);
        let mut retired = Retired::default();
        let guard = cell.load();
        retired.replace(&cell, vec![2; 64]);
        assert_eq!(retired.len(), 1, "the first value is still read");
        let first: Weak<Vec<u32>> = Arc::downgrade(&retired.held[0]);
        assert_eq!(guard[0], 1, "the reader still sees the value it loaded");
        drop(guard);
        assert!(
            first.upgrade().is_some(),
            "the reader's drop freed the value"
        );
        retired.reclaim();
        assert!(
            first.upgrade().is_none(),
            "reclaim kept a value no one reads"
        );
        assert_eq!(retired.len(), 0);
        assert_eq!(cell.load()[0], 2);
    }

    #[test]
    fn values_no_one_reads_are_freed_at_once_and_held_ones_kept() {
        let cell = ArcSwap::from_pointee(0u64);
        let mut retired = Retired::default();
        retired.replace(&cell, 1);
        assert_eq!(retired.len(), 0, "nobody read 0: freed by replace");
        let held = cell.load_full();
        retired.replace(&cell, 2);
        retired.replace(&cell, 3);
        assert_eq!(retired.len(), 1, "only the value still held is kept");
        assert_eq!(*retired.held[0], 1);
        drop(held);
        retired.reclaim();
        assert_eq!(retired.len(), 0);
    }

    static FREED_BY_READER: AtomicUsize = AtomicUsize::new(0);
    static FREED: AtomicUsize = AtomicUsize::new(0);

    /// A value that counts where it is freed.
    struct Tracked(Vec<u32>);

    impl Drop for Tracked {
        fn drop(&mut self) {
            FREED.fetch_add(1, Ordering::Relaxed);
            if std::thread::current().name() == Some("reader") {
                FREED_BY_READER.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// A thread that polls like a worker (a guard held over each pass) while
    /// the cell is replaced hundreds of times: none of the values it read is
    /// freed on it. (With a plain `store`, about a fifth of them are.)
    #[test]
    fn a_polling_reader_frees_nothing() {
        let cell = Arc::new(ArcSwap::from_pointee(Tracked(vec![0; 4096])));
        let stop = Arc::new(AtomicBool::new(false));
        let (c, s) = (cell.clone(), stop.clone());
        let reader = std::thread::Builder::new()
            .name("reader".into())
            .spawn(move || {
                let (mut sum, mut passes) = (0u64, 0u64);
                while !s.load(Ordering::Relaxed) {
                    let guard = c.load();
                    for i in 0..400 {
                        sum = sum.wrapping_add(u64::from(guard.0[(i * 97) % 4096]));
                    }
                    passes += 1;
                }
                (sum, passes)
            })
            .expect("reader thread");
        let mut retired = Retired::default();
        for i in 0..400 {
            retired.replace(&cell, Tracked(vec![i; 4096]));
            retired.reclaim();
            std::thread::sleep(std::time::Duration::from_micros(200));
        }
        stop.store(true, Ordering::Relaxed);
        let (_, passes) = reader.join().expect("reader");
        retired.reclaim();
        assert!(passes > 400, "the reader hardly ran ({passes} passes)");
        assert_eq!(retired.len(), 0);
        assert_eq!(
            FREED.load(Ordering::Relaxed),
            400,
            "every replaced value freed"
        );
        assert_eq!(FREED_BY_READER.load(Ordering::Relaxed), 0);
    }
}
