//! Which connections a full table may give up for a new flow. The table looks at
//! the entries due soonest and takes the best ranked (see
//! [`ConnTable::reclaim`](super::conn_table::ConnTable::reclaim)); the worker's
//! [`LbCore`](super::core::LbCore) remembers, per tick, when nothing better is
//! to be found.

use super::conn_table::Conn;
use super::core::TICKS_PER_SEC;
use super::tcp_state::{ConnState, Timeouts};

/// The rank of a quiet established or half-closed connection (the last given up).
pub const QUIET_TCP: u8 = 3;

/// UDP flows quiet for at least this long (ticks) may be given up for a new flow.
pub const UDP_RECLAIM_IDLE: u64 = 10 * TICKS_PER_SEC;

/// What a full table may give up for a new flow, best first: finished
/// connections (closed, time_wait, rank 0), then half-open ones (syn_sent, rank
/// 1: what a SYN flood fills a table with), then UDP flows quiet for 10 s or more
/// (rank 2: UDP has no end, and request/answer traffic such as DNS would otherwise
/// hold the table for the whole UDP timeout), then established and half-closed
/// connections quiet for `tcp_idle_reclaim` or more (rank 3: mostly clients
/// that went away without a FIN; one still there is reset at its next packet
/// in `fullnat`, and in `dr` follows the consistent hash to its backend).
/// Active connections and UDP flows are kept. `now` is in ticks.
pub fn reclaimable(c: &Conn, now: u64, t: &Timeouts) -> Option<u8> {
    // A deadline is the last packet plus the state's timeout.
    let quiet = || {
        let last = c
            .expires
            .saturating_sub(t.for_state(c.state) as u64 * TICKS_PER_SEC);
        now.saturating_sub(last)
    };
    match c.state {
        ConnState::Closed | ConnState::TimeWait => Some(0),
        ConnState::SynSent => Some(1),
        ConnState::Udp => (quiet() >= UDP_RECLAIM_IDLE).then_some(2),
        ConnState::Established | ConnState::FinWait => {
            let idle = t.tcp_idle_reclaim as u64 * TICKS_PER_SEC;
            (idle > 0 && quiet() >= idle).then_some(QUIET_TCP)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lb::flow::FlowKey;
    use std::net::Ipv4Addr;

    #[test]
    fn finished_before_half_open_before_quiet_udp_before_quiet_tcp() {
        let a = Ipv4Addr::new(198, 18, 0, 10);
        let mut c = Conn {
            fwd: FlowKey::v4(a, a, 1, 2, 6),
            ..Conn::default()
        };
        let now = 100_000;
        // Timeouts in seconds; deadlines in ticks (TICKS_PER_SEC apart).
        let t = Timeouts {
            udp: 30,
            tcp_established: 900,
            tcp_fin: 120,
            tcp_idle_reclaim: 300,
            ..Timeouts::default()
        };
        let sec = TICKS_PER_SEC;
        let mut rank = |state, expires, t: &Timeouts| {
            (c.state, c.expires) = (state, expires);
            reclaimable(&c, now, t)
        };
        assert_eq!(rank(ConnState::Closed, now + 50, &t), Some(0));
        assert_eq!(rank(ConnState::TimeWait, now + 50, &t), Some(0));
        assert_eq!(rank(ConnState::SynSent, now + 300, &t), Some(1));
        // Last heard 10 s ago (deadline = then + the UDP timeout), and just after.
        assert_eq!(rank(ConnState::Udp, now - 10 * sec + 30 * sec, &t), Some(2));
        assert_eq!(
            rank(ConnState::Udp, now - 10 * sec + 1 + 30 * sec, &t),
            None
        );
        // Established: quiet for 300 s, and just under; half-closed the same.
        assert_eq!(rank(ConnState::Established, now + 600 * sec, &t), Some(3));
        assert_eq!(rank(ConnState::Established, now + 600 * sec + 1, &t), None);
        assert_eq!(rank(ConnState::FinWait, now - 180 * sec, &t), Some(3));
        assert_eq!(rank(ConnState::FinWait, now - 180 * sec + 1, &t), None);
        // 0: established connections are never given up.
        let never = Timeouts {
            tcp_idle_reclaim: 0,
            ..t
        };
        assert_eq!(rank(ConnState::Established, now - 900 * sec, &never), None);
    }
}
