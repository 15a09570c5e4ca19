//! Relaying an ICMP error about a connection (see [`icmp_error`]) to the other
//! end of the connection.

use super::{key_hash, next_hop, LbCore, LbVerdict, PortMacs, Prepared};
use crate::buf::PacketBuf;
use crate::lb::conn_table::Hit;
use crate::lb::icmp_error;
use crate::lb::nat;
use crate::lb::snapshot::{LbSnapshot, Mode};
use crate::lb::stats::BackendStat;
use crate::lb::tcp_state::Direction;
use crate::pipeline::counters::{Counter, Tally};

impl LbCore {
    /// An error that reached a VIP goes to the connection's backend; one that
    /// reached a local address goes to the client, translated back. Neither
    /// changes the connection's state or deadline. Out of line: errors are rare.
    #[cold]
    #[inline(never)]
    pub(super) fn relay_icmp_error<B: PacketBuf>(
        &mut self,
        buf: &mut B,
        prep: &Prepared,
        snap: &LbSnapshot,
        macs: PortMacs<'_>,
        tally: &mut Tally,
    ) -> LbVerdict {
        let (p, to_client) = (&prep.p, prep.at.local);
        // The worker that owns the connection, found as for its own packets.
        if let Some(owner) = self.owner_elsewhere(prep) {
            return LbVerdict::Handoff(owner);
        }
        let arrived = if to_client {
            Direction::Reverse
        } else {
            Direction::Forward
        };
        let (quoted, backend, sid, client) = match self.entry(prep) {
            Some(Hit { id, dir }) if dir == arrived => {
                let c = self.table.get(id);
                let quoted = if to_client { Some(c.fwd) } else { c.rev };
                (quoted, c.backend, c.service, (c.client_port, c.peer_mac))
            }
            // A dr connection missing from the table (a restart, a full table):
            // its packets follow the consistent hash, and so does this error.
            None if !to_client => match self.stateless_dr_backend(prep, snap) {
                Some((backend, sid)) => (None, backend, sid, (0, [0; 6])),
                None => return LbVerdict::Drop(Counter::DropIcmpNoFlow),
            },
            _ => return LbVerdict::Drop(Counter::DropIcmpNoFlow),
        };
        let (port, mac) = if to_client {
            (
                (client.0 as usize).min(macs.len().saturating_sub(1)),
                client.1,
            )
        } else {
            match next_hop(snap, backend, &mut self.stats) {
                Ok(hop) => hop,
                Err(c) => return LbVerdict::Drop(c),
            }
        };
        let len = buf.len() as u64;
        let data = buf.data_mut();
        if let Err(c) = nat::decrement_ttl(data, p) {
            return LbVerdict::Drop(c);
        }
        if let Some(q) = &quoted {
            icmp_error::translate(data, p, q);
        }
        nat::set_macs(data, macs[port], mac);
        let way = if to_client {
            BackendStat::PacketsOut
        } else {
            BackendStat::PacketsIn
        };
        self.stats.backend_packet(backend, way, len);
        self.stats.service_packet(sid, len);
        tally.add(Counter::IcmpErrorsRelayed, 1);
        LbVerdict::Tx(port)
    }

    /// The backend and service the consistent hash gives a packet to a `dr`
    /// service that has no entry.
    fn stateless_dr_backend(&self, prep: &Prepared, snap: &LbSnapshot) -> Option<(u32, u32)> {
        let sid = prep.service?;
        let svc = snap.services.get(sid as usize)?;
        if svc.mode != Mode::Dr {
            return None;
        }
        let idx = svc.ring.choose(key_hash(svc, &prep.p.key));
        Some((*svc.backends.get(idx as usize)?, sid))
    }
}
