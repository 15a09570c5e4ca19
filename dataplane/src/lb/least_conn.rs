//! A worker's connection counts per backend, and the `least_conn` choice over
//! them without scanning the pool.
//!
//! Each `least_conn` service has a tournament tree over its pool (laid out on
//! the management core: [`LeastConnLayout`]): a leaf per member, and each inner
//! node holds the better of its two children's winners: fewer connections per
//! unit of weight, the lower position on a tie. The root is then what a scan
//! of the pool in order would pick (the first member with the least
//! connections per weight), read in O(1).
//!
//! A count that moves marks its backend; the worker re-plays the matches on the
//! paths of the marked backends' leaves (O(log n) each) when a new flow is
//! about to pick, with the snapshot in hand, so that a connection expiring,
//! which has no snapshot, needs none. A new layout (a `least_conn` pool or
//! weight changed) has its nodes played from the counts, all of them, once.
//! This module never allocates after [`Loads::new`].

use super::least_conn_layout::{LeastConnLayout, Tree, NONE};
use super::snapshot::MAX_BACKENDS;
use std::sync::atomic::AtomicU16;

/// Connections per backend in this worker's table, and its winners in the
/// `least_conn` trees.
pub struct Loads {
    /// The segment of each layout's nodes this worker owns.
    worker: usize,
    active: Box<[u32]>,
    /// The layout whose nodes in this worker's segment are up to date but for
    /// the marked backends (0: the empty layout).
    laid_out: u64,
    /// Whether that layout has trees (without, counts mark nothing).
    trees: bool,
    /// Backends whose count moved since their leaves' paths were played, and a
    /// bit per backend against listing one twice (so `marked` never overflows).
    marked: Box<[u16]>,
    marked_len: usize,
    marked_bits: Box<[u64]>,
}

impl Loads {
    /// Counts for worker `worker` (the node segment it owns in every layout).
    pub fn new(worker: usize) -> Loads {
        Loads {
            worker,
            active: vec![0; MAX_BACKENDS].into_boxed_slice(),
            laid_out: 0,
            trees: false,
            marked: vec![0; MAX_BACKENDS].into_boxed_slice(),
            marked_len: 0,
            marked_bits: vec![0; MAX_BACKENDS / 64].into_boxed_slice(),
        }
    }

    /// Connections of backend `id` in this worker's table.
    #[inline]
    pub fn get(&self, id: u32) -> u32 {
        self.active.get(id as usize).copied().unwrap_or(0)
    }

    /// One connection more on backend `id`.
    #[inline]
    pub fn add(&mut self, id: u32) {
        if let Some(a) = self.active.get_mut(id as usize) {
            *a += 1;
            self.mark(id);
        }
    }

    /// One connection fewer on backend `id`.
    #[inline]
    pub fn remove(&mut self, id: u32) {
        if let Some(a) = self.active.get_mut(id as usize) {
            *a = a.saturating_sub(1);
            self.mark(id);
        }
    }

    #[inline]
    fn mark(&mut self, id: u32) {
        let (w, bit) = (id as usize / 64, 1u64 << (id % 64));
        if self.trees && self.marked_bits[w] & bit == 0 {
            self.marked_bits[w] |= bit;
            self.marked[self.marked_len] = id as u16;
            self.marked_len += 1;
        }
    }

    /// Brings this worker's nodes in `layout` up to date: all of them for a
    /// layout it has not played yet, else the paths of the marked backends.
    #[inline]
    pub fn follow(&mut self, layout: &LeastConnLayout) {
        if layout.id != self.laid_out {
            self.lay_out(layout);
        } else if self.marked_len > 0 {
            self.replay_marked(layout);
        }
    }

    /// The position in service `sid`'s pool a `least_conn` scheduler picks,
    /// or `None` when no member takes new flows or this worker's nodes are
    /// not up to date in `layout` (call [`follow`](Self::follow) first). The
    /// layout was built from that snapshot's services: a position is in its
    /// pool.
    #[inline]
    pub fn least(&self, sid: u32, layout: &LeastConnLayout) -> Option<u16> {
        if layout.id != self.laid_out || self.marked_len > 0 {
            return None;
        }
        let t = layout.trees.get(sid as usize)?;
        let seg = layout.segment(self.worker)?;
        if t.size == 0 {
            return None;
        }
        let root = LeastConnLayout::get(seg, t.nodes as usize + 1);
        (root != NONE).then_some(root)
    }

    #[cold]
    fn lay_out(&mut self, l: &LeastConnLayout) {
        self.clear_marks();
        self.laid_out = l.id;
        let seg = l.segment(self.worker);
        // A layout without room for this worker is one built for fewer
        // workers (never by the management core): its trees pick nothing here.
        self.trees = seg.is_some();
        let Some(seg) = seg else {
            return;
        };
        for &t in &l.trees {
            if t.size == 0 {
                continue;
            }
            for i in 0..t.size {
                let w = if i < t.len {
                    l.members[(t.members + i) as usize].1
                } else {
                    0
                };
                let leaf = if w > 0 { i as u16 } else { NONE };
                LeastConnLayout::set(seg, (t.nodes + t.size + i) as usize, leaf);
            }
            for k in (1..t.size as usize).rev() {
                let v = self.play(l, seg, t, k);
                LeastConnLayout::set(seg, t.nodes as usize + k, v);
            }
        }
    }

    fn clear_marks(&mut self) {
        for &id in &self.marked[..self.marked_len] {
            self.marked_bits[id as usize / 64] = 0;
        }
        self.marked_len = 0;
    }

    /// The winner of node `k` of tree `t`, from its children's.
    #[inline]
    fn play(&self, l: &LeastConnLayout, seg: &[AtomicU16], t: Tree, k: usize) -> u16 {
        let base = t.nodes as usize;
        let x = LeastConnLayout::get(seg, base + 2 * k);
        let y = LeastConnLayout::get(seg, base + 2 * k + 1);
        if y == NONE {
            return x;
        }
        if x == NONE {
            return y;
        }
        let (bx, wx) = l.members[t.members as usize + x as usize];
        let (by, wy) = l.members[t.members as usize + y as usize];
        let (ax, ay) = (self.get(bx) as u64, self.get(by) as u64);
        // y / wy < x / wx, without division; the left (lower) position wins ties.
        if ay * (wx as u64) < ax * (wy as u64) {
            y
        } else {
            x
        }
    }

    /// Re-plays the matches above each leaf of each marked backend.
    #[inline(never)]
    fn replay_marked(&mut self, l: &LeastConnLayout) {
        let Some(seg) = l.segment(self.worker) else {
            return self.clear_marks();
        };
        for m in 0..self.marked_len {
            let id = self.marked[m] as usize;
            let Some(&(from, to)) = l.by_backend.get(id) else {
                continue;
            };
            for p in from..to {
                let (sid, pos) = l.places[p as usize];
                let t = l.trees[sid as usize];
                let mut k = (t.size as usize + pos as usize) / 2;
                while k >= 1 {
                    let v = self.play(l, seg, t, k);
                    LeastConnLayout::set(seg, t.nodes as usize + k, v);
                    k /= 2;
                }
            }
        }
        self.clear_marks();
    }
}
