//! Refusing a packet the balancer cannot take further, as a host refuses one for
//! a closed port: TCP gets a reset (see [`tcp_reset`]), UDP "port unreachable".
//! For a segment of a connection the table lost, and for a new flow with no
//! backend to go to: the sender learns at once instead of retrying into nothing.

use super::{LbCore, LbVerdict, PortMacs};
use crate::buf::PacketBuf;
use crate::lb::icmp_sent::{self, Error};
use crate::lb::nat::Parsed;
use crate::lb::tcp_reset;
use crate::pipeline::counters::{Counter, Tally};
use crate::wire::{ip_proto, tcp};

impl LbCore {
    /// [`refuse`](Self::refuse) a packet of service `sid`, which counts the
    /// drop under `reason` when the sender was answered (when not, the caller
    /// counts the verdict's reason).
    #[cold]
    #[inline(never)]
    pub(super) fn refuse_for<B: PacketBuf>(
        &mut self,
        sid: u32,
        buf: &mut B,
        p: &Parsed,
        (in_port, macs): (usize, PortMacs<'_>),
        tally: &mut Tally,
        reason: Counter,
    ) -> LbVerdict {
        let v = self.refuse(buf, p, (in_port, macs), tally, reason);
        if v != LbVerdict::Drop(reason) {
            self.stats.service_drop(sid, reason);
        }
        v
    }

    /// Answers `p` with a reset (TCP) or "port unreachable" (UDP) back out of the
    /// port it came in on, within the worker's budget of errors; anything else, a
    /// reset, or past the budget, is dropped as `reason`.
    #[cold]
    #[inline(never)]
    pub(super) fn refuse<B: PacketBuf>(
        &mut self,
        buf: &mut B,
        p: &Parsed,
        (in_port, macs): (usize, PortMacs<'_>),
        tally: &mut Tally,
        reason: Counter,
    ) -> LbVerdict {
        let dropped = LbVerdict::Drop(reason);
        let answerable = match p.key.proto {
            ip_proto::TCP => p.tcp_flags & tcp::flags::RST == 0,
            ip_proto::UDP => true,
            _ => false,
        };
        if !answerable || !self.error_budget.take(self.now) {
            return dropped;
        }
        let mac = macs[in_port.min(macs.len() - 1)];
        let sent = if p.key.proto == ip_proto::TCP {
            tcp_reset::reply(buf, p, mac).then_some(Counter::TcpResetsSent)
        } else {
            let reply = icmp_sent::reply(buf, p, mac, Error::PortUnreachable);
            reply.is_ok().then_some(Counter::PortUnreachableSent)
        };
        match sent {
            Some(c) => {
                tally.add(c, 1);
                LbVerdict::Tx(in_port)
            }
            None => dropped,
        }
    }
}
