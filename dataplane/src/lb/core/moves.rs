//! Flows that start again on another backend: a UDP flow whose backend is
//! gone, and a TCP connection a SYN opens on a backend that takes no new flows.
//! Everything else stays where it started (a TCP connection cannot move).

use super::{retire, LbCore, Prepared};
use crate::lb::nat::Parsed;
use crate::lb::snapshot::{LbSnapshot, Service};
use crate::pipeline::counters::{Counter, Tally};
use crate::wire::{ip_proto, tcp};

impl LbCore {
    /// A flow that must move (see [`must_move`]): its entry goes, and this
    /// packet starts the flow again on a backend the scheduler picks (its next
    /// packets follow).
    #[cold]
    #[inline(never)]
    #[allow(clippy::too_many_arguments)]
    pub(super) fn move_flow(
        &mut self,
        id: u32,
        prep: &Prepared,
        sid: u32,
        svc: &Service,
        first: ([u8; 6], u64),
        snap: &LbSnapshot,
        tally: &mut Tally,
    ) -> Result<(u32, Option<u32>), Counter> {
        let gone = self.table.remove(id);
        retire(&gone, &mut self.ports, &mut self.loads, &mut self.stats);
        let moved = self.new_flow(prep, sid, svc, first, snap, tally);
        if moved.is_ok() {
            tally.add(Counter::FlowsMoved, 1);
        }
        moved
    }
}

/// Whether `backend` fails its health checks or takes no traffic at all
/// (maintenance, drained past its deadline).
#[inline(always)]
pub(super) fn gone(snap: &LbSnapshot, backend: u32) -> bool {
    snap.backends
        .get(backend as usize)
        .is_some_and(|b| b.down || b.blocked)
}

/// Whether the packets of a flow on `backend` need a closer look (see
/// [`must_move`]): it is gone, or its MAC is unknown.
#[inline(always)]
pub(super) fn troubled(snap: &LbSnapshot, backend: u32) -> bool {
    snap.backends
        .get(backend as usize)
        .is_some_and(|b| b.down || b.blocked || b.mac.is_none())
}

/// Whether a flow of `svc` on `backend` must start again elsewhere with packet
/// `p`: a UDP flow (no connection there could be holding it) whose backend is
/// gone, or cannot be reached (its MAC unknown: it answers no ARP/ND) while
/// others can; or a TCP connection this SYN opens (a retransmitted SYN, or a
/// client reusing the ports of a finished connection: it holds nothing older)
/// on a backend that takes no new flows (down, draining, in maintenance,
/// removed, unreachable).
#[cold]
pub(super) fn must_move(snap: &LbSnapshot, svc: &Service, backend: u32, p: &Parsed) -> bool {
    let takes_new = || {
        svc.backends
            .iter()
            .position(|&b| b == backend)
            .is_some_and(|i| svc.weights.get(i).is_some_and(|&w| w > 0))
    };
    match p.key.proto {
        ip_proto::UDP => {
            // The management core zeroes an unreachable backend's weight only
            // while another member is reachable: then the flow has somewhere to go.
            let unreachable = snap
                .backends
                .get(backend as usize)
                .is_some_and(|b| b.mac.is_none());
            gone(snap, backend) || (unreachable && !takes_new())
        }
        ip_proto::TCP => {
            let syn = p.tcp_flags & (tcp::flags::SYN | tcp::flags::ACK) == tcp::flags::SYN;
            syn && (gone(snap, backend) || !takes_new())
        }
        _ => false,
    }
}
