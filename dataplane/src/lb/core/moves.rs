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
        retire(&gone, &mut self.ports, &mut self.active, &mut self.stats);
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

/// Whether a flow of `svc` on `backend` must start again elsewhere with packet
/// `p`: a UDP flow whose backend is gone (no connection there could be holding
/// it), or a TCP connection this SYN opens (a retransmitted SYN, or a client
/// reusing the ports of a finished connection: it holds nothing older) on a
/// backend that takes no new flows (down, draining, in maintenance, removed).
#[cold]
pub(super) fn must_move(snap: &LbSnapshot, svc: &Service, backend: u32, p: &Parsed) -> bool {
    match p.key.proto {
        ip_proto::UDP => gone(snap, backend),
        ip_proto::TCP => {
            let syn = p.tcp_flags & (tcp::flags::SYN | tcp::flags::ACK) == tcp::flags::SYN;
            let takes_new = svc
                .backends
                .iter()
                .position(|&b| b == backend)
                .is_some_and(|i| svc.weights.get(i).is_some_and(|&w| w > 0));
            syn && (gone(snap, backend) || !takes_new)
        }
        _ => false,
    }
}
