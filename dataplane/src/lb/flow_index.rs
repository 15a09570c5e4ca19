//! A fixed-capacity hash index from flow keys to connection-table slots: open
//! addressing with linear probing and backward-shift deletion (no tombstones), so it
//! never allocates or rehashes after creation. Each slot holds a 32-bit tag of the
//! key's hash and a 32-bit reference; the key itself lives in the table entry, which
//! the caller compares through a closure.

use crate::huge::HugeArray;

const EMPTY: u64 = 0;

pub struct FlowIndex {
    slots: HugeArray<u64>,
    mask: usize,
    len: usize,
    max_len: usize,
}

/// Packs a hash tag and a non-zero reference.
#[inline]
fn pack(hash: u64, reference: u32) -> u64 {
    ((hash >> 32) << 32) | (reference as u64 + 1)
}

#[inline]
fn reference_of(slot: u64) -> u32 {
    (slot & 0xffff_ffff) as u32 - 1
}

impl FlowIndex {
    /// Slots of an index for up to `max_len` keys: at most half full.
    fn slots_for(max_len: usize) -> usize {
        (max_len.max(8) * 2).next_power_of_two()
    }

    /// Bytes an index for up to `max_len` keys takes.
    pub fn memory_for(max_len: usize) -> usize {
        FlowIndex::slots_for(max_len) * std::mem::size_of::<u64>()
    }

    /// An index for up to `max_len` keys, at most half full.
    pub fn with_capacity(max_len: usize) -> FlowIndex {
        let size = FlowIndex::slots_for(max_len);
        FlowIndex {
            slots: HugeArray::new(size, EMPTY),
            mask: size - 1,
            len: 0,
            max_len,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Home slot of a hash: from its high half (the stored tag), so that deletion
    /// can recompute any slot's home from the slot alone.
    #[inline]
    pub fn home(&self, hash: u64) -> usize {
        (hash >> 32) as usize & self.mask
    }

    /// Starts loading the slot a look-up of `hash` begins at.
    #[inline]
    pub fn prefetch(&self, hash: u64) {
        crate::prefetch::prefetch(&self.slots[self.home(hash)]);
    }

    /// The reference stored for the key with `hash` that `is_key` accepts.
    #[inline]
    pub fn get(&self, hash: u64, mut is_key: impl FnMut(u32) -> bool) -> Option<u32> {
        let tag = hash >> 32;
        let mut i = self.home(hash);
        loop {
            let s = self.slots[i];
            if s == EMPTY {
                return None;
            }
            if s >> 32 == tag && is_key(reference_of(s)) {
                return Some(reference_of(s));
            }
            i = (i + 1) & self.mask;
        }
    }

    /// The first reference whose slot carries `hash`'s tag, without checking the key
    /// (that would load the entry): the first stage of a burst look-up, which
    /// prefetches the entry and checks it later. `None` when the probe meets an
    /// empty slot first: the key is certainly absent.
    #[inline]
    pub fn candidate(&self, hash: u64) -> Option<u32> {
        self.get(hash, |_| true)
    }

    /// Inserts; `false` when full. The caller guarantees the key is not present.
    #[inline]
    pub fn insert(&mut self, hash: u64, reference: u32) -> bool {
        if self.len >= self.max_len {
            return false;
        }
        let mut i = self.home(hash);
        while self.slots[i] != EMPTY {
            i = (i + 1) & self.mask;
        }
        self.slots[i] = pack(hash, reference);
        self.len += 1;
        true
    }

    /// How many slots a look-up of an absent key with `hash` reads: the run of
    /// taken slots from its home, and the empty one that ends it.
    pub fn probes(&self, hash: u64) -> usize {
        let mut i = self.home(hash);
        let mut n = 1;
        while self.slots[i] != EMPTY {
            i = (i + 1) & self.mask;
            n += 1;
        }
        n
    }

    /// Removes the entry with `hash` and `reference`; `false` if absent.
    pub fn remove(&mut self, hash: u64, reference: u32) -> bool {
        let want = pack(hash, reference);
        let mut i = self.home(hash);
        loop {
            let s = self.slots[i];
            if s == EMPTY {
                return false;
            }
            if s == want {
                break;
            }
            i = (i + 1) & self.mask;
        }
        // Backward-shift: pull later entries of the cluster into the hole when their
        // home position allows it, so lookups never need tombstones.
        let mut hole = i;
        let mut j = (i + 1) & self.mask;
        loop {
            let s = self.slots[j];
            if s == EMPTY {
                break;
            }
            let home = self.home(s);
            let dist_hole = hole.wrapping_sub(home) & self.mask;
            let dist_j = j.wrapping_sub(home) & self.mask;
            if dist_hole < dist_j {
                self.slots[hole] = s;
                hole = j;
            }
            j = (j + 1) & self.mask;
        }
        self.slots[hole] = EMPTY;
        self.len -= 1;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn h(x: u64) -> u64 {
        // Few distinct high bits, so clusters and wrap-around get exercised.
        (x.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 20) << 32 | x
    }

    #[test]
    fn insert_get_remove_against_a_model() {
        let mut idx = FlowIndex::with_capacity(1000);
        let mut model: HashMap<u64, u32> = HashMap::new();
        let mut keys: Vec<u64> = Vec::new();
        let mut next = 0u32;
        assert!(idx.is_empty());
        for round in 0..20_000u64 {
            let k = round.wrapping_mul(7919) % 3000;
            if let Some(&r) = model.get(&k) {
                assert_eq!(idx.get(h(k), |x| x == r), Some(r));
                assert!(idx.remove(h(k), r));
                model.remove(&k);
                keys.retain(|&x| x != k);
                assert_eq!(idx.get(h(k), |x| x == r), None);
            } else if idx.insert(h(k), next) {
                model.insert(k, next);
                keys.push(k);
                next += 1;
            } else {
                assert_eq!(idx.len(), 1000);
            }
            assert_eq!(idx.len(), model.len());
            assert_eq!(idx.is_empty(), model.is_empty());
        }
        for (k, r) in model {
            assert_eq!(idx.get(h(k), |x| x == r), Some(r));
        }
    }

    #[test]
    fn a_candidate_carries_the_tag_and_none_means_absent() {
        // 97 tags for 1000 keys: tags collide, so the candidate is the first slot
        // with the key's tag, not always the key's own.
        let hc = |x: u64| ((x % 97) << 32) | x;
        let mut idx = FlowIndex::with_capacity(1000);
        for k in 0..1000u64 {
            assert!(idx.insert(hc(k), k as u32));
        }
        let mut collided = 0;
        for k in 0..3000u64 {
            let found = idx.get(hc(k), |r| r as u64 == k);
            assert_eq!(found.is_some(), k < 1000);
            match idx.candidate(hc(k)) {
                None => assert_eq!(found, None, "key {k}"),
                Some(r) => {
                    assert_eq!(hc(r as u64) >> 32, hc(k) >> 32, "key {k}");
                    collided += (found != Some(r)) as u32;
                }
            }
        }
        assert!(collided > 0, "tags should collide");
        // An empty index has no candidates.
        assert_eq!(FlowIndex::with_capacity(8).candidate(hc(5)), None);
    }

    #[test]
    fn a_full_index_is_half_empty_so_a_miss_reads_few_slots() {
        // A miss on the packet path (every new flow) reads the run of taken
        // slots from its home. Linear probing at half load reads ~2.5 slots on
        // average; at 98% (an index sized to its keys) it would read hundreds.
        let mut rng = crate::test_rng::XorShift::default();
        let mut idx = FlowIndex::with_capacity(1000);
        for r in 0..1000 {
            assert!(idx.insert(rng.next(), r));
        }
        let misses = 20_000;
        let read: usize = (0..misses).map(|_| idx.probes(rng.next())).sum();
        let mean = read as f64 / misses as f64;
        assert!((1.5..3.5).contains(&mean), "a miss reads {mean:.2} slots");
        // Small tables too: 8 keys or fewer get 16 slots.
        let mut small = FlowIndex::with_capacity(1);
        assert!(small.insert(rng.next(), 0));
        assert_eq!(FlowIndex::memory_for(1), 16 * 8);
        assert_eq!(FlowIndex::memory_for(1000), 2048 * 8);
    }

    #[test]
    fn full_index_refuses() {
        let mut idx = FlowIndex::with_capacity(4);
        for i in 0..4 {
            assert!(idx.insert(h(i), i as u32));
        }
        assert!(!idx.insert(h(99), 99));
    }
}
