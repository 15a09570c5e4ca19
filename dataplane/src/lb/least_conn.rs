//! A worker's connection counts per backend, and the `least_conn` choice over
//! them without scanning the pool.
//!
//! Each `least_conn` service gets a tournament tree over its pool: a leaf per
//! member (its position in the service's pool), and each inner node holds the
//! better of its two children's winners: fewer connections per unit of weight,
//! the lower position on a tie. The root is then what a scan of the pool in
//! order would pick (the first member with the least connections per weight),
//! read in O(1); a count that moves re-plays the matches on its leaf's path to
//! the root, O(log n) for each `least_conn` service the backend is in.
//!
//! The trees are laid out for one snapshot and laid out again, on the worker,
//! when a new flow finds another snapshot (once per publish: the only time this
//! module allocates, and only when the pools grew).

use super::snapshot::{LbSnapshot, SchedKind, Service, MAX_BACKENDS};

/// No member: a leaf past the pool's end or of weight 0, or a subtree of them.
const NONE: u16 = u16::MAX;

/// Where one service's tree sits in the flat arrays.
#[derive(Debug, Clone, Copy, Default)]
struct Tree {
    /// Index of its node 0 in `nodes` (node 1 is the root; leaves are
    /// `size..2 * size`).
    nodes: u32,
    /// Index of its first member in `members`.
    members: u32,
    /// Leaves: the pool's size rounded up to a power of two; 0 for a service
    /// that is not `least_conn`.
    size: u32,
    /// Members (the pool's size).
    len: u32,
}

/// Connections per backend in this worker's table, and the `least_conn` trees.
pub struct Loads {
    active: Box<[u32]>,
    /// The snapshot the trees are laid out for: its generation and the address
    /// of its services (0, which no snapshot's services have, before the first).
    laid_out_for: (u64, usize),
    /// By service id.
    trees: Vec<Tree>,
    /// Every tree's nodes: the winning position, or [`NONE`].
    nodes: Vec<u16>,
    /// Every tree's members in pool order: (backend id, weight in the service).
    members: Vec<(u32, u32)>,
    /// By backend id: the range of `places` that lists its leaves.
    by_backend: Vec<(u32, u32)>,
    /// (service id, position in its pool), grouped by backend.
    places: Vec<(u32, u16)>,
}

impl Default for Loads {
    fn default() -> Loads {
        Loads {
            active: vec![0; MAX_BACKENDS].into_boxed_slice(),
            laid_out_for: (0, 0),
            trees: vec![],
            nodes: vec![],
            members: vec![],
            by_backend: vec![],
            places: vec![],
        }
    }
}

impl Loads {
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
            if !self.places.is_empty() {
                self.replay(id);
            }
        }
    }

    /// One connection fewer on backend `id`.
    #[inline]
    pub fn remove(&mut self, id: u32) {
        if let Some(a) = self.active.get_mut(id as usize) {
            *a = a.saturating_sub(1);
            if !self.places.is_empty() {
                self.replay(id);
            }
        }
    }

    /// Lays the trees out for `snap` if they are not already (see the module's
    /// comment). A snapshot changed in place must take a new generation.
    #[inline]
    pub fn follow(&mut self, snap: &LbSnapshot) {
        let id = (snap.generation, snap.services.as_ptr() as usize);
        if self.laid_out_for != id {
            self.lay_out(snap);
            self.laid_out_for = id;
        }
    }

    /// The position in `svc`'s pool a `least_conn` scheduler picks, or `None`
    /// when no member takes new flows (or the trees are not laid out for this
    /// service: call [`follow`](Self::follow) first).
    #[inline]
    pub fn least(&self, sid: u32, svc: &Service) -> Option<u16> {
        let t = self.trees.get(sid as usize)?;
        if t.size == 0 {
            return None;
        }
        let root = self.nodes[t.nodes as usize + 1];
        (root != NONE && (root as usize) < svc.backends.len()).then_some(root)
    }

    #[cold]
    fn lay_out(&mut self, snap: &LbSnapshot) {
        self.trees.clear();
        self.nodes.clear();
        self.members.clear();
        self.places.clear();
        self.by_backend.clear();
        self.by_backend
            .resize(snap.backends.len().min(MAX_BACKENDS), (0, 0));
        for svc in &snap.services {
            if svc.sched != SchedKind::LeastConn || svc.backends.is_empty() {
                self.trees.push(Tree::default());
                continue;
            }
            // Positions are u16 with one value kept for NONE.
            let n = svc.backends.len().min(NONE as usize);
            let size = n.next_power_of_two();
            let t = Tree {
                nodes: self.nodes.len() as u32,
                members: self.members.len() as u32,
                size: size as u32,
                len: n as u32,
            };
            self.trees.push(t);
            for i in 0..n {
                let w = svc.weights.get(i).copied().unwrap_or(0);
                self.members.push((svc.backends[i], w));
                if let Some(c) = self.by_backend.get_mut(svc.backends[i] as usize) {
                    c.1 += 1;
                }
            }
            self.nodes.resize(self.nodes.len() + 2 * size, NONE);
            for i in 0..n {
                let leaf = (t.nodes as usize) + size + i;
                self.nodes[leaf] = if self.members[t.members as usize + i].1 > 0 {
                    i as u16
                } else {
                    NONE
                };
            }
            for k in (1..size).rev() {
                self.nodes[t.nodes as usize + k] = self.play(t, k);
            }
        }
        // Each backend's leaves get a run of `places`: the counts become runs
        // (empty at first), which the second pass fills.
        let mut start = 0;
        for c in self.by_backend.iter_mut() {
            let count = c.1;
            *c = (start, start);
            start += count;
        }
        self.places.resize(start as usize, (0, 0));
        for (sid, t) in self.trees.iter().enumerate() {
            for i in 0..t.len {
                let b = self.members[(t.members + i) as usize].0 as usize;
                if let Some(r) = self.by_backend.get_mut(b) {
                    self.places[r.1 as usize] = (sid as u32, i as u16);
                    r.1 += 1;
                }
            }
        }
    }

    /// The winner of node `k` of tree `t`, from its children's.
    #[inline]
    fn play(&self, t: Tree, k: usize) -> u16 {
        let base = t.nodes as usize;
        let (x, y) = (self.nodes[base + 2 * k], self.nodes[base + 2 * k + 1]);
        if y == NONE {
            return x;
        }
        if x == NONE {
            return y;
        }
        let (bx, wx) = self.members[t.members as usize + x as usize];
        let (by, wy) = self.members[t.members as usize + y as usize];
        let (ax, ay) = (self.get(bx) as u64, self.get(by) as u64);
        // y / wy < x / wx, without division; the left (lower) position wins ties.
        if ay * (wx as u64) < ax * (wy as u64) {
            y
        } else {
            x
        }
    }

    /// Re-plays the matches above each leaf of backend `id`.
    #[inline(never)]
    fn replay(&mut self, id: u32) {
        let Some(&(from, to)) = self.by_backend.get(id as usize) else {
            return;
        };
        for p in from..to {
            let (sid, pos) = self.places[p as usize];
            let t = self.trees[sid as usize];
            let mut k = (t.size as usize + pos as usize) / 2;
            while k >= 1 {
                self.nodes[t.nodes as usize + k] = self.play(t, k);
                k /= 2;
            }
        }
    }
}
