//! Backend ids: which slot a backend name holds, and which removed slot a new
//! backend may take (its own old one, or one no connection uses any more).

use super::Manager;
use crate::state::{AdminState, BackendSlot};
use dataplane::lb::stats::{BackendStat, LbTally};
use std::net::IpAddr;
use std::time::{Duration, Instant};

impl Manager {
    /// The id of backend `pool/name`, unless it was removed.
    pub fn backend_id(&self, key: &str) -> Option<u32> {
        let (pool, name) = key.split_once('/')?;
        self.backends
            .iter()
            .position(|b| !b.removed && b.pool == pool && b.name == name)
            .map(|i| i as u32)
    }

    /// Gives backend id `id` to a new backend: its counts start from zero.
    pub fn recycle_backend_id(&mut self, id: usize, slot: BackendSlot) {
        let raw = self.raw_lb_totals();
        self.stats_base.take_backend(id as u32, &raw);
        self.backends[id] = slot;
    }
}

/// How long a removed backend's id rests before a backend of another name may
/// take it: a worker still on an older snapshot could otherwise open a
/// connection to the old backend under the new one's id.
pub const RECYCLE_AFTER: Duration = Duration::from_secs(5);

/// When the ids have run out: a slot removed at least [`RECYCLE_AFTER`] ago
/// that no connection uses any more, the longest removed first.
pub fn recyclable_backend_id(
    backends: &[BackendSlot],
    totals: &LbTally,
    now: Instant,
) -> Option<usize> {
    (0..backends.len())
        .filter(|&i| {
            let s = &backends[i];
            s.removed
                && s.removed_at
                    .is_some_and(|t| now.saturating_duration_since(t) >= RECYCLE_AFTER)
                && totals.get_backend(i as u32, BackendStat::Active) == 0
        })
        .min_by_key(|&i| backends[i].removed_at)
}

/// A removed slot of backend `pool/name` that no connection uses any more.
pub fn free_backend_id(
    backends: &[BackendSlot],
    totals: &LbTally,
    pool: &str,
    name: &str,
) -> Option<usize> {
    (0..backends.len()).find(|&i| {
        let s = &backends[i];
        s.removed
            && s.pool == pool
            && s.name == name
            && totals.get_backend(i as u32, BackendStat::Active) == 0
    })
}

/// A new backend's slot: ready, up until its checks say otherwise, no checks counted.
pub fn new_slot(
    pool: &str,
    name: &str,
    addr: IpAddr,
    port: Option<u16>,
    port_index: usize,
    weight: u32,
) -> BackendSlot {
    BackendSlot {
        pool: pool.to_string(),
        name: name.to_string(),
        addr,
        port,
        port_index,
        weight,
        admin: AdminState::Ready,
        health: Default::default(),
        check_enabled: true,
        last_check: None,
        checks_ok: 0,
        checks_failed: 0,
        removed: false,
        removed_at: None,
    }
}
