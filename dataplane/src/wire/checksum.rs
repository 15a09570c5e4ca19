//! The Internet checksum (RFC 1071): full computation, pseudo-headers, and the
//! incremental update of RFC 1624 used when a field is rewritten in place.

use std::net::{Ipv4Addr, Ipv6Addr};

/// Adds `data` as big-endian 16-bit words to a running 32-bit sum (odd tail padded).
pub fn accumulate(mut sum: u32, data: &[u8]) -> u32 {
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        sum = sum.wrapping_add(u16::from_be_bytes([c[0], c[1]]) as u32);
        // Fold early so the sum cannot overflow for any packet size.
        if sum & 0x8000_0000 != 0 {
            sum = (sum & 0xffff) + (sum >> 16);
        }
    }
    if let [last] = chunks.remainder() {
        sum = sum.wrapping_add((*last as u32) << 8);
    }
    sum
}

/// Folds a 32-bit sum to 16 bits with end-around carry.
pub fn fold(mut sum: u32) -> u16 {
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

/// The checksum of `data`: the one's complement of its one's-complement sum.
pub fn checksum(data: &[u8]) -> u16 {
    !fold(accumulate(0, data))
}

/// Sum of the IPv4 pseudo-header for an upper-layer checksum.
pub fn pseudo_v4(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, len: u16) -> u32 {
    let mut s = accumulate(0, &src.octets());
    s = accumulate(s, &dst.octets());
    s + proto as u32 + len as u32
}

/// Sum of the IPv6 pseudo-header for an upper-layer checksum.
pub fn pseudo_v6(src: &Ipv6Addr, dst: &Ipv6Addr, next_header: u8, len: u32) -> u32 {
    let mut s = accumulate(0, &src.octets());
    s = accumulate(s, &dst.octets());
    s + (len >> 16) + (len & 0xffff) + next_header as u32
}

/// RFC 1624 eqn. 3: the new checksum after a 16-bit word changes from `old` to `new`,
/// `HC' = ~(~HC + ~m + m')`.
#[inline]
pub fn update16(hc: u16, old: u16, new: u16) -> u16 {
    let sum = (!hc as u32) + (!old as u32) + new as u32;
    !fold(sum)
}

/// Incremental update for a run of bytes (an address, a port pair) of even length.
pub fn update_bytes(hc: u16, old: &[u8], new: &[u8]) -> u16 {
    debug_assert_eq!(old.len(), new.len());
    let mut sum = !hc as u32;
    for (o, n) in old.chunks_exact(2).zip(new.chunks_exact(2)) {
        sum += !u16::from_be_bytes([o[0], o[1]]) as u32;
        sum += u16::from_be_bytes([n[0], n[1]]) as u32;
    }
    !fold(sum)
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 1071 section 3 example bytes.
    #[test]
    fn rfc1071_example() {
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(fold(accumulate(0, &data)), 0xddf2);
        assert_eq!(checksum(&data), !0xddf2);
    }

    #[test]
    fn odd_length_pads_with_zero() {
        assert_eq!(checksum(&[0xab]), checksum(&[0xab, 0x00]));
    }

    #[test]
    fn incremental_matches_full() {
        let mut hdr = [
            0x45, 0x00, 0x00, 0x54, 0x12, 0x34, 0x40, 0x00, 0x40, 0x01, 0, 0, 198, 18, 0, 10, 198,
            18, 0, 1,
        ];
        let c = checksum(&hdr);
        hdr[10..12].copy_from_slice(&c.to_be_bytes());
        // Decrement TTL: the word at 8..10 changes.
        let old = u16::from_be_bytes([hdr[8], hdr[9]]);
        hdr[8] -= 1;
        let new = u16::from_be_bytes([hdr[8], hdr[9]]);
        let inc = update16(c, old, new);
        hdr[10..12].copy_from_slice(&[0, 0]);
        assert_eq!(inc, checksum(&hdr));
        // Rewrite the destination address.
        hdr[10..12].copy_from_slice(&inc.to_be_bytes());
        let old_dst = [198, 18, 0, 1];
        let new_dst = [198, 19, 7, 200];
        let inc2 = update_bytes(inc, &old_dst, &new_dst);
        hdr[16..20].copy_from_slice(&new_dst);
        hdr[10..12].copy_from_slice(&[0, 0]);
        assert_eq!(inc2, checksum(&hdr));
    }

    #[test]
    fn valid_header_sums_to_zero() {
        let mut hdr = [
            0x45, 0x00, 0x00, 0x1c, 0, 0, 0, 0, 64, 17, 0, 0, 198, 18, 0, 1, 198, 18, 0, 2,
        ];
        let c = checksum(&hdr);
        hdr[10..12].copy_from_slice(&c.to_be_bytes());
        assert_eq!(checksum(&hdr), 0);
    }
}
