//! Which connections a full table may give up for a new flow. The table looks at
//! the entries due soonest and takes the best ranked (see
//! [`ConnTable::reclaim`](super::conn_table::ConnTable::reclaim)); the worker's
//! [`LbCore`](super::core::LbCore) remembers, per tick, when nothing better is
//! to be found.

use super::conn_table::Conn;
use super::core::TICKS_PER_SEC;
use super::tcp_state::ConnState;

/// UDP flows quiet for at least this long (ticks) may be given up for a new flow.
pub const UDP_RECLAIM_IDLE: u64 = 10 * TICKS_PER_SEC;

/// What a full table may give up for a new flow, best first: finished
/// connections (closed, time_wait, rank 0), then half-open ones (syn_sent, rank
/// 1: what a SYN flood fills a table with), then UDP flows quiet for 10 s or more
/// (rank 2: UDP has no end, and request/answer traffic such as DNS would otherwise
/// hold the table for the whole UDP timeout). Established and half-closed
/// connections and active UDP flows are kept. `now` and `udp_ticks` (the UDP
/// timeout) are in ticks.
pub fn reclaimable(c: &Conn, now: u64, udp_ticks: u64) -> Option<u8> {
    match c.state {
        ConnState::Closed | ConnState::TimeWait => Some(0),
        ConnState::SynSent => Some(1),
        ConnState::Udp => {
            // Its deadline is its last packet plus the UDP timeout.
            let last = c.expires.saturating_sub(udp_ticks);
            (now.saturating_sub(last) >= UDP_RECLAIM_IDLE).then_some(2)
        }
        ConnState::Established | ConnState::FinWait => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lb::flow::FlowKey;
    use std::net::Ipv4Addr;

    #[test]
    fn finished_before_half_open_before_quiet_udp_and_nothing_else() {
        let a = Ipv4Addr::new(198, 18, 0, 10);
        let mut c = Conn {
            fwd: FlowKey::v4(a, a, 1, 2, 6),
            ..Conn::default()
        };
        let (now, udp) = (10_000, 3000);
        let mut rank = |state, expires| {
            (c.state, c.expires) = (state, expires);
            reclaimable(&c, now, udp)
        };
        assert_eq!(rank(ConnState::Closed, now + 50), Some(0));
        assert_eq!(rank(ConnState::TimeWait, now + 50), Some(0));
        assert_eq!(rank(ConnState::SynSent, now + 300), Some(1));
        assert_eq!(rank(ConnState::Established, now), None);
        assert_eq!(rank(ConnState::FinWait, now), None);
        // Last heard 10 s ago (deadline = then + the UDP timeout), and just after.
        assert_eq!(rank(ConnState::Udp, now - 100 + udp), Some(2));
        assert_eq!(rank(ConnState::Udp, now - 99 + udp), None);
    }
}
