//! The per-core connection table: preallocated entries (no growth on the packet
//! path), indexed by the 5-tuple of both directions, expired by a timer wheel.

use super::flow::FlowKey;
use super::flow_index::FlowIndex;
use super::table_hash::TableHasher;
use super::tcp_state::{ConnState, Direction};
use super::timer_wheel::TimerWheel;
use crate::huge::HugeArray;

/// One connection: two aligned cache lines (it was 136 bytes, often spread over
/// three). The first holds the client's key, the state, the backend and the
/// deadline; the second the backend's key, the client's MAC and the counters.
#[derive(Debug, Clone, Copy)]
#[repr(C, align(64))]
pub struct Conn {
    /// As received from the client.
    pub fwd: FlowKey,
    pub state: ConnState,
    pub fin_from: u8,
    /// Port index the client's packets arrive on.
    pub client_port: u8,
    /// FullNAT: index of the local address in the snapshot's flat list.
    pub local_idx: u16,
    pub backend: u32,
    pub service: u32,
    /// Tick it was created (wraps after 13 years at 10 ticks a second).
    pub created: u32,
    /// Deadline in ticks.
    pub expires: u64,
    /// As received from the backend (FullNAT); `None` in DR mode.
    pub rev: Option<FlowKey>,
    /// MAC the client's packets come from: where reverse packets go.
    pub peer_mac: [u8; 6],
    pub packets: u64,
    pub bytes: u64,
}

impl Default for Conn {
    /// A free entry: a key no packet has, no reverse key, nothing counted.
    fn default() -> Conn {
        Conn {
            fwd: no_key(),
            rev: None,
            service: 0,
            backend: 0,
            state: ConnState::Closed,
            fin_from: 0,
            peer_mac: [0; 6],
            client_port: 0,
            local_idx: 0,
            expires: 0,
            created: 0,
            packets: 0,
            bytes: 0,
        }
    }
}

/// Why an insert failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableFull;

/// A reference to an entry and the direction of the key that found it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hit {
    pub id: u32,
    pub dir: Direction,
}

pub struct ConnTable {
    conns: HugeArray<Conn>,
    in_use: HugeArray<bool>,
    free: Vec<u32>,
    index: FlowIndex,
    wheel: TimerWheel,
    live: usize,
    /// Keys indexed so far, counted by a few bits of their hash (wrapping): a key
    /// staged as absent is still absent while its count is unchanged.
    added: [u32; ADDED_BUCKETS],
    /// Reverse keys (hash, index reference) of entries added in this burst, not
    /// indexed yet (see [`ConnTable::add`]).
    pending: [(u64, u32); PENDING_MAX],
    pending_len: usize,
    /// Places keys in the index (this process's keys, unless a test says).
    hasher: TableHasher,
}

/// Reverse keys `add` holds back at most (a burst's worth and more).
const PENDING_MAX: usize = 64;

/// How many counts of added keys the table keeps (see [`Staged::Absent`]).
const ADDED_BUCKETS: usize = 64;

#[inline(always)]
fn added_bucket(hash: u64) -> usize {
    // The low bits: the index slot and tag come from the high half.
    hash as usize % ADDED_BUCKETS
}

/// What the first stage of a burst look-up found ([`ConnTable::stage`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Staged {
    /// Not staged: look up in full.
    Unknown,
    /// No index slot carried the key's tag: the key was absent. The count of
    /// keys added in its hash bucket then: if it is unchanged at `confirm`, the
    /// key is still absent (an earlier packet of the burst may have added it).
    Absent(u32),
    /// The first index reference with the key's tag; its entry is being loaded.
    Candidate(u32),
}

/// The hit an index reference stands for.
#[inline]
fn hit_of(r: u32) -> Hit {
    Hit {
        id: r >> 1,
        dir: if r & 1 == 0 {
            Direction::Forward
        } else {
            Direction::Reverse
        },
    }
}

/// Index reference: entry id shifted left once, low bit = reverse key.
#[inline]
fn reference(id: u32, dir: Direction) -> u32 {
    (id << 1) | (dir == Direction::Reverse) as u32
}

/// Entries [`ConnTable::reclaim`] looks at, at most: it runs for a new flow, so its
/// cost is bounded (each is a cache miss in a large table).
pub const RECLAIM_VISITS: usize = 32;

/// The key of a free entry: no packet has it (protocol 0 is neither TCP nor UDP).
fn no_key() -> FlowKey {
    let any = std::net::Ipv4Addr::UNSPECIFIED;
    FlowKey::v4(any, any, 0, 0, 0)
}

/// Takes entry `id`'s keys (`c`'s) out of the index.
fn unindex(index: &mut FlowIndex, hasher: &TableHasher, id: u32, c: &Conn) {
    index.remove(hasher.hash(&c.fwd), reference(id, Direction::Forward));
    if let Some(rev) = &c.rev {
        index.remove(hasher.hash(rev), reference(id, Direction::Reverse));
    }
}

impl ConnTable {
    /// Bytes a table for `capacity` connections takes (entries, their in-use
    /// flags and free list, the index of both keys, the timer wheel): what
    /// `weir run` checks the machine has before it starts the workers.
    pub fn memory_for(capacity: usize) -> usize {
        let capacity = ConnTable::clamped(capacity);
        // An entry, its in-use flag and its place in the free list.
        let per_entry = size_of::<Conn>() + size_of::<bool>() + size_of::<u32>();
        capacity * per_entry
            + FlowIndex::memory_for(capacity * 2)
            + TimerWheel::memory_for(capacity)
    }

    fn clamped(capacity: usize) -> usize {
        capacity.clamp(1, (u32::MAX >> 2) as usize)
    }

    /// A table for `capacity` connections, everything allocated now, hashing
    /// keys with this process's [`TableHasher`].
    pub fn new(capacity: usize, now: u64) -> ConnTable {
        ConnTable::with_hasher(capacity, now, *TableHasher::process())
    }

    /// As `new`, hashing keys with `hasher`.
    pub fn with_hasher(capacity: usize, now: u64, hasher: TableHasher) -> ConnTable {
        let capacity = ConnTable::clamped(capacity);
        ConnTable {
            conns: HugeArray::new(capacity, Conn::default()),
            in_use: HugeArray::new(capacity, false),
            free: (0..capacity as u32).rev().collect(),
            index: FlowIndex::with_capacity(capacity * 2),
            wheel: TimerWheel::new(capacity, now),
            live: 0,
            added: [0; ADDED_BUCKETS],
            pending: [(0, 0); PENDING_MAX],
            pending_len: 0,
            hasher,
        }
    }

    /// The index slot a look-up of `k` starts at, and how many slots a look-up
    /// of a key absent from there reads (what a flood aimed at the hash would
    /// make long).
    pub fn home_slot(&self, k: &FlowKey) -> (usize, usize) {
        let h = self.hash(k);
        (self.index.home(h), self.index.probes(h))
    }

    /// The table hash of `k` (see [`TableHasher`]).
    #[inline(always)]
    pub fn hash(&self, k: &FlowKey) -> u64 {
        self.hasher.hash(k)
    }

    pub fn capacity(&self) -> usize {
        self.conns.len()
    }

    pub fn len(&self) -> usize {
        self.live
    }

    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// No entry free: the next `add` fails.
    #[inline]
    pub fn is_full(&self) -> bool {
        self.free.is_empty()
    }

    /// Finds the connection a packet with key `k` belongs to.
    #[inline]
    pub fn lookup(&self, k: &FlowKey) -> Option<Hit> {
        self.lookup_hashed(k, self.hash(k))
    }

    /// As `lookup`, with `hash == self.hash(k)` already computed.
    #[inline]
    pub fn lookup_hashed(&self, k: &FlowKey, hash: u64) -> Option<Hit> {
        self.index.get(hash, |r| self.holds(r, k)).map(hit_of)
    }

    /// Whether the entry behind index reference `r` has key `k` in its direction.
    #[inline(always)]
    fn holds(&self, r: u32, k: &FlowKey) -> bool {
        let c = &self.conns[(r >> 1) as usize];
        if r & 1 == 0 {
            c.fwd == *k
        } else {
            c.rev.as_ref() == Some(k)
        }
    }

    /// First stage of a look-up within a burst: reads the (prefetched) index slot
    /// for `hash` and starts loading the entry its tag points at, without reading
    /// the entry yet. [`ConnTable::confirm`] finishes the look-up.
    #[inline]
    pub fn stage(&self, hash: u64) -> Staged {
        match self.index.candidate(hash) {
            Some(r) => {
                self.prefetch_entry(r >> 1);
                Staged::Candidate(r)
            }
            None => Staged::Absent(self.added[added_bucket(hash)]),
        }
    }

    /// Finishes a staged look-up: the candidate when it holds `k`; none when the
    /// key was absent and nothing was added in its bucket since; else a full
    /// look-up (a tag collision, or keys added since it was staged).
    #[inline(always)]
    pub fn confirm(&self, k: &FlowKey, hash: u64, staged: Staged) -> Option<Hit> {
        match staged {
            Staged::Candidate(r) if self.holds(r, k) => Some(hit_of(r)),
            Staged::Absent(n) if n == self.added[added_bucket(hash)] => None,
            _ => self.lookup_hashed(k, hash),
        }
    }

    /// Starts loading the index slot for `hash`.
    #[inline]
    pub fn prefetch_slot(&self, hash: u64) {
        self.index.prefetch(hash);
    }

    /// Starts loading both cache lines of entry `id` (every packet updates the
    /// counters in the second).
    #[inline]
    pub fn prefetch_entry(&self, id: u32) {
        let c = &self.conns[id as usize];
        crate::prefetch::prefetch(c);
        crate::prefetch::prefetch(&c.rev);
    }

    /// Adds `conn`, expiring at `conn.expires`, with both keys indexed at once
    /// (for tests; the packet path adds within a burst).
    #[cfg(test)]
    pub fn insert(&mut self, conn: Conn) -> Result<u32, TableFull> {
        let id = self.add(conn, self.hash(&conn.fwd));
        self.index_pending();
        id
    }

    /// Adds `conn` (`fwd_hash == self.hash(&conn.fwd)`) within a burst: its
    /// forward key is indexed now, its reverse key (FullNAT) by the next
    /// [`ConnTable::index_pending`], which the worker calls at the end of each
    /// burst. No reply can arrive before then (the packet that created the entry
    /// has not even left), and the reverse key's index slot, a cache miss in a
    /// large table, loads meanwhile instead of stalling this packet.
    pub fn add(&mut self, conn: Conn, fwd_hash: u64) -> Result<u32, TableFull> {
        debug_assert_eq!(fwd_hash, self.hash(&conn.fwd));
        let Some(id) = self.free.pop() else {
            return Err(TableFull);
        };
        if !self
            .index
            .insert(fwd_hash, reference(id, Direction::Forward))
        {
            self.free.push(id);
            return Err(TableFull);
        }
        self.count_added(fwd_hash);
        if let Some(rev) = conn.rev {
            if self.pending_len == PENDING_MAX {
                self.index_pending();
            }
            let rev_hash = self.hash(&rev);
            self.index.prefetch(rev_hash);
            self.pending[self.pending_len] = (rev_hash, reference(id, Direction::Reverse));
            self.pending_len += 1;
        }
        self.conns[id as usize] = conn;
        self.in_use[id as usize] = true;
        self.wheel.link(id, conn.expires);
        self.live += 1;
        Ok(id)
    }

    /// Indexes the reverse keys `add` left pending. They always fit: the index
    /// holds two keys for every entry.
    #[inline]
    pub fn index_pending(&mut self) {
        for i in 0..self.pending_len {
            let (hash, r) = self.pending[i];
            let indexed = self.index.insert(hash, r);
            debug_assert!(indexed);
            self.count_added(hash);
        }
        self.pending_len = 0;
    }

    #[inline]
    fn count_added(&mut self, hash: u64) {
        let n = &mut self.added[added_bucket(hash)];
        *n = n.wrapping_add(1);
    }

    #[inline]
    pub fn get(&self, id: u32) -> &Conn {
        &self.conns[id as usize]
    }

    /// Updates entry `id` with `f`, which returns the entry's new deadline (and
    /// anything the caller wants from it): the packet path's one access to an
    /// entry it found.
    #[inline(always)]
    pub fn touch<R>(&mut self, id: u32, f: impl FnOnce(&mut Conn) -> (u64, R)) -> R {
        let c = &mut self.conns[id as usize];
        let (expires, r) = f(c);
        // The wheel holds every entry at or before its deadline, so a later one
        // (traffic refreshing the flow: nearly every packet) needs no wheel work.
        let earlier = expires < c.expires;
        c.expires = expires;
        if earlier {
            self.wheel.reschedule(id, expires);
        }
        r
    }

    /// Runs the wheel up to `now`, calling `on_expire` for each connection removed.
    /// At most `max_ticks` ticks and `max_entries` entries are processed per
    /// call to bound the work; the next call goes on where this one stopped.
    pub fn expire(
        &mut self,
        now: u64,
        max_ticks: u64,
        max_entries: usize,
        mut on_expire: impl FnMut(&Conn),
    ) {
        // Removal expects both keys of an entry in the index.
        self.index_pending();
        let conns = &mut self.conns;
        let in_use = &mut self.in_use;
        let index = &mut self.index;
        let hasher = &self.hasher;
        let free = &mut self.free;
        let live = &mut self.live;
        self.wheel.advance(now, max_ticks, max_entries, |id| {
            let c = &conns[id as usize];
            if !in_use[id as usize] {
                return None;
            }
            if c.expires > now {
                return Some(c.expires);
            }
            unindex(index, hasher, id, c);
            on_expire(c);
            in_use[id as usize] = false;
            free.push(id);
            *live -= 1;
            None
        });
    }

    /// Frees one entry for a new connection when the table is full: of the
    /// entries due soonest (at most [`RECLAIM_VISITS`] looked at, longest-linked
    /// first within a tick), the first that `rank` ranks lowest, or the first
    /// ranked `good_enough` or lower; `rank` returns `None` for entries that must
    /// stay. Returns the connection given up, for the caller's bookkeeping. Safe
    /// within a burst: a later packet staged with this entry as its candidate
    /// finds another key in it (the blanked one, or the next connection's) and
    /// looks up in full.
    pub fn reclaim(&mut self, rank: impl Fn(&Conn) -> Option<u8>, good_enough: u8) -> Option<Conn> {
        // Removal expects both keys of an entry in the index.
        self.index_pending();
        let (conns, in_use) = (&self.conns, &self.in_use);
        let mut best: Option<(u8, u32)> = None;
        self.wheel.scan(RECLAIM_VISITS, |id| {
            let Some(r) = in_use[id as usize]
                .then(|| rank(&conns[id as usize]))
                .flatten()
            else {
                return false;
            };
            if best.is_none_or(|(b, _)| r < b) {
                best = Some((r, id));
            }
            r <= good_enough
        });
        let (_, id) = best?;
        Some(self.remove(id))
    }

    /// Removes live entry `id` and returns its connection, for the caller's
    /// bookkeeping. Safe within a burst, as [`ConnTable::reclaim`] is.
    pub fn remove(&mut self, id: u32) -> Conn {
        // Removal expects both keys of an entry in the index.
        self.index_pending();
        let c = self.conns[id as usize];
        self.wheel.remove(id);
        unindex(&mut self.index, &self.hasher, id, &c);
        let e = &mut self.conns[id as usize];
        e.fwd = no_key();
        e.rev = None;
        self.in_use[id as usize] = false;
        self.free.push(id);
        self.live -= 1;
        c
    }

    /// The live connections with ids in `ids`, in id order: `f(id, conn)` on
    /// each until it returns false. Returns whether the reading is over: `f`
    /// stopped it, or `ids` reached the table's end. Empty stretches are
    /// skipped eight ids at a time.
    pub fn scan(&self, ids: std::ops::Range<u32>, mut f: impl FnMut(u32, &Conn) -> bool) -> bool {
        let cap = self.in_use.len();
        let (start, end) = ((ids.start as usize).min(cap), (ids.end as usize).min(cap));
        let mut i = start;
        while i < end {
            if i + 8 <= end && self.in_use[i..i + 8] == [false; 8] {
                i += 8;
                continue;
            }
            if self.in_use[i] && !f(i as u32, &self.conns[i]) {
                return true;
            }
            i += 1;
        }
        end == cap
    }

    /// Every live connection (for tests and benchmarks; not for the packet
    /// path, nor for a worker: [`ConnTable::scan`] reads a slice at a time).
    pub fn iter(&self) -> impl Iterator<Item = (u32, &Conn)> {
        self.conns
            .iter()
            .enumerate()
            .filter(|(i, _)| self.in_use[*i])
            .map(|(i, c)| (i as u32, c))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn conn(sport: u16, lport: u16, expires: u64) -> Conn {
        let fwd = FlowKey::v4(
            Ipv4Addr::new(198, 18, 0, 10),
            Ipv4Addr::new(198, 18, 0, 100),
            sport,
            80,
            6,
        );
        let rev = FlowKey::v4(
            Ipv4Addr::new(198, 18, 0, 11),
            Ipv4Addr::new(198, 18, 0, 2),
            80,
            lport,
            6,
        );
        Conn {
            fwd,
            rev: Some(rev),
            service: 0,
            backend: 1,
            state: ConnState::SynSent,
            fin_from: 0,
            peer_mac: [2, 0, 0, 0, 0, 1],
            client_port: 0,
            local_idx: 0,
            expires,
            created: 0,
            packets: 0,
            bytes: 0,
        }
    }

    #[test]
    fn reclaim_takes_the_best_ranked_of_the_soonest_entries() {
        let mut t = ConnTable::new(4, 0);
        let mut c = |sport, lport, expires, state| {
            let mut x = conn(sport, lport, expires);
            x.state = state;
            t.insert(x).unwrap()
        };
        let est = c(1, 2001, 10, ConnState::Established);
        let syn = c(2, 2002, 20, ConnState::SynSent);
        let closed = c(3, 2003, 30, ConnState::Closed);
        let late = c(4, 2004, 40, ConnState::TimeWait);
        let rank = |c: &Conn| match c.state {
            ConnState::Closed | ConnState::TimeWait => Some(0),
            ConnState::SynSent => Some(1),
            _ => None,
        };
        // The first rank-0 entry in deadline order, over an earlier rank-1 one.
        let gone = t.reclaim(rank, 0).unwrap();
        assert_eq!(gone.fwd.sport, 3);
        assert_eq!(t.len(), 3);
        for k in [gone.fwd, gone.rev.unwrap()] {
            assert_eq!(t.lookup(&k), None);
            // Staged before the reclaim: its candidate no longer holds it.
            let h = t.hash(&k);
            let staged = Staged::Candidate(reference(closed, Direction::Forward));
            assert_eq!(t.confirm(&k, h, staged), None);
        }
        // The freed entry takes the next connection; the others are untouched.
        assert_eq!(t.insert(conn(5, 2005, 50)).unwrap(), closed);
        for (id, sport) in [(est, 1), (syn, 2), (late, 4), (closed, 5)] {
            let k = t.get(id).fwd;
            assert_eq!(k.sport, sport);
            assert_eq!(t.lookup(&k).map(|h| h.id), Some(id));
        }
        assert_eq!(t.reclaim(rank, 0).unwrap().fwd.sport, 4);
        assert_eq!(t.reclaim(rank, 0).unwrap().fwd.sport, 2);
        // sport 5 (syn_sent) is next; then only the established one is left.
        assert_eq!(t.reclaim(rank, 0).unwrap().fwd.sport, 5);
        assert!(t.reclaim(rank, 0).is_none());
        assert_eq!(t.len(), 1);
        // A reclaimed entry never fires from the wheel.
        let mut expired = Vec::new();
        t.expire(1000, 1024, usize::MAX, |c| expired.push(c.fwd.sport));
        assert_eq!(expired, vec![1]);
        assert!(t.is_empty());
    }

    #[test]
    fn a_staged_look_up_confirms_its_candidate_or_falls_back_to_a_full_one() {
        let mut t = ConnTable::new(64, 0);
        let ids: Vec<u32> = (0..20)
            .map(|i| t.insert(conn(1000 + i, 2000 + i, 50)).unwrap())
            .collect();
        for (i, &id) in ids.iter().enumerate() {
            let c = *t.get(id);
            for (k, dir) in [
                (c.fwd, Direction::Forward),
                (c.rev.unwrap(), Direction::Reverse),
            ] {
                let h = t.hash(&k);
                let staged = t.stage(h);
                assert!(matches!(staged, Staged::Candidate(_)), "flow {i}");
                assert_eq!(t.confirm(&k, h, staged), Some(Hit { id, dir }));
                // A candidate that turns out to hold another key (a tag
                // collision) and an unstaged packet both get the full look-up.
                let other = ids[(i + 1) % ids.len()];
                let wrong = Staged::Candidate(reference(other, Direction::Forward));
                assert_eq!(t.confirm(&k, h, wrong), Some(Hit { id, dir }));
                assert_eq!(t.confirm(&k, h, Staged::Unknown), Some(Hit { id, dir }));
            }
        }
        let absent = conn(9999, 9999, 0).fwd;
        let h = t.hash(&absent);
        let staged = t.stage(h);
        assert_eq!(t.confirm(&absent, h, staged), None);
        assert_eq!(t.confirm(&absent, h, Staged::Unknown), None);
    }

    #[test]
    fn reverse_keys_added_in_a_burst_are_indexed_at_its_end() {
        let mut t = ConnTable::new(1024, 0);
        // More than the pending buffer holds: the oldest are indexed on the way.
        let conns: Vec<Conn> = (0..PENDING_MAX as u16 + 10)
            .map(|i| conn(100 + i, 5000 + i, 50))
            .collect();
        let ids: Vec<u32> = conns
            .iter()
            .map(|c| t.add(*c, t.hash(&c.fwd)).unwrap())
            .collect();
        let rev_found = |t: &ConnTable| {
            conns
                .iter()
                .zip(&ids)
                .filter(|(c, &id)| {
                    t.lookup(&c.rev.unwrap())
                        == Some(Hit {
                            id,
                            dir: Direction::Reverse,
                        })
                })
                .count()
        };
        assert!(conns.iter().all(|c| t.lookup(&c.fwd).is_some()));
        assert_eq!(
            rev_found(&t),
            PENDING_MAX,
            "the first 64 were indexed to make room"
        );
        t.index_pending();
        assert_eq!(rev_found(&t), conns.len());
        // Expiry removes both keys, pending ones included.
        let late = conn(9000, 9000, 50);
        t.add(late, t.hash(&late.fwd)).unwrap();
        t.expire(60, 64, usize::MAX, |_| {});
        assert!(t.is_empty());
        // Nothing stale is left to be indexed after.
        t.index_pending();
        assert_eq!(t.index.len(), 0);
        assert_eq!(t.lookup(&late.rev.unwrap()), None);
    }

    #[test]
    fn a_key_staged_as_absent_is_found_once_added_before_it_is_confirmed() {
        // As in a burst: both directions of new flows are staged first, then the
        // flows are added (by earlier packets), then the staged look-ups finish.
        let mut t = ConnTable::new(512, 0);
        for i in 0..200 {
            let c = conn(3000 + i, 4000 + i, 50);
            let keys = [
                (c.fwd, Direction::Forward),
                (c.rev.unwrap(), Direction::Reverse),
            ];
            let staged: Vec<Staged> = keys.iter().map(|(k, _)| t.stage(t.hash(k))).collect();
            assert!(staged.iter().all(|s| matches!(s, Staged::Absent(_))));
            // Other flows added meanwhile (sometimes in the same hash bucket):
            // the staged keys are still absent, not mistaken for them.
            if i % 2 == 0 {
                t.insert(conn(60000 - i, 50000 - i, 50)).unwrap();
            }
            for ((k, _), s) in keys.iter().zip(&staged) {
                assert_eq!(t.confirm(k, t.hash(k), *s), None);
            }
            let id = t.insert(c).unwrap();
            for ((k, dir), s) in keys.iter().zip(&staged) {
                assert_eq!(t.confirm(k, t.hash(k), *s), Some(Hit { id, dir: *dir }));
            }
        }
    }

    #[test]
    fn an_entry_is_two_aligned_cache_lines_with_the_forward_fields_in_the_first() {
        assert_eq!(std::mem::size_of::<Conn>(), 128);
        assert_eq!(std::mem::align_of::<Conn>(), 64);
        let c = conn(1, 1, 0);
        let base = &c as *const Conn as usize;
        for (name, at) in [
            ("fwd", &c.fwd as *const _ as usize),
            ("state", &c.state as *const _ as usize),
            ("backend", &c.backend as *const _ as usize),
            ("expires", &c.expires as *const _ as usize),
        ] {
            assert!(at - base < 64, "{name} at {}", at - base);
        }
        assert!(&c.rev as *const _ as usize - base >= 64);
    }

    #[test]
    fn both_directions_find_the_entry() {
        let mut t = ConnTable::new(16, 0);
        assert!(t.is_empty());
        let c = conn(40000, 5000, 100);
        let id = t.insert(c).unwrap();
        assert!(!t.is_empty());
        assert_eq!(t.len(), 1);
        assert_eq!(
            t.lookup(&c.fwd),
            Some(Hit {
                id,
                dir: Direction::Forward
            })
        );
        assert_eq!(
            t.lookup(&c.rev.unwrap()),
            Some(Hit {
                id,
                dir: Direction::Reverse
            })
        );
        assert_eq!(t.lookup(&conn(40001, 5001, 0).fwd), None);
    }

    #[test]
    fn expires_at_deadline_and_refresh_postpones() {
        let mut t = ConnTable::new(16, 0);
        let a = t.insert(conn(1, 1, 30)).unwrap();
        let _b = t.insert(conn(2, 2, 30)).unwrap();
        t.touch(a, |_| (90, ())); // traffic refreshed it
        let mut gone = Vec::new();
        t.expire(29, u64::MAX, usize::MAX, |c| gone.push(c.fwd.sport));
        assert!(gone.is_empty());
        t.expire(30, u64::MAX, usize::MAX, |c| gone.push(c.fwd.sport));
        assert_eq!(gone, vec![2]);
        assert_eq!(t.len(), 1);
        t.expire(89, u64::MAX, usize::MAX, |c| gone.push(c.fwd.sport));
        assert_eq!(gone, vec![2]);
        t.expire(90, u64::MAX, usize::MAX, |c| gone.push(c.fwd.sport));
        assert_eq!(gone, vec![2, 1]);
        assert!(t.is_empty());
        assert_eq!(t.lookup(&conn(1, 1, 0).fwd), None);
    }

    #[test]
    fn a_deadline_brought_forward_expires_at_the_new_time() {
        // A FIN or RST shortens the timeout: the wheel must fire at the new,
        // earlier deadline, not the one the entry was linked for.
        let mut t = ConnTable::new(16, 0);
        let a = t.insert(conn(1, 1, 900)).unwrap();
        let sport = t.touch(a, |c| (20, c.fwd.sport));
        assert_eq!((sport, t.get(a).expires), (1, 20));
        let mut gone = Vec::new();
        t.expire(19, u64::MAX, usize::MAX, |c| gone.push(c.fwd.sport));
        assert!(gone.is_empty());
        t.expire(20, u64::MAX, usize::MAX, |c| gone.push(c.fwd.sport));
        assert_eq!(gone, vec![1]);
    }

    #[test]
    fn the_memory_said_counts_every_array_the_table_allocates() {
        // `weir run` refuses to start when the machine lacks this much; the
        // index and the wheel are checked against resident memory in
        // tests/table_memory.rs, whose 5% would hide the small per-entry arrays.
        for capacity in [1, 1000, 65_537] {
            let t = ConnTable::new(capacity, 0);
            let arrays = t.conns.len() * size_of::<Conn>()
                + t.in_use.len() * size_of::<bool>()
                + t.free.capacity() * size_of::<u32>();
            let said = ConnTable::memory_for(capacity);
            let parts = FlowIndex::memory_for(capacity * 2) + TimerWheel::memory_for(capacity);
            assert_eq!(said - parts, arrays, "{capacity} entries");
        }
    }

    #[test]
    fn the_largest_table_names_each_entry_and_direction_in_an_index_reference() {
        // A reference is the entry id and one bit for the direction in a u32, so
        // a capacity asked for past 2^30 is cut to what references can name
        // (the configuration allows far less; this is the last guard).
        let max = ConnTable::clamped(usize::MAX);
        assert_eq!(max, (1 << 30) - 1);
        assert_eq!(
            ConnTable::memory_for(usize::MAX),
            ConnTable::memory_for(max)
        );
        for dir in [Direction::Forward, Direction::Reverse] {
            let last = max as u32 - 1;
            assert_eq!(hit_of(reference(last, dir)), Hit { id: last, dir });
        }
    }

    #[test]
    fn full_table_refuses_then_accepts_after_expiry() {
        let mut t = ConnTable::new(4, 0);
        for i in 0..4 {
            t.insert(conn(i, i, 10)).unwrap();
        }
        assert_eq!(t.insert(conn(9, 9, 10)), Err(TableFull));
        t.expire(10, u64::MAX, usize::MAX, |_| {});
        assert!(t.insert(conn(9, 9, 20)).is_ok());
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn churn_keeps_index_consistent() {
        let mut t = ConnTable::new(1000, 0);
        let mut now = 0;
        for round in 0..50u16 {
            for i in 0..900u16 {
                let c = conn(
                    round.wrapping_mul(1000).wrapping_add(i),
                    i,
                    now + 1 + (i % 3) as u64,
                );
                let _ = t.insert(c);
            }
            now += 5;
            t.expire(now, u64::MAX, usize::MAX, |_| {});
            assert!(t.is_empty(), "round {round}: {} left", t.len());
        }
    }

    #[test]
    fn scan_reads_the_live_ids_of_a_range_and_says_when_the_table_ends() {
        let mut t = ConnTable::new(100, 0);
        let ids: Vec<u32> = (0..100)
            .map(|i| t.insert(conn(i, 1000 + i, 50)).unwrap())
            .collect();
        let live = [0u32, 7, 8, 15, 16, 63, 99];
        for &id in ids.iter().filter(|id| !live.contains(id)) {
            t.remove(id);
        }
        let read = |t: &ConnTable, r: std::ops::Range<u32>, stop_at: u32| {
            let mut seen = Vec::new();
            let over = t.scan(r, |id, c| {
                assert_eq!(c.fwd.sport, id as u16, "the entry of its id");
                seen.push(id);
                id != stop_at
            });
            (seen, over)
        };
        assert_eq!(read(&t, 0..50, u32::MAX), (vec![0, 7, 8, 15, 16], false));
        assert_eq!(read(&t, 50..200, u32::MAX), (vec![63, 99], true));
        // Ranges that start and end inside a run of eight.
        assert_eq!(read(&t, 5..9, u32::MAX), (vec![7, 8], false));
        assert_eq!(read(&t, 9..16, u32::MAX), (vec![15], false));
        assert_eq!(read(&t, 0..100, 8), (vec![0, 7, 8], true), "f stopped it");
        assert_eq!(read(&t, 200..300, u32::MAX), (vec![], true));
        assert_eq!(read(&t, 17..63, u32::MAX), (vec![], false));
        // A table smaller than the eight ids skipped at a time.
        let mut small = ConnTable::new(5, 0);
        for i in 0..5 {
            small.insert(conn(i, 1000 + i, 50)).unwrap();
        }
        small.remove(1);
        assert_eq!(read(&small, 0..9, u32::MAX), (vec![0, 2, 3, 4], true));
    }

    #[test]
    fn expiry_goes_on_where_a_bounded_call_stopped() {
        let mut t = ConnTable::new(100, 0);
        for i in 0..60 {
            t.insert(conn(i, 1000 + i, if i < 50 { 10 } else { 11 }))
                .unwrap();
        }
        let mut rounds = Vec::new();
        for _ in 0..4 {
            let mut gone = Vec::new();
            t.expire(11, 64, 20, |c| gone.push(c.fwd.sport));
            rounds.push((gone, t.len()));
        }
        let run = |r: std::ops::Range<u16>| r.collect::<Vec<u16>>();
        assert_eq!(rounds[0], (run(0..20), 40));
        assert_eq!(rounds[1], (run(20..40), 20));
        // The rest of tick 10, then tick 11.
        assert_eq!(rounds[2], (run(40..60), 0));
        assert_eq!(rounds[3], (vec![], 0));
        // Every key left the index.
        assert!((0..60).all(|i| t.lookup(&conn(i, 1000 + i, 0).fwd).is_none()));
    }
}
