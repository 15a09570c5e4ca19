//! Resetting a TCP segment that belongs to no connection (see [`tcp_reset`]).

use super::{LbCore, LbVerdict, PortMacs};
use crate::buf::PacketBuf;
use crate::lb::nat::Parsed;
use crate::lb::tcp_reset;
use crate::pipeline::counters::{Counter, Tally};
use crate::wire::ip_proto;

impl LbCore {
    /// A segment of a connection this worker does not hold: a reset back to its
    /// sender, within the worker's budget of errors. Anything else, a reset, or
    /// past the budget: dropped as `drop_no_flow`.
    #[cold]
    #[inline(never)]
    pub(super) fn reset<B: PacketBuf>(
        &mut self,
        buf: &mut B,
        p: &Parsed,
        in_port: usize,
        macs: PortMacs<'_>,
        tally: &mut Tally,
    ) -> LbVerdict {
        let no_flow = LbVerdict::Drop(Counter::DropNoFlow);
        if p.key.proto != ip_proto::TCP || p.tcp_flags & crate::wire::tcp::flags::RST != 0 {
            return no_flow;
        }
        if !self.error_budget.take(self.now) {
            return no_flow;
        }
        let mac = macs[in_port.min(macs.len() - 1)];
        if !tcp_reset::reply(buf, p, mac) {
            return no_flow;
        }
        tally.add(Counter::TcpResetsSent, 1);
        LbVerdict::Tx(in_port)
    }
}
