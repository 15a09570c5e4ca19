//! Where the later fragments of a datagram go, learnt from its first.
//!
//! Only the first fragment carries the ports, so only it can find the datagram's
//! connection (or the worker that owns it). The worker that handles a first
//! fragment notes the outcome under the datagram's identity (source, destination,
//! identification, protocol): the later fragments, which arrive at the same worker (RSS and
//! the kernel's fanout hash fragments by addresses alone), follow it to the same
//! connection or worker. A fixed, direct-mapped table: a slot taken by another
//! datagram, or older than [`LIFETIME_TICKS`], is forgotten, and a fragment that
//! finds nothing is dropped and counted.

use super::tcp_state::Direction;
use crate::wire::ipv6;

/// Slots per worker (a power of two).
pub const SLOTS: usize = 1024;

/// How long a datagram's route is kept, in ticks (100 ms): its fragments follow
/// each other within microseconds; Linux waits 30 s for missing ones, but a
/// fragment that late finds its slot long taken anyway.
pub const LIFETIME_TICKS: u64 = 10;

/// A datagram's identity (RFC 791, RFC 8200 4.5): addresses (IPv4 mapped),
/// identification, protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Datagram {
    pub src: [u8; 16],
    pub dst: [u8; 16],
    pub id: u32,
    pub proto: u8,
}

impl Datagram {
    /// The identity of the fragment whose IP header starts `ip` (IPv6 when
    /// `v6`), as [`Parsed`](super::nat::Parsed) gives its addresses and protocol.
    pub fn of(ip: &[u8], v6: bool, key: &super::flow::FlowKey) -> Option<Datagram> {
        let id = if v6 {
            let at = ipv6::Packet::new_checked(ip)
                .ok()?
                .upper_layer()
                .ok()?
                .fragment_header;
            let b = ip.get(at + 4..at + 8)?;
            u32::from_be_bytes([b[0], b[1], b[2], b[3]])
        } else {
            u16::from_be_bytes([*ip.get(4)?, *ip.get(5)?]) as u32
        };
        Some(Datagram {
            src: key.src,
            dst: key.dst,
            id,
            proto: key.proto,
        })
    }

    fn slot(&self) -> usize {
        let a = u128::from_ne_bytes(self.src);
        let b = u128::from_ne_bytes(self.dst);
        let folded = a ^ b.rotate_left(64);
        let x =
            (folded as u64 ^ (folded >> 64) as u64) ^ ((self.id as u64) << 8 | self.proto as u64);
        (x.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 40) as usize & (SLOTS - 1)
    }
}

/// What happened to a datagram's first fragment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// Handed to the worker that owns its connection.
    Worker(u16),
    /// Forwarded on this worker's connection `id`, in direction `dir`, to
    /// `backend` (the connection's then: should it move to another, the later
    /// fragments cannot follow the first).
    Conn {
        id: u32,
        dir: Direction,
        backend: u32,
    },
}

#[derive(Clone, Copy)]
struct Slot {
    datagram: Datagram,
    route: Route,
    /// Tick after which the slot is forgotten.
    until: u64,
}

pub struct FragRoutes {
    slots: Box<[Option<Slot>]>,
}

impl Default for FragRoutes {
    fn default() -> FragRoutes {
        FragRoutes {
            slots: vec![None; SLOTS].into_boxed_slice(),
        }
    }
}

impl FragRoutes {
    /// Notes where datagram `d`'s first fragment went, at tick `now`.
    pub fn learn(&mut self, d: Datagram, route: Route, now: u64) {
        self.slots[d.slot()] = Some(Slot {
            datagram: d,
            route,
            until: now + LIFETIME_TICKS,
        });
    }

    /// Where datagram `d`'s later fragments go, if its first was seen lately.
    pub fn route(&self, d: &Datagram, now: u64) -> Option<Route> {
        match self.slots[d.slot()] {
            Some(s) if s.datagram == *d && now <= s.until => Some(s.route),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lb::flow::FlowKey;

    fn datagram(id: u16) -> Datagram {
        let key = FlowKey::v4([198, 18, 0, 10].into(), [198, 18, 0, 100].into(), 0, 0, 17);
        Datagram {
            src: key.src,
            dst: key.dst,
            id: id as u32,
            proto: 17,
        }
    }

    #[test]
    fn a_route_is_found_by_its_datagram_until_it_is_too_old() {
        let mut r = FragRoutes::default();
        let to = Route::Conn {
            id: 7,
            dir: Direction::Forward,
            backend: 1,
        };
        r.learn(datagram(1), to, 100);
        assert_eq!(r.route(&datagram(1), 100), Some(to));
        assert_eq!(r.route(&datagram(1), 100 + LIFETIME_TICKS), Some(to));
        assert_eq!(r.route(&datagram(1), 101 + LIFETIME_TICKS), None);
        // Another identification, or protocol, is another datagram.
        assert_eq!(r.route(&datagram(2), 100), None);
        let tcp = Datagram {
            proto: 6,
            ..datagram(1)
        };
        assert_eq!(r.route(&tcp, 100), None);
    }

    #[test]
    fn datagrams_spread_over_the_slots_and_a_newer_one_takes_a_shared_slot() {
        let slots: std::collections::HashSet<usize> =
            (0..512).map(|id| datagram(id).slot()).collect();
        assert!(slots.len() > 400, "{}", slots.len());
        let mut r = FragRoutes::default();
        let a = datagram(0);
        let b = (1..u16::MAX)
            .map(datagram)
            .find(|d| d.slot() == a.slot())
            .unwrap();
        r.learn(a, Route::Worker(1), 0);
        r.learn(b, Route::Worker(2), 0);
        assert_eq!(r.route(&a, 0), None);
        assert_eq!(r.route(&b, 0), Some(Route::Worker(2)));
    }
}
