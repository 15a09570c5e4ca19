//! ICMP for IPv4 (RFC 792): the common header and echo.

use super::{checksum, read_u16, write_u16, Malformed};

pub const HEADER_LEN: usize = 8;
pub const ECHO_REPLY: u8 = 0;
pub const DEST_UNREACHABLE: u8 = 3;
pub const ECHO_REQUEST: u8 = 8;
pub const TIME_EXCEEDED: u8 = 11;

view! {
    Packet
}

impl<T: AsRef<[u8]>> Packet<T> {
    pub fn check_len(&self) -> Result<(), Malformed> {
        if self.buffer.as_ref().len() < HEADER_LEN {
            return Err(Malformed);
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

    /// The checksum covers the whole message.
    pub fn verify_checksum(&self) -> bool {
        checksum::checksum(self.buffer.as_ref()) == 0
    }

    pub fn data(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..]
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

    pub fn set_type_code(&mut self, t: u8, code: u8) {
        let b = self.buffer.as_mut();
        b[0] = t;
        b[1] = code;
    }

    pub fn set_rest_of_header(&mut self, v: u32) {
        self.buffer.as_mut()[4..8].copy_from_slice(&v.to_be_bytes());
    }

    pub fn fill_checksum(&mut self) {
        write_u16(self.buffer.as_mut(), 2, 0);
        let c = checksum::checksum(self.buffer.as_ref());
        write_u16(self.buffer.as_mut(), 2, c);
    }

    pub fn data_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[HEADER_LEN..]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // echo request id 0x0102 seq 3, data "abcd"
    fn request() -> Vec<u8> {
        let mut b = vec![8, 0, 0, 0, 1, 2, 0, 3, b'a', b'b', b'c', b'd'];
        Packet::new_unchecked(&mut b[..]).fill_checksum();
        b
    }

    #[test]
    fn golden() {
        let b = request();
        assert_eq!(&b[2..4], &[0x32, 0x34]);
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(p.msg_type(), ECHO_REQUEST);
        assert_eq!((p.echo_ident(), p.echo_seq()), (0x0102, 3));
        assert_eq!(p.data(), b"abcd");
        assert!(p.verify_checksum());
    }

    #[test]
    fn reply_by_incremental_update() {
        let mut b = request();
        Packet::new_unchecked(&mut b[..]).rewrite_type(ECHO_REPLY);
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(p.msg_type(), ECHO_REPLY);
        assert!(p.verify_checksum());
    }

    #[test]
    fn truncated_and_bad_checksum() {
        let b = request();
        assert!(Packet::new_checked(&b[..7]).is_err());
        let mut bad = b.clone();
        bad[9] ^= 0xff;
        assert!(!Packet::new_checked(&bad[..]).unwrap().verify_checksum());
    }
}
