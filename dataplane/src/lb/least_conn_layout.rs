//! The shape of the `least_conn` trees, laid out on the management core and
//! published in the snapshot; the workers keep their winners in it.
//!
//! Each `least_conn` service gets a tournament tree over its pool: a leaf per
//! member (its position in the pool), and each inner node holds the better of
//! its two children's winners (see [`Loads`](super::least_conn::Loads)). What
//! does not depend on the connection counts (where each tree sits, its members
//! and weights, which leaves each backend has) is built here once, on the
//! management core, and shared by every snapshot until a `least_conn` pool or
//! weight changes. The nodes, which do depend on the counts, are one segment
//! per worker in the same allocation, so a worker never allocates or frees
//! for its trees: a new layout comes with room for every worker's nodes.

use super::snapshot::{SchedKind, Service, MAX_BACKENDS};
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};

/// No member: a leaf past the pool's end or of weight 0, or a subtree of them.
pub const NONE: u16 = u16::MAX;

/// Nodes per cache line.
const LINE_NODES: usize = 64 / std::mem::size_of::<AtomicU16>();

/// One cache line of nodes: each worker's segment is whole lines, so that no
/// two workers write to one line.
#[derive(Debug)]
#[repr(C, align(64))]
struct Line([AtomicU16; LINE_NODES]);

/// Where one service's tree sits in the flat arrays.
#[derive(Debug, Clone, Copy, Default)]
pub struct Tree {
    /// Index of its node 0 in a worker's segment (node 1 is the root; leaves
    /// are `size..2 * size`).
    pub nodes: u32,
    /// Index of its first member in `members`.
    pub members: u32,
    /// Leaves: the pool's size rounded up to a power of two; 0 for a service
    /// that is not `least_conn`.
    pub size: u32,
    /// Members (the pool's size).
    pub len: u32,
}

/// The trees of one snapshot's `least_conn` services.
#[derive(Debug, Default)]
pub struct LeastConnLayout {
    /// Different for every layout built in the process; 0 for the empty one
    /// (no trees), which needs no laying out.
    pub id: u64,
    /// By service id.
    pub trees: Vec<Tree>,
    /// Every tree's members in pool order: (backend id, weight in the service).
    pub members: Vec<(u32, u32)>,
    /// By backend id: the range of `places` that lists its leaves.
    pub by_backend: Vec<(u32, u32)>,
    /// (service id, position in its pool), grouped by backend.
    pub places: Vec<(u32, u16)>,
    /// Lines of one worker's segment.
    stride: usize,
    /// Every worker's segment, worker 0 first: the winning position of each
    /// node, or [`NONE`]. Only its worker writes a segment; atomics (relaxed:
    /// plain loads and stores) keep that safe without a lock.
    nodes: Box<[Line]>,
}

/// Source of layout ids (0 is the empty layout's).
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

impl LeastConnLayout {
    /// Lays out the trees of `services`' `least_conn` pools, with a segment of
    /// nodes for each of `workers` workers. Without any such pool it is the
    /// empty layout (id 0).
    pub fn build(services: &[Service], workers: usize) -> LeastConnLayout {
        let mut l = LeastConnLayout::default();
        let mut nodes = 0usize;
        let mut top = 0usize;
        for svc in services {
            if svc.sched != SchedKind::LeastConn || svc.backends.is_empty() {
                l.trees.push(Tree::default());
                continue;
            }
            // Positions are u16 with one value kept for NONE.
            let n = svc.backends.len().min(NONE as usize);
            let size = n.next_power_of_two();
            l.trees.push(Tree {
                nodes: nodes as u32,
                members: l.members.len() as u32,
                size: size as u32,
                len: n as u32,
            });
            nodes += 2 * size;
            for i in 0..n {
                let b = svc.backends[i];
                l.members
                    .push((b, svc.weights.get(i).copied().unwrap_or(0)));
                top = top.max(b as usize + 1);
            }
        }
        if nodes == 0 {
            return LeastConnLayout::default();
        }
        // Each backend's leaves get a run of `places`: counted first, then
        // the counts become runs (empty at first), which the second pass fills.
        l.by_backend = vec![(0, 0); top.min(MAX_BACKENDS)];
        for &(b, _) in &l.members {
            if let Some(c) = l.by_backend.get_mut(b as usize) {
                c.1 += 1;
            }
        }
        let mut start = 0;
        for c in l.by_backend.iter_mut() {
            let count = c.1;
            *c = (start, start);
            start += count;
        }
        l.places = vec![(0, 0); start as usize];
        for (sid, t) in l.trees.iter().enumerate() {
            for i in 0..t.len {
                let b = l.members[(t.members + i) as usize].0 as usize;
                if let Some(r) = l.by_backend.get_mut(b) {
                    l.places[r.1 as usize] = (sid as u32, i as u16);
                    r.1 += 1;
                }
            }
        }
        l.stride = nodes.div_ceil(LINE_NODES);
        l.nodes = (0..l.stride * workers.max(1))
            .map(|_| Line(std::array::from_fn(|_| AtomicU16::new(NONE))))
            .collect();
        l.id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        l
    }

    /// Worker `worker`'s nodes, starting on a cache line of their own (none
    /// for a worker the layout has no room for).
    #[inline]
    pub fn segment(&self, worker: usize) -> Option<&[AtomicU16]> {
        let lines = (self.nodes)
            .get(worker * self.stride..(worker + 1) * self.stride)
            .filter(|s| !s.is_empty())?;
        // SAFETY: a `Line` is `LINE_NODES` `AtomicU16`s and nothing else
        // (`repr(C)`, 64 bytes for 64 bytes of nodes), so `lines` holds
        // `lines.len() * LINE_NODES` of them in a row, aligned for the type;
        // the slice borrows them for as long as `lines` is borrowed.
        Some(unsafe {
            std::slice::from_raw_parts(lines.as_ptr().cast::<AtomicU16>(), lines.len() * LINE_NODES)
        })
    }

    /// Whether this layout has the trees `services` would have: the same
    /// `least_conn` services with the same members and weights (the management
    /// core then keeps it, and the workers' winners in it, for a new snapshot).
    pub fn same_trees(&self, services: &[Service]) -> bool {
        let mut members = self.members.iter();
        let mut trees = self.trees.iter();
        for svc in services {
            let t = trees.next().copied().unwrap_or_default();
            let want = svc.sched == SchedKind::LeastConn && !svc.backends.is_empty();
            if !want {
                if t.size != 0 {
                    return false;
                }
                continue;
            }
            let n = svc.backends.len().min(NONE as usize);
            if t.len as usize != n {
                return false;
            }
            for i in 0..n {
                let w = svc.weights.get(i).copied().unwrap_or(0);
                if members.next() != Some(&(svc.backends[i], w)) {
                    return false;
                }
            }
        }
        // No tree is left past the last service: no member is (only trees
        // of a service with members are laid out).
        members.next().is_none()
    }

    /// Load of a node, for the worker that owns `seg`.
    #[inline]
    pub fn get(seg: &[AtomicU16], k: usize) -> u16 {
        seg[k].load(Ordering::Relaxed)
    }

    /// Store into a node, for the worker that owns `seg`.
    #[inline]
    pub fn set(seg: &[AtomicU16], k: usize, v: u16) {
        seg[k].store(v, Ordering::Relaxed)
    }
}
