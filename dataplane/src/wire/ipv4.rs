//! IPv4 headers (RFC 791), options included.

use super::{checksum, read_u16, write_u16, Malformed};
use std::net::Ipv4Addr;

pub const MIN_HEADER_LEN: usize = 20;

mod field {
    use std::ops::Range;
    pub const VER_IHL: usize = 0;
    pub const TOS: usize = 1;
    pub const LENGTH: usize = 2;
    pub const IDENT: usize = 4;
    pub const FLAGS_FRAG: usize = 6;
    pub const TTL: usize = 8;
    pub const PROTOCOL: usize = 9;
    pub const CHECKSUM: usize = 10;
    pub const SRC: Range<usize> = 12..16;
    pub const DST: Range<usize> = 16..20;
}

const FLAG_DF: u16 = 0x4000;
const FLAG_MF: u16 = 0x2000;
const FRAG_OFFSET: u16 = 0x1fff;

view! {
    Packet
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Version 4, IHL >= 5, header within the buffer, and
    /// header length <= total length <= buffer length. Trailing bytes (Ethernet
    /// padding) are allowed; `payload()` excludes them.
    pub fn check_len(&self) -> Result<(), Malformed> {
        let b = self.buffer.as_ref();
        if b.len() < MIN_HEADER_LEN || b[field::VER_IHL] >> 4 != 4 {
            return Err(Malformed);
        }
        let hl = self.header_len();
        let total = self.total_len() as usize;
        if hl < MIN_HEADER_LEN || hl > b.len() || total < hl || total > b.len() {
            return Err(Malformed);
        }
        Ok(())
    }

    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_IHL] >> 4
    }

    pub fn header_len(&self) -> usize {
        ((self.buffer.as_ref()[field::VER_IHL] & 0x0f) as usize) * 4
    }

    pub fn tos(&self) -> u8 {
        self.buffer.as_ref()[field::TOS]
    }

    pub fn total_len(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::LENGTH)
    }

    pub fn ident(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::IDENT)
    }

    pub fn dont_frag(&self) -> bool {
        read_u16(self.buffer.as_ref(), field::FLAGS_FRAG) & FLAG_DF != 0
    }

    pub fn more_frags(&self) -> bool {
        read_u16(self.buffer.as_ref(), field::FLAGS_FRAG) & FLAG_MF != 0
    }

    /// Fragment offset in bytes.
    pub fn frag_offset(&self) -> u16 {
        (read_u16(self.buffer.as_ref(), field::FLAGS_FRAG) & FRAG_OFFSET) * 8
    }

    /// True for any fragment, first or later.
    pub fn is_fragment(&self) -> bool {
        read_u16(self.buffer.as_ref(), field::FLAGS_FRAG) & (FLAG_MF | FRAG_OFFSET) != 0
    }

    pub fn ttl(&self) -> u8 {
        self.buffer.as_ref()[field::TTL]
    }

    pub fn protocol(&self) -> u8 {
        self.buffer.as_ref()[field::PROTOCOL]
    }

    pub fn checksum(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::CHECKSUM)
    }

    pub fn src(&self) -> Ipv4Addr {
        let b: [u8; 4] = self.buffer.as_ref()[field::SRC].try_into().unwrap();
        Ipv4Addr::from(b)
    }

    pub fn dst(&self) -> Ipv4Addr {
        let b: [u8; 4] = self.buffer.as_ref()[field::DST].try_into().unwrap();
        Ipv4Addr::from(b)
    }

    pub fn options(&self) -> &[u8] {
        &self.buffer.as_ref()[MIN_HEADER_LEN..self.header_len()]
    }

    #[inline(always)]
    pub fn verify_checksum(&self) -> bool {
        let b = self.buffer.as_ref();
        match b.get(..MIN_HEADER_LEN) {
            // The usual header, no options: five 32-bit words summed at once, in
            // the machine's byte order (a ones'-complement sum is the same either
            // way up, and the valid result, 0xffff, is its own byte swap), then
            // three folds to 16 bits: under 5 * 2^32, then 2^32 + 4, then 0x1ffff.
            Some(h) if self.header_len() == MIN_HEADER_LEN => {
                let w = |i: usize| u32::from_ne_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]) as u64;
                let sum = w(0) + w(4) + w(8) + w(12) + w(16);
                let sum = (sum & 0xffff_ffff) + (sum >> 32);
                let sum = (sum & 0xffff) + (sum >> 16);
                let sum = (sum & 0xffff) + (sum >> 16);
                sum == 0xffff
            }
            _ => checksum::checksum(&b[..self.header_len()]) == 0,
        }
    }

    /// The payload up to the total length (padding excluded).
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..self.total_len() as usize]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets version 4 and the header length in bytes (a multiple of 4).
    pub fn set_version_header_len(&mut self, len: usize) {
        self.buffer.as_mut()[field::VER_IHL] = 0x40 | ((len / 4) as u8 & 0x0f);
    }

    pub fn set_tos(&mut self, v: u8) {
        self.buffer.as_mut()[field::TOS] = v;
    }

    pub fn set_total_len(&mut self, v: u16) {
        write_u16(self.buffer.as_mut(), field::LENGTH, v);
    }

    pub fn set_ident(&mut self, v: u16) {
        write_u16(self.buffer.as_mut(), field::IDENT, v);
    }

    /// Sets DF, clears MF and the fragment offset.
    pub fn set_unfragmented(&mut self, dont_frag: bool) {
        let v = if dont_frag { FLAG_DF } else { 0 };
        write_u16(self.buffer.as_mut(), field::FLAGS_FRAG, v);
    }

    /// A fragment's flags and offset: `offset_units` in 8-byte units, MF as given,
    /// DF clear.
    pub fn set_fragment(&mut self, offset_units: u16, more: bool) {
        let v = (offset_units & FRAG_OFFSET) | if more { FLAG_MF } else { 0 };
        write_u16(self.buffer.as_mut(), field::FLAGS_FRAG, v);
    }

    pub fn set_ttl(&mut self, v: u8) {
        self.buffer.as_mut()[field::TTL] = v;
    }

    pub fn set_protocol(&mut self, v: u8) {
        self.buffer.as_mut()[field::PROTOCOL] = v;
    }

    pub fn set_checksum(&mut self, v: u16) {
        write_u16(self.buffer.as_mut(), field::CHECKSUM, v);
    }

    pub fn set_src(&mut self, a: Ipv4Addr) {
        self.buffer.as_mut()[field::SRC].copy_from_slice(&a.octets());
    }

    pub fn set_dst(&mut self, a: Ipv4Addr) {
        self.buffer.as_mut()[field::DST].copy_from_slice(&a.octets());
    }

    /// Recomputes the header checksum from scratch.
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let hl = self.header_len();
        let c = checksum::checksum(&self.buffer.as_ref()[..hl]);
        self.set_checksum(c);
    }

    pub fn payload_mut(&mut self) -> &mut [u8] {
        let (hl, tl) = (self.header_len(), self.total_len() as usize);
        &mut self.buffer.as_mut()[hl..tl]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // 198.18.0.10 -> 198.18.0.1, ICMP, 4 payload bytes, correct checksum.
    const PACKET: [u8; 24] = [
        0x45, 0x00, 0x00, 0x18, 0x12, 0x34, 0x40, 0x00, 0x40, 0x01, 0x9c, 0x81, 198, 18, 0, 10,
        198, 18, 0, 1, 0xaa, 0xbb, 0xcc, 0xdd,
    ];

    #[test]
    fn deconstruct() {
        let p = Packet::new_checked(&PACKET[..]).unwrap();
        assert_eq!(p.version(), 4);
        assert_eq!(p.header_len(), 20);
        assert_eq!(p.total_len(), 24);
        assert_eq!(p.ident(), 0x1234);
        assert!(p.dont_frag());
        assert!(!p.is_fragment());
        assert_eq!(p.ttl(), 64);
        assert_eq!(p.protocol(), 1);
        assert_eq!(p.src(), Ipv4Addr::new(198, 18, 0, 10));
        assert_eq!(p.dst(), Ipv4Addr::new(198, 18, 0, 1));
        assert!(p.verify_checksum());
        assert_eq!(p.payload(), &[0xaa, 0xbb, 0xcc, 0xdd]);
    }

    #[test]
    fn construct() {
        let mut buf = [0u8; 24];
        let mut p = Packet::new_unchecked(&mut buf[..]);
        p.set_version_header_len(20);
        p.set_tos(0);
        p.set_total_len(24);
        p.set_ident(0x1234);
        p.set_unfragmented(true);
        p.set_ttl(64);
        p.set_protocol(1);
        p.set_src(Ipv4Addr::new(198, 18, 0, 10));
        p.set_dst(Ipv4Addr::new(198, 18, 0, 1));
        p.payload_mut().copy_from_slice(&[0xaa, 0xbb, 0xcc, 0xdd]);
        p.fill_checksum();
        assert_eq!(buf, PACKET);
    }

    #[test]
    fn options_and_padding() {
        // IHL 6 with a 4-byte NOP/EOL option, 2 bytes of Ethernet padding after.
        let mut buf = [0u8; 28];
        buf[..20].copy_from_slice(&PACKET[..20]);
        buf[0] = 0x46;
        buf[2..4].copy_from_slice(&26u16.to_be_bytes());
        buf[20..24].copy_from_slice(&[1, 1, 1, 0]);
        buf[24..26].copy_from_slice(&[0xaa, 0xbb]);
        let mut p = Packet::new_unchecked(&mut buf[..]);
        p.fill_checksum();
        let p = Packet::new_checked(&buf[..]).unwrap();
        assert_eq!(p.options(), &[1, 1, 1, 0]);
        assert_eq!(p.payload(), &[0xaa, 0xbb]);
        assert!(p.verify_checksum());
    }

    #[test]
    fn truncated_and_bad_fields() {
        assert!(Packet::new_checked(&PACKET[..19]).is_err());
        // total length beyond the buffer
        assert!(Packet::new_checked(&PACKET[..23]).is_err());
        let mut bad = PACKET;
        bad[0] = 0x44; // IHL 4
        assert!(Packet::new_checked(&bad[..]).is_err());
        let mut bad = PACKET;
        bad[0] = 0x65; // version 6
        assert!(Packet::new_checked(&bad[..]).is_err());
        let mut bad = PACKET;
        bad[0] = 0x4f; // IHL 15 = 60 bytes > buffer
        assert!(Packet::new_checked(&bad[..]).is_err());
        let mut bad = PACKET;
        bad[2..4].copy_from_slice(&16u16.to_be_bytes()); // total < header
        assert!(Packet::new_checked(&bad[..]).is_err());
        let mut bad = PACKET;
        bad[10] ^= 1;
        assert!(!Packet::new_checked(&bad[..]).unwrap().verify_checksum());
    }

    #[test]
    fn fragments() {
        let mut buf = PACKET;
        buf[6..8].copy_from_slice(&0x2000u16.to_be_bytes()); // MF
        let p = Packet::new_checked(&buf[..]).unwrap();
        assert!(p.is_fragment() && p.more_frags() && p.frag_offset() == 0);
        buf[6..8].copy_from_slice(&0x0003u16.to_be_bytes()); // offset 24
        let p = Packet::new_checked(&buf[..]).unwrap();
        assert!(p.is_fragment() && p.frag_offset() == 24);
    }

    #[test]
    fn fast_header_check_agrees_with_the_generic_checksum() {
        let mut rng = crate::test_rng::XorShift(0x2545_f491_4f6c_dd1d);
        for i in 0..20_000u32 {
            let x = rng.next();
            let mut h = [0u8; 20];
            h[..8].copy_from_slice(&x.to_le_bytes());
            h[8..16].copy_from_slice(&x.rotate_left(17).to_le_bytes());
            h[16..].copy_from_slice(&(x as u32 ^ i).to_le_bytes());
            if i % 4 >= 2 {
                // Bytes near 0x00 and 0xff, where the folds carry most.
                for (j, b) in h.iter_mut().enumerate() {
                    *b = [0xff, 0xfe, 0x00, 0x01][(x >> (2 * j)) as usize & 3];
                }
            }
            h[0] = 0x45;
            if i % 2 == 0 {
                // Half of them valid.
                h[10] = 0;
                h[11] = 0;
                let c = checksum::checksum(&h);
                h[10..12].copy_from_slice(&c.to_be_bytes());
            }
            let generic = checksum::checksum(&h) == 0;
            assert_eq!(
                Packet::new_unchecked(&h[..]).verify_checksum(),
                generic,
                "{h:?}"
            );
            if i % 2 == 0 {
                assert!(generic);
            }
        }
    }
}
