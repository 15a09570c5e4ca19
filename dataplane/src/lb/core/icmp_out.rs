//! The ICMP errors the balancer answers a packet with instead of forwarding it
//! (see [`icmp_sent`]), within the worker's budget.

use super::{LbCore, LbVerdict, PortMacs};
use crate::buf::PacketBuf;
use crate::lb::icmp_sent::{self, Error};
use crate::lb::nat::Parsed;
use crate::lb::snapshot::LbSnapshot;
use crate::pipeline::counters::{Counter, Tally};

impl LbCore {
    /// When the packet does not fit the MTU of the port it must leave by (`ports`:
    /// in, out), rewrites it into "fragmentation needed" / "packet too big" for its
    /// sender, to go back out of the port it came in on. The length check is
    /// inline; the rest is out of the way of packets that fit.
    #[inline(always)]
    pub(super) fn refuse_too_big<B: PacketBuf>(
        &mut self,
        buf: &mut B,
        p: &Parsed,
        snap: &LbSnapshot,
        ports: (usize, usize),
        macs: PortMacs<'_>,
        tally: &mut Tally,
    ) -> Option<LbVerdict> {
        let &mtu = snap.port_mtu.get(ports.1)?;
        if p.ip_len <= mtu as u32 {
            return None;
        }
        self.refuse_oversize(buf, p, mtu, ports.0, macs, tally)
    }

    #[cold]
    #[inline(never)]
    fn refuse_oversize<B: PacketBuf>(
        &mut self,
        buf: &mut B,
        p: &Parsed,
        mtu: u16,
        in_port: usize,
        macs: PortMacs<'_>,
        tally: &mut Tally,
    ) -> Option<LbVerdict> {
        if !icmp_sent::does_not_fit(buf.data(), p, mtu) {
            return None;
        }
        Some(self.answer(buf, p, Error::TooBig(mtu), (in_port, macs), tally))
    }

    /// A packet whose TTL / hop limit ran out here: "time exceeded" back to its
    /// sender, out of the port it came in on.
    #[cold]
    #[inline(never)]
    pub(super) fn time_exceeded<B: PacketBuf>(
        &mut self,
        buf: &mut B,
        p: &Parsed,
        in_port: usize,
        macs: PortMacs<'_>,
        tally: &mut Tally,
    ) -> LbVerdict {
        self.answer(buf, p, Error::TimeExceeded, (in_port, macs), tally)
    }

    /// Rewrites the packet into `error` and counts it, if the budget allows.
    fn answer<B: PacketBuf>(
        &mut self,
        buf: &mut B,
        p: &Parsed,
        error: Error,
        (in_port, macs): (usize, PortMacs<'_>),
        tally: &mut Tally,
    ) -> LbVerdict {
        if !self.error_budget.take(self.now) {
            return LbVerdict::Drop(Counter::DropIcmpRateLimited);
        }
        let mac = macs[in_port.min(macs.len() - 1)];
        if icmp_sent::reply(buf, p, mac, error).is_err() {
            return LbVerdict::Drop(Counter::DropNoRoom);
        }
        tally.add(
            match error {
                Error::TooBig(_) => Counter::TooBigSent,
                Error::TimeExceeded => Counter::TimeExceededSent,
                Error::PortUnreachable => Counter::PortUnreachableSent,
            },
            1,
        );
        LbVerdict::Tx(in_port)
    }
}
