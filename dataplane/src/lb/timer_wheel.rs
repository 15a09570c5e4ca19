//! A hashed timer wheel over connection-table slots. Each entry sits in exactly one
//! slot list (intrusive and doubly linked, oldest link first), the one of the
//! deadline it was linked for. Postponing a deadline (the common case: traffic
//! refreshes it) only changes the entry's own deadline; when the wheel reaches the
//! slot, entries whose deadline moved on are linked again further ahead. Bringing a deadline forward (a state
//! with a shorter timeout) unlinks and relinks at once. Entries leave the table only
//! through the wheel, so a freed slot is never still linked.

use crate::huge::HugeArray;

/// Wheel size in ticks; a tick is set by the caller (the worker uses 100 ms).
pub const WHEEL_SLOTS: usize = 1024;
pub const NIL: u32 = u32::MAX;

pub struct TimerWheel {
    heads: Box<[u32]>,
    /// The last entry of each slot: entries are appended, so that a scan meets
    /// the longest-linked first.
    tails: Box<[u32]>,
    /// One bit per slot, set while the slot holds an entry: a scan skips empty
    /// slots a word at a time (they are most of them when every entry is due
    /// seconds ahead).
    occupied: [u64; WHEEL_SLOTS / 64],
    next: HugeArray<u32>,
    prev: HugeArray<u32>,
    /// The tick each entry is linked under.
    linked_at: HugeArray<u64>,
    /// The next tick to process.
    cursor: u64,
    /// The rest of a slot taken off the wheel whose entries `advance` has not
    /// all visited yet (it visits a bounded number per call): a list linked
    /// like a slot's, visited before any later tick.
    due: u32,
}

#[inline]
fn slot_of(tick: u64) -> usize {
    (tick % WHEEL_SLOTS as u64) as usize
}

impl TimerWheel {
    /// Bytes a wheel for `capacity` entries takes.
    pub fn memory_for(capacity: usize) -> usize {
        let per_entry = 2 * std::mem::size_of::<u32>() + std::mem::size_of::<u64>();
        2 * WHEEL_SLOTS * std::mem::size_of::<u32>() + capacity * per_entry
    }

    /// A wheel for entries `0..capacity`, starting at tick `now`.
    pub fn new(capacity: usize, now: u64) -> TimerWheel {
        TimerWheel {
            heads: vec![NIL; WHEEL_SLOTS].into_boxed_slice(),
            tails: vec![NIL; WHEEL_SLOTS].into_boxed_slice(),
            occupied: [0; WHEEL_SLOTS / 64],
            next: HugeArray::new(capacity, NIL),
            prev: HugeArray::new(capacity, NIL),
            linked_at: HugeArray::new(capacity, 0),
            cursor: now,
            due: NIL,
        }
    }

    /// Links entry `e` (not linked now) for `deadline`.
    #[inline]
    pub fn link(&mut self, e: u32, deadline: u64) {
        // Never behind the cursor: a deadline in the past fires on the next advance.
        let at = deadline.max(self.cursor);
        let slot = slot_of(at);
        let tail = self.tails[slot];
        self.prev[e as usize] = tail;
        self.next[e as usize] = NIL;
        if tail != NIL {
            self.next[tail as usize] = e;
        } else {
            self.heads[slot] = e;
            self.occupied[slot / 64] |= 1 << (slot % 64);
        }
        self.tails[slot] = e;
        self.linked_at[e as usize] = at;
    }

    fn unlink(&mut self, e: u32) {
        let (p, n) = (self.prev[e as usize], self.next[e as usize]);
        let slot = slot_of(self.linked_at[e as usize]);
        if p != NIL {
            self.next[p as usize] = n;
        } else if self.due == e {
            self.due = n;
        } else if self.heads[slot] == e {
            self.heads[slot] = n;
            if n == NIL {
                self.occupied[slot / 64] &= !(1 << (slot % 64));
            }
        }
        if n != NIL {
            self.prev[n as usize] = p;
        } else if self.tails[slot] == e {
            self.tails[slot] = p;
        }
    }

    /// The deadline of linked entry `e` became `deadline`: relink only if it is now
    /// earlier than the tick it is linked under.
    #[inline]
    pub fn reschedule(&mut self, e: u32, deadline: u64) {
        if deadline < self.linked_at[e as usize] {
            self.unlink(e);
            self.link(e, deadline);
        }
    }

    /// Processes every tick up to and including `now`, at most `max_ticks` of them
    /// and at most `max_entries` entries: a call that stops mid-slot goes on
    /// from there the next time, before any later tick. `visit(e)` returns
    /// `Some(deadline)` to keep the entry (it is linked again) or `None` once it
    /// has been expired.
    pub fn advance(
        &mut self,
        now: u64,
        max_ticks: u64,
        max_entries: usize,
        mut visit: impl FnMut(u32) -> Option<u64>,
    ) {
        let end = now.min(self.cursor.saturating_add(max_ticks));
        let mut left = max_entries;
        loop {
            while self.due != NIL {
                if left == 0 {
                    return;
                }
                left -= 1;
                let e = self.due;
                self.due = self.next[e as usize];
                if self.due != NIL {
                    self.prev[self.due as usize] = NIL;
                }
                if let Some(deadline) = visit(e) {
                    self.link(e, deadline);
                }
            }
            if self.cursor > end {
                return;
            }
            let slot = slot_of(self.cursor);
            self.due = std::mem::replace(&mut self.heads[slot], NIL);
            self.tails[slot] = NIL;
            self.occupied[slot / 64] &= !(1 << (slot % 64));
            self.cursor += 1;
        }
    }

    pub fn cursor(&self) -> u64 {
        self.cursor
    }

    /// Takes linked entry `e` off the wheel (it is leaving the table early).
    pub fn remove(&mut self, e: u32) {
        self.unlink(e);
        self.next[e as usize] = NIL;
        self.prev[e as usize] = NIL;
    }

    /// Visits the linked entries soonest first: those `advance` left due, then
    /// slot by slot from the cursor, one rotation at most, and at most `max_entries` of them; stops early when
    /// `visit` returns true. (A slot also holds entries linked for later
    /// rotations, and entries whose deadline moved on since they were linked.)
    pub fn scan(&self, max_entries: usize, mut visit: impl FnMut(u32) -> bool) {
        let mut left = max_entries;
        // The rest of a slot `advance` has not finished: due before any other.
        let mut e = self.due;
        while e != NIL {
            if left == 0 || visit(e) {
                return;
            }
            left -= 1;
            e = self.next[e as usize];
        }
        let end = self.cursor + WHEEL_SLOTS as u64;
        let mut from = self.cursor;
        while let Some(tick) = self.next_occupied(from, end) {
            let mut e = self.heads[slot_of(tick)];
            while e != NIL {
                if left == 0 || visit(e) {
                    return;
                }
                left -= 1;
                e = self.next[e as usize];
            }
            from = tick + 1;
        }
    }

    /// The first tick in `from..end` whose slot holds an entry.
    fn next_occupied(&self, mut from: u64, end: u64) -> Option<u64> {
        while from < end {
            let slot = slot_of(from);
            let bits = self.occupied[slot / 64] >> (slot % 64);
            if bits != 0 {
                let tick = from + bits.trailing_zeros() as u64;
                return (tick < end).then_some(tick);
            }
            from += 64 - (slot % 64) as u64;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(w: &mut TimerWheel, now: u64, deadline: &[u64], fired: &mut Vec<(u32, u64)>) {
        w.advance(now, u64::MAX, usize::MAX, |e| {
            if deadline[e as usize] <= now {
                fired.push((e, now));
                None
            } else {
                Some(deadline[e as usize])
            }
        });
    }

    #[test]
    fn fires_at_deadline_and_relinks_moved_ones() {
        let mut deadline = [5u64, 5, 2000, 3];
        let mut w = TimerWheel::new(4, 0);
        for (e, d) in deadline.iter().enumerate() {
            w.link(e as u32, *d);
        }
        deadline[1] = 50; // refreshed: postponed, no relink needed
        let mut fired = Vec::new();
        step(&mut w, 4, &deadline, &mut fired);
        assert_eq!(fired, vec![(3, 4)]);
        step(&mut w, 10, &deadline, &mut fired);
        assert_eq!(fired, vec![(3, 4), (0, 10)]);
        step(&mut w, 60, &deadline, &mut fired);
        assert_eq!(fired.last(), Some(&(1, 60)));
        // Beyond one rotation of the wheel.
        step(&mut w, 1500, &deadline, &mut fired);
        assert_eq!(fired.len(), 3);
        step(&mut w, 2100, &deadline, &mut fired);
        assert_eq!(fired.last(), Some(&(2, 2100)));
    }

    #[test]
    fn an_earlier_deadline_fires_early() {
        let mut deadline = [300u64, 300, 300];
        let mut w = TimerWheel::new(3, 0);
        for e in 0..3 {
            w.link(e, 300);
        }
        // The middle one of the slot's list moves to tick 30.
        deadline[1] = 30;
        w.reschedule(1, 30);
        let mut fired = Vec::new();
        step(&mut w, 31, &deadline, &mut fired);
        assert_eq!(fired, vec![(1, 31)]);
        step(&mut w, 300, &deadline, &mut fired);
        assert_eq!(fired.len(), 3);
    }

    #[test]
    fn a_scan_visits_the_soonest_slots_first_and_stops_when_told() {
        let mut w = TimerWheel::new(5, 10);
        for (e, d) in [(0, 500), (1, 12), (2, 40), (3, 12), (4, 2000)] {
            w.link(e, d);
        }
        // A deadline that did not move keeps the entry where it is.
        w.reschedule(1, 12);
        let mut seen = Vec::new();
        w.scan(usize::MAX, |e| {
            seen.push(e);
            false
        });
        // Tick 12's slot (in link order), 40, 500, then 2000's slot (976).
        assert_eq!(seen, vec![1, 3, 2, 0, 4]);
        seen.clear();
        w.scan(2, |e| {
            seen.push(e);
            false
        });
        assert_eq!(seen, vec![1, 3]);
        seen.clear();
        w.scan(usize::MAX, |e| {
            seen.push(e);
            e == 2
        });
        assert_eq!(seen, vec![1, 3, 2]);
        // Removed entries are neither visited nor fired, and the slots' ends
        // follow: tick 12's slot emptied and used again, 4 moved after 2.
        w.remove(3);
        w.remove(1);
        w.remove(4);
        w.link(4, 40);
        w.link(1, 12);
        seen.clear();
        w.scan(usize::MAX, |e| {
            seen.push(e);
            false
        });
        assert_eq!(seen, vec![1, 2, 4, 0]);
        let mut fired = Vec::new();
        w.advance(3000, u64::MAX, usize::MAX, |e| {
            fired.push(e);
            None
        });
        assert_eq!(fired, vec![1, 2, 4, 0]);
    }

    /// The wheel against a model of its slot lists (plain vectors in link
    /// order) and of the rest of a slot an advance left unfinished, under random
    /// links, removals and advances with random budgets, across the ring's wrap.
    #[test]
    fn a_scan_matches_a_model_of_the_slot_lists() {
        const N: u32 = 300;
        let mut rng = 0x2545_f491_4f6c_dd1du64;
        let mut rand = |n: u64| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng % n
        };
        let mut w = TimerWheel::new(N as usize, 900);
        let mut model: Vec<Vec<u32>> = vec![Vec::new(); WHEEL_SLOTS];
        let mut due: Vec<u32> = Vec::new();
        let mut deadline = vec![None::<u64>; N as usize];
        let mut cut_short = 0;
        for _ in 0..5000 {
            let mut e = rand(N as u64) as u32;
            let op = rand(10);
            // Now and then an entry of an unfinished slot: its first, last or any.
            if op == 9 && !due.is_empty() {
                e = due[[0, due.len() - 1, rand(due.len() as u64) as usize][rand(3) as usize]];
            }
            match (op, deadline[e as usize]) {
                (0, _) => {
                    let now = w.cursor() + rand(40);
                    let budget = match rand(3) {
                        0 => usize::MAX,
                        _ => rand(12) as usize,
                    };
                    let (mut tick, mut left) = (w.cursor(), budget);
                    w.advance(now, u64::MAX, budget, |x| {
                        deadline[x as usize].filter(|&d| d > now)
                    });
                    'run: loop {
                        while !due.is_empty() {
                            if left == 0 {
                                cut_short += 1;
                                break 'run;
                            }
                            left -= 1;
                            let x = due.remove(0);
                            match deadline[x as usize] {
                                Some(d) if d > now => model[slot_of(d.max(tick))].push(x),
                                _ => deadline[x as usize] = None,
                            }
                        }
                        if tick > now {
                            break;
                        }
                        due = std::mem::take(&mut model[slot_of(tick)]);
                        tick += 1;
                    }
                    assert_eq!(w.cursor(), tick);
                }
                (1..=3 | 9, Some(_)) => {
                    w.remove(e);
                    model.iter_mut().for_each(|l| l.retain(|&x| x != e));
                    due.retain(|&x| x != e);
                    deadline[e as usize] = None;
                }
                (_, None) => {
                    let d = w.cursor() + rand(3000);
                    w.link(e, d);
                    model[slot_of(d)].push(e);
                    deadline[e as usize] = Some(d);
                }
                _ => {}
            }
            let mut seen = Vec::new();
            w.scan(usize::MAX, |x| {
                seen.push(x);
                false
            });
            let c = w.cursor();
            let want: Vec<u32> = (due.iter().copied())
                .chain((c..c + WHEEL_SLOTS as u64).flat_map(|t| model[slot_of(t)].iter().copied()))
                .collect();
            assert_eq!(seen, want, "cursor {c}");
            for (slot, l) in model.iter().enumerate() {
                let bit = w.occupied[slot / 64] >> (slot % 64) & 1 == 1;
                assert_eq!(bit, !l.is_empty(), "slot {slot}");
                assert_eq!(
                    w.tails[slot],
                    l.last().copied().unwrap_or(NIL),
                    "slot {slot}"
                );
            }
        }
        assert!(cut_short > 100, "budgets cut {cut_short} advances short");
    }

    #[test]
    fn a_scan_meets_what_a_bounded_advance_left_due_first_within_its_budget() {
        let mut w = TimerWheel::new(8, 0);
        for e in 0..5 {
            w.link(e, 3);
        }
        w.link(5, 7);
        let mut fired = Vec::new();
        w.advance(3, u64::MAX, 2, |e| {
            fired.push(e);
            None
        });
        assert_eq!(fired, [0, 1]);
        let scan = |w: &TimerWheel, max| {
            let mut seen = Vec::new();
            w.scan(max, |e| {
                seen.push(e);
                false
            });
            seen
        };
        assert_eq!(scan(&w, 2), [2, 3]);
        assert_eq!(scan(&w, 4), [2, 3, 4, 5]);
        assert_eq!(scan(&w, 0), [] as [u32; 0]);
    }

    #[test]
    fn memory_for_counts_every_array_the_wheel_holds() {
        use std::mem::size_of_val;
        for capacity in [1, 1000, 70_000] {
            let w = TimerWheel::new(capacity, 0);
            let held = size_of_val(&*w.heads)
                + size_of_val(&*w.tails)
                + size_of_val(&*w.next)
                + size_of_val(&*w.prev)
                + size_of_val(&*w.linked_at);
            assert_eq!(TimerWheel::memory_for(capacity), held, "{capacity}");
        }
    }

    #[test]
    fn bounded_work_per_advance() {
        let mut w = TimerWheel::new(1, 0);
        w.link(0, 100);
        let mut fired = false;
        w.advance(1000, 10, usize::MAX, |_| {
            fired = true;
            None
        });
        assert!(!fired);
        assert_eq!(w.cursor(), 11);
    }
}
