//! Connection state tracked from the flags the balancer sees, with a timeout per
//! state (in the spirit of IPVS/DPVS). In `dr` mode only the client's direction is
//! seen, and the same rules run on it alone.

use crate::wire::tcp::flags;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnState {
    /// A SYN from the client, no reply seen yet.
    SynSent,
    Established,
    /// One side sent FIN.
    FinWait,
    /// Both sides sent FIN.
    TimeWait,
    /// Reset.
    Closed,
    /// Any UDP flow.
    Udp,
}

impl ConnState {
    pub fn name(self) -> &'static str {
        match self {
            ConnState::SynSent => "syn_sent",
            ConnState::Established => "established",
            ConnState::FinWait => "fin_wait",
            ConnState::TimeWait => "time_wait",
            ConnState::Closed => "closed",
            ConnState::Udp => "udp",
        }
    }
}

/// Timeouts in seconds. Defaults follow IPVS: long enough for idle keep-alive
/// connections, short for half-open and closing ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    pub tcp_syn: u32,
    pub tcp_established: u32,
    pub tcp_fin: u32,
    pub tcp_close: u32,
    pub udp: u32,
    /// Seconds an established or half-closed connection must have been quiet
    /// before a full table may give it up for a new flow (0: never).
    pub tcp_idle_reclaim: u32,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            tcp_syn: 30,
            tcp_established: 900,
            tcp_fin: 120,
            tcp_close: 10,
            udp: 300,
            tcp_idle_reclaim: 300,
        }
    }
}

impl Timeouts {
    pub fn for_state(&self, s: ConnState) -> u32 {
        match s {
            ConnState::SynSent => self.tcp_syn,
            ConnState::Established => self.tcp_established,
            ConnState::FinWait => self.tcp_fin,
            ConnState::TimeWait | ConnState::Closed => self.tcp_close,
            ConnState::Udp => self.udp,
        }
    }
}

/// Which way a packet travels relative to the flow's client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Client to backend.
    Forward,
    /// Backend to client (FullNAT only).
    Reverse,
}

/// The state after a TCP segment with `f` flags travelling in `dir`. `fin_from`
/// records which directions have sent FIN (bit 0 forward, bit 1 reverse).
pub fn next_state(s: ConnState, f: u8, dir: Direction, fin_from: &mut u8) -> ConnState {
    if f & flags::RST != 0 {
        return ConnState::Closed;
    }
    if f & flags::FIN != 0 {
        *fin_from |= match dir {
            Direction::Forward => 1,
            Direction::Reverse => 2,
        };
        return if *fin_from == 3 {
            ConnState::TimeWait
        } else {
            ConnState::FinWait
        };
    }
    match (s, dir) {
        // A new SYN on a finished connection starts it again (port reuse).
        (ConnState::TimeWait | ConnState::Closed, Direction::Forward)
            if f & (flags::SYN | flags::ACK) == flags::SYN =>
        {
            *fin_from = 0;
            ConnState::SynSent
        }
        (ConnState::SynSent, Direction::Forward) if f & flags::ACK != 0 && f & flags::SYN == 0 => {
            ConnState::Established
        }
        (ConnState::SynSent, Direction::Reverse) if f & flags::ACK != 0 && f & flags::SYN == 0 => {
            ConnState::Established
        }
        _ => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ConnState::*;
    use Direction::*;

    fn walk(steps: &[(u8, Direction)]) -> Vec<ConnState> {
        let mut s = SynSent;
        let mut fins = 0;
        steps
            .iter()
            .map(|&(f, d)| {
                s = next_state(s, f, d, &mut fins);
                s
            })
            .collect()
    }

    #[test]
    fn handshake_data_close() {
        use crate::wire::tcp::flags::*;
        let got = walk(&[
            (SYN | ACK, Reverse),
            (ACK, Forward),
            (ACK | PSH, Forward),
            (FIN | ACK, Forward),
            (FIN | ACK, Reverse),
            (ACK, Forward),
        ]);
        assert_eq!(
            got,
            vec![
                SynSent,
                Established,
                Established,
                FinWait,
                TimeWait,
                TimeWait
            ]
        );
    }

    #[test]
    fn reset_and_reuse() {
        use crate::wire::tcp::flags::*;
        assert_eq!(
            walk(&[(ACK, Forward), (RST, Reverse)]),
            vec![Established, Closed]
        );
        assert_eq!(
            walk(&[(RST, Forward), (SYN, Forward)]),
            vec![Closed, SynSent]
        );
    }

    /// A half-open entry stays half-open (30 s, and first in line when a SYN
    /// flood fills the table) until an ACK without SYN: a client's
    /// retransmitted SYN, or a segment with neither flag from either side,
    /// does not make it an established connection (900 s, kept in a full
    /// table).
    #[test]
    fn only_an_ack_without_syn_establishes() {
        use crate::wire::tcp::flags::*;
        for (f, d) in [
            (SYN, Forward),
            (0, Forward),
            (PSH, Forward),
            (0, Reverse),
            (PSH, Reverse),
            (SYN | ACK, Forward),
        ] {
            assert_eq!(walk(&[(f, d)]), vec![SynSent], "flags {f:#04x} {d:?}");
        }
        assert_eq!(
            walk(&[
                (SYN, Forward),
                (SYN | ACK, Reverse),
                (SYN, Forward),
                (ACK, Forward)
            ]),
            vec![SynSent, SynSent, SynSent, Established]
        );
        assert_eq!(walk(&[(ACK | PSH, Reverse)]), vec![Established]);
    }

    #[test]
    fn dr_sees_only_the_client() {
        use crate::wire::tcp::flags::*;
        assert_eq!(
            walk(&[(ACK, Forward), (FIN | ACK, Forward), (ACK, Forward)]),
            vec![Established, FinWait, FinWait]
        );
    }

    #[test]
    fn timeouts_by_state() {
        let t = Timeouts::default();
        assert_eq!(t.for_state(Established), 900);
        assert_eq!(t.for_state(SynSent), 30);
        assert_eq!(t.for_state(TimeWait), 10);
        assert_eq!(t.for_state(Udp), 300);
    }
}
