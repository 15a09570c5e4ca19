//! ICMPv6 (RFC 4443) with echo and the neighbour-discovery messages Weir answers
//! (RFC 4861: neighbour solicitation and advertisement, link-layer address options).

use super::{checksum, read_u16, write_u16, Malformed};
use std::net::Ipv6Addr;

pub const HEADER_LEN: usize = 8;
pub const ECHO_REQUEST: u8 = 128;
pub const ECHO_REPLY: u8 = 129;
pub const NEIGHBOR_SOLICIT: u8 = 135;
pub const NEIGHBOR_ADVERT: u8 = 136;

/// Length of an NS/NA message before its options (header + target address).
pub const ND_FIXED_LEN: usize = 24;
pub const OPT_SOURCE_LL: u8 = 1;
pub const OPT_TARGET_LL: u8 = 2;

pub const NA_FLAG_ROUTER: u32 = 0x8000_0000;
pub const NA_FLAG_SOLICITED: u32 = 0x4000_0000;
pub const NA_FLAG_OVERRIDE: u32 = 0x2000_0000;

view! {
    Packet
}

impl<T: AsRef<[u8]>> Packet<T> {
    pub fn check_len(&self) -> Result<(), Malformed> {
        let b = self.buffer.as_ref();
        if b.len() < HEADER_LEN {
            return Err(Malformed);
        }
        if matches!(b[0], NEIGHBOR_SOLICIT | NEIGHBOR_ADVERT) {
            if b.len() < ND_FIXED_LEN {
                return Err(Malformed);
            }
            let mut off = ND_FIXED_LEN;
            while off < b.len() {
                if off + 2 > b.len() || b[off + 1] == 0 || off + b[off + 1] as usize * 8 > b.len() {
                    return Err(Malformed);
                }
                off += b[off + 1] as usize * 8;
            }
        }
        Ok(())
    }

    pub fn msg_type(&self) -> u8 {
        self.buffer.as_ref()[0]
    }

    pub fn code(&self) -> u8 {
        self.buffer.as_ref()[1]
    }

    pub fn checksum(&self) -> u16 {
        read_u16(self.buffer.as_ref(), 2)
    }

    pub fn echo_ident(&self) -> u16 {
        read_u16(self.buffer.as_ref(), 4)
    }

    pub fn echo_seq(&self) -> u16 {
        read_u16(self.buffer.as_ref(), 6)
    }

    /// NA flags (router, solicited, override) in the first 32 bits after the checksum.
    pub fn na_flags(&self) -> u32 {
        let b = self.buffer.as_ref();
        u32::from_be_bytes([b[4], b[5], b[6], b[7]]) & 0xe000_0000
    }

    /// The target address of an NS or NA (valid after `new_checked` on NS/NA).
    pub fn nd_target(&self) -> Ipv6Addr {
        let b: [u8; 16] = self.buffer.as_ref()[8..24].try_into().unwrap();
        Ipv6Addr::from(b)
    }

    /// The link-layer address carried in the first option of `kind` (source or target).
    pub fn nd_option_ll(&self, kind: u8) -> Option<[u8; 6]> {
        let b = self.buffer.as_ref();
        let mut off = ND_FIXED_LEN;
        while off + 8 <= b.len() {
            let len = b[off + 1] as usize * 8;
            if len == 0 {
                return None;
            }
            if b[off] == kind && len >= 8 {
                return Some(b[off + 2..off + 8].try_into().unwrap());
            }
            off += len;
        }
        None
    }

    pub fn verify_checksum(&self, src: &Ipv6Addr, dst: &Ipv6Addr) -> bool {
        let b = self.buffer.as_ref();
        let sum = checksum::pseudo_v6(src, dst, super::ip_proto::ICMPV6, b.len() as u32);
        checksum::fold(checksum::accumulate(sum, b)) == 0xffff
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Changes the type, updating the checksum incrementally.
    pub fn rewrite_type(&mut self, t: u8) {
        let b = self.buffer.as_mut();
        let old = read_u16(b, 0);
        b[0] = t;
        let new = read_u16(b, 0);
        let c = checksum::update16(read_u16(b, 2), old, new);
        write_u16(b, 2, c);
    }

    /// Writes a neighbour advertisement for `target` with a target link-layer address
    /// option. The buffer must be exactly 32 bytes.
    pub fn emit_neighbor_advert(&mut self, flags: u32, target: &Ipv6Addr, mac: [u8; 6]) {
        let b = self.buffer.as_mut();
        b[0] = NEIGHBOR_ADVERT;
        b[1] = 0;
        b[2..4].copy_from_slice(&[0, 0]);
        b[4..8].copy_from_slice(&flags.to_be_bytes());
        b[8..24].copy_from_slice(&target.octets());
        b[24] = OPT_TARGET_LL;
        b[25] = 1;
        b[26..32].copy_from_slice(&mac);
    }

    pub fn fill_checksum(&mut self, src: &Ipv6Addr, dst: &Ipv6Addr) {
        let len = self.buffer.as_ref().len() as u32;
        write_u16(self.buffer.as_mut(), 2, 0);
        let sum = checksum::pseudo_v6(src, dst, super::ip_proto::ICMPV6, len);
        let c = !checksum::fold(checksum::accumulate(sum, self.buffer.as_ref()));
        write_u16(self.buffer.as_mut(), 2, c);
    }
}

/// Length of a neighbour advertisement with one link-layer option.
pub const NA_LEN: usize = 32;

#[cfg(test)]
mod tests {
    use super::*;

    fn addrs() -> (Ipv6Addr, Ipv6Addr) {
        (
            "2001:db8::10".parse().unwrap(),
            "ff02::1:ff00:1".parse().unwrap(),
        )
    }

    fn solicit() -> Vec<u8> {
        let (src, dst) = addrs();
        let mut b = vec![0u8; 32];
        b[0] = NEIGHBOR_SOLICIT;
        b[8..24].copy_from_slice(&"2001:db8::1".parse::<Ipv6Addr>().unwrap().octets());
        b[24] = OPT_SOURCE_LL;
        b[25] = 1;
        b[26..32].copy_from_slice(&[2, 0, 0, 0, 0, 0x10]);
        Packet::new_unchecked(&mut b[..]).fill_checksum(&src, &dst);
        b
    }

    #[test]
    fn neighbor_solicitation() {
        let (src, dst) = addrs();
        let b = solicit();
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(p.msg_type(), NEIGHBOR_SOLICIT);
        assert_eq!(p.nd_target(), "2001:db8::1".parse::<Ipv6Addr>().unwrap());
        assert_eq!(p.nd_option_ll(OPT_SOURCE_LL), Some([2, 0, 0, 0, 0, 0x10]));
        assert_eq!(p.nd_option_ll(OPT_TARGET_LL), None);
        assert!(p.verify_checksum(&src, &dst));
        let other: Ipv6Addr = "2001:db8::11".parse().unwrap();
        assert!(!p.verify_checksum(&other, &dst));
    }

    #[test]
    fn advert_golden() {
        let mut b = [0u8; NA_LEN];
        let target: Ipv6Addr = "2001:db8::1".parse().unwrap();
        let mut p = Packet::new_unchecked(&mut b[..]);
        p.emit_neighbor_advert(
            NA_FLAG_SOLICITED | NA_FLAG_OVERRIDE,
            &target,
            [2, 0, 0, 0, 0, 1],
        );
        assert_eq!(&b[..8], &[136, 0, 0, 0, 0x60, 0, 0, 0]);
        assert_eq!(&b[24..32], &[2, 1, 2, 0, 0, 0, 0, 1]);
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(p.na_flags(), NA_FLAG_SOLICITED | NA_FLAG_OVERRIDE);
    }

    #[test]
    fn bad_options() {
        let mut b = solicit();
        b[25] = 0; // zero-length option
        assert!(Packet::new_checked(&b[..]).is_err());
        let mut b = solicit();
        b[25] = 2; // runs past the end
        assert!(Packet::new_checked(&b[..]).is_err());
        let b = solicit();
        assert!(Packet::new_checked(&b[..23]).is_err());
        assert!(Packet::new_checked(&b[..7]).is_err());
    }

    #[test]
    fn echo_reply_checksum() {
        let (src, _) = addrs();
        let dst: Ipv6Addr = "2001:db8::1".parse().unwrap();
        let mut b = vec![ECHO_REQUEST, 0, 0, 0, 0, 7, 0, 1, 1, 2, 3];
        Packet::new_unchecked(&mut b[..]).fill_checksum(&src, &dst);
        Packet::new_unchecked(&mut b[..]).rewrite_type(ECHO_REPLY);
        // Swapping source and destination leaves the pseudo-header sum unchanged.
        assert!(Packet::new_checked(&b[..])
            .unwrap()
            .verify_checksum(&dst, &src));
    }
}
