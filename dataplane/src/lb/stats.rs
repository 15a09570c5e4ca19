//! Per-core counters per service and per backend, laid out flat so a worker keeps a
//! plain `u64` array and publishes it like the global counters.

use super::snapshot::{MAX_BACKENDS, MAX_SERVICES};
use crate::pipeline::counters::Counter;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(usize)]
pub enum ServiceStat {
    Packets,
    Bytes,
    NewFlows,
    /// Every drop of a packet for the service; the reasons follow.
    Drops,
    /// Connections in this core's table (a gauge).
    Active,
    DropNoFlow,
    DropNoBackend,
    DropNoLocalPort,
    DropTableFull,
    DropBackendMaint,
    DropNoNeighbor,
    DropTtlExpired,
}
pub const SERVICE_STATS: usize = 12;
// `service_packet` and `backend_packet` update a count and its bytes as one pair.
const _: () = assert!(ServiceStat::Bytes as usize == ServiceStat::Packets as usize + 1);
const _: () = assert!(BackendStat::BytesIn as usize == BackendStat::PacketsIn as usize + 1);
const _: () = assert!(BackendStat::BytesOut as usize == BackendStat::PacketsOut as usize + 1);
pub const SERVICE_STAT_NAMES: [&str; SERVICE_STATS] = [
    "packets",
    "bytes",
    "new_flows",
    "drops",
    "active",
    "drop_no_flow",
    "drop_no_backend",
    "drop_no_local_port",
    "drop_table_full",
    "drop_backend_maint",
    "drop_no_neighbor",
    "drop_ttl_expired",
];

impl ServiceStat {
    pub const ALL: [ServiceStat; SERVICE_STATS] = [
        ServiceStat::Packets,
        ServiceStat::Bytes,
        ServiceStat::NewFlows,
        ServiceStat::Drops,
        ServiceStat::Active,
        ServiceStat::DropNoFlow,
        ServiceStat::DropNoBackend,
        ServiceStat::DropNoLocalPort,
        ServiceStat::DropTableFull,
        ServiceStat::DropBackendMaint,
        ServiceStat::DropNoNeighbor,
        ServiceStat::DropTtlExpired,
    ];

    /// The per-service slot of a drop reason the forwarding path can give.
    pub fn for_drop(c: Counter) -> Option<ServiceStat> {
        Some(match c {
            Counter::DropNoFlow => ServiceStat::DropNoFlow,
            Counter::DropNoBackend => ServiceStat::DropNoBackend,
            Counter::DropNoLocalPort => ServiceStat::DropNoLocalPort,
            Counter::DropTableFull => ServiceStat::DropTableFull,
            Counter::DropBackendMaint => ServiceStat::DropBackendMaint,
            Counter::DropNoNeighbor => ServiceStat::DropNoNeighbor,
            Counter::DropTtlExpired => ServiceStat::DropTtlExpired,
            _ => return None,
        })
    }

    /// The drop reasons, as (slot, name).
    pub fn drop_reasons() -> impl Iterator<Item = (ServiceStat, &'static str)> {
        ServiceStat::ALL
            .into_iter()
            .zip(SERVICE_STAT_NAMES)
            .skip(ServiceStat::DropNoFlow as usize)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(usize)]
pub enum BackendStat {
    /// Client to backend.
    PacketsIn,
    BytesIn,
    /// Backend to client (FullNAT).
    PacketsOut,
    BytesOut,
    NewFlows,
    /// Connections in this core's table (a gauge).
    Active,
    /// Packets for the backend that could not be sent to it, in all and by
    /// reason: its MAC unknown, or blocked (a drain past its deadline).
    Drops,
    DropNoNeighbor,
    DropBackendMaint,
}
pub const BACKEND_STATS: usize = 9;
pub const BACKEND_STAT_NAMES: [&str; BACKEND_STATS] = [
    "packets_in",
    "bytes_in",
    "packets_out",
    "bytes_out",
    "new_flows",
    "active",
    "drops",
    "drop_no_neighbor",
    "drop_backend_maint",
];

impl BackendStat {
    pub const ALL: [BackendStat; BACKEND_STATS] = [
        BackendStat::PacketsIn,
        BackendStat::BytesIn,
        BackendStat::PacketsOut,
        BackendStat::BytesOut,
        BackendStat::NewFlows,
        BackendStat::Active,
        BackendStat::Drops,
        BackendStat::DropNoNeighbor,
        BackendStat::DropBackendMaint,
    ];

    /// The per-backend slot of a drop reason that names a backend.
    pub fn for_drop(c: Counter) -> Option<BackendStat> {
        match c {
            Counter::DropNoNeighbor => Some(BackendStat::DropNoNeighbor),
            Counter::DropBackendMaint => Some(BackendStat::DropBackendMaint),
            _ => None,
        }
    }

    /// The drop reasons, as (slot, name).
    pub fn drop_reasons() -> impl Iterator<Item = (BackendStat, &'static str)> {
        BackendStat::ALL
            .into_iter()
            .zip(BACKEND_STAT_NAMES)
            .skip(BackendStat::DropNoNeighbor as usize)
    }
}

const LEN: usize = MAX_SERVICES * SERVICE_STATS + MAX_BACKENDS * BACKEND_STATS;

/// A worker's private tally.
pub struct LbTally(Box<[u64]>);

impl Default for LbTally {
    fn default() -> Self {
        LbTally(vec![0; LEN].into_boxed_slice())
    }
}

impl LbTally {
    #[inline]
    pub fn service(&mut self, id: u32, s: ServiceStat, n: u64) {
        if let Some(v) = self.0.get_mut(id as usize * SERVICE_STATS + s as usize) {
            *v += n;
        }
    }

    /// One packet of `len` bytes: a count and its bytes, which sit side by side
    /// (`Packets`, `Bytes`), in one bounds check.
    #[inline(always)]
    pub fn service_packet(&mut self, id: u32, len: u64) {
        let at = id as usize * SERVICE_STATS + ServiceStat::Packets as usize;
        if let Some([p, b]) = self.0.get_mut(at..at + 2) {
            *p += 1;
            *b += len;
        }
    }

    /// One packet of `len` bytes to or from backend `id`: `count` is `PacketsIn`
    /// or `PacketsOut`, and its bytes counter follows it.
    #[inline(always)]
    pub fn backend_packet(&mut self, id: u32, count: BackendStat, len: u64) {
        let at = MAX_SERVICES * SERVICE_STATS + id as usize * BACKEND_STATS + count as usize;
        if let Some([p, b]) = self.0.get_mut(at..at + 2) {
            *p += 1;
            *b += len;
        }
    }

    #[inline]
    pub fn backend(&mut self, id: u32, s: BackendStat, n: u64) {
        let at = MAX_SERVICES * SERVICE_STATS + id as usize * BACKEND_STATS + s as usize;
        if let Some(v) = self.0.get_mut(at) {
            *v += n;
        }
    }

    /// A packet for service `id` dropped for `c`: the total and the reason.
    #[inline]
    pub fn service_drop(&mut self, id: u32, c: Counter) {
        self.service(id, ServiceStat::Drops, 1);
        if let Some(s) = ServiceStat::for_drop(c) {
            self.service(id, s, 1);
        }
    }

    /// A packet for backend `id` dropped for reason `c`.
    #[cold]
    pub fn backend_drop(&mut self, id: u32, c: Counter) {
        self.backend(id, BackendStat::Drops, 1);
        if let Some(s) = BackendStat::for_drop(c) {
            self.backend(id, s, 1);
        }
    }

    #[inline]
    pub fn service_dec(&mut self, id: u32, s: ServiceStat) {
        if let Some(v) = self.0.get_mut(id as usize * SERVICE_STATS + s as usize) {
            *v = v.saturating_sub(1);
        }
    }

    #[inline]
    pub fn backend_dec(&mut self, id: u32, s: BackendStat) {
        let at = MAX_SERVICES * SERVICE_STATS + id as usize * BACKEND_STATS + s as usize;
        if let Some(v) = self.0.get_mut(at) {
            *v = v.saturating_sub(1);
        }
    }

    /// Subtracts `base` (counts to hide, as of some moment) from this tally.
    pub fn minus(&mut self, base: &LbTally) {
        for (a, b) in self.0.iter_mut().zip(base.0.iter()) {
            *a = a.saturating_sub(*b);
        }
    }

    /// Backend `id`'s counts, copied from `from` (this tally as a base: an id
    /// taken by a new backend starts again from zero).
    pub fn take_backend(&mut self, id: u32, from: &LbTally) {
        let at = MAX_SERVICES * SERVICE_STATS + id as usize * BACKEND_STATS;
        if let (Some(to), Some(src)) = (
            self.0.get_mut(at..at + BACKEND_STATS),
            from.0.get(at..at + BACKEND_STATS),
        ) {
            to.copy_from_slice(src);
        }
    }

    /// Adds another tally into this one.
    pub fn add(&mut self, other: &LbTally) {
        for (a, b) in self.0.iter_mut().zip(other.0.iter()) {
            *a += b;
        }
    }

    pub fn get_service(&self, id: u32, s: ServiceStat) -> u64 {
        self.0[id as usize * SERVICE_STATS + s as usize]
    }

    pub fn get_backend(&self, id: u32, s: BackendStat) -> u64 {
        self.0[MAX_SERVICES * SERVICE_STATS + id as usize * BACKEND_STATS + s as usize]
    }
}

/// The shared block one worker publishes into.
pub struct LbCounters(Box<[AtomicU64]>);

impl Default for LbCounters {
    fn default() -> Self {
        LbCounters((0..LEN).map(|_| AtomicU64::new(0)).collect())
    }
}

impl LbCounters {
    /// Publishes the counters of the first `services` services and `backends`
    /// backends (the ones the current snapshot has).
    pub fn publish(&self, t: &LbTally, services: usize, backends: usize) {
        let s = services.min(MAX_SERVICES) * SERVICE_STATS;
        let b0 = MAX_SERVICES * SERVICE_STATS;
        let b1 = b0 + backends.min(MAX_BACKENDS) * BACKEND_STATS;
        for i in (0..s).chain(b0..b1) {
            self.0[i].store(t.0[i], Ordering::Relaxed);
        }
    }

    /// Publishes `words` of the counters `publish` would, from position `from`
    /// of their sequence (the services' counters, then the backends'), going
    /// round; returns the position the next call goes on from. All of them
    /// (and 0) when `words` covers them.
    pub fn publish_part(
        &self,
        t: &LbTally,
        services: usize,
        backends: usize,
        from: usize,
        words: usize,
    ) -> usize {
        let s = services.min(MAX_SERVICES) * SERVICE_STATS;
        let b0 = MAX_SERVICES * SERVICE_STATS;
        let total = s + backends.min(MAX_BACKENDS) * BACKEND_STATS;
        if words >= total {
            self.publish(t, services, backends);
            return 0;
        }
        let mut at = from % total;
        for _ in 0..words {
            let i = if at < s { at } else { b0 + at - s };
            self.0[i].store(t.0[i], Ordering::Relaxed);
            at = if at + 1 == total { 0 } else { at + 1 };
        }
        at
    }

    pub fn snapshot(&self) -> LbTally {
        LbTally(self.0.iter().map(|a| a.load(Ordering::Relaxed)).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Checks every slot of every service and backend, as read back, against
    /// `want`; names the first that differs.
    fn assert_all(t: &LbTally, want: &[u64]) {
        let services = (0..MAX_SERVICES as u32).flat_map(|id| {
            ServiceStat::ALL.map(|s| (format!("service {id} {s:?}"), t.get_service(id, s)))
        });
        let backends = (0..MAX_BACKENDS as u32).flat_map(|id| {
            BackendStat::ALL.map(|s| (format!("backend {id} {s:?}"), t.get_backend(id, s)))
        });
        let got: Vec<_> = services.chain(backends).collect();
        assert_eq!(got.len(), want.len());
        for ((what, n), w) in got.iter().zip(want) {
            assert_eq!(n, w, "{what}");
        }
    }

    /// A tally with a different count in every slot (`k` times its place,
    /// from 1), and the counts in the order [`assert_all`] reads them.
    fn filled(k: u64) -> (LbTally, Vec<u64>) {
        let mut t = LbTally::default();
        let mut want = Vec::new();
        for id in 0..MAX_SERVICES as u32 {
            for s in ServiceStat::ALL {
                let n = k * (want.len() as u64 + 1);
                t.service(id, s, n);
                want.push(n);
            }
        }
        for id in 0..MAX_BACKENDS as u32 {
            for s in BackendStat::ALL {
                let n = k * (want.len() as u64 + 1);
                t.backend(id, s, n);
                want.push(n);
            }
        }
        (t, want)
    }

    #[test]
    fn a_worker_publishes_the_services_and_backends_the_snapshot_has() {
        let (t, want) = filled(1);
        let c = LbCounters::default();
        c.publish(&t, 3, 5);
        // Services 0-2 and backends 0-4; the rest stay as they were (zero).
        let backends_at = MAX_SERVICES * SERVICE_STATS;
        let published: Vec<u64> = (0..want.len())
            .map(|i| {
                let shown = i < 3 * SERVICE_STATS
                    || (backends_at..backends_at + 5 * BACKEND_STATS).contains(&i);
                if shown {
                    want[i]
                } else {
                    0
                }
            })
            .collect();
        assert_all(&c.snapshot(), &published);
        c.publish(&t, MAX_SERVICES, MAX_BACKENDS);
        assert_all(&c.snapshot(), &want);
    }

    #[test]
    fn a_part_at_a_time_publishes_what_publish_does_going_round() {
        let (t, want) = filled(1);
        let at_backends = MAX_SERVICES * SERVICE_STATS;
        // Services 0-1, then backends 0-2: `all` words in that order.
        let s = 2 * SERVICE_STATS;
        let all = s + 3 * BACKEND_STATS;
        // What `want` shows once positions `parts` (from, to) of that order are published.
        let shown = |parts: &[(usize, usize)]| -> Vec<u64> {
            let place = |p: usize| if p < s { p } else { at_backends + p - s };
            let on: Vec<usize> = parts.iter().flat_map(|&(a, b)| (a..b).map(place)).collect();
            (0..want.len())
                .map(|i| if on.contains(&i) { want[i] } else { 0 })
                .collect()
        };
        let c = LbCounters::default();
        assert_eq!(c.publish_part(&t, 2, 3, 0, s - 4), s - 4);
        assert_all(&c.snapshot(), &shown(&[(0, s - 4)]));
        // Across from the services to the backends.
        assert_eq!(c.publish_part(&t, 2, 3, s - 4, 10), s + 6);
        assert_all(&c.snapshot(), &shown(&[(0, s + 6)]));
        // Round past the last backend's last word to the first service's.
        let c = LbCounters::default();
        assert_eq!(c.publish_part(&t, 2, 3, all - 7, 10), 3);
        assert_all(&c.snapshot(), &shown(&[(all - 7, all), (0, 3)]));
        // A position from a larger snapshot wraps; enough words publish all.
        assert_eq!(c.publish_part(&t, 2, 3, all + 5, 1), 6);
        assert_all(&c.snapshot(), &shown(&[(all - 7, all), (0, 3), (5, 6)]));
        assert_eq!(c.publish_part(&t, 2, 3, 9, all), 0);
        assert_all(&c.snapshot(), &shown(&[(0, all)]));
        // Nothing to publish.
        assert_eq!(c.publish_part(&t, 0, 0, 9, 4), 0);
    }

    #[test]
    fn tallies_add_subtract_and_hand_on_a_backends_counts() {
        let (mut t, want) = filled(1);
        let (three, _) = filled(3);
        t.add(&three);
        assert_all(&t, &want.iter().map(|n| 4 * n).collect::<Vec<_>>());
        // Subtracting saturates at zero.
        t.minus(&filled(5).0);
        assert_all(&t, &vec![0; want.len()]);
        let (mut t, _) = filled(2);
        t.minus(&filled(1).0);
        assert_all(&t, &want);
        // A backend's counts taken from another tally, and only its.
        let mut base = LbTally::default();
        base.take_backend(MAX_BACKENDS as u32 - 1, &t);
        let last = want.len() - BACKEND_STATS;
        let only_last: Vec<u64> = (0..want.len())
            .map(|i| if i >= last { want[i] } else { 0 })
            .collect();
        assert_all(&base, &only_last);
    }

    #[test]
    fn every_service_and_backend_up_to_the_last_has_slots_of_its_own() {
        // A different count in each slot, written by the counting calls: each
        // reads back from its own slot, and no other changed.
        let (mut t, mut want) = filled(1);
        assert_all(&t, &want);
        // A packet: its count and bytes, for that service or backend alone.
        let at = |id: usize, s: ServiceStat| id * SERVICE_STATS + s as usize;
        let last = MAX_SERVICES as u32 - 1;
        t.service_packet(last, 1500);
        want[at(last as usize, ServiceStat::Packets)] += 1;
        want[at(last as usize, ServiceStat::Bytes)] += 1500;
        let be = |id: usize, s: BackendStat| LEN - (MAX_BACKENDS - id) * BACKEND_STATS + s as usize;
        let last = MAX_BACKENDS as u32 - 1;
        t.backend_packet(last, BackendStat::PacketsIn, 60);
        t.backend_packet(7, BackendStat::PacketsOut, 9000);
        want[be(last as usize, BackendStat::PacketsIn)] += 1;
        want[be(last as usize, BackendStat::BytesIn)] += 60;
        want[be(7, BackendStat::PacketsOut)] += 1;
        want[be(7, BackendStat::BytesOut)] += 9000;
        assert_all(&t, &want);
    }

    /// Checks that `reasons` are `n` drop reasons, each the slot `for_drop`
    /// gives the counter of its name, and that no other counter has a slot.
    fn assert_reasons<S: Copy + PartialEq + std::fmt::Debug>(
        reasons: impl Iterator<Item = (S, &'static str)>,
        n: usize,
        for_drop: fn(Counter) -> Option<S>,
    ) {
        let reasons: Vec<_> = reasons.collect();
        assert_eq!(reasons.len(), n);
        for &c in Counter::ALL {
            let slot = reasons.iter().find(|(_, name)| *name == c.name());
            assert_eq!(for_drop(c), slot.map(|&(s, _)| s), "{c:?}");
        }
        for (_, name) in reasons {
            assert!(
                Counter::ALL.iter().any(|c| c.name() == name),
                "no counter {name}"
            );
        }
    }

    #[test]
    fn each_drop_reason_is_counted_under_the_counter_of_its_name() {
        assert_reasons(
            ServiceStat::drop_reasons(),
            SERVICE_STATS - ServiceStat::DropNoFlow as usize,
            ServiceStat::for_drop,
        );
        assert_reasons(
            BackendStat::drop_reasons(),
            BACKEND_STATS - BackendStat::DropNoNeighbor as usize,
            BackendStat::for_drop,
        );
        // And a drop counts in the total and under its reason.
        let mut t = LbTally::default();
        t.service_drop(3, Counter::DropTableFull);
        t.backend_drop(3, Counter::DropNoNeighbor);
        assert_eq!(t.get_service(3, ServiceStat::Drops), 1);
        assert_eq!(t.get_service(3, ServiceStat::DropTableFull), 1);
        assert_eq!(t.get_backend(3, BackendStat::Drops), 1);
        assert_eq!(t.get_backend(3, BackendStat::DropNoNeighbor), 1);
    }
}
