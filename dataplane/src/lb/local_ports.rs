//! FullNAT source ports. Each worker owns the ports `p` with `p % workers == worker`
//! on every local address, so a reply (whose destination is a local address and
//! port) can be steered to the worker that owns its connection from the port alone.
//! Ports are reused in FIFO order, to keep a just-closed 4-tuple out of use as long
//! as possible (the backend may still hold it in TIME_WAIT).

use std::collections::VecDeque;

pub const FIRST_PORT: u16 = 1024;

pub struct LocalPorts {
    /// Per local address (in the order the snapshot lists them for each port and
    /// family): the free ports of this worker.
    pools: Vec<VecDeque<u16>>,
    /// The ports each pool started with: a pool never holds more.
    per_address: usize,
    next: usize,
}

impl LocalPorts {
    /// Pools for `addresses` local addresses.
    pub fn new(addresses: usize, worker: u16, workers: u16) -> LocalPorts {
        let mine: Vec<u16> = (FIRST_PORT..=u16::MAX)
            .filter(|p| p % workers == worker)
            .collect();
        LocalPorts {
            pools: (0..addresses)
                .map(|_| mine.iter().copied().collect())
                .collect(),
            per_address: mine.len(),
            next: 0,
        }
    }

    /// A free port on one of the addresses `candidates` (indexes), round-robin.
    #[inline]
    pub fn take(&mut self, candidates: std::ops::Range<usize>) -> Option<(usize, u16)> {
        let n = candidates.len();
        for i in 0..n {
            let a = candidates.start + (self.next + i) % n;
            if let Some(p) = self.pools.get_mut(a).and_then(|q| q.pop_front()) {
                self.next = self.next.wrapping_add(i + 1);
                return Some((a, p));
            }
        }
        None
    }

    /// As [`take`](Self::take), preferring a port that `fits(address, port)`:
    /// of the chosen address's free ports, the first of the next `tries` that
    /// fits, or the last of them (those passed over go to the back of the
    /// queue, as if just given back).
    #[inline]
    pub fn take_fitting(
        &mut self,
        candidates: std::ops::Range<usize>,
        tries: usize,
        fits: impl Fn(usize, u16) -> bool,
    ) -> Option<(usize, u16)> {
        let (a, mut p) = self.take(candidates)?;
        let q = self.pools.get_mut(a)?;
        for _ in 1..tries {
            if fits(a, p) {
                break;
            }
            q.push_back(p);
            let Some(next) = q.pop_front() else { break };
            p = next;
        }
        Some((a, p))
    }

    /// Returns a port. Never allocates: a pool holds at most what it started with.
    #[inline]
    pub fn give_back(&mut self, address: usize, port: u16) {
        if let Some(q) = self.pools.get_mut(address) {
            if q.len() < self.per_address {
                q.push_back(port);
            }
        }
    }

    pub fn free(&self, address: usize) -> usize {
        self.pools.get(address).map_or(0, |q| q.len())
    }

    /// Ports taken and not given back, over every address.
    pub fn in_use(&self) -> usize {
        self.pools.iter().map(|q| self.per_address - q.len()).sum()
    }

    /// Ports this worker owns, over every address.
    pub fn capacity(&self) -> usize {
        self.per_address * self.pools.len()
    }

    /// The worker that owns local port `port`.
    #[inline]
    pub fn owner(port: u16, workers: u16) -> u16 {
        port % workers
    }
}

/// [`LocalPorts::owner`] for a fixed number of workers, without a division on
/// the packet path: the remainder from a multiply by a precomputed reciprocal
/// (Lemire, Kaser and Kurz, "Faster remainder by direct computation"), exact
/// for every 16-bit port (checked for every port and worker count up to 512).
#[derive(Clone, Copy, Debug)]
pub struct PortOwner {
    reciprocal: u32,
    workers: u32,
}

impl PortOwner {
    pub fn new(workers: u16) -> PortOwner {
        let d = workers.max(1) as u32;
        PortOwner {
            // ceil(2^32 / d), which wraps to 0 for d = 1 (every port is worker 0's).
            reciprocal: (u32::MAX / d).wrapping_add(1),
            workers: d,
        }
    }

    #[inline(always)]
    pub fn of(self, port: u16) -> u16 {
        let fraction = self.reciprocal.wrapping_mul(port as u32) as u64;
        ((fraction * self.workers as u64) >> 32) as u16
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fitting_port_is_preferred_within_the_tries() {
        let mut a = LocalPorts::new(1, 0, 1);
        // The first port divisible by 5 among the next ten: 1025 (1024 goes
        // to the back).
        assert_eq!(a.take_fitting(0..1, 10, |_, p| p % 5 == 0), Some((0, 1025)));
        // One try takes what comes first.
        assert_eq!(a.take_fitting(0..1, 1, |_, p| p % 5 == 0), Some((0, 1026)));
        // None of the next three fits: the third is taken, the two before it
        // go to the back, after 1024.
        assert_eq!(a.take_fitting(0..1, 3, |_, p| p == 9), Some((0, 1029)));
        assert_eq!(a.free(0), (65536 - 1024) - 3);
        let last: Vec<u16> = (0..3).map(|_| a.take(0..1).unwrap().1).collect();
        assert_eq!(last, [1030, 1031, 1032]);
        let mut rest = vec![];
        while let Some((_, p)) = a.take(0..1) {
            rest.push(p);
        }
        assert_eq!(rest[rest.len() - 3..], [1024, 1027, 1028]);
        // A pool of one port: that port, whatever the tries.
        let mut b = LocalPorts::new(1, 0, 1);
        while b.free(0) > 1 {
            b.take(0..1);
        }
        assert_eq!(b.take_fitting(0..1, 8, |_, _| false), Some((0, u16::MAX)));
        assert_eq!(b.take_fitting(0..1, 8, |_, _| true), None);
    }

    #[test]
    fn partition_fifo_and_exhaustion() {
        let mut a = LocalPorts::new(2, 1, 2);
        let (addr, p) = a.take(0..2).unwrap();
        assert_eq!((addr, p), (0, 1025));
        assert_eq!(LocalPorts::owner(p, 2), 1);
        let (addr2, _) = a.take(0..2).unwrap();
        assert_eq!(addr2, 1, "round-robin over addresses");
        a.give_back(0, 1025);
        let all = a.free(0);
        for _ in 0..all {
            let (_, p) = a.take(0..1).unwrap();
            assert_eq!(p % 2, 1);
        }
        assert_eq!(a.take(0..1), None);
        a.give_back(0, 1025);
        assert_eq!(a.take(0..1), Some((0, 1025)));
    }

    /// When one local address has no port left, new connections take turns
    /// over the others, one each: not two in a row on the same address.
    #[test]
    fn an_exhausted_address_is_skipped_and_the_others_take_turns() {
        for drained in 0..3 {
            // Ports taken from the one address first, so each case starts the
            // turn at a different place.
            for start in 0..3 {
                let mut a = LocalPorts::new(3, 0, 1);
                while a.take(drained..drained + 1).is_some() {}
                for _ in 0..start {
                    a.take(0..3);
                }
                let turns: Vec<usize> = (0..8).map(|_| a.take(0..3).unwrap().0).collect();
                let others: Vec<usize> = (0..3).filter(|&x| x != drained).collect();
                assert!(!turns.contains(&drained), "{turns:?}");
                assert!(
                    turns.windows(2).all(|w| w[0] != w[1]),
                    "address {drained} drained: {turns:?}"
                );
                assert_eq!(turns.iter().filter(|&&x| x == others[0]).count(), 4);
            }
        }
    }

    #[test]
    fn ports_in_use_are_counted_and_a_pool_never_grows_past_its_start() {
        let mut a = LocalPorts::new(2, 0, 2);
        assert_eq!(a.capacity(), 2 * 32256);
        assert_eq!(a.in_use(), 0);
        let (x, p) = a.take(0..2).unwrap();
        let (y, q) = a.take(0..2).unwrap();
        assert_eq!(a.in_use(), 2);
        a.give_back(x, p);
        assert_eq!(a.in_use(), 1);
        // A port given back twice (a bug elsewhere) is not a second free port:
        // two connections would share one source.
        a.give_back(x, p);
        assert_eq!(a.free(x), 32256);
        a.give_back(y, q);
        assert_eq!(a.in_use(), 0);
    }

    #[test]
    fn the_owner_without_division_is_the_remainder_for_every_port() {
        for workers in 1..=512u16 {
            let fast = PortOwner::new(workers);
            for port in 0..=u16::MAX {
                assert_eq!(
                    fast.of(port),
                    LocalPorts::owner(port, workers),
                    "{port} of {workers}"
                );
            }
        }
    }
}
