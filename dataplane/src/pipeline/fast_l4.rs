//! The L4 part of the classifier's fast paths (IPv4 and IPv6 alike): the ports and
//! TCP flags of a TCP or UDP header, checked as the general path checks them.

use crate::wire::ip_proto;

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
