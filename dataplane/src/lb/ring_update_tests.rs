//! `RingTable::build` gives each slot to the first member with the highest
//! `weight / -ln(u)` (as `build_by_definition` does, member by member), and
//! `RingTable::update` gives the table a whole build gives: for random pools
//! whose members change weight (down, up, drained, a canary's weight), join,
//! leave or are reordered, slot for slot.

use super::ring::{RingMember, RingTable, UpdatePlan, NO_BACKEND, TABLE_SLOTS};
use proptest::prelude::*;

const NAMES: [&str; 16] = [
    "198.18.1.1:80",
    "198.18.1.2:80",
    "198.18.1.3:80",
    "198.18.1.4:80",
    "198.18.1.5:80",
    "198.18.1.6:80",
    "198.18.1.7:80",
    "198.18.1.8:80",
    "198.18.1.9:80",
    "198.18.1.10:80",
    "198.18.1.11:80",
    "198.18.1.12:80",
    "[2001:db8::1]:80",
    "[2001:db8::2]:80",
    "[2001:db8::3]:8080",
    "198.18.1.1:8080",
];

fn members<'a>(pool: &[(&'a str, u32)]) -> Vec<RingMember<'a>> {
    pool.iter()
        .map(|&(key, weight)| RingMember { key, weight })
        .collect()
}

/// Slots where the two tables name different members (by key).
fn differing(a: (&RingTable, &[(&str, u32)]), b: (&RingTable, &[(&str, u32)])) -> usize {
    (0..TABLE_SLOTS)
        .filter(|&s| owner_name(a, s) != owner_name(b, s))
        .count()
}

fn owner_name<'a>((t, pool): (&RingTable, &[(&'a str, u32)]), slot: usize) -> Option<&'a str> {
    let i = t.choose((slot as u64) << 48);
    (i != NO_BACKEND).then(|| pool[i as usize].0)
}

#[test]
fn a_build_gives_each_slot_to_the_member_with_the_highest_score() {
    let pools: [&[(&str, u32)]; 4] = [
        &[(NAMES[0], 1), (NAMES[1], 1), (NAMES[2], 1)],
        &[
            (NAMES[3], 1),
            (NAMES[0], 2),
            (NAMES[5], 3),
            (NAMES[1], 2),
            (NAMES[7], 0),
        ],
        &[(NAMES[9], 5)],
        &[
            (NAMES[12], 10),
            (NAMES[13], 1),
            (NAMES[14], 7),
            (NAMES[15], 1),
            (NAMES[2], 10),
            (NAMES[4], 3),
            (NAMES[6], 1),
            (NAMES[8], 3),
        ],
    ];
    for pool in pools {
        let t = RingTable::build(&members(pool));
        let defined = RingTable::build_by_definition(&members(pool));
        assert_eq!(differing((&t, pool), (&defined, pool)), 0);
    }
    // A key twice scores the same for every slot: the first of the two wins
    // each tie, in both builds, so the second owns nothing.
    let twice = [(NAMES[0], 1), (NAMES[0], 1), (NAMES[1], 1)];
    for t in [
        RingTable::build(&members(&twice)),
        RingTable::build_by_definition(&members(&twice)),
    ] {
        let shares = t.shares(3);
        assert_eq!(shares[1], 0, "{shares:?}");
        assert!(shares[0] > TABLE_SLOTS / 3 && shares[2] > TABLE_SLOTS / 3);
    }
}

/// One change to a pool.
#[derive(Debug, Clone)]
enum Edit {
    /// Member `i % len` takes weight `w` (0: down, drained, unreachable).
    Weight(usize, u32),
    /// Member `i % len` leaves the pool.
    Leave(usize),
    /// A member not in the pool joins at position `i % (len + 1)`.
    Join(usize, u32),
    /// Two members swap places in the list.
    Swap(usize, usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        4 => (any::<usize>(), 0u32..6).prop_map(|(i, w)| Edit::Weight(i, w)),
        1 => any::<usize>().prop_map(Edit::Leave),
        1 => (any::<usize>(), 1u32..6).prop_map(|(i, w)| Edit::Join(i, w)),
        1 => (any::<usize>(), any::<usize>()).prop_map(|(i, j)| Edit::Swap(i, j)),
    ]
}

fn apply(pool: &mut Vec<(&'static str, u32)>, e: &Edit) {
    let len = pool.len();
    match *e {
        Edit::Weight(i, w) if len > 0 => pool[i % len].1 = w,
        Edit::Leave(i) if len > 1 => {
            pool.remove(i % len);
        }
        Edit::Join(i, w) => {
            if let Some(name) = NAMES.iter().find(|n| !pool.iter().any(|(k, _)| k == *n)) {
                pool.insert(i % (len + 1), (name, w));
            }
        }
        Edit::Swap(i, j) if len > 0 => pool.swap(i % len, j % len),
        _ => {}
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn an_update_gives_the_table_a_build_gives(
        size in 2usize..13,
        weights in proptest::collection::vec(0u32..6, 12),
        rounds in proptest::collection::vec(proptest::collection::vec(edit(), 1..4), 1..4),
    ) {
        let mut pool: Vec<(&'static str, u32)> =
            NAMES[..size].iter().zip(&weights).map(|(&k, &w)| (k, w)).collect();
        let mut table = RingTable::build(&members(&pool));
        for edits in &rounds {
            let before = pool.clone();
            for e in edits {
                apply(&mut pool, e);
            }
            let built = RingTable::build(&members(&pool));
            // The steps, whether or not they would be worth it here.
            if let Some(plan) = UpdatePlan::new(&members(&before), &members(&pool)) {
                let stepped = table.updated_by(plan, &members(&pool));
                prop_assert_eq!(
                    differing((&stepped, &pool), (&built, &pool)), 0,
                    "steps: {:?} -> {:?}", before, pool
                );
            }
            let updated = table.update(&members(&before), &members(&pool));
            prop_assert_eq!(
                differing((&updated, &pool), (&built, &pool)), 0,
                "{:?} -> {:?}", before, pool
            );
            table = updated;
        }
    }
}

/// The pool of a large service: 200 members of weight 1..=3.
fn large() -> Vec<(String, u32)> {
    (0..200)
        .map(|i| {
            (
                format!("198.18.{}.{}:80", 2 + i / 200, i % 200),
                1 + i as u32 % 3,
            )
        })
        .collect()
}

#[test]
fn a_large_pool_is_updated_in_place_and_matches_a_build() {
    let owned = large();
    let pool: Vec<(&str, u32)> = owned.iter().map(|(k, w)| (k.as_str(), *w)).collect();
    let table = RingTable::build(&members(&pool));
    let mut steps: Vec<Vec<(&str, u32)>> = Vec::new();
    let mut p = pool.clone();
    p[17].1 = 0; // a health check fails
    steps.push(p.clone());
    p[17].1 = 2; // and passes again
    p[90].1 = 9; // a weight raised at run time
    steps.push(p.clone());
    p.remove(150); // a server deleted
    steps.push(p.clone());
    p.push(("198.18.9.9:80", 3)); // a server added
    steps.push(p.clone());
    let (mut from, mut t) = (pool, table);
    for step in steps {
        // Few members change: the update works from the table.
        let plan = UpdatePlan::new(&members(&from), &members(&step)).unwrap();
        assert!(plan.worth_it(&members(&step)));
        let updated = t.update(&members(&from), &members(&step));
        let built = RingTable::build(&members(&step));
        assert_eq!(differing((&updated, &step), (&built, &step)), 0);
        // Consistent hashing: only the changed members' slots moved.
        let moved = differing((&t, &from), (&updated, &step));
        assert!(moved > 0 && moved < TABLE_SLOTS / 20, "{moved} slots moved");
        (from, t) = (step, updated);
    }
}

#[test]
fn a_pool_that_mostly_changed_is_built_whole_as_is_one_that_repeats_a_key() {
    let a = [("b1", 1), ("b2", 1), ("b3", 1), ("b4", 1)];
    let half = [("b1", 0), ("b2", 0), ("b3", 1), ("b4", 1)];
    let twice = [("b1", 1), ("b1", 1), ("b3", 1), ("b4", 1)];
    let one = [("b1", 1), ("b2", 2), ("b3", 1), ("b4", 1)];
    let plan = |new: &[(&str, u32)]| UpdatePlan::new(&members(&a), &members(new));
    assert!(!plan(&half).unwrap().worth_it(&members(&half)));
    assert!(plan(&twice).is_none());
    assert!(plan(&one).unwrap().worth_it(&members(&one)));
    // Built whole or not, the answer is a build's.
    let t = RingTable::build(&members(&a));
    for new in [&half[..], &twice[..], &one[..]] {
        let u = t.update(&members(&a), &members(new));
        let b = RingTable::build(&members(new));
        assert_eq!(differing((&u, new), (&b, new)), 0);
    }
}

#[test]
fn a_pool_with_every_member_down_is_filled_by_the_first_back() {
    let down: Vec<(&str, u32)> = NAMES[..6].iter().map(|&k| (k, 0)).collect();
    let t = RingTable::build(&members(&down));
    assert_eq!(t.choose(0), NO_BACKEND);
    let mut one = down.clone();
    one[3].1 = 1;
    let plan = UpdatePlan::new(&members(&down), &members(&one)).unwrap();
    let u = t.updated_by(plan, &members(&one));
    assert_eq!(u.shares(6), vec![0, 0, 0, TABLE_SLOTS, 0, 0]);
    let mut two = one.clone();
    two[0].1 = 1;
    let plan = UpdatePlan::new(&members(&one), &members(&two)).unwrap();
    let u2 = u.updated_by(plan, &members(&two));
    let b2 = RingTable::build(&members(&two));
    assert_eq!(differing((&u2, &two), (&b2, &two)), 0);
}

/// `worth_it` weighs a build (per slot, a hash per member and about five
/// hashes' time per distinct weight above 0) against the steps (about twelve
/// hashes' time per member changed): pools on either side of the line.
#[test]
fn an_update_is_taken_while_it_costs_less_than_a_build() {
    let keys: Vec<String> = (0..20).map(|i| format!("198.18.3.{i}:80")).collect();
    let pool = |n: usize, down: usize| -> Vec<(&str, u32)> {
        (0..n)
            .map(|i| (keys[i].as_str(), u32::from(i >= down)))
            .collect()
    };
    let worth = |n: usize| {
        let (old, new) = (pool(n, 0), pool(n, 2));
        let plan = UpdatePlan::new(&members(&old), &members(&new)).unwrap();
        plan.worth_it(&members(&new))
    };
    // Two members down: 12 * 2 against n + 5 (one weight above 0; the
    // weight 0 of the two does not count).
    assert!(worth(20), "24 < 25");
    assert!(!worth(19), "24 < 24");
}
