//! The Internet checksum (RFC 1071): full computation, pseudo-headers, and the
//! incremental update of RFC 1624 used when a field is rewritten in place.

use std::net::{Ipv4Addr, Ipv6Addr};

/// Adds `data` as big-endian 16-bit words to a running sum (odd tail padded). The
/// result is only meaningful folded (see [`fold`]).
#[inline]
pub fn accumulate(sum: u32, data: &[u8]) -> u32 {
    // One's-complement addition is associative: add 32-bit big-endian words into a
    // 64-bit accumulator (no overflow below 16 GiB of data), fold once at the end.
    let mut acc = sum as u64;
    let mut words = data.chunks_exact(4);
    for w in &mut words {
        acc += u32::from_be_bytes([w[0], w[1], w[2], w[3]]) as u64;
    }
    let rest = words.remainder();
    let mut i = 0;
    while i + 1 < rest.len() {
        acc += u16::from_be_bytes([rest[i], rest[i + 1]]) as u64;
        i += 2;
    }
    if i < rest.len() {
        acc += (rest[i] as u64) << 8;
    }
    // Fold 64 -> 32 bits keeping the end-around carries.
    acc = (acc & 0xffff_ffff) + (acc >> 32);
    acc = (acc & 0xffff_ffff) + (acc >> 32);
    let acc = acc as u32;
    // Keep the 32-bit result foldable without overflow by the callers' additions.
    (acc & 0xffff) + (acc >> 16)
}

/// Folds a 32-bit sum to 16 bits with end-around carry.
#[inline]
pub fn fold(mut sum: u32) -> u16 {
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

/// The checksum of `data`: the one's complement of its one's-complement sum.
#[inline]
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
    fn wide_sum_matches_the_word_by_word_definition() {
        fn reference(data: &[u8]) -> u16 {
            let mut s: u32 = 0;
            for c in data.chunks(2) {
                let w = if c.len() == 2 {
                    u16::from_be_bytes([c[0], c[1]])
                } else {
                    (c[0] as u16) << 8
                };
                s += w as u32;
                s = (s & 0xffff) + (s >> 16);
            }
            s as u16
        }
        let data: Vec<u8> = (0..3000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        for len in [0, 1, 2, 3, 5, 20, 21, 40, 1499, 3000] {
            assert_eq!(
                fold(accumulate(0, &data[..len])),
                reference(&data[..len]),
                "len {len}"
            );
        }
        let ff = vec![0xffu8; 4096];
        assert_eq!(fold(accumulate(0xffff, &ff)), reference(&ff));
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
