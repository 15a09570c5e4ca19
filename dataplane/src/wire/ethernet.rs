//! Ethernet II frames.

use super::{read_u16, write_u16, Malformed};

pub const HEADER_LEN: usize = 14;
pub const BROADCAST: [u8; 6] = [0xff; 6];

/// EtherType values Weir handles.
pub mod ethertype {
    pub const IPV4: u16 = 0x0800;
    pub const ARP: u16 = 0x0806;
    pub const VLAN: u16 = 0x8100;
    pub const QINQ: u16 = 0x88a8;
    pub const IPV6: u16 = 0x86dd;
}

mod field {
    use std::ops::Range;
    pub const DST: Range<usize> = 0..6;
    pub const SRC: Range<usize> = 6..12;
    pub const ETHERTYPE: usize = 12;
}

view! {
    /// An Ethernet II frame.
    Frame
}

impl<T: AsRef<[u8]>> Frame<T> {
    pub fn check_len(&self) -> Result<(), Malformed> {
        if self.buffer.as_ref().len() < HEADER_LEN {
            return Err(Malformed);
        }
        Ok(())
    }

    pub fn dst(&self) -> [u8; 6] {
        self.buffer.as_ref()[field::DST].try_into().unwrap()
    }

    pub fn src(&self) -> [u8; 6] {
        self.buffer.as_ref()[field::SRC].try_into().unwrap()
    }

    pub fn ethertype(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::ETHERTYPE)
    }

    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Frame<T> {
    pub fn set_dst(&mut self, mac: [u8; 6]) {
        self.buffer.as_mut()[field::DST].copy_from_slice(&mac);
    }

    pub fn set_src(&mut self, mac: [u8; 6]) {
        self.buffer.as_mut()[field::SRC].copy_from_slice(&mac);
    }

    pub fn set_ethertype(&mut self, t: u16) {
        write_u16(self.buffer.as_mut(), field::ETHERTYPE, t);
    }

    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[HEADER_LEN..]
    }
}

/// True for group (multicast and broadcast) addresses.
pub fn is_multicast(mac: &[u8; 6]) -> bool {
    mac[0] & 1 == 1
}

/// The Ethernet multicast address an IPv6 multicast address maps to (RFC 2464).
pub fn ipv6_multicast_mac(addr: &std::net::Ipv6Addr) -> [u8; 6] {
    let o = addr.octets();
    [0x33, 0x33, o[12], o[13], o[14], o[15]]
}

/// Formats a MAC address as `aa:bb:cc:dd:ee:ff`.
pub fn format_mac(mac: &[u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

#[cfg(test)]
mod tests {
    use super::*;

    const FRAME: [u8; 18] = [
        0x02, 0, 0, 0, 0, 1, // dst
        0x02, 0, 0, 0, 0, 2, // src
        0x08, 0x00, // IPv4
        0xde, 0xad, 0xbe, 0xef,
    ];

    #[test]
    fn deconstruct() {
        let f = Frame::new_checked(&FRAME[..]).unwrap();
        assert_eq!(f.dst(), [2, 0, 0, 0, 0, 1]);
        assert_eq!(f.src(), [2, 0, 0, 0, 0, 2]);
        assert_eq!(f.ethertype(), ethertype::IPV4);
        assert_eq!(f.payload(), &[0xde, 0xad, 0xbe, 0xef]);
    }

    #[test]
    fn construct() {
        let mut buf = [0u8; 18];
        let mut f = Frame::new_unchecked(&mut buf[..]);
        f.set_dst([2, 0, 0, 0, 0, 1]);
        f.set_src([2, 0, 0, 0, 0, 2]);
        f.set_ethertype(ethertype::IPV4);
        f.payload_mut().copy_from_slice(&[0xde, 0xad, 0xbe, 0xef]);
        assert_eq!(buf, FRAME);
    }

    #[test]
    fn truncated() {
        assert_eq!(Frame::new_checked(&FRAME[..13]).unwrap_err(), Malformed);
        assert!(Frame::new_checked(&FRAME[..14]).is_ok());
    }

    #[test]
    fn multicast_bits() {
        assert!(is_multicast(&BROADCAST));
        assert!(is_multicast(&[0x33, 0x33, 0xff, 0, 0, 1]));
        assert!(!is_multicast(&[0x02, 0, 0, 0, 0, 1]));
        let a: std::net::Ipv6Addr = "ff02::1:ff00:1".parse().unwrap();
        assert_eq!(ipv6_multicast_mac(&a), [0x33, 0x33, 0xff, 0, 0, 1]);
        assert_eq!(format_mac(&[2, 0, 0, 0xab, 0, 1]), "02:00:00:ab:00:01");
    }
}
