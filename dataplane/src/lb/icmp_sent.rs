//! The ICMP errors the balancer sends itself, back to a packet's sender from the
//! address the packet was sent to, written in place over the packet (cut to the
//! reply's length, or grown to it when the packet is shorter, as a bare ACK is):
//! - a packet that does not fit the MTU of the port it must leave by: IPv4 with DF
//!   set gets "fragmentation needed" (RFC 1191), IPv6 "packet too big" (RFC 8201);
//! - a packet whose TTL / hop limit runs out here gets "time exceeded" (RFC 792,
//!   RFC 4443 3.3), as from any router on the path (traceroute shows the hop);
//! - a UDP datagram nobody can take gets "port unreachable" (see `core/refuse.rs`).

use super::flow::v4_of;
use super::nat::Parsed;
use crate::buf::{NoRoom, PacketBuf};
use crate::wire::ethernet::Frame;
use crate::wire::{icmpv4, icmpv6, ip_proto, ipv4, ipv6, read_u16};

/// ICMPv6 errors carry as much of the packet as fits in the IPv6 minimum MTU.
const V6_MIN_MTU: usize = 1280;

/// True when the packet must be refused rather than forwarded on a port with `mtu`.
#[inline]
pub fn does_not_fit(data: &[u8], p: &Parsed, mtu: u16) -> bool {
    if p.ip_len <= mtu as u32 {
        return false;
    }
    // IPv4 without DF goes on: the worker fragments it for the port (fragment_v4).
    p.v6 || read_u16(data, p.l2 as usize + 6) & 0x4000 != 0
}

/// ICMP errors a worker may send per tick of its clock (100 ms): 1,000 a second,
/// Linux's default for a host (`net.ipv4.icmp_msgs_per_sec`). A flood of packets
/// that each earn an error (TTL 1, too big with DF) must not make the appliance a
/// reflector at line rate.
pub const PER_TICK: u32 = 100;

/// What is left of this tick's [`PER_TICK`].
pub struct Budget {
    tick: u64,
    left: u32,
}

impl Default for Budget {
    fn default() -> Budget {
        Budget {
            tick: u64::MAX,
            left: 0,
        }
    }
}

impl Budget {
    /// Takes one error's worth at tick `now`; false when this tick's are spent.
    pub fn take(&mut self, now: u64) -> bool {
        if self.tick != now {
            self.tick = now;
            self.left = PER_TICK;
        }
        if self.left == 0 {
            return false;
        }
        self.left -= 1;
        true
    }
}

/// Which error to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// Does not fit the next hop's MTU.
    TooBig(u16),
    /// TTL / hop limit exhausted in transit.
    TimeExceeded,
    /// Nobody to take the datagram (a UDP service with no backend up).
    PortUnreachable,
}

impl Error {
    /// ICMP type, code and the 32 bits after the checksum, for IPv4 or IPv6.
    fn fields(self, v6: bool) -> (u8, u8, u32) {
        match (self, v6) {
            (Error::TooBig(mtu), false) => (icmpv4::DEST_UNREACHABLE, 4, mtu as u32),
            (Error::TooBig(mtu), true) => (2, 0, mtu as u32),
            (Error::TimeExceeded, false) => (icmpv4::TIME_EXCEEDED, 0, 0),
            (Error::TimeExceeded, true) => (3, 0, 0),
            (Error::PortUnreachable, false) => (icmpv4::DEST_UNREACHABLE, 3, 0),
            (Error::PortUnreachable, true) => (1, 4, 0),
        }
    }
}

/// Rewrites the packet into the ICMP error for it; the caller sends it back out of
/// the port it came in on. A small packet grows into its reply (time exceeded for
/// a bare ACK): `Err` when its buffer has no room for that.
pub fn reply<B: PacketBuf>(
    buf: &mut B,
    p: &Parsed,
    our_mac: [u8; 6],
    error: Error,
) -> Result<(), NoRoom> {
    let (msg_type, code, rest) = error.fields(p.v6);
    let (l2, ip_len) = (p.l2 as usize, p.ip_len as usize);
    // What the error quotes of the packet, and the headers in front of it.
    let (quoted, headers) = if p.v6 {
        (ip_len.min(V6_MIN_MTU - 48), 48)
    } else {
        let hl = ((buf.data()[l2] & 0x0f) as usize) * 4;
        ((hl + 8).min(ip_len), 28)
    };
    // The reply's length from the start: shorter than most packets, longer
    // than a bare ACK's; what it quotes lies within it either way.
    let total = headers + quoted;
    buf.set_len(l2 + total)?;
    let data = buf.data_mut();
    data.copy_within(l2..l2 + quoted, l2 + headers);
    let mut eth = Frame::new_unchecked(&mut *data);
    let sender_mac = eth.src();
    eth.set_dst(sender_mac);
    eth.set_src(our_mac);
    if p.v6 {
        let (src, dst) = (p.key.src, p.key.dst);
        let mut ip = ipv6::Packet::new_unchecked(&mut data[l2..l2 + total]);
        ip.set_version_class_flow(0, 0);
        ip.set_payload_len((8 + quoted) as u16);
        ip.set_next_header(ip_proto::ICMPV6);
        ip.set_hop_limit(64);
        let (me, them) = (std::net::Ipv6Addr::from(dst), std::net::Ipv6Addr::from(src));
        ip.set_src(&me);
        ip.set_dst(&them);
        let msg = &mut data[l2 + 40..l2 + total];
        msg[0] = msg_type;
        msg[1] = code;
        msg[4..8].copy_from_slice(&rest.to_be_bytes());
        icmpv6::Packet::new_unchecked(msg).fill_checksum(&me, &them);
    } else {
        let (me, them) = (v4_of(&p.key.dst), v4_of(&p.key.src));
        let mut ip = ipv4::Packet::new_unchecked(&mut data[l2..l2 + total]);
        ip.set_version_header_len(20);
        ip.set_tos(0);
        ip.set_total_len(total as u16);
        ip.set_ident(0);
        ip.set_unfragmented(true);
        ip.set_ttl(64);
        ip.set_protocol(ip_proto::ICMP);
        ip.set_src(me);
        ip.set_dst(them);
        ip.fill_checksum();
        let mut icmp = icmpv4::Packet::new_unchecked(&mut data[l2 + 20..l2 + total]);
        icmp.set_type_code(msg_type, code);
        icmp.set_rest_of_header(rest);
        icmp.fill_checksum();
    }
    Ok(())
}
