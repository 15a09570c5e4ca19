//! A hashed timer wheel over connection-table slots. Each entry sits in exactly one
//! slot list (intrusive and doubly linked), the one of the deadline it was linked
//! for. Postponing a deadline (the common case: traffic refreshes it) only changes
//! the entry's own deadline; when the wheel reaches the slot, entries whose deadline
//! moved on are linked again further ahead. Bringing a deadline forward (a state
//! with a shorter timeout) unlinks and relinks at once. Entries leave the table only
//! through the wheel, so a freed slot is never still linked.

use crate::huge::HugeArray;

/// Wheel size in ticks; a tick is set by the caller (the worker uses 100 ms).
pub const WHEEL_SLOTS: usize = 1024;
pub const NIL: u32 = u32::MAX;

pub struct TimerWheel {
    heads: Box<[u32]>,
    next: HugeArray<u32>,
    prev: HugeArray<u32>,
    /// The tick each entry is linked under.
    linked_at: HugeArray<u64>,
    /// The next tick to process.
    cursor: u64,
}

#[inline]
fn slot_of(tick: u64) -> usize {
    (tick % WHEEL_SLOTS as u64) as usize
}

impl TimerWheel {
    /// A wheel for entries `0..capacity`, starting at tick `now`.
    pub fn new(capacity: usize, now: u64) -> TimerWheel {
        TimerWheel {
            heads: vec![NIL; WHEEL_SLOTS].into_boxed_slice(),
            next: HugeArray::new(capacity, NIL),
            prev: HugeArray::new(capacity, NIL),
            linked_at: HugeArray::new(capacity, 0),
            cursor: now,
        }
    }

    /// Links entry `e` (not linked now) for `deadline`.
    #[inline]
    pub fn link(&mut self, e: u32, deadline: u64) {
        // Never behind the cursor: a deadline in the past fires on the next advance.
        let at = deadline.max(self.cursor);
        let slot = slot_of(at);
        let head = self.heads[slot];
        self.next[e as usize] = head;
        self.prev[e as usize] = NIL;
        if head != NIL {
            self.prev[head as usize] = e;
        }
        self.heads[slot] = e;
        self.linked_at[e as usize] = at;
    }

    fn unlink(&mut self, e: u32) {
        let (p, n) = (self.prev[e as usize], self.next[e as usize]);
        if p != NIL {
            self.next[p as usize] = n;
        } else {
            let slot = slot_of(self.linked_at[e as usize]);
            if self.heads[slot] == e {
                self.heads[slot] = n;
            }
        }
        if n != NIL {
            self.prev[n as usize] = p;
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

    /// Processes every tick up to and including `now`, at most `max_ticks` of them.
    /// `visit(e)` returns `Some(deadline)` to keep the entry (it is linked again) or
    /// `None` once it has been expired.
    pub fn advance(&mut self, now: u64, max_ticks: u64, mut visit: impl FnMut(u32) -> Option<u64>) {
        let end = now.min(self.cursor.saturating_add(max_ticks));
        while self.cursor <= end {
            let slot = slot_of(self.cursor);
            let mut e = std::mem::replace(&mut self.heads[slot], NIL);
            self.cursor += 1;
            while e != NIL {
                let next = self.next[e as usize];
                if let Some(deadline) = visit(e) {
                    self.link(e, deadline);
                }
                e = next;
            }
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

    /// Visits the linked entries soonest first: slot by slot from the cursor, one
    /// rotation at most, and at most `max_entries` of them; stops early when
    /// `visit` returns true. (A slot also holds entries linked for later
    /// rotations, and entries whose deadline moved on since they were linked.)
    pub fn scan(&self, max_entries: usize, mut visit: impl FnMut(u32) -> bool) {
        let mut left = max_entries;
        for tick in self.cursor..self.cursor + WHEEL_SLOTS as u64 {
            let mut e = self.heads[slot_of(tick)];
            while e != NIL {
                if left == 0 || visit(e) {
                    return;
                }
                left -= 1;
                e = self.next[e as usize];
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(w: &mut TimerWheel, now: u64, deadline: &[u64], fired: &mut Vec<(u32, u64)>) {
        w.advance(now, u64::MAX, |e| {
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
        let mut seen = Vec::new();
        w.scan(usize::MAX, |e| {
            seen.push(e);
            false
        });
        // Tick 12's slot (last linked first), 40, 500, then 2000's slot (976).
        assert_eq!(seen, vec![3, 1, 2, 0, 4]);
        seen.clear();
        w.scan(2, |e| {
            seen.push(e);
            false
        });
        assert_eq!(seen, vec![3, 1]);
        seen.clear();
        w.scan(usize::MAX, |e| {
            seen.push(e);
            e == 2
        });
        assert_eq!(seen, vec![3, 1, 2]);
        // A removed entry is neither visited nor fired.
        w.remove(1);
        w.remove(3);
        seen.clear();
        w.scan(usize::MAX, |e| {
            seen.push(e);
            false
        });
        assert_eq!(seen, vec![2, 0, 4]);
        let mut fired = Vec::new();
        w.advance(3000, u64::MAX, |e| {
            fired.push(e);
            None
        });
        fired.sort();
        assert_eq!(fired, vec![0, 2, 4]);
    }

    #[test]
    fn bounded_work_per_advance() {
        let mut w = TimerWheel::new(1, 0);
        w.link(0, 100);
        let mut fired = false;
        w.advance(1000, 10, |_| {
            fired = true;
            None
        });
        assert!(!fired);
        assert_eq!(w.cursor(), 11);
    }
}
