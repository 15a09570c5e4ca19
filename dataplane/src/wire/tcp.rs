//! TCP headers (RFC 9293).

use super::{checksum, read_u16, read_u32, write_u16, write_u32, Malformed};

pub const MIN_HEADER_LEN: usize = 20;

pub mod flags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;
}

mod field {
    pub const SRC_PORT: usize = 0;
    pub const DST_PORT: usize = 2;
    pub const SEQ: usize = 4;
    pub const ACK: usize = 8;
    pub const DATA_OFF: usize = 12;
    pub const FLAGS: usize = 13;
    pub const WINDOW: usize = 14;
    pub const CHECKSUM: usize = 16;
}

view! {
    Packet
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// At least 20 bytes, data offset >= 5 and within the segment.
    pub fn check_len(&self) -> Result<(), Malformed> {
        let b = self.buffer.as_ref();
        if b.len() < MIN_HEADER_LEN {
            return Err(Malformed);
        }
        let hl = self.header_len();
        if hl < MIN_HEADER_LEN || hl > b.len() {
            return Err(Malformed);
        }
        Ok(())
    }

    pub fn src_port(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::SRC_PORT)
    }

    pub fn dst_port(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::DST_PORT)
    }

    pub fn seq(&self) -> u32 {
        read_u32(self.buffer.as_ref(), field::SEQ)
    }

    pub fn ack(&self) -> u32 {
        read_u32(self.buffer.as_ref(), field::ACK)
    }

    pub fn header_len(&self) -> usize {
        ((self.buffer.as_ref()[field::DATA_OFF] >> 4) as usize) * 4
    }

    pub fn flags(&self) -> u8 {
        self.buffer.as_ref()[field::FLAGS]
    }

    pub fn window(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::WINDOW)
    }

    pub fn checksum(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::CHECKSUM)
    }

    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..]
    }

    /// Verifies the checksum given the pseudo-header sum (see `checksum::pseudo_*`).
    pub fn verify_checksum(&self, pseudo: u32) -> bool {
        checksum::fold(checksum::accumulate(pseudo, self.buffer.as_ref())) == 0xffff
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    pub fn set_src_port(&mut self, v: u16) {
        write_u16(self.buffer.as_mut(), field::SRC_PORT, v);
    }

    pub fn set_dst_port(&mut self, v: u16) {
        write_u16(self.buffer.as_mut(), field::DST_PORT, v);
    }

    pub fn set_seq(&mut self, v: u32) {
        write_u32(self.buffer.as_mut(), field::SEQ, v);
    }

    pub fn set_ack(&mut self, v: u32) {
        write_u32(self.buffer.as_mut(), field::ACK, v);
    }

    /// Sets the data offset from a header length in bytes.
    pub fn set_header_len(&mut self, len: usize) {
        self.buffer.as_mut()[field::DATA_OFF] = ((len / 4) as u8) << 4;
    }

    pub fn set_flags(&mut self, v: u8) {
        self.buffer.as_mut()[field::FLAGS] = v;
    }

    pub fn set_window(&mut self, v: u16) {
        write_u16(self.buffer.as_mut(), field::WINDOW, v);
    }

    pub fn set_checksum(&mut self, v: u16) {
        write_u16(self.buffer.as_mut(), field::CHECKSUM, v);
    }

    pub fn fill_checksum(&mut self, pseudo: u32) {
        self.set_checksum(0);
        let c = !checksum::fold(checksum::accumulate(pseudo, self.buffer.as_ref()));
        self.set_checksum(c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{checksum::pseudo_v4, ip_proto};
    use std::net::Ipv4Addr;

    const SYN: [u8; 24] = [
        0xc3, 0x50, 0x00, 0x50, // 50000 -> 80
        0x00, 0x00, 0x03, 0xe8, // seq 1000
        0x00, 0x00, 0x00, 0x00, // ack 0
        0x60, 0x02, 0xfa, 0xf0, // doff 6, SYN, window 64240
        0x00, 0x00, 0x00, 0x00, // checksum, urgent
        0x02, 0x04, 0x05, 0xb4, // MSS 1460
    ];

    fn pseudo() -> u32 {
        pseudo_v4(
            Ipv4Addr::new(198, 18, 0, 10),
            Ipv4Addr::new(198, 18, 0, 1),
            ip_proto::TCP,
            24,
        )
    }

    #[test]
    fn deconstruct() {
        let p = Packet::new_checked(&SYN[..]).unwrap();
        assert_eq!((p.src_port(), p.dst_port()), (50000, 80));
        assert_eq!((p.seq(), p.ack()), (1000, 0));
        assert_eq!(p.header_len(), 24);
        assert_eq!(p.flags(), flags::SYN);
        assert_eq!(p.window(), 64240);
        assert!(p.payload().is_empty());
    }

    #[test]
    fn construct_and_checksum() {
        let mut b = [0u8; 24];
        let mut p = Packet::new_unchecked(&mut b[..]);
        p.set_src_port(50000);
        p.set_dst_port(80);
        p.set_seq(1000);
        p.set_ack(0);
        p.set_header_len(24);
        p.set_flags(flags::SYN);
        p.set_window(64240);
        b[20..24].copy_from_slice(&[2, 4, 5, 0xb4]);
        let mut p = Packet::new_unchecked(&mut b[..]);
        p.fill_checksum(pseudo());
        assert_eq!(&b[..16], &SYN[..16]);
        assert!(Packet::new_checked(&b[..])
            .unwrap()
            .verify_checksum(pseudo()));
        b[17] ^= 1;
        assert!(!Packet::new_checked(&b[..])
            .unwrap()
            .verify_checksum(pseudo()));
    }

    #[test]
    fn truncated_and_bad_offset() {
        assert!(Packet::new_checked(&SYN[..19]).is_err());
        let mut bad = SYN;
        bad[12] = 0x40; // doff 4
        assert!(Packet::new_checked(&bad[..]).is_err());
        let mut bad = SYN;
        bad[12] = 0x70; // doff 7 = 28 > 24
        assert!(Packet::new_checked(&bad[..]).is_err());
    }
}
