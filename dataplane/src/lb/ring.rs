//! The `ring_hash` scheduler's table: consistent hashing flattened into a lookup
//! table of 65536 slots, so the worker's choice is one array read. Built on the
//! management core.
//!
//! Each slot is owned by the backend with the highest weighted rendezvous score for
//! that slot (`weight / -ln(u)`, with `u` a hash of the slot and the backend's name).
//! That gives the two properties a ring is used for, exactly rather than on average:
//! removing a backend moves only the slots it owned (every other slot's highest
//! score is unchanged), and each backend owns slots in proportion to its weight
//! (to within a fraction of a percent at 65536 slots). Cost: slots x backends hash
//! evaluations per rebuild, on the management core.

use xxhash_rust::xxh3::xxh3_64_with_seed;

/// Slots in the lookup table (indexed by the top 16 bits of the flow hash).
pub const TABLE_SLOTS: usize = 1 << 16;
const RING_SEED: u64 = 0x5745_4952_5249_4e47; // "WEIRRING"

/// Marks an empty table (no backend with weight).
pub const NO_BACKEND: u16 = u16::MAX;

#[derive(Clone)]
pub struct RingTable {
    slots: Box<[u16]>,
}

impl std::fmt::Debug for RingTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RingTable({} slots)", self.slots.len())
    }
}

/// A backend as the ring sees it: a stable identity (its name, so that the ring does
/// not depend on list order) and a weight. The table stores indexes into the list.
pub struct RingMember<'a> {
    pub key: &'a str,
    pub weight: u32,
}

impl RingTable {
    pub fn build(members: &[RingMember<'_>]) -> RingTable {
        let mut slots = vec![NO_BACKEND; TABLE_SLOTS].into_boxed_slice();
        let seeds: Vec<u64> = members
            .iter()
            .map(|m| xxh3_64_with_seed(m.key.as_bytes(), RING_SEED))
            .collect();
        for (i, slot) in slots.iter_mut().enumerate() {
            let mut best = f64::NEG_INFINITY;
            for (idx, m) in members.iter().enumerate() {
                if m.weight == 0 {
                    continue;
                }
                let h = xxh3_64_with_seed(&(i as u64).to_le_bytes(), seeds[idx]);
                // u in (0, 1): 53 random bits, never 0 or 1.
                let u = ((h >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
                let score = m.weight as f64 / -u.ln();
                if score > best {
                    best = score;
                    *slot = idx as u16;
                }
            }
        }
        RingTable { slots }
    }

    /// The member index for `hash`, or `NO_BACKEND`.
    #[inline]
    pub fn choose(&self, hash: u64) -> u16 {
        self.slots[(hash >> 48) as usize]
    }

    /// Slots owned by each member (for tests and `show`).
    pub fn shares(&self, members: usize) -> Vec<usize> {
        let mut v = vec![0; members];
        for &s in self.slots.iter() {
            if (s as usize) < members {
                v[s as usize] += 1;
            }
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members<'a>(names: &'a [&'a str], weights: &[u32]) -> Vec<RingMember<'a>> {
        names
            .iter()
            .zip(weights)
            .map(|(k, &weight)| RingMember { key: k, weight })
            .collect()
    }

    #[test]
    fn equal_weights_split_evenly() {
        let t = RingTable::build(&members(&["b1", "b2", "b3"], &[1, 1, 1]));
        for s in t.shares(3) {
            let frac = s as f64 / TABLE_SLOTS as f64;
            assert!((frac - 1.0 / 3.0).abs() < 0.01, "share {frac}");
        }
    }

    #[test]
    fn weights_one_two_three() {
        let t = RingTable::build(&members(&["b1", "b2", "b3"], &[1, 2, 3]));
        let s = t.shares(3);
        for (share, want) in s.iter().zip([1.0 / 6.0, 2.0 / 6.0, 3.0 / 6.0]) {
            let frac = *share as f64 / TABLE_SLOTS as f64;
            assert!(
                (frac - want).abs() / want < 0.02,
                "share {frac} want {want}"
            );
        }
    }

    #[test]
    fn removing_a_backend_moves_only_its_flows() {
        let full = RingTable::build(&members(&["b1", "b2", "b3"], &[1, 1, 1]));
        // b2 removed: indexes shift, so compare by name.
        let names3 = ["b1", "b2", "b3"];
        let names2 = ["b1", "b3"];
        let less = RingTable::build(&members(&names2, &[1, 1]));
        let mut moved = 0;
        for h in (0..200_000u64).map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15)) {
            let before = names3[full.choose(h) as usize];
            let after = names2[less.choose(h) as usize];
            if before != "b2" {
                assert_eq!(before, after, "a flow not on b2 moved");
            } else {
                moved += 1;
            }
        }
        // About a third of the flows were on b2 and had to move.
        assert!((63_000..70_500).contains(&moved), "{moved}");
    }

    #[test]
    fn zero_weight_gets_nothing_and_empty_pool_has_no_backend() {
        let t = RingTable::build(&members(&["b1", "b2"], &[1, 0]));
        assert_eq!(t.shares(2), vec![TABLE_SLOTS, 0]);
        let t = RingTable::build(&members(&["b1"], &[0]));
        assert_eq!(t.choose(12345), NO_BACKEND);
    }

    #[test]
    fn order_of_members_does_not_matter() {
        let a = RingTable::build(&members(&["b1", "b2", "b3"], &[1, 1, 1]));
        let names = ["b3", "b1", "b2"];
        let b = RingTable::build(&members(&names, &[1, 1, 1]));
        let abc = ["b1", "b2", "b3"];
        for h in (0..10_000u64).map(|i| i << 48) {
            assert_eq!(abc[a.choose(h) as usize], names[b.choose(h) as usize]);
        }
    }
}
