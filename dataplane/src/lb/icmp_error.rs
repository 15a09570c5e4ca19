//! ICMP errors about balanced connections: found by the packet they quote and
//! relayed to the other end of the connection, translated as its packets are.
//!
//! Without this, a router's "fragmentation needed" / "packet too big" for the
//! replies to a client never reaches the backend that sends them (a path-MTU black
//! hole: large replies vanish), and a backend's "port unreachable" never reaches
//! the client. IPVS, DPVS and Katran all relay them.
//!
//! An error that reaches a VIP quotes a packet sent to the client (VIP -> client):
//! reversed, it is the key of the connection's forward direction, and it goes to
//! the backend. One that reaches a FullNAT local address quotes a packet the
//! appliance sent to the backend (local -> backend): reversed, it is the key of the
//! replies, and it goes to the client. Both are in the connection table's index.

use super::flow::{v4_of, FlowKey};
use super::nat::{self, Parsed, Shape};
use crate::pipeline::counters::Counter;
use crate::wire::ipv6::UpperLayer;
use crate::wire::{icmpv4, icmpv6, ip_proto, ipv4, ipv6};
use std::net::{Ipv4Addr, Ipv6Addr};

/// ICMPv4 messages that quote the packet they are about (RFC 792): destination
/// unreachable, time exceeded, parameter problem.
pub fn is_error_v4(msg_type: u8) -> bool {
    matches!(msg_type, 3 | 11 | 12)
}

/// ICMPv6 error messages (RFC 4443 2.1): destination unreachable, packet too
/// big, time exceeded, parameter problem.
pub fn is_error_v6(msg_type: u8) -> bool {
    matches!(msg_type, 1..=4)
}

/// The quoted packet, by offsets into the ICMP message.
struct Quote {
    /// Its IP header.
    ip: usize,
    /// Its TCP or UDP header, of which at least the ports are there.
    l4: usize,
    proto: u8,
}

impl Quote {
    /// Finds the quoted IPv4 or IPv6 header (`v6`) after the 8-byte ICMP header,
    /// with TCP or UDP straight after it and at least its 8 first bytes (RFC 792
    /// quotes 64 bits of it, RFC 4443 as much as fits). `Err` names the drop: a
    /// truncated quote is malformed; a quote of anything else (another protocol,
    /// extension headers, a later fragment) belongs to no connection.
    fn find(msg: &[u8], v6: bool) -> Result<Quote, Counter> {
        let q = msg.get(8..).ok_or(Counter::DropIcmpMalformed)?;
        let (header, proto) = if v6 {
            if q.len() < ipv6::HEADER_LEN || q[0] >> 4 != 6 {
                return Err(Counter::DropIcmpMalformed);
            }
            (ipv6::HEADER_LEN, q[6])
        } else {
            let header = (q.first().ok_or(Counter::DropIcmpMalformed)? & 0x0f) as usize * 4;
            if q.len() < ipv4::MIN_HEADER_LEN || q[0] >> 4 != 4 || header < ipv4::MIN_HEADER_LEN {
                return Err(Counter::DropIcmpMalformed);
            }
            // Only a first fragment (offset 0) holds the ports.
            if u16::from_be_bytes([q[6], q[7]]) & 0x1fff != 0 {
                return Err(Counter::DropIcmpNoFlow);
            }
            (header, q[9])
        };
        if q.len() < header + 8 {
            return Err(Counter::DropIcmpMalformed);
        }
        if proto != ip_proto::TCP && proto != ip_proto::UDP {
            return Err(Counter::DropIcmpNoFlow);
        }
        Ok(Quote {
            ip: 8,
            l4: 8 + header,
            proto,
        })
    }

    /// The quoted packet's 5-tuple, reversed: the key of the connection direction
    /// that arrives where the error did.
    fn key(&self, msg: &[u8], v6: bool) -> FlowKey {
        let (ip, l4) = (&msg[self.ip..], &msg[self.l4..]);
        let port = |at: usize| u16::from_be_bytes([l4[at], l4[at + 1]]);
        let (src, dst) = if v6 {
            let a = |at: usize| -> [u8; 16] { ip[at..at + 16].try_into().unwrap_or_default() };
            (a(8), a(24))
        } else {
            let a = |at: usize| Ipv4Addr::new(ip[at], ip[at + 1], ip[at + 2], ip[at + 3]);
            (
                a(12).to_ipv6_mapped().octets(),
                a(16).to_ipv6_mapped().octets(),
            )
        };
        FlowKey {
            src: dst,
            dst: src,
            sport: port(2),
            dport: port(0),
            proto: self.proto,
            v6,
        }
    }
}

/// Parses an ICMPv4 message to a VIP or local address, when it is an error:
/// `None` for other messages (which the balancer drops as before). The ICMP
/// checksum is checked here, since the message will be passed on.
pub fn parse_v4(ip: &ipv4::Packet<&[u8]>, l2: usize) -> Option<Result<Parsed, Counter>> {
    let msg = ip.payload();
    if !is_error_v4(*msg.first()?) {
        return None;
    }
    let Ok(icmp) = icmpv4::Packet::new_checked(msg) else {
        return Some(Err(Counter::DropIcmpMalformed));
    };
    if !icmp.verify_checksum() {
        return Some(Err(Counter::DropIcmpBadChecksum));
    }
    Some(parsed(
        msg,
        l2,
        ip.header_len(),
        ip.total_len() as usize,
        false,
    ))
}

/// [`parse_v4`] for ICMPv6 (`ul` is the ICMPv6 header's place in `ip`).
pub fn parse_v6(
    ip: &ipv6::Packet<&[u8]>,
    ul: UpperLayer,
    l2: usize,
) -> Option<Result<Parsed, Counter>> {
    let ip_len = ipv6::HEADER_LEN + ip.payload_len() as usize;
    let msg = ip.bytes().get(ul.offset..ip_len)?;
    if !is_error_v6(*msg.first()?) {
        return None;
    }
    let Ok(icmp) = icmpv6::Packet::new_checked(msg) else {
        return Some(Err(Counter::DropIcmpMalformed));
    };
    if !icmp.verify_checksum(&ip.src(), &ip.dst()) {
        return Some(Err(Counter::DropIcmpBadChecksum));
    }
    Some(parsed(msg, l2, ul.offset, ip_len, true))
}

fn parsed(
    msg: &[u8],
    l2: usize,
    msg_off: usize,
    ip_len: usize,
    v6: bool,
) -> Result<Parsed, Counter> {
    let q = Quote::find(msg, v6)?;
    Ok(Parsed {
        l2: l2 as u16,
        l4: (l2 + msg_off) as u16,
        ip_len: ip_len as u32,
        v6,
        key: q.key(msg, v6),
        tcp_flags: 0,
        shape: Shape::IcmpError,
    })
}

/// Rewrites the ICMP error `p` (in `data`, the whole frame) for the other end of
/// its connection: the quoted packet becomes `quoted`, as that end sent it or
/// received it, and the error goes from `quoted.dst` to `quoted.src`. The quoted
/// headers' checksums are updated (the quoted TCP checksum only when it is within
/// the quote), the outer IPv4 header's and the ICMP checksum recomputed.
pub fn translate(data: &mut [u8], p: &Parsed, quoted: &FlowKey) {
    let (l3, msg_at, end) = (
        p.l2 as usize,
        p.l4 as usize,
        p.l2 as usize + p.ip_len as usize,
    );
    let Some(data) = data.get_mut(..end) else {
        return;
    };
    let Ok(q) = Quote::find(&data[msg_at..], p.v6) else {
        return;
    };
    let inner = Parsed {
        l2: (msg_at + q.ip) as u16,
        l4: (msg_at + q.l4) as u16,
        ip_len: (end - msg_at - q.ip) as u32,
        v6: p.v6,
        key: FlowKey {
            proto: q.proto,
            ..*quoted
        },
        tcp_flags: 0,
        shape: Shape::Whole,
    };
    nat::rewrite(
        data,
        &inner,
        (&quoted.src, quoted.sport),
        (&quoted.dst, quoted.dport),
    );
    if p.v6 {
        let (src, dst) = (Ipv6Addr::from(quoted.dst), Ipv6Addr::from(quoted.src));
        let mut ip = ipv6::Packet::new_unchecked(&mut data[l3..]);
        ip.set_src(&src);
        ip.set_dst(&dst);
        icmpv6::Packet::new_unchecked(&mut data[msg_at..]).fill_checksum(&src, &dst);
    } else {
        let mut ip = ipv4::Packet::new_unchecked(&mut data[l3..]);
        ip.set_src(v4_of(&quoted.dst));
        ip.set_dst(v4_of(&quoted.src));
        ip.fill_checksum();
        icmpv4::Packet::new_unchecked(&mut data[msg_at..]).fill_checksum();
    }
}
