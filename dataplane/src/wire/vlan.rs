//! IEEE 802.1Q VLAN tags: the 4 bytes after the source MAC when the EtherType is 0x8100.
//! The view starts at the TCI, so `Frame::payload()` of a tagged frame is its buffer.

use super::{read_u16, write_u16, Malformed};

pub const TAG_LEN: usize = 4;

view! {
    /// A VLAN tag (TCI and the inner EtherType) followed by its payload.
    Tag
}

impl<T: AsRef<[u8]>> Tag<T> {
    pub fn check_len(&self) -> Result<(), Malformed> {
        if self.buffer.as_ref().len() < TAG_LEN {
            return Err(Malformed);
        }
        Ok(())
    }

    /// Priority code point (3 bits).
    pub fn pcp(&self) -> u8 {
        self.buffer.as_ref()[0] >> 5
    }

    /// VLAN identifier (12 bits).
    pub fn vid(&self) -> u16 {
        read_u16(self.buffer.as_ref(), 0) & 0x0fff
    }

    pub fn inner_ethertype(&self) -> u16 {
        read_u16(self.buffer.as_ref(), 2)
    }

    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[TAG_LEN..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Tag<T> {
    pub fn set_tci(&mut self, pcp: u8, vid: u16) {
        write_u16(
            self.buffer.as_mut(),
            0,
            ((pcp as u16 & 7) << 13) | (vid & 0x0fff),
        );
    }

    pub fn set_inner_ethertype(&mut self, t: u16) {
        write_u16(self.buffer.as_mut(), 2, t);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TAG: [u8; 6] = [0xa0, 0x64, 0x86, 0xdd, 0x60, 0x00];

    #[test]
    fn deconstruct() {
        let t = Tag::new_checked(&TAG[..]).unwrap();
        assert_eq!(t.pcp(), 5);
        assert_eq!(t.vid(), 100);
        assert_eq!(t.inner_ethertype(), 0x86dd);
        assert_eq!(t.payload(), &[0x60, 0x00]);
    }

    #[test]
    fn construct() {
        let mut buf = [0u8; 4];
        let mut t = Tag::new_unchecked(&mut buf[..]);
        t.set_tci(5, 100);
        t.set_inner_ethertype(0x86dd);
        assert_eq!(buf, TAG[..4]);
    }

    #[test]
    fn truncated() {
        assert!(Tag::new_checked(&TAG[..3]).is_err());
    }
}
