//! UDP headers (RFC 768).

use super::{checksum, read_u16, write_u16, Malformed};

pub const HEADER_LEN: usize = 8;

view! {
    Packet
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// 8 <= length field <= buffer length.
    pub fn check_len(&self) -> Result<(), Malformed> {
        let b = self.buffer.as_ref();
        if b.len() < HEADER_LEN {
            return Err(Malformed);
        }
        let l = self.len() as usize;
        if l < HEADER_LEN || l > b.len() {
            return Err(Malformed);
        }
        Ok(())
    }

    pub fn src_port(&self) -> u16 {
        read_u16(self.buffer.as_ref(), 0)
    }

    pub fn dst_port(&self) -> u16 {
        read_u16(self.buffer.as_ref(), 2)
    }

    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> u16 {
        read_u16(self.buffer.as_ref(), 4)
    }

    pub fn checksum(&self) -> u16 {
        read_u16(self.buffer.as_ref(), 6)
    }

    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..self.len() as usize]
    }

    /// A zero checksum means "none" over IPv4; over IPv6 it is invalid (RFC 8200 8.1),
    /// so callers pass `zero_ok` accordingly.
    pub fn verify_checksum(&self, pseudo: u32, zero_ok: bool) -> bool {
        if self.checksum() == 0 {
            return zero_ok;
        }
        let b = &self.buffer.as_ref()[..self.len() as usize];
        checksum::fold(checksum::accumulate(pseudo, b)) == 0xffff
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    pub fn set_src_port(&mut self, v: u16) {
        write_u16(self.buffer.as_mut(), 0, v);
    }

    pub fn set_dst_port(&mut self, v: u16) {
        write_u16(self.buffer.as_mut(), 2, v);
    }

    pub fn set_len(&mut self, v: u16) {
        write_u16(self.buffer.as_mut(), 4, v);
    }

    pub fn set_checksum(&mut self, v: u16) {
        write_u16(self.buffer.as_mut(), 6, v);
    }

    /// Fills the checksum; a computed 0 is sent as 0xffff (RFC 768).
    pub fn fill_checksum(&mut self, pseudo: u32) {
        self.set_checksum(0);
        let l = self.len() as usize;
        let c = !checksum::fold(checksum::accumulate(pseudo, &self.buffer.as_ref()[..l]));
        self.set_checksum(if c == 0 { 0xffff } else { c });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{checksum::pseudo_v6, ip_proto};

    const DGRAM: [u8; 12] = [
        0x13, 0x88, 0x00, 0x35, 0x00, 0x0c, 0, 0, b'w', b'e', b'i', b'r',
    ];

    #[test]
    fn deconstruct() {
        let p = Packet::new_checked(&DGRAM[..]).unwrap();
        assert_eq!((p.src_port(), p.dst_port(), p.len()), (5000, 53, 12));
        assert_eq!(p.payload(), b"weir");
        assert!(p.verify_checksum(0, true));
        assert!(!p.verify_checksum(0, false));
    }

    #[test]
    fn construct_and_checksum() {
        let src = "2001:db8::10".parse().unwrap();
        let dst = "2001:db8::1".parse().unwrap();
        let pseudo = pseudo_v6(&src, &dst, ip_proto::UDP, 12);
        let mut b = DGRAM;
        Packet::new_unchecked(&mut b[..]).fill_checksum(pseudo);
        assert!(Packet::new_checked(&b[..])
            .unwrap()
            .verify_checksum(pseudo, false));
        b[9] ^= 0x20;
        assert!(!Packet::new_checked(&b[..])
            .unwrap()
            .verify_checksum(pseudo, false));
    }

    #[test]
    fn truncated_and_bad_length() {
        assert!(Packet::new_checked(&DGRAM[..7]).is_err());
        let mut bad = DGRAM;
        bad[5] = 13; // longer than the buffer
        assert!(Packet::new_checked(&bad[..]).is_err());
        bad[5] = 7; // shorter than a header
        assert!(Packet::new_checked(&bad[..]).is_err());
    }
}
