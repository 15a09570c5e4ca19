//! Fragments to a VIP or a local address. A `dr` service that allows it
//! forwards every fragment of a datagram by the (source, destination, protocol)
//! hash, statelessly. Otherwise a datagram's first fragment, which holds
//! the ports, is balanced as a whole packet would be, and its later fragments
//! follow it (see [`frag_routes`](crate::lb::frag_routes)): to the worker that
//! owns the connection, then through the connection, rewritten like the first
//! (the addresses: the L4 checksum and the ports are in the first fragment).
//! A later fragment that comes before its first waits for it (see
//! [`frag_parking`](crate::lb::frag_parking)).

use super::{next_hop, LbCore, LbVerdict, PortMacs, Prepared};
use crate::buf::PacketBuf;
use crate::lb::flow::v4_of;
use crate::lb::frag_routes::{Datagram, Route};
use crate::lb::nat::{self, Parsed, Shape};
use crate::lb::snapshot::{LbSnapshot, Mode, Service};
use crate::lb::stats::BackendStat;
use crate::lb::tcp_state::Direction;
use crate::pipeline::counters::{Counter, Tally};
use crate::wire::{ipv4, ipv6};
use std::net::Ipv6Addr;

impl LbCore {
    #[cold]
    #[inline(never)]
    pub(super) fn fragment<B: PacketBuf>(
        &mut self,
        buf: &mut B,
        prep: &Prepared,
        snap: &LbSnapshot,
        macs: PortMacs<'_>,
        tally: &mut Tally,
    ) -> LbVerdict {
        let p = &prep.p;
        if !prep.at.local {
            if let Some(svc) = three_tuple_service(snap, p) {
                return by_three_tuple(buf, p, svc, snap, macs, tally);
            }
        }
        let ip = buf.data().get(p.l2 as usize..).unwrap_or_default();
        let Some(datagram) = Datagram::of(ip, p.v6, &p.key) else {
            return LbVerdict::Drop(Counter::DropFragment);
        };
        if p.shape == Shape::FirstFragment {
            let v = self.finish_whole(buf, prep, snap, macs, tally);
            let route = match v {
                LbVerdict::Handoff(w) => Some(Route::Worker(w)),
                LbVerdict::Tx(_) => {
                    self.table
                        .lookup_hashed(&p.key, prep.hash)
                        .map(|h| Route::Conn {
                            id: h.id,
                            dir: h.dir,
                            backend: self.table.get(h.id).backend,
                        })
                }
                LbVerdict::Drop(_) | LbVerdict::Park(_) => None,
            };
            if let Some(route) = route {
                self.frags.learn(datagram, route, self.now);
                self.parking.first_came(&datagram);
            }
            return v;
        }
        match self.frags.route(&datagram, self.now) {
            Some(Route::Worker(w)) if !prep.at.handed => LbVerdict::Handoff(w),
            // Handed over, yet routed to a worker again: never bounce.
            Some(Route::Worker(_)) => LbVerdict::Drop(Counter::DropFragment),
            Some(Route::Conn { id, dir, backend }) => {
                self.later_fragment(buf, p, (id, dir, backend), snap, macs, tally)
            }
            // Its first fragment not seen: overtaken by this one, late, or lost.
            _ => self.park(datagram, tally),
        }
    }

    /// Keeps a later fragment of `datagram` until its first comes.
    fn park(&mut self, datagram: Datagram, tally: &mut Tally) -> LbVerdict {
        match self.parking.park(datagram, self.now) {
            Some(i) => {
                tally.add(Counter::FragmentsParked, 1);
                LbVerdict::Park(i)
            }
            None => LbVerdict::Drop(Counter::DropFragment),
        }
    }

    /// A later fragment of a datagram whose first went through connection `id`
    /// in direction `dir` to `backend`: to the same place, its addresses
    /// rewritten alike.
    fn later_fragment<B: PacketBuf>(
        &mut self,
        buf: &mut B,
        p: &Parsed,
        (id, dir, backend): (u32, Direction, u32),
        snap: &LbSnapshot,
        macs: PortMacs<'_>,
        tally: &mut Tally,
    ) -> LbVerdict {
        let c = *self.table.get(id);
        let (src, dst) = (p.key.src, p.key.dst);
        // The entry may have gone to another connection since the first fragment.
        let arrived_as = match dir {
            Direction::Forward => Some(c.fwd),
            Direction::Reverse => c.rev,
        };
        if arrived_as.is_none_or(|k| (k.src, k.dst, k.proto) != (src, dst, p.key.proto)) {
            return LbVerdict::Drop(Counter::DropFragment);
        }
        // Moved to another backend since (a SYN after its backend went down):
        // the first fragment went to the old one.
        if c.backend != backend {
            return LbVerdict::Drop(Counter::DropFragment);
        }
        let (to, port, mac, way, counter) = match dir {
            Direction::Forward => {
                let (port, mac) = match next_hop(snap, c.backend, &mut self.stats) {
                    Ok(hop) => hop,
                    Err(e) => return LbVerdict::Drop(e),
                };
                // fullnat: from the local address to the backend; dr: unchanged.
                let to = c.rev.map(|r| (r.dst, r.src));
                (to, port, mac, BackendStat::PacketsIn, Counter::LbForward)
            }
            Direction::Reverse => {
                let port = (c.client_port as usize).min(macs.len().saturating_sub(1));
                let to = Some((c.fwd.dst, c.fwd.src));
                (
                    to,
                    port,
                    c.peer_mac,
                    BackendStat::PacketsOut,
                    Counter::LbReverse,
                )
            }
        };
        let len = buf.len() as u64;
        let data = buf.data_mut();
        if let Err(c) = nat::decrement_ttl(data, p) {
            return LbVerdict::Drop(c);
        }
        if let Some((new_src, new_dst)) = to {
            let ip = &mut data[p.l2 as usize..];
            if p.v6 {
                let mut ip = ipv6::Packet::new_unchecked(ip);
                ip.set_src(&Ipv6Addr::from(new_src));
                ip.set_dst(&Ipv6Addr::from(new_dst));
            } else {
                let mut ip = ipv4::Packet::new_unchecked(ip);
                ip.set_src(v4_of(&new_src));
                ip.set_dst(v4_of(&new_dst));
                ip.fill_checksum();
            }
        }
        nat::set_macs(data, macs[port], mac);
        self.stats.backend_packet(c.backend, way, len);
        self.stats.service_packet(c.service, len);
        tally.add(counter, 1);
        LbVerdict::Tx(port)
    }
}

/// The `dr` service on the packet's VIP and protocol that forwards fragments by
/// the 3-tuple hash, if there is one.
fn three_tuple_service<'a>(snap: &'a LbSnapshot, p: &Parsed) -> Option<&'a Service> {
    snap.services.iter().find(|s| {
        s.fragments && s.mode == Mode::Dr && s.proto == p.key.proto && s.vip == p.key.dst_ip()
    })
}

/// Forwards a fragment to the backend the 3-tuple hash picks in `svc`.
fn by_three_tuple<B: PacketBuf>(
    buf: &mut B,
    p: &Parsed,
    svc: &Service,
    snap: &LbSnapshot,
    macs: PortMacs<'_>,
    tally: &mut Tally,
) -> LbVerdict {
    let idx = svc.ring.choose(p.key.hash_3tuple(svc.hash_seed));
    let Some(&backend) = svc.backends.get(idx as usize) else {
        return LbVerdict::Drop(Counter::DropNoBackend);
    };
    let be = &snap.backends[backend as usize];
    let Some(mac) = be.mac else {
        return LbVerdict::Drop(Counter::DropNoNeighbor);
    };
    let data = buf.data_mut();
    if let Err(c) = nat::decrement_ttl(data, p) {
        return LbVerdict::Drop(c);
    }
    nat::set_macs(data, macs[be.port_index], mac);
    tally.add(Counter::LbForward, 1);
    LbVerdict::Tx(be.port_index)
}
