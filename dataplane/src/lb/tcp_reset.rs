//! A TCP reset for a segment that belongs to no connection the balancer holds
//! (RFC 9293 3.10.7.1), written in place over the segment, back to its sender
//! from the address and port it was sent to.
//!
//! A fullnat connection whose entry is gone (the appliance restarted or failed
//! over, or the entry expired while the connection was idle) cannot go on: the
//! backend knows it by a local port nobody remembers. Reset, the client
//! reconnects at once, and the backend frees its socket, instead of both
//! retransmitting into a void for minutes.

use super::flow::v4_of;
use super::nat::Parsed;
use crate::buf::PacketBuf;
use crate::wire::checksum::{pseudo_v4, pseudo_v6};
use crate::wire::ethernet::Frame;
use crate::wire::{ip_proto, ipv4, ipv6, tcp};
use std::net::Ipv6Addr;

const TCP_LEN: usize = 20;

/// The reset's sequence number, acknowledgment and flags for a segment with
/// `flags`, sequence number `seq`, acknowledgment `ack` and `len` bytes of
/// payload; `None` for a reset, which is never answered.
pub fn answer(flags: u8, seq: u32, ack: u32, len: u32) -> Option<(u32, u32, u8)> {
    if flags & tcp::flags::RST != 0 {
        return None;
    }
    if flags & tcp::flags::ACK != 0 {
        return Some((ack, 0, tcp::flags::RST));
    }
    // SYN and FIN each take a sequence number.
    let consumed =
        len + (flags & tcp::flags::SYN != 0) as u32 + (flags & tcp::flags::FIN != 0) as u32;
    Some((
        0,
        seq.wrapping_add(consumed),
        tcp::flags::RST | tcp::flags::ACK,
    ))
}

/// Rewrites TCP segment `p` into the reset for it (an IPv4 header without
/// options, or a bare IPv6 header); the caller sends it back out of the port it
/// came in on. False, leaving the packet as it was, when it must not be
/// answered (a reset) or is too short to read.
pub fn reply<B: PacketBuf>(buf: &mut B, p: &Parsed, our_mac: [u8; 6]) -> bool {
    let (l3, l4) = (p.l2 as usize, p.l4 as usize);
    let end = l3 + p.ip_len as usize;
    let data = buf.data();
    let Some(seg) = data
        .get(l4..end)
        .and_then(|s| tcp::Packet::new_checked(s).ok())
    else {
        return false;
    };
    let len = (end - l4 - seg.header_len()) as u32;
    let Some((seq, ack, flags)) = answer(seg.flags(), seg.seq(), seg.ack(), len) else {
        return false;
    };
    let ip_len = if p.v6 {
        ipv6::HEADER_LEN
    } else {
        ipv4::MIN_HEADER_LEN
    };
    let (k, data) = (&p.key, buf.data_mut());
    let mut eth = Frame::new_unchecked(&mut *data);
    let sender = eth.src();
    eth.set_dst(sender);
    eth.set_src(our_mac);
    let pseudo = if p.v6 {
        let (me, them) = (Ipv6Addr::from(k.dst), Ipv6Addr::from(k.src));
        let mut ip = ipv6::Packet::new_unchecked(&mut data[l3..l3 + ip_len]);
        ip.set_version_class_flow(0, 0);
        ip.set_payload_len(TCP_LEN as u16);
        ip.set_next_header(ip_proto::TCP);
        ip.set_hop_limit(64);
        ip.set_src(&me);
        ip.set_dst(&them);
        pseudo_v6(&me, &them, ip_proto::TCP, TCP_LEN as u32)
    } else {
        let (me, them) = (v4_of(&k.dst), v4_of(&k.src));
        let mut ip = ipv4::Packet::new_unchecked(&mut data[l3..l3 + ip_len]);
        ip.set_version_header_len(ip_len);
        ip.set_tos(0);
        ip.set_total_len((ip_len + TCP_LEN) as u16);
        ip.set_ident(0);
        ip.set_unfragmented(true);
        ip.set_ttl(64);
        ip.set_protocol(ip_proto::TCP);
        ip.set_src(me);
        ip.set_dst(them);
        ip.fill_checksum();
        pseudo_v4(me, them, ip_proto::TCP, TCP_LEN as u16)
    };
    let at = l3 + ip_len;
    let mut t = tcp::Packet::new_unchecked(&mut data[at..at + TCP_LEN]);
    t.set_src_port(k.dport);
    t.set_dst_port(k.sport);
    t.set_seq(seq);
    t.set_ack(ack);
    t.set_header_len(TCP_LEN);
    t.set_flags(flags);
    t.set_window(0);
    // The urgent pointer, after the checksum.
    data[at + 18..at + 20].fill(0);
    tcp::Packet::new_unchecked(&mut data[at..at + TCP_LEN]).fill_checksum(pseudo);
    buf.set_len(at + TCP_LEN).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tcp::flags::{ACK, FIN, PSH, RST, SYN};

    #[test]
    fn resets_follow_rfc_9293() {
        // A segment with ACK: the reset takes its acknowledgment as sequence.
        assert_eq!(answer(ACK | PSH, 100, 5000, 10), Some((5000, 0, RST)));
        // Without: sequence 0, acknowledging all the segment occupied.
        assert_eq!(answer(FIN, 100, 0, 10), Some((0, 111, RST | ACK)));
        assert_eq!(answer(SYN, u32::MAX, 0, 0), Some((0, 0, RST | ACK)));
        // A reset is never answered.
        assert_eq!(answer(RST | ACK, 1, 2, 0), None);
    }
}
