//! Later fragments that overtook their first fragment, waiting for it.
//!
//! A later fragment can only follow a route its first fragment left (see
//! [`frag_routes`](super::frag_routes)). Senders and paths that reorder (some
//! stacks send the last fragment first; parallel links swap them) would otherwise
//! lose the whole datagram. So a worker keeps a few such fragments: when the
//! first fragment of their datagram comes and leaves its route, they are handled
//! again, after it; if it does not come within [`WAIT_TICKS`], or the places are
//! all taken, the oldest is dropped.
//!
//! This table holds only which datagram each place waits for; the worker keeps
//! the packets themselves (the balancer never owns a buffer) under the same
//! index, and asks [`FragParking::take_done`] what to do with them.

use super::frag_routes::Datagram;

/// Places per worker: a few datagrams' worth; a flood of orphan fragments cannot
/// hold more than this many buffers.
pub const PLACES: usize = 64;

/// How long a fragment waits for its first, in ticks (100 ms): reordering on a
/// path is microseconds; a first fragment that is later than this was lost.
pub const WAIT_TICKS: u64 = 2;

#[derive(Clone, Copy, Default)]
enum Place {
    #[default]
    Free,
    Waiting {
        datagram: Datagram,
        until: u64,
    },
    /// The first fragment came: handle the packet again.
    Ready,
    /// Waited too long: drop the packet.
    Expired,
}

/// What the worker does with a packet it kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Done {
    /// Its first fragment has been handled: handle it again.
    Retry(u16),
    /// Dropped (counted as `drop_fragment`).
    Expired(u16),
}

pub struct FragParking {
    places: [Place; PLACES],
    /// Where the next search for a place starts (the oldest park is there or after).
    next: usize,
    /// Places `Waiting`.
    waiting: u16,
    /// Places `Ready` or `Expired`.
    done: u16,
}

impl Default for FragParking {
    fn default() -> FragParking {
        FragParking {
            places: [Place::Free; PLACES],
            next: 0,
            waiting: 0,
            done: 0,
        }
    }
}

impl FragParking {
    /// A place for a fragment of `d`, arrived at tick `now`: its index, under
    /// which the worker keeps the packet. With no place free, one is taken from
    /// the fragment that has waited longest (the worker drops the packet it kept
    /// there); `None` only when every place holds a packet the worker has not
    /// taken back yet.
    pub fn park(&mut self, d: Datagram, now: u64) -> Option<u16> {
        // From the place after the last one taken: a free place first, else the
        // waiting place taken longest ago.
        let order = (0..PLACES).map(|k| (self.next + k) % PLACES);
        let free = |i: &usize| matches!(self.places[*i], Place::Free);
        let i = match order.clone().find(free) {
            Some(i) => {
                self.waiting += 1;
                i
            }
            None => order
                .clone()
                .find(|&i| matches!(self.places[i], Place::Waiting { .. }))?,
        };
        self.places[i] = Place::Waiting {
            datagram: d,
            until: now + WAIT_TICKS,
        };
        self.next = (i + 1) % PLACES;
        Some(i as u16)
    }

    /// The first fragment of `d` has been handled: its waiting fragments are
    /// ready to be handled again.
    #[inline]
    pub fn first_came(&mut self, d: &Datagram) {
        if self.waiting == 0 {
            return;
        }
        for p in self.places.iter_mut() {
            if matches!(p, Place::Waiting { datagram, .. } if datagram == d) {
                *p = Place::Ready;
                self.waiting -= 1;
                self.done += 1;
            }
        }
    }

    /// Gives up on fragments whose first has not come by tick `now`.
    pub fn expire(&mut self, now: u64) {
        if self.waiting == 0 {
            return;
        }
        for p in self.places.iter_mut() {
            if matches!(p, Place::Waiting { until, .. } if *until < now) {
                *p = Place::Expired;
                self.waiting -= 1;
                self.done += 1;
            }
        }
    }

    /// Whether the worker has packets to take back (one compare per poll).
    #[inline(always)]
    pub fn any_done(&self) -> bool {
        self.done > 0
    }

    /// The next packet to take back and what to do with it; its place is free
    /// again.
    pub fn take_done(&mut self) -> Option<Done> {
        if self.done == 0 {
            return None;
        }
        let i = self
            .places
            .iter()
            .position(|p| matches!(p, Place::Ready | Place::Expired))?;
        let done = match self.places[i] {
            Place::Ready => Done::Retry(i as u16),
            _ => Done::Expired(i as u16),
        };
        self.places[i] = Place::Free;
        self.done -= 1;
        Some(done)
    }

    /// Fragments waiting for their first.
    pub fn waiting(&self) -> usize {
        self.waiting as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn datagram(id: u32) -> Datagram {
        Datagram {
            src: [1; 16],
            dst: [2; 16],
            id,
            proto: 17,
        }
    }

    fn all_done(p: &mut FragParking) -> Vec<Done> {
        std::iter::from_fn(|| p.take_done()).collect()
    }

    #[test]
    fn fragments_wait_for_their_first_and_only_theirs_are_released() {
        let mut p = FragParking::default();
        assert_eq!(p.park(datagram(1), 0), Some(0));
        assert_eq!(p.park(datagram(2), 0), Some(1));
        assert_eq!(p.park(datagram(1), 0), Some(2));
        assert!(!p.any_done());
        p.first_came(&datagram(1));
        assert_eq!(all_done(&mut p), [Done::Retry(0), Done::Retry(2)]);
        assert_eq!(p.waiting(), 1);
        // Another first fragment of the same datagram finds nothing left.
        p.first_came(&datagram(1));
        assert!(!p.any_done());
    }

    #[test]
    fn a_fragment_waits_wait_ticks_then_expires() {
        let mut p = FragParking::default();
        p.park(datagram(1), 10);
        p.expire(10 + WAIT_TICKS);
        assert!(!p.any_done());
        p.expire(11 + WAIT_TICKS);
        assert_eq!(all_done(&mut p), [Done::Expired(0)]);
        assert_eq!(p.waiting(), 0);
        // Too late for its first.
        p.first_came(&datagram(1));
        assert!(!p.any_done());
    }

    #[test]
    fn when_every_place_waits_the_oldest_is_given_up() {
        let mut p = FragParking::default();
        for id in 0..PLACES as u32 {
            assert_eq!(p.park(datagram(id), 0), Some(id as u16));
        }
        // The oldest (place 0, datagram 0) is overwritten: the worker drops the
        // packet it kept there; datagram 0's first releases nothing.
        assert_eq!(p.park(datagram(100), 0), Some(0));
        assert_eq!(p.waiting(), PLACES);
        p.first_came(&datagram(0));
        assert!(!p.any_done());
        p.first_came(&datagram(100));
        assert_eq!(all_done(&mut p), [Done::Retry(0)]);
    }

    #[test]
    fn free_places_are_taken_in_order_from_after_the_last_one_taken() {
        let mut p = FragParking::default();
        for id in 0..PLACES as u32 {
            p.park(datagram(id), 0);
        }
        // Every place was taken once, so the search starts at 0 again; places
        // 5 and 10 are freed, and are taken in that order.
        for id in [10, 5] {
            p.first_came(&datagram(id));
        }
        assert_eq!(all_done(&mut p), [Done::Retry(5), Done::Retry(10)]);
        assert_eq!(p.park(datagram(100), 0), Some(5));
        assert_eq!(p.park(datagram(101), 0), Some(10));
        // None free: the oldest waiting place after the last one taken.
        assert_eq!(p.park(datagram(102), 0), Some(11));
    }

    #[test]
    fn places_not_taken_back_are_never_reused() {
        let mut p = FragParking::default();
        for id in 0..PLACES as u32 {
            p.park(datagram(id), 0);
            p.first_came(&datagram(id));
        }
        assert_eq!(p.park(datagram(100), 0), None);
        assert_eq!(p.take_done(), Some(Done::Retry(0)));
        assert_eq!(p.park(datagram(100), 0), Some(0));
    }
}
