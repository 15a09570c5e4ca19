//! The `ring_hash` scheduler's table: consistent hashing flattened into a lookup
//! table of 65536 slots, so the worker's choice is one array read. Built on the
//! management core.
//!
//! Each slot is owned by the backend with the highest weighted rendezvous score for
//! that slot (`weight / -ln(u)`, with `u` a hash of the slot and the backend's name).
//! That gives the two properties a ring is used for, exactly rather than on average:
//! removing a backend moves only the slots it owned (every other slot's highest
//! score is unchanged), and each backend owns slots in proportion to its weight
//! (to within a fraction of a percent at 65536 slots).
//!
//! Cost, on the management core: a whole build hashes every slot for every
//! backend, with one logarithm per slot and distinct weight (about 0.3 s for
//! 1,000 backends on the benchmark machine); a change of a few members (a
//! health check failing, a drain, a weight, a server added or deleted) is
//! applied to the previous table instead, about two scores per slot for each
//! member changed (a millisecond or two, whatever the pool's size; see
//! [`RingTable::update`] and `weir-perf --ring`).

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
        let seeds = seeds(members);
        let weights: Vec<u32> = members.iter().map(|m| m.weight).collect();
        let owners = Owners::new(&seeds, &weights);
        let slots = (0..TABLE_SLOTS).map(|slot| owners.of(slot)).collect();
        RingTable { slots }
    }

    /// The same table as [`build`](Self::build), one score per member and slot
    /// as the ring is defined (what `build` computed before it grouped members
    /// by weight): the reference for tests and the benchmark.
    pub fn build_by_definition(members: &[RingMember<'_>]) -> RingTable {
        let seeds = seeds(members);
        let slots = (0..TABLE_SLOTS)
            .map(|slot| {
                let mut best = (f64::NEG_INFINITY, NO_BACKEND);
                for (i, (m, &seed)) in members.iter().zip(&seeds).enumerate() {
                    if m.weight == 0 {
                        continue;
                    }
                    let s = score(seed, m.weight, slot);
                    if s > best.0 {
                        best = (s, i as u16);
                    }
                }
                best.1
            })
            .collect();
        RingTable { slots }
    }

    /// The table for `new`, given that this one was built for `old`: the same as
    /// `build(new)`, computed from this table when only a few members differ.
    /// A member that gains weight (or joins) is compared with each slot's owner
    /// and takes the slots where it now scores higher; only the slots of a
    /// member that loses weight (or leaves) are scored again over every member,
    /// since no other slot's highest score has changed. Each step is exact, one
    /// member at a time (ties aside: two scores equal to the last bit, where
    /// the first member in order wins, can fall otherwise when members were
    /// reordered).
    pub fn update(&self, old: &[RingMember<'_>], new: &[RingMember<'_>]) -> RingTable {
        match UpdatePlan::new(old, new) {
            Some(plan) if plan.worth_it(new) => self.updated_by(plan, new),
            _ => RingTable::build(new),
        }
    }

    /// The steps of [`update`](Self::update), whatever they cost.
    pub(super) fn updated_by(&self, plan: UpdatePlan, new: &[RingMember<'_>]) -> RingTable {
        let seeds = seeds(new);
        // This table in `new`'s indexes, with the weights it was built for.
        let mut weights = plan.start_weights;
        let mut slots: Box<[u16]> = self
            .slots
            .iter()
            .map(|&o| plan.renumber.get(o as usize).copied().unwrap_or(NO_BACKEND))
            .collect();
        // Slots of members that left: scored again among those that stay.
        if plan.left > 0 {
            let owners = Owners::new(&seeds, &weights);
            for (slot, o) in slots.iter_mut().enumerate() {
                if *o == LEFT {
                    *o = owners.of(slot);
                }
            }
        }
        for (m, member) in new.iter().enumerate() {
            let (was, now) = (weights[m], member.weight);
            weights[m] = now;
            if now > was {
                gain(&mut slots, &seeds, &weights, m);
            } else if now < was {
                let owners = Owners::new(&seeds, &weights);
                for (slot, o) in slots.iter_mut().enumerate() {
                    if *o as usize == m {
                        *o = owners.of(slot);
                    }
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

/// Marks, while a table is updated, a slot whose owner left the pool.
const LEFT: u16 = NO_BACKEND - 1;

fn seeds(members: &[RingMember<'_>]) -> Vec<u64> {
    members
        .iter()
        .map(|m| xxh3_64_with_seed(m.key.as_bytes(), RING_SEED))
        .collect()
}

/// 53 bits of the hash of `slot` under a member's seed.
#[inline]
fn slot_hash(seed: u64, slot: usize) -> u64 {
    xxh3_64_with_seed(&(slot as u64).to_le_bytes(), seed) >> 11
}

/// A member's score for a slot from its `slot_hash`: `weight / -ln(u)`, with
/// `u` in (0, 1), never 0 or 1.
#[inline]
fn score_of(hash: u64, weight: u32) -> f64 {
    // The top hash's half step rounds to 1.0 (53 bits hold no fraction
    // there), whose score would be -inf: it takes the largest u below 1, the
    // highest score, as the top hash should.
    let u = ((hash as f64 + 0.5) / (1u64 << 53) as f64).min(1.0 - f64::EPSILON / 2.0);
    weight as f64 / -u.ln()
}

#[inline]
fn score(seed: u64, weight: u32, slot: usize) -> f64 {
    score_of(slot_hash(seed, slot), weight)
}

/// Finds slots' owners: for each slot, the first member with the highest score
/// (members of weight 0 take no slot), or `NO_BACKEND`. Members are grouped by
/// weight: within a group the highest hash scores highest, so a slot costs one
/// hash per member and one logarithm per distinct weight.
struct Owners {
    /// (seed, member index) of the members above weight 0, a group after
    /// another, each in member order.
    members: Vec<(u64, u16)>,
    /// (weight, end of its group in `members`).
    groups: Vec<(u32, usize)>,
}

impl Owners {
    fn new(seeds: &[u64], weights: &[u32]) -> Owners {
        let mut distinct: Vec<u32> = Vec::new();
        for &w in weights.iter().filter(|&&w| w > 0) {
            if !distinct.contains(&w) {
                distinct.push(w);
            }
        }
        let mut members = Vec::new();
        let mut groups = Vec::with_capacity(distinct.len());
        for w in distinct {
            for (i, (&seed, _)) in seeds
                .iter()
                .zip(weights)
                .enumerate()
                .filter(|(_, (_, &x))| x == w)
            {
                members.push((seed, i as u16));
            }
            groups.push((w, members.len()));
        }
        Owners { members, groups }
    }

    fn of(&self, slot: usize) -> u16 {
        let mut best = f64::NEG_INFINITY;
        let mut who = NO_BACKEND;
        let mut start = 0;
        for &(w, end) in &self.groups {
            let group = &self.members[start..end];
            start = end;
            let (mut top, mut at) = (slot_hash(group[0].0, slot), group[0].1);
            for &(seed, i) in &group[1..] {
                let h = slot_hash(seed, slot);
                if h > top {
                    (top, at) = (h, i);
                }
            }
            let s = score_of(top, w);
            if beats((s, at), (best, who)) {
                (best, who) = (s, at);
            }
        }
        who
    }
}

/// Whether member `i` with score `s` takes a slot from member `who` with
/// score `best`: a higher score, or the same from a member earlier in the
/// pool (what a scan of the pool in order keeps: its first highest).
#[inline]
fn beats((s, i): (f64, u16), (best, who): (f64, u16)) -> bool {
    s > best || (s == best && i < who)
}

/// Member `m`, whose weight has just grown to `weights[m]`, takes each slot
/// where it now scores higher than the owner (or scores the same and comes
/// first, as `Owners` decides ties).
fn gain(slots: &mut [u16], seeds: &[u64], weights: &[u32], m: usize) {
    for (slot, o) in slots.iter_mut().enumerate() {
        let theirs = *o as usize;
        if theirs == m {
            continue;
        }
        if *o == NO_BACKEND {
            *o = m as u16;
            continue;
        }
        let mine = score(seeds[m], weights[m], slot);
        let best = score(seeds[theirs], weights[theirs], slot);
        if beats((mine, m as u16), (best, *o)) {
            *o = m as u16;
        }
    }
}

/// How an update maps the old table onto the new members.
pub(super) struct UpdatePlan {
    /// New index of each old member; `LEFT` for one no longer there.
    renumber: Vec<u16>,
    /// Each new member's weight in the old table (0 for one that joined).
    start_weights: Vec<u32>,
    /// Members that left, and members whose weight differs (joined ones too).
    left: usize,
    changed: usize,
}

impl UpdatePlan {
    /// `None` when the members cannot be matched by key (a key twice).
    pub(super) fn new(old: &[RingMember<'_>], new: &[RingMember<'_>]) -> Option<UpdatePlan> {
        if new.len() >= LEFT as usize || old.len() >= LEFT as usize {
            return None;
        }
        let by_key: std::collections::HashMap<&str, usize> =
            new.iter().enumerate().map(|(i, m)| (m.key, i)).collect();
        if by_key.len() != new.len() {
            return None;
        }
        let mut renumber = Vec::with_capacity(old.len());
        let mut start_weights = vec![0; new.len()];
        let mut matched = vec![false; new.len()];
        for m in old {
            match by_key.get(m.key) {
                Some(&i) if !matched[i] => {
                    matched[i] = true;
                    start_weights[i] = m.weight;
                    renumber.push(i as u16);
                }
                Some(_) => return None,
                None => renumber.push(LEFT),
            }
        }
        let left = renumber.iter().filter(|&&i| i == LEFT).count();
        let changed = new
            .iter()
            .zip(&start_weights)
            .filter(|(m, &w)| m.weight != w)
            .count();
        Some(UpdatePlan {
            renumber,
            start_weights,
            left,
            changed,
        })
    }

    /// Whether the steps cost less than a whole build. Per slot, a build takes
    /// a hash per member and a logarithm (about five hashes' time) per
    /// distinct weight; a step, at most two of each per member changed.
    pub(super) fn worth_it(&self, new: &[RingMember<'_>]) -> bool {
        let mut weights: Vec<u32> = new.iter().map(|m| m.weight).filter(|&w| w > 0).collect();
        weights.sort_unstable();
        weights.dedup();
        12 * (self.changed + self.left) < new.len() + 5 * weights.len()
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
        // Asked for fewer members, it counts those and skips the others' slots.
        assert_eq!(t.shares(2), s[..2]);
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
    fn scores_at_both_ends_of_the_hash_range_are_finite() {
        // u = 0 would score 0, u = 1 minus infinity (it could never win) and
        // u below 0 not a number: the half step and the cap keep u in (0, 1).
        let top = (1u64 << 53) - 1;
        for (hash, weight) in [(0, 1), (0, 100), (top, 1), (top, 100)] {
            let s = score_of(hash, weight);
            assert!(s.is_finite() && s > 0.0, "{hash} {weight}: {s}");
        }
        // Higher hashes score higher, up to the top.
        assert!(score_of(top, 1) > score_of(top - 1, 1));
        assert!(score_of(1, 1) > score_of(0, 1));
    }

    #[test]
    fn a_higher_score_wins_a_slot_and_an_equal_one_from_earlier_in_the_pool() {
        assert!(beats((2.0, 5), (1.0, 1)));
        assert!(!beats((1.0, 1), (2.0, 5)));
        assert!(beats((1.0, 1), (1.0, 5)));
        assert!(!beats((1.0, 5), (1.0, 1)));
        assert!(!beats((1.0, 3), (1.0, 3)));
        // Any score beats no owner yet.
        assert!(beats((1e-300, 9), (f64::NEG_INFINITY, NO_BACKEND)));
    }

    #[test]
    fn a_table_is_shown_by_its_size_not_its_65536_slots() {
        let t = RingTable::build(&members(&["b1"], &[1]));
        assert_eq!(format!("{t:?}"), "RingTable(65536 slots)");
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
