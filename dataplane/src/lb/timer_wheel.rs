//! A hashed timer wheel over connection-table slots. Each entry sits in exactly one
//! slot list (intrusive, through `next`), the one of the deadline it had when it was
//! linked. Refreshing a timeout only moves the deadline; when the wheel reaches the
//! slot, entries whose deadline moved on are linked again further ahead. Entries
//! leave the table only through the wheel, so a freed slot is never still linked.

/// Wheel size in ticks; a tick is set by the caller (the worker uses 100 ms).
pub const WHEEL_SLOTS: usize = 1024;
pub const NIL: u32 = u32::MAX;

pub struct TimerWheel {
    heads: Box<[u32]>,
    /// The next tick to process.
    cursor: u64,
}

impl TimerWheel {
    pub fn new(now: u64) -> TimerWheel {
        TimerWheel {
            heads: vec![NIL; WHEEL_SLOTS].into_boxed_slice(),
            cursor: now,
        }
    }

    /// Links entry `e` (whose `next` is in `next_of`) for `deadline`.
    #[inline]
    pub fn link(&mut self, e: u32, deadline: u64, next_of: &mut [u32]) {
        // Never behind the cursor: a deadline in the past fires on the next advance.
        let at = deadline.max(self.cursor);
        let slot = (at % WHEEL_SLOTS as u64) as usize;
        next_of[e as usize] = self.heads[slot];
        self.heads[slot] = e;
    }

    /// Processes every tick up to and including `now`, at most `max_ticks` of them.
    /// `visit(e)` returns `Some(deadline)` to keep the entry (it is linked again) or
    /// `None` once it has been expired.
    pub fn advance(
        &mut self,
        now: u64,
        max_ticks: u64,
        next_of: &mut [u32],
        mut visit: impl FnMut(u32) -> Option<u64>,
    ) {
        let end = now.min(self.cursor.saturating_add(max_ticks));
        while self.cursor <= end {
            let slot = (self.cursor % WHEEL_SLOTS as u64) as usize;
            let mut e = std::mem::replace(&mut self.heads[slot], NIL);
            self.cursor += 1;
            while e != NIL {
                let next = next_of[e as usize];
                if let Some(deadline) = visit(e) {
                    self.link(e, deadline, next_of);
                }
                e = next;
            }
        }
    }

    pub fn cursor(&self) -> u64 {
        self.cursor
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fires_at_deadline_and_relinks_moved_ones() {
        let mut next = vec![NIL; 4];
        let mut deadline = [5u64, 5, 2000, 3];
        let mut w = TimerWheel::new(0);
        for (e, d) in deadline.iter().enumerate() {
            w.link(e as u32, *d, &mut next);
        }
        deadline[1] = 50; // refreshed
        let mut fired = Vec::new();
        let step =
            |now: u64, w: &mut TimerWheel, next: &mut Vec<u32>, fired: &mut Vec<(u32, u64)>| {
                w.advance(now, u64::MAX, next, |e| {
                    if deadline[e as usize] <= now {
                        fired.push((e, now));
                        None
                    } else {
                        Some(deadline[e as usize])
                    }
                });
            };
        step(4, &mut w, &mut next, &mut fired);
        assert_eq!(fired, vec![(3, 4)]);
        step(10, &mut w, &mut next, &mut fired);
        assert_eq!(fired, vec![(3, 4), (0, 10)]);
        step(60, &mut w, &mut next, &mut fired);
        assert_eq!(fired.last(), Some(&(1, 60)));
        // Beyond one rotation of the wheel.
        step(1500, &mut w, &mut next, &mut fired);
        assert_eq!(fired.len(), 3);
        step(2100, &mut w, &mut next, &mut fired);
        assert_eq!(fired.last(), Some(&(2, 2100)));
    }

    #[test]
    fn bounded_work_per_advance() {
        let mut next = vec![NIL; 1];
        let mut w = TimerWheel::new(0);
        w.link(0, 100, &mut next);
        let mut fired = false;
        w.advance(1000, 10, &mut next, |_| {
            fired = true;
            None
        });
        assert!(!fired);
        assert_eq!(w.cursor(), 11);
    }
}
