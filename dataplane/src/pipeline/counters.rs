//! Per-core counters. A worker is the only writer of its own block, so it keeps plain
//! `u64`s while it works and publishes them with relaxed atomic stores every few
//! iterations; the management core reads and sums the blocks. No counter update on
//! the packet path is a locked instruction.

use std::sync::atomic::{AtomicU64, Ordering};

macro_rules! counters {
    ($($name:ident = $text:literal,)*) => {
        /// Every counter a worker keeps. Drops are the `Drop*` variants.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        #[repr(usize)]
        pub enum Counter { $($name,)* }

        impl Counter {
            pub const ALL: &'static [Counter] = &[$(Counter::$name,)*];
            pub const COUNT: usize = Self::ALL.len();

            /// The name used in logs, the admin socket and metrics.
            pub fn name(self) -> &'static str {
                match self { $(Counter::$name => $text,)* }
            }
        }
    };
}

counters! {
    RxPackets = "rx_packets",
    RxBytes = "rx_bytes",
    TxPackets = "tx_packets",
    TxBytes = "tx_bytes",
    ArpReplies = "arp_replies",
    NdAdverts = "nd_adverts",
    EchoRepliesV4 = "icmp_echo_replies",
    EchoRepliesV6 = "icmpv6_echo_replies",
    ToHost = "to_host",
    FromHost = "from_host",
    LbForward = "lb_forward",
    LbReverse = "lb_reverse",
    FlowsNew = "flows_new",
    FlowsStateless = "flows_stateless",
    FlowsMidstream = "flows_midstream",
    FlowsExpired = "flows_expired",
    FlowsReclaimed = "flows_reclaimed",
    FlowsReclaimedQuiet = "flows_reclaimed_quiet_tcp",
    FlowsMoved = "flows_moved",
    HandoffOut = "handoff_out",
    HandoffIn = "handoff_in",
    TooBigSent = "icmp_too_big_sent",
    TimeExceededSent = "icmp_time_exceeded_sent",
    TcpResetsSent = "tcp_resets_sent",
    PortUnreachableSent = "icmp_port_unreachable_sent",
    IcmpErrorsRelayed = "icmp_errors_relayed",
    FragmentsOut = "ip_fragments_out",
    // Packets cut into `ip_fragments_out` (each one is replaced by its fragments).
    Fragmented = "ip_packets_fragmented",
    FragmentsParked = "fragments_parked",
    LoopsTotal = "loops_total",
    LoopsBusy = "loops_busy",
    // Gauges: the entries in this core's connection table, and the FullNAT
    // source ports its connections hold and it owns.
    ConnEntries = "conn_entries",
    LocalPortsInUse = "local_ports_in_use",
    LocalPortsCapacity = "local_ports_capacity",
    // Drops, one per reason.
    DropRunt = "drop_runt",
    DropOversize = "drop_oversize",
    DropMultiSegment = "drop_multi_segment",
    DropVlanMismatch = "drop_vlan_mismatch",
    DropNotForUs = "drop_not_for_us",
    DropUnknownEthertype = "drop_unknown_ethertype",
    DropArpMalformed = "drop_arp_malformed",
    DropIpv4Malformed = "drop_ipv4_malformed",
    DropIpv4BadChecksum = "drop_ipv4_bad_checksum",
    DropIpv6Malformed = "drop_ipv6_malformed",
    DropL4Malformed = "drop_l4_malformed",
    DropL4BadChecksum = "drop_l4_bad_checksum",
    DropIcmpMalformed = "drop_icmp_malformed",
    DropIcmpBadChecksum = "drop_icmp_bad_checksum",
    DropIcmpNoFlow = "drop_icmp_no_flow",
    DropIcmpRateLimited = "drop_icmp_rate_limited",
    DropNdInvalid = "drop_nd_invalid",
    DropNoRoom = "drop_no_room",
    DropNoHostInterface = "drop_no_host_interface",
    DropHostQueueFull = "drop_host_queue_full",
    DropTxQueueFull = "drop_tx_queue_full",
    DropNoService = "drop_no_service",
    DropNoBackend = "drop_no_backend",
    DropNoNeighbor = "drop_no_neighbor",
    DropNoLocalPort = "drop_no_local_port",
    DropTableFull = "drop_table_full",
    DropNoFlow = "drop_no_flow",
    DropTtlExpired = "drop_ttl_expired",
    DropFragment = "drop_fragment",
    DropFragmentFailed = "drop_fragment_failed",
    DropHandoffFull = "drop_handoff_full",
    DropHandoffBadPort = "drop_handoff_bad_port",
    DropBackendMaint = "drop_backend_maint",
}

impl Counter {
    pub fn is_drop(self) -> bool {
        self.name().starts_with("drop_")
    }

    /// A level the worker sets, not a count of events.
    pub fn is_gauge(self) -> bool {
        matches!(
            self,
            Counter::ConnEntries | Counter::LocalPortsInUse | Counter::LocalPortsCapacity
        )
    }
}

/// A worker's private tally; published into its [`CoreCounters`].
#[derive(Debug, Clone)]
pub struct Tally(pub [u64; Counter::COUNT]);

impl Default for Tally {
    fn default() -> Self {
        Tally([0; Counter::COUNT])
    }
}

impl Tally {
    #[inline]
    pub fn add(&mut self, c: Counter, n: u64) {
        self.0[c as usize] += n;
    }

    /// Sets a gauge.
    #[inline]
    pub fn set(&mut self, c: Counter, v: u64) {
        self.0[c as usize] = v;
    }

    #[inline]
    pub fn get(&self, c: Counter) -> u64 {
        self.0[c as usize]
    }

    /// Packets that came in (from the wire or the host interface, or made as
    /// fragments) minus those that went out (to the wire or the host
    /// interface), were cut into fragments, or were dropped under a named
    /// counter: 0 over all workers once they stopped, or some path lost a
    /// packet without counting it. A hand-off moves a packet between workers,
    /// so it is in neither sum: one left in a ring at exit counts as lost.
    /// (`drop_tx_queue_full` and `drop_host_queue_full` are within tx and
    /// to_host, which count what was queued.)
    pub fn unaccounted(&self) -> i64 {
        use Counter::*;
        let within = [DropTxQueueFull, DropHostQueueFull];
        let came = [RxPackets, FromHost, FragmentsOut];
        let went = [TxPackets, DropTxQueueFull, ToHost, Fragmented];
        let dropped = Counter::ALL
            .iter()
            .filter(|c| c.is_drop() && !within.contains(c))
            .map(|&c| self.get(c))
            .sum::<u64>();
        let sum = |cs: &[Counter]| cs.iter().map(|&c| self.get(c)).sum::<u64>();
        sum(&came) as i64 - (sum(&went) + dropped) as i64
    }

    pub fn sum(&mut self, other: &Tally) {
        for (a, b) in self.0.iter_mut().zip(other.0.iter()) {
            *a += b;
        }
    }

    /// The counters that are not zero, by name (`rx_packets 3, drop_runt 1`):
    /// for test failures and logs.
    pub fn named(&self) -> String {
        let v: Vec<String> = Counter::ALL
            .iter()
            .filter(|c| self.get(**c) > 0)
            .map(|c| format!("{} {}", c.name(), self.get(*c)))
            .collect();
        v.join(", ")
    }
}

/// The shared, cache-line aligned block one worker publishes into.
#[repr(align(64))]
pub struct CoreCounters {
    values: [AtomicU64; Counter::COUNT],
}

impl Default for CoreCounters {
    fn default() -> Self {
        CoreCounters {
            values: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

impl CoreCounters {
    /// Called only by the owning worker.
    pub fn publish(&self, t: &Tally) {
        for (slot, v) in self.values.iter().zip(t.0.iter()) {
            slot.store(*v, Ordering::Relaxed);
        }
    }

    pub fn snapshot(&self) -> Tally {
        let mut t = Tally::default();
        for (v, slot) in t.0.iter_mut().zip(self.values.iter()) {
            *v = slot.load(Ordering::Relaxed);
        }
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_drops_marked() {
        let mut names: Vec<_> = Counter::ALL.iter().map(|c| c.name()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), Counter::COUNT);
        assert!(Counter::DropRunt.is_drop());
        assert!(!Counter::RxPackets.is_drop());
    }

    #[test]
    fn every_packet_is_accounted_for_by_the_counters() {
        use Counter::*;
        let mut t = Tally::default();
        // 10 from the wire: 4 sent as they came, 1 sent in 3 fragments, 1 to
        // the kernel, 2 dropped, 2 handed to the other worker: one lost to a
        // full ring, one on its way.
        let arrived = [(RxPackets, 10), (TxPackets, 4 + 3), (FragmentsOut, 3)];
        let left = [(Fragmented, 1), (ToHost, 1), (DropRunt, 1), (DropNoFlow, 1)];
        for (c, n) in arrived.into_iter().chain(left) {
            t.add(c, n);
        }
        t.add(HandoffOut, 2);
        t.add(DropHandoffFull, 1);
        // The one in the ring is not accounted for until the other worker sends it.
        assert_eq!(t.unaccounted(), 1);
        t.add(HandoffIn, 1);
        t.add(TxPackets, 1);
        assert_eq!(t.unaccounted(), 0);
        // A packet freed without a counter shows; gauges and loops do not count.
        t.add(RxPackets, 1);
        t.add(ConnEntries, 7);
        t.set(LocalPortsInUse, 3);
        t.add(LoopsTotal, 100);
        assert_eq!(t.unaccounted(), 1);
    }

    #[test]
    fn gauges_are_set_not_added_and_are_only_the_levels() {
        use Counter::*;
        let gauges: Vec<_> = Counter::ALL.iter().filter(|c| c.is_gauge()).collect();
        assert_eq!(
            gauges,
            [&ConnEntries, &LocalPortsInUse, &LocalPortsCapacity]
        );
        let mut t = Tally::default();
        t.set(ConnEntries, 7);
        t.set(ConnEntries, 5);
        t.add(FlowsNew, 2);
        t.add(FlowsNew, 2);
        assert_eq!((t.get(ConnEntries), t.get(FlowsNew)), (5, 4));
    }

    /// Operators read the README's list to know what a counter means.
    #[test]
    fn the_readme_lists_every_counter() {
        let readme = include_str!("../../../README.md");
        for c in Counter::ALL {
            assert!(readme.contains(&format!("`{}`", c.name())), "{}", c.name());
        }
    }

    #[test]
    fn publish_then_snapshot() {
        let mut t = Tally::default();
        t.add(Counter::RxPackets, 3);
        t.add(Counter::DropRunt, 1);
        let shared = CoreCounters::default();
        shared.publish(&t);
        let s = shared.snapshot();
        assert_eq!(s.get(Counter::RxPackets), 3);
        assert_eq!(s.get(Counter::DropRunt), 1);
        assert_eq!(s.named(), "rx_packets 3, drop_runt 1");
    }
}
