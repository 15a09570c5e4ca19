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

use super::flow::FlowKey;
use super::table_hash::TableHasher;
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

    /// The datagram's slot: from this process's table hash ([`TableHasher`])
    /// of its identity, the identification in the ports' place, as the
    /// connection index takes its slots. Every bit of the identity reaches
    /// the slot, and nobody outside the process can pick datagrams that
    /// share one (a multiply of the folded identity, read from its middle
    /// bits, let the last two bytes of an IPv4 source or destination choose
    /// between 4 slots only).
    fn slot(&self) -> usize {
        let k = FlowKey {
            src: self.src,
            dst: self.dst,
            sport: (self.id >> 16) as u16,
            dport: self.id as u16,
            proto: self.proto,
            v6: false,
        };
        (TableHasher::process().hash(&k) >> 32) as usize & (SLOTS - 1)
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

    /// Slots datagram `d(i)` take, for i in 0..n.
    fn slots_taken(n: u32, d: impl Fn(u32) -> Datagram) -> usize {
        let slots: std::collections::HashSet<usize> = (0..n).map(|i| d(i).slot()).collect();
        slots.len()
    }

    /// An IPv4 address in 198.18.0.0/15, mapped as a key holds it.
    fn v4(i: u32) -> [u8; 16] {
        let a = std::net::Ipv4Addr::from(0xc612_0000 | ((i * 97) & 0x1_ffff));
        FlowKey::v4(a, a, 0, 0, 0).src
    }

    /// An IPv6 address in 2001:db8::/32.
    fn v6(i: u32) -> [u8; 16] {
        let mut a = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        a[8..12].copy_from_slice(&i.wrapping_mul(0x9e37_79b9).to_be_bytes());
        a
    }

    #[test]
    fn datagrams_spread_over_the_slots_and_a_newer_one_takes_a_shared_slot() {
        // A slot shared is a datagram whose later fragments are dropped. The
        // hash is keyed per process: 512 datagrams take ~403 slots of 1024,
        // as random ones would (standard deviation ~9), 256 take ~226 (~5).
        // Every bit of the identification and of the addresses counts:
        // datagrams differing in any one of them spread so. (The hash this
        // replaced let the last two bytes of an IPv4 address pick between 4
        // slots.)
        assert!(slots_taken(512, |i| datagram(i as u16)) > 350);
        let d = |src, dst, id| Datagram {
            src,
            dst,
            id,
            proto: 17,
        };
        let spread = [
            ("id", slots_taken(256, |i| datagram((i * 251) as u16))),
            (
                "v6 id",
                slots_taken(256, |i| d(v6(1), v6(2), i.wrapping_mul(0x0100_0193))),
            ),
            (
                "v6 id, high half",
                slots_taken(256, |i| d(v6(1), v6(2), i << 16)),
            ),
            ("v4 source", slots_taken(256, |i| d(v4(i), v4(0), 7))),
            ("v4 destination", slots_taken(256, |i| d(v4(0), v4(i), 7))),
            ("v6 source", slots_taken(256, |i| d(v6(i), v6(0), 7))),
            ("v6 destination", slots_taken(256, |i| d(v6(0), v6(i), 7))),
        ];
        for (what, n) in spread {
            assert!(n > 200, "{what}: {n} slots");
        }
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
