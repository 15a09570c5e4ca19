//! What the classifier's fast paths (IPv4 and IPv6) read the same way: the frame
//! around the IP header, and the ports and TCP flags of a TCP or UDP header, each
//! checked as the general path checks them.

use super::local::LocalAddrs;
use crate::lb::flow::FlowKey;
use crate::lb::nat::{Parsed, Shape};
use crate::wire::ip_proto;

/// Length of the (untagged) Ethernet header the fast paths take.
pub const ETH: usize = 14;

/// The `ip_len`-byte IP header of frame `d`, when `d` is untagged, addressed to
/// our MAC, of `ethertype`, no longer than the port takes, and long enough for the
/// header and 8 bytes after it; `None` sends the frame to the general path.
#[inline(always)]
pub fn ip_header<'a>(
    d: &'a [u8],
    local: &LocalAddrs,
    ethertype: [u8; 2],
    ip_len: usize,
) -> Option<&'a [u8]> {
    if d.len() < ETH + ip_len + 8 || d.len() > local.max_frame_len() || local.vlan.is_some() {
        return None;
    }
    if d[..6] != local.mac || d[12..14] != ethertype {
        return None;
    }
    Some(&d[ETH..ETH + ip_len])
}

/// Ports and TCP flags (0 for UDP).
pub struct L4Fields {
    pub sport: u16,
    pub dport: u16,
    pub tcp_flags: u8,
}

/// The smallest L4 header of `proto`, for the protocols the fast paths take.
#[inline(always)]
pub fn min_header(proto: u8) -> Option<usize> {
    match proto {
        ip_proto::TCP => Some(20),
        ip_proto::UDP => Some(8),
        _ => None,
    }
}

/// Reads `l4` (the whole L4 segment, at least `min_header(proto)` bytes): `None`
/// when its TCP header length or UDP length does not fit, which the general path
/// drops as malformed.
#[inline(always)]
pub fn fields(proto: u8, l4: &[u8]) -> Option<L4Fields> {
    let mut tcp_flags = 0;
    if proto == ip_proto::TCP {
        let header = (l4[12] >> 4) as usize * 4;
        if header < 20 || header > l4.len() {
            return None;
        }
        tcp_flags = l4[13];
    } else {
        let len = u16::from_be_bytes([l4[4], l4[5]]) as usize;
        if len < 8 || len > l4.len() {
            return None;
        }
    }
    Some(L4Fields {
        sport: u16::from_be_bytes([l4[0], l4[1]]),
        dport: u16::from_be_bytes([l4[2], l4[3]]),
        tcp_flags,
    })
}

/// The balancer's view of a whole packet the fast paths took: addresses as a flow
/// key holds them, an untagged frame, `ip_header` bytes of IP header before the
/// L4 one, `ip_len` bytes of IP packet.
#[inline(always)]
pub fn parsed(
    (src, dst): ([u8; 16], [u8; 16]),
    proto: u8,
    l4: L4Fields,
    ip_header: usize,
    ip_len: usize,
    v6: bool,
) -> Parsed {
    Parsed {
        l2: ETH as u16,
        l4: (ETH + ip_header) as u16,
        ip_len: ip_len as u32,
        v6,
        key: FlowKey {
            src,
            dst,
            sport: l4.sport,
            dport: l4.dport,
            proto,
            v6,
        },
        tcp_flags: l4.tcp_flags,
        shape: Shape::Whole,
    }
}
